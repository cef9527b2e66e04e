#include "fuzz_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static void remove_dir(void) {
    /* Only our own flat files and one level of folders: the harnesses create nothing deeper. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *mn_fuzz_dir(void) {
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/mn-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

void mn_fuzz_write(const char *name, const uint8_t *data, size_t size, char *path, size_t path_size) {
    snprintf(path, path_size, "%s/%s", mn_fuzz_dir(), name);
    /* Parent folders of name ("cls/a.png"). */
    for (char *s = path + strlen(mn_fuzz_dir()) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(path, 0700);
        *s = '/';
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void mn_fuzz_remove(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", mn_fuzz_dir(), name);
    remove(path);
}

void mn_fuzz_split(const uint8_t *data, size_t size, const uint8_t **p0, size_t *n0,
                   const uint8_t **p1, size_t *n1) {
    static const char sep[] = "\n--8<--\n";
    const size_t k = sizeof sep - 1;
    *p0 = data;
    *n0 = size;
    *p1 = data + size;
    *n1 = 0;
    for (size_t i = 0; i + k <= size; i++)
        if (!memcmp(data + i, sep, k)) {
            *n0 = i;
            *p1 = data + i + k;
            *n1 = size - i - k;
            return;
        }
}
