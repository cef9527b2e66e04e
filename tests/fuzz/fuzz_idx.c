/* The IDX importer: part 0 of the input is the image file, part 1 the label file (raw or
 * gzip, as the importer detects). The cache it writes goes to the temp folder. */
#include "fuzz_util.h"
#include "mcunas/dataset.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *img, *lab;
    size_t n_img, n_lab;
    mn_fuzz_split(data, size, &img, &n_img, &lab, &n_lab);
    char pi[1024], pl[1024], out[1024];
    mn_fuzz_write("images.idx", img, n_img, pi, sizeof pi);
    mn_fuzz_write("labels.idx", lab, n_lab, pl, sizeof pl);
    mn_fuzz_write("idx.h5", NULL, 0, out, sizeof out);
    mn_fuzz_remove("idx.h5");
    mn_import_idx_options o;
    memset(&o, 0, sizeof o);
    o.train_images = pi;
    o.train_labels = pl;
    o.output = out;
    mn_import_idx(&o);
    mn_fuzz_remove("idx.h5");
    return 0;
}
