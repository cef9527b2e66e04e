/* The latency calibration file (mn_latency_calibrate): part 0 of the input is the file;
 * part 1, when present, is a target file loaded first (so user targets are looked up too). */
#include "fuzz_util.h"
#include "mcunas/cost.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cal, *tgt;
    size_t n_cal, n_tgt;
    mn_fuzz_split(data, size, &cal, &n_cal, &tgt, &n_tgt);
    mn_target_list list;
    if (mn_target_list_init(&list) != MN_OK) return 0;
    if (n_tgt) {
        char *text = malloc(n_tgt + 1);
        if (text) {
            memcpy(text, tgt, n_tgt);
            text[n_tgt] = 0;
            mn_target_list_parse(&list, text, "fuzz.targets");
            free(text);
        }
    }
    char path[1024];
    mn_fuzz_write("latency.txt", cal, n_cal, path, sizeof path);
    mn_latency_model m = {MN_KERNELS_CMSIS_NN, 1.0};
    int used = 0;
    mn_latency_calibrate(path, &list, &m, &used);
    mn_target_list_free(&list);
    return 0;
}
