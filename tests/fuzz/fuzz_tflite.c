/* The .tflite reader/verifier on arbitrary bytes. */
#include "fuzz_util.h"
#include "mcunas/tflite.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* A copy of exactly `size` bytes so that ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    mn_tfl_model m;
    memset(&m, 0, sizeof m);
    if (mn_tflite_read(buf, size, &m) == MN_OK) {
        /* Touch what the reader hands out: every view must lie inside the buffer. */
        volatile uint8_t sink = 0;
        for (int i = 0; i < m.n_tensors; i++) {
            const mn_tfl_tensor *t = &m.tensors[i];
            if (t->data_size) sink ^= t->data[0] ^ t->data[t->data_size - 1];
            if (t->n_scales) sink ^= t->scales[4 * (size_t)t->n_scales - 1];
            if (t->n_zero_points) sink ^= t->zero_points[8 * (size_t)t->n_zero_points - 1];
        }
        (void)sink;
        mn_tfl_model_free(&m);
    }
    free(buf);
    return 0;
}
