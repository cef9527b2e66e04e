/* Host memory from /proc. */
#include "mcunas/host.h"

#include <stdio.h>
#include <string.h>

/* The "key: N kB" line of a /proc file, in bytes; 0 when the file or key is missing. */
static size_t proc_kib(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[256];
    size_t klen = strlen(key), v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0) {
            unsigned long long kib = 0;
            if (sscanf(line + klen, " %llu", &kib) == 1) v = (size_t)kib * 1024;
            break;
        }
    fclose(f);
    return v;
}

size_t mn_host_available_bytes(void) { return proc_kib("/proc/meminfo", "MemAvailable:"); }
size_t mn_host_rss_bytes(void) { return proc_kib("/proc/self/status", "VmRSS:"); }
size_t mn_host_peak_bytes(void) { return proc_kib("/proc/self/status", "VmHWM:"); }

int mn_host_peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0; /* 5: reset the peak resident set size */
    ok = fclose(f) == 0 && ok;
    return ok;
}
