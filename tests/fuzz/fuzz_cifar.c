/* The CIFAR importer. The first byte picks the layout: even, CIFAR-10 (data_batch_1.bin,
 * test_batch.bin); odd, CIFAR-100 (train.bin, test.bin; bit 1: coarse labels). The rest is
 * split into the training batch (part 0) and the label names file (part 1). */
#include "fuzz_util.h"
#include "mcunas/dataset.h"

#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int c100 = data[0] & 1, coarse = c100 && (data[0] & 2);
    const uint8_t *batch, *names;
    size_t n_batch, n_names;
    mn_fuzz_split(data + 1, size - 1, &batch, &n_batch, &names, &n_names);
    char path[1024], out[1024];
    /* A fresh folder per input so that the layouts never mix. */
    const char *bname = c100 ? "cifar/train.bin" : "cifar/data_batch_1.bin";
    const char *nname = c100 ? (coarse ? "cifar/coarse_label_names.txt" : "cifar/fine_label_names.txt")
                             : "cifar/batches.meta.txt";
    mn_fuzz_write(bname, batch, n_batch, path, sizeof path);
    if (n_names) mn_fuzz_write(nname, names, n_names, path, sizeof path);
    mn_fuzz_write("cifar.h5", NULL, 0, out, sizeof out);
    mn_fuzz_remove("cifar.h5");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/cifar", mn_fuzz_dir());
    mn_import_cifar_options o;
    memset(&o, 0, sizeof o);
    o.dir = dir;
    o.output = out;
    o.coarse = coarse;
    mn_import_cifar(&o);
    mn_fuzz_remove("cifar.h5");
    mn_fuzz_remove(bname);
    mn_fuzz_remove(nname);
    return 0;
}
