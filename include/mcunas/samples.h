/* Labelled images in memory (mn_samples), and a dataset cache's train and test splits read
 * whole into them. Part of the data layer: nothing here depends on the net. Training
 * reads through mcunas/stream.h instead, which keeps to a memory budget (and streams
 * datasets larger than it); this stays for callers that want plain arrays. */
#ifndef MCUNAS_SAMPLES_H
#define MCUNAS_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Labelled uint8 NHWC images held in memory. */
typedef struct mn_samples {
    const uint8_t *images;
    const int32_t *labels;
    size_t count;
} mn_samples;

typedef struct mn_loaded_data {
    mn_dataset_info info;
    mn_samples train, test;
    uint8_t *images[MN_SPLITS]; /* owned, indexed by mn_split; NULL when not read */
    int32_t *labels[MN_SPLITS];
} mn_loaded_data;

/* Reads the train split (its first `limit` images when limit > 0) and the whole test split. */
mn_status mn_loaded_data_read(const char *path, size_t limit, mn_loaded_data *out);
void mn_loaded_data_free(mn_loaded_data *d);

#ifdef __cplusplus
}
#endif
#endif
