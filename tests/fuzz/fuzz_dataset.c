/* The dataset cache's open-and-validate path on mutated HDF5 files, then what a reader of a
 * validated cache does: class names, storage info, class counts and a read of every split. */
#include "fuzz_util.h"
#include "mcunas/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "mcunas/status.h"

/* HDF5 1.10 sizes some buffers from the file unchecked (tests/fuzz/external/: up to 2^63
 * bytes) and checks what malloc returns. ASan's default is to abort on a request over its
 * 1 TiB maximum; here malloc returns NULL for it, as it does outside ASan, so the fuzzer goes
 * on to mcunas's own validation. Requests from libFuzzer's malloc limit (2.5 GB) up to 1 TiB
 * still stop a run, ours and HDF5's alike. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024];
    mn_fuzz_write("cache.h5", data, size, path, sizeof path);
    mn_dataset *ds = NULL;
    if (mn_dataset_open(path, &ds) != MN_OK) {
        /* A layout that makes HDF5 1.10 divide by zero fails cleanly (mn_h5_dopen) but leaks
         * what HDF5 had half built (about 50 KB under ASan, 16 KB without). Such
         * an input is kept out of the corpus (-1), or the fuzzer breeds them and the run
         * ends at the RSS limit instead of exploring. */
        return strstr(mn_error_message(), "corrupt storage layout") ? -1 : 0;
    }
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    for (int c = 0; c < info->classes; c++) (void)mn_dataset_class_name(ds, c);
    const size_t img = (size_t)info->shape.h * info->shape.w * info->shape.c;
    size_t *counts = calloc((size_t)info->classes, sizeof *counts);
    for (int s = 0; s < MN_SPLITS; s++) {
        size_t n = info->count[s];
        /* Huge images would only exercise malloc; the open path is what is under test. */
        if (!n || img > ((size_t)1 << 24)) continue;
        mn_dataset_storage st;
        mn_dataset_storage_info(ds, (mn_split)s, &st);
        if (counts) mn_dataset_class_counts(ds, (mn_split)s, counts);
        /* The first and the last few images: enough to cross chunk boundaries. */
        size_t k = n < 4 ? n : 4;
        uint8_t *px = malloc(k * img);
        int32_t *lab = malloc(k * sizeof *lab);
        if (px && lab) {
            mn_dataset_read(ds, (mn_split)s, 0, k, px, lab);
            mn_dataset_read(ds, (mn_split)s, n - k, k, px, lab);
        }
        free(px);
        free(lab);
    }
    free(counts);
    mn_dataset_close(ds);
    return 0;
}
