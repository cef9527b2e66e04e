/* Dataset caches: labelled uint8 images in a chunked HDF5 file (docs/dataset-format.md),
 * their writer, and importers from the formats people have. */
#ifndef MCUNAS_DATASET_H
#define MCUNAS_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_DATASET_FORMAT_VERSION 1
#define MN_DATASET_MAX_CLASSES 65536
#define MN_DATASET_DEFAULT_CHUNK 256

typedef enum mn_split { MN_SPLIT_TRAIN = 0, MN_SPLIT_TEST = 1 } mn_split;
const char *mn_split_name(mn_split split); /* "train" | "test" */

typedef struct mn_dataset mn_dataset;

typedef struct mn_dataset_info {
    mn_shape shape;       /* H x W x C of every image */
    int classes;
    size_t count[2];      /* images per split, indexed by mn_split (0 when absent) */
    int format_version;
    char source[256];     /* free text: where the images came from */
} mn_dataset_info;

/* Opens a cache for reading; checks the format version, ranks, dtypes and that the label
 * and image counts agree. Errors name the file and the offending object. */
mn_status mn_dataset_open(const char *path, mn_dataset **out);
void mn_dataset_close(mn_dataset *ds);
const mn_dataset_info *mn_dataset_get_info(const mn_dataset *ds);
/* Name of class i ("" when the file has none); valid until close. */
const char *mn_dataset_class_name(const mn_dataset *ds, int i);

/* Reads images [start, start + count) of a split: images as uint8 NHWC into a buffer of
 * count*H*W*C bytes, labels as int32 (either may be NULL). Labels outside [0, classes)
 * fail with MN_ERR_FORMAT naming the index. */
mn_status mn_dataset_read(mn_dataset *ds, mn_split split, size_t start, size_t count,
                          uint8_t *images, int32_t *labels);

/* ---- writing ---- */

typedef struct mn_dataset_writer mn_dataset_writer;

typedef struct mn_dataset_writer_options {
    mn_shape shape;
    int classes;
    const char *const *class_names; /* `classes` names, or NULL */
    const char *source;             /* may be NULL */
    int chunk_images;               /* 0: MN_DATASET_DEFAULT_CHUNK */
    int deflate_level;              /* 0: uncompressed (the fast default); 1-9: deflate */
} mn_dataset_writer_options;

/* Writes to "<path>.tmp" until commit, which renames it to path; abort removes it. */
mn_status mn_dataset_writer_create(const char *path, const mn_dataset_writer_options *opts,
                                   mn_dataset_writer **out);
mn_status mn_dataset_writer_append(mn_dataset_writer *w, mn_split split,
                                   const uint8_t *images, const int32_t *labels,
                                   size_t count);
mn_status mn_dataset_writer_commit(mn_dataset_writer *w); /* frees w */
void mn_dataset_writer_abort(mn_dataset_writer *w);       /* frees w */

/* ---- importers ---- */

/* Progress: `done` of `total` items of the current phase (`what`). */
typedef void (*mn_progress_fn)(void *user, const char *what, size_t done, size_t total);

typedef struct mn_import_idx_options {
    const char *train_images, *train_labels; /* required */
    const char *test_images, *test_labels;   /* optional, both or neither */
    const char *output;
    size_t limit;                             /* 0: all; else first N training images */
    const char *const *class_names;           /* optional */
    int n_class_names;
    mn_progress_fn progress;
    void *progress_user;
} mn_import_idx_options;

/* Imports MNIST-format IDX files (gzip or raw, detected by magic bytes) into a cache. */
mn_status mn_import_idx(const mn_import_idx_options *opts);

#ifdef __cplusplus
}
#endif
#endif
