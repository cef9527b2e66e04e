/* Host memory and CPUs from /proc, the affinity mask and the process's cgroup. */
#include "mcunas/host.h"

#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

size_t mn_host_rss_bytes(void) { return proc_kib("/proc/self/status", "VmRSS:"); }
size_t mn_host_peak_bytes(void) { return proc_kib("/proc/self/status", "VmHWM:"); }

size_t mn_host_available_bytes(void) {
    size_t avail = proc_kib("/proc/meminfo", "MemAvailable:");
    size_t left = mn_host_cgroup_memory_left(NULL, NULL, NULL);
    return left < avail ? left : avail;
}

int mn_host_peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0; /* 5: reset the peak resident set size */
    ok = fclose(f) == 0 && ok;
    return ok;
}

/* ---- cgroups ---- */

#define NO_LIMIT ((size_t)-1)
/* cgroup v1 writes "no limit" as the largest page-aligned counter (2^63 - 4096 on x86-64). */
#define V1_UNLIMITED ((unsigned long long)1 << 62)

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The first word of dir/name: a number into *v (1), "max" (2), or 0 when missing or other. */
static int read_word(const char *dir, const char *name, unsigned long long *v) {
    char path[PATH_MAX], word[64];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int got = fscanf(f, "%63s", word) == 1;
    fclose(f);
    if (!got) return 0;
    if (strcmp(word, "max") == 0) return 2;
    char *end;
    long long x = strtoll(word, &end, 10);
    if (*end || end == word) return 0;
    *v = x < 0 ? 0 : (unsigned long long)x;
    return x < 0 ? 2 : 1; /* v1's cpu.cfs_quota_us writes "no quota" as -1 */
}

/* The value of `key` in dir/memory.stat ("key N" lines); 0 when missing. */
static unsigned long long stat_value(const char *dir, const char *key) {
    char path[PATH_MAX], line[256];
    if (snprintf(path, sizeof path, "%s/memory.stat", dir) >= (int)sizeof path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t klen = strlen(key);
    unsigned long long v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
            v = strtoull(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Where a controller's files are for this process: *dir = the cgroup's directory (the
 * levels above it are its ancestors, up to the mount `base`), and *v2 says which version.
 * Returns 0 when the process is in no cgroup with that controller under root. */
typedef struct cgroup_place {
    char base[PATH_MAX];  /* the hierarchy's mount: the topmost level looked at */
    char dir[PATH_MAX];   /* base + the process's cgroup path */
    int v2;
} cgroup_place;

static int has_word(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

/* out->dir = out->base + path without trailing slashes; 0 when too long. */
static int place_dir(cgroup_place *out, const char *path) {
    if (snprintf(out->dir, sizeof out->dir, "%s%s", out->base, path) >= (int)sizeof out->dir) return 0;
    size_t len = strlen(out->dir), blen = strlen(out->base);
    while (len > blen && out->dir[len - 1] == '/') out->dir[--len] = '\0';
    return 1;
}

static int cgroup_find(const char *root, const char *self, const char *controller,
                       cgroup_place *out) {
    if (!root) root = getenv("MN_CGROUP_ROOT");
    if (!root || !*root) root = MN_HOST_CGROUP_ROOT;
    FILE *f = fopen(self ? self : "/proc/self/cgroup", "r");
    if (!f) return 0;
    char line[PATH_MAX + 128], v1_path[PATH_MAX] = "", v2_path[PATH_MAX] = "";
    int have_v1 = 0, have_v2 = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        /* "hierarchy-id:controller,list:/path" (v2: "0::/path") */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = '\0';
        const char *controllers = c1 + 1, *path = c2 + 1;
        if (!*controllers && strcmp(line, "0:") == 0) {
            snprintf(v2_path, sizeof v2_path, "%s", path);
            have_v2 = 1;
        } else if (has_word(controllers, controller)) {
            snprintf(v1_path, sizeof v1_path, "%s", path);
            have_v1 = 1;
        }
    }
    fclose(f);
    char probe[PATH_MAX];
    /* v1: the controller's own hierarchy (mounted as root/<controller>, often a link to a
     * co-mounted "cpu,cpuacct") has it, whatever the unified hierarchy says. */
    if (have_v1 && snprintf(out->base, sizeof out->base, "%s/%s", root, controller) < (int)sizeof out->base &&
        is_dir(out->base)) {
        out->v2 = 0;
        return place_dir(out, v1_path);
    }
    if (!have_v2) return 0;
    /* v2: mounted at root itself, or at root/unified beside v1 hierarchies. */
    snprintf(probe, sizeof probe, "%s/cgroup.controllers", root);
    FILE *p = fopen(probe, "r");
    if (p) {
        fclose(p);
        snprintf(out->base, sizeof out->base, "%s", root);
    } else if (snprintf(out->base, sizeof out->base, "%s/unified", root) >= (int)sizeof out->base ||
               !is_dir(out->base)) {
        return 0;
    }
    out->v2 = 1;
    return place_dir(out, v2_path);
}

/* Moves dir one level up; 0 once it is at (or above) base. */
static int cgroup_parent(char *dir, const char *base) {
    size_t blen = strlen(base), len = strlen(dir);
    if (len <= blen) return 0;
    while (len > blen && dir[len - 1] != '/') len--;
    while (len > blen && dir[len - 1] == '/') len--;
    dir[len] = '\0';
    return 1;
}

size_t mn_host_cgroup_memory_left(const char *root, const char *self, size_t *limit) {
    size_t best = NO_LIMIT, best_limit = NO_LIMIT;
    cgroup_place pl;
    if (cgroup_find(root, self, "memory", &pl)) {
        /* A container may see a path its namespace does not show under the mount: levels
         * that do not exist are skipped, the mount itself is always looked at. */
        for (int more = 1; more; more = cgroup_parent(pl.dir, pl.base)) {
            if (!is_dir(pl.dir)) continue;
            unsigned long long lim = 0, high = 0, used = 0;
            int r;
            if (pl.v2) {
                r = read_word(pl.dir, "memory.max", &lim);
                if (read_word(pl.dir, "memory.high", &high) == 1 && (r != 1 || high < lim)) {
                    lim = high;
                    r = 1;
                }
                if (r != 1 || read_word(pl.dir, "memory.current", &used) != 1) continue;
                unsigned long long cache = stat_value(pl.dir, "inactive_file");
                used = cache < used ? used - cache : 0;
            } else {
                r = read_word(pl.dir, "memory.limit_in_bytes", &lim);
                if (r != 1 || lim >= V1_UNLIMITED) continue;
                if (read_word(pl.dir, "memory.usage_in_bytes", &used) != 1) continue;
                unsigned long long cache = stat_value(pl.dir, "total_inactive_file");
                if (!cache) cache = stat_value(pl.dir, "inactive_file");
                used = cache < used ? used - cache : 0;
            }
            size_t left = used < lim ? (size_t)(lim - used) : 0;
            if (left < best) {
                best = left;
                best_limit = (size_t)lim;
            }
        }
    }
    if (limit) *limit = best_limit;
    return best;
}

int mn_host_cgroup_cpus(const char *root, const char *self) {
    int best = 0;
    cgroup_place pl;
    if (!cgroup_find(root, self, "cpu", &pl)) return 0;
    for (int more = 1; more; more = cgroup_parent(pl.dir, pl.base)) {
        if (!is_dir(pl.dir)) continue;
        unsigned long long quota = 0, period = 0;
        if (pl.v2) {
            /* cpu.max: "QUOTA PERIOD" or "max PERIOD" */
            char path[PATH_MAX], q[64];
            if (snprintf(path, sizeof path, "%s/cpu.max", pl.dir) >= (int)sizeof path) continue;
            FILE *f = fopen(path, "r");
            if (!f) continue;
            int n = fscanf(f, "%63s %llu", q, &period);
            fclose(f);
            char *end;
            if (n != 2 || strcmp(q, "max") == 0) continue;
            quota = strtoull(q, &end, 10);
            if (*end) continue;
        } else if (read_word(pl.dir, "cpu.cfs_quota_us", &quota) != 1 ||
                   read_word(pl.dir, "cpu.cfs_period_us", &period) != 1) {
            continue;
        }
        if (!quota || !period) continue;
        unsigned long long cpus = (quota + period - 1) / period;
        if (cpus > INT_MAX) continue;
        if (!best || (int)cpus < best) best = (int)cpus;
    }
    return best;
}

int mn_host_cpu_count(void) {
    int n = 0;
    /* A mask big enough for any machine Linux runs on today; CPU_ALLOC sizes it. */
    for (int cpus = 1024; cpus <= 65536 && !n; cpus *= 4) {
        cpu_set_t *set = CPU_ALLOC(cpus);
        if (!set) break;
        size_t size = CPU_ALLOC_SIZE(cpus);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) n = CPU_COUNT_S(size, set);
        CPU_FREE(set);
    }
    if (n < 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 && online < INT_MAX ? (int)online : 1;
    }
    int quota = mn_host_cgroup_cpus(NULL, NULL);
    if (quota > 0 && quota < n) n = quota;
    return n;
}
