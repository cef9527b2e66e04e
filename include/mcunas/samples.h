/* A dataset cache's train and test splits read whole into memory, as mn_samples. Training
 * reads through mcunas/stream.h instead, which keeps to a memory budget (and streams
 * datasets larger than it); this stays for callers that want plain arrays. */
#ifndef MCUNAS_SAMPLES_H
#define MCUNAS_SAMPLES_H

#include "mcunas/dataset.h"
#include "mcunas/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_loaded_data {
    mn_dataset_info info;
    mn_samples train, test;
    uint8_t *images[2];
    int32_t *labels[2];
} mn_loaded_data;

/* Reads the train split (its first `limit` images when limit > 0) and the whole test split. */
mn_status mn_loaded_data_read(const char *path, size_t limit, mn_loaded_data *out);
void mn_loaded_data_free(mn_loaded_data *d);

#ifdef __cplusplus
}
#endif
#endif
