/* RAM and flash of NanoNAS's Visual Wake Words architectures (50x50x3, 2 classes, nanonas
 * layout, uint8 IO) under TFLM and under mcunas's C runtime: the estimates, and the C
 * runtime measured on the emulated Cortex-M4 and M3 (tests/firmware/build_run.sh). Sizes
 * do not depend on weight values, so deterministic random weights stand in for trained
 * ones. Usage: runtime_ram FIRMWARE_DIR WORK_DIR (run.sh builds and runs it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/cost.h"
#include "mcunas/cruntime.h"
#include "mcunas/tflite.h"
#include "testutil.h"

static long section(const char *path, const char *name) {
    FILE *f = fopen(path, "r");
    char line[256], sec[64];
    long size, found = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %ld", sec, &size) == 2 && !strcmp(sec, name)) found = size;
    fclose(f);
    return found;
}

static long report(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char line[4096];
    long v = -1;
    size_t n = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) v = atol(line + n);
    fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: runtime_ram FIRMWARE_DIR WORK_DIR\n");
        return 2;
    }
    static const int arches[][2] = {{3, 3}, {5, 4}, {6, 4}, {7, 4}};
    static const char *cores[] = {"cortex-m4", "cortex-m3"};
    printf("| arch | TFLM flash (.tflite) | TFLM arena (32-bit est.) | C flash est. | C flash M4 / M3 | "
           "C RAM est. | C RAM M4 / M3 | C RAM / TFLM arena | instructions M4 (est.) |\n"
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t a = 0; a < sizeof arches / sizeof arches[0]; a++) {
        uint8_t *img;
        mn_qgraph *g = mn_test_random_qgraph(arches[a][0], arches[a][1], MN_LAYOUT_NANONAS, 50, 50, 3, 2, 0, &img, 1, 5);
        if (!g) {
            fprintf(stderr, "cannot build A(%d,%d)\n", arches[a][0], arches[a][1]);
            return 1;
        }
        char dir[1024], cmd[4096], path[1200];
        snprintf(dir, sizeof dir, "%s/a%d%d", argv[2], arches[a][0], arches[a][1]);
        snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
        size_t tfl;
        mn_arena ar;
        mn_cruntime_size e;
        if (system(cmd) || mn_cruntime_generate(g, dir) || mn_tflite_size(g, &tfl) ||
            mn_arena_compute(g, MN_ABI_ARM32, &ar) || mn_cruntime_size_compute(g, MN_CORE_M4, &e)) {
            fprintf(stderr, "A(%d,%d): %s\n", arches[a][0], arches[a][1], mn_error_message());
            return 1;
        }
        snprintf(path, sizeof path, "%s/images.h", dir);
        FILE *f = fopen(path, "w");
        if (!f) return 1;
        fprintf(f, "#define MN_FW_N_IMAGES 1\nstatic const uint8_t mn_fw_images[1][7500] = {{");
        for (int i = 0; i < 7500; i++) fprintf(f, "%u,", img[i]);
        fprintf(f, "}};\n");
        fclose(f);
        long flash[2], ram[2], ticks = 0;
        for (int c = 0; c < 2; c++) {
            snprintf(cmd, sizeof cmd, "%s/build_run.sh %s %s", argv[1], cores[c], dir);
            if (system(cmd)) {
                fprintf(stderr, "A(%d,%d) on %s: firmware failed\n", arches[a][0], arches[a][1], cores[c]);
                return 1;
            }
            snprintf(path, sizeof path, "%s/size-%s.txt", dir, cores[c]);
            flash[c] = section(path, ".text") + section(path, ".rodata") + section(path, ".data");
            ram[c] = section(path, ".data") + section(path, ".bss");
            snprintf(path, sizeof path, "%s/run-%s.txt", dir, cores[c]);
            ram[c] += report(path, "STACK ");
            if (c == 0) ticks = report(path, "TICKS ");
        }
        printf("| A(%d,%d) | %zu | %zu | %zu | %ld / %ld | %zu | %ld / %ld | %.0f%% | %ld (%.0f) |\n", arches[a][0],
               arches[a][1], tfl, ar.total, e.flash_bytes, flash[0], flash[1], e.ram_bytes, ram[0], ram[1],
               100.0 * (double)ram[0] / (double)ar.total, ticks * 40, e.instructions);
        free(img);
        mn_qgraph_free(g);
    }
    return 0;
}
