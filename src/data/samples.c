#include "mcunas/samples.h"

#include <stdlib.h>
#include <string.h>

static mn_status read_split(mn_dataset *ds, const char *path, mn_split split, size_t count,
                            mn_loaded_data *d, mn_samples *out) {
    const size_t image_bytes = mn_shape_count(d->info.shape);
    out->count = count;
    if (!count) return MN_OK;
    uint8_t *images = malloc(count * image_bytes);
    int32_t *labels = malloc(count * sizeof(int32_t));
    d->images[split] = images;
    d->labels[split] = labels;
    if (!images || !labels)
        return mn_error_set(MN_ERR_NOMEM, "%s: no memory for %zu %s images (%zu bytes)", path,
                            count, mn_split_name(split), count * image_bytes);
    out->images = images;
    out->labels = labels;
    return mn_dataset_read(ds, split, 0, count, images, labels);
}

mn_status mn_loaded_data_read(const char *path, size_t limit, mn_loaded_data *out) {
    memset(out, 0, sizeof *out);
    mn_dataset *ds = NULL;
    mn_status st = mn_dataset_open(path, &ds);
    if (st) return st;
    out->info = *mn_dataset_get_info(ds);
    size_t n_train = out->info.count[MN_SPLIT_TRAIN];
    if (limit && limit < n_train) n_train = limit;
    if (n_train == 0) st = mn_error_set(MN_ERR_FORMAT, "%s: the train split is empty", path);
    if (!st) st = read_split(ds, path, MN_SPLIT_TRAIN, n_train, out, &out->train);
    if (!st) st = read_split(ds, path, MN_SPLIT_TEST, out->info.count[MN_SPLIT_TEST], out, &out->test);
    mn_dataset_close(ds);
    if (st) mn_loaded_data_free(out);
    return st;
}

void mn_loaded_data_free(mn_loaded_data *d) {
    for (int i = 0; i < MN_SPLITS; i++) {
        free(d->images[i]);
        free(d->labels[i]);
        d->images[i] = NULL;
        d->labels[i] = NULL;
    }
}
