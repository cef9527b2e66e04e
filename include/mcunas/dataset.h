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

/* /val is optional: when a cache has it, training validates on it instead of holding out
 * part of /train. */
typedef enum mn_split { MN_SPLIT_TRAIN = 0, MN_SPLIT_TEST = 1, MN_SPLIT_VAL = 2 } mn_split;
#define MN_SPLITS 3
const char *mn_split_name(mn_split split); /* "train" | "test" | "val" */

typedef struct mn_dataset mn_dataset;

typedef struct mn_dataset_info {
    mn_shape shape;       /* H x W x C of every image */
    int classes;
    size_t count[MN_SPLITS]; /* images per split, indexed by mn_split (0 when absent) */
    int format_version;
    char source[256];     /* free text: where the images came from */
} mn_dataset_info;

/* Opens a cache for reading; checks the format version, ranks, dtypes and that the label
 * and image counts agree. Errors name the file and the offending object. */
mn_status mn_dataset_open(const char *path, mn_dataset **out);
/* The same with an image chunk cache of `cache_bytes` per split (0: none) instead of the
 * default four chunks: the stream reads whole chunks and counts this cache in its budget. */
mn_status mn_dataset_open_cached(const char *path, size_t cache_bytes, mn_dataset **out);
void mn_dataset_close(mn_dataset *ds);

/* How a split is stored. */
typedef struct mn_dataset_storage {
    size_t chunk_images;              /* images per chunk; 0 when contiguous or absent */
    int compressed;                   /* a filter (deflate) is applied */
    unsigned long long stored_bytes;  /* images + labels as stored on disk */
} mn_dataset_storage;
mn_status mn_dataset_storage_info(mn_dataset *ds, mn_split split, mn_dataset_storage *out);
const mn_dataset_info *mn_dataset_get_info(const mn_dataset *ds);
/* Name of class i ("" when the file has none); valid until close. */
const char *mn_dataset_class_name(const mn_dataset *ds, int i);

/* Reads images [start, start + count) of a split: images as uint8 NHWC into a buffer of
 * count*H*W*C bytes, labels as int32 (either may be NULL). Labels outside [0, classes)
 * fail with MN_ERR_FORMAT naming the index. */
mn_status mn_dataset_read(mn_dataset *ds, mn_split split, size_t start, size_t count,
                          uint8_t *images, int32_t *labels);

/* Images per class of a split (counts[classes], zeroed first); reads the labels in blocks. */
mn_status mn_dataset_class_counts(mn_dataset *ds, mn_split split, size_t *counts);

/* Writes a contact sheet PNG: one row per class (the first `max_classes`), the first
 * `per_class` images of that class in the train split, each scaled up by an integer factor
 * to at least 48 pixels, grey shown as grey, 2-pixel gaps. */
mn_status mn_dataset_preview(mn_dataset *ds, const char *png_path, int per_class,
                             int max_classes);

/* ---- writing ---- */

typedef struct mn_dataset_writer mn_dataset_writer;

typedef struct mn_dataset_writer_options {
    mn_shape shape;
    int classes;
    const char *const *class_names; /* `classes` names, or NULL */
    const char *source;             /* may be NULL */
    int chunk_images;               /* 0: MN_DATASET_DEFAULT_CHUNK */
    int deflate_level;              /* 0: uncompressed (the fast default); 1-9: deflate */
    volatile int *stop;             /* when non-NULL and set, append and commit refuse with
                                     * MN_ERR_INTERRUPTED (commit removing the temporary file;
                                     * after a refused append the caller aborts) */
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
    volatile int *stop;    /* when non-NULL and set, the import stops with MN_ERR_INTERRUPTED
                            * and leaves no file (nor its temporary) behind */
} mn_import_idx_options;

/* Imports MNIST-format IDX files (gzip or raw, detected by magic bytes) into a cache. */
mn_status mn_import_idx(const mn_import_idx_options *opts);

/* CIFAR binary batches: records of label byte(s) + 3072 bytes of 32x32 R, G, B planes.
 * CIFAR-10: data_batch_1..5.bin + test_batch.bin (1 label byte, 10 classes, names from
 * batches.meta.txt when present). CIFAR-100: train.bin + test.bin (2 label bytes, coarse
 * then fine; fine (100 classes) by default, coarse (20) with `coarse`; names from
 * fine_label_names.txt / coarse_label_names.txt when present). */
typedef struct mn_import_cifar_options {
    const char *dir;       /* the extracted cifar-10-batches-bin or cifar-100-binary folder */
    const char *output;
    int coarse;            /* CIFAR-100: the 20 coarse labels */
    size_t limit;          /* 0: all; else the first N training images */
    mn_progress_fn progress;
    void *progress_user;
    volatile int *stop;    /* when non-NULL and set, the import stops with MN_ERR_INTERRUPTED
                            * and leaves no file (nor its temporary) behind */
} mn_import_cifar_options;
mn_status mn_import_cifar(const mn_import_cifar_options *opts);

/* A folder with one subfolder per class of PNG/JPEG/BMP/PGM/PPM/GIF/TGA files (decoded by
 * stb_image), or train/ and optional test/ and val/ folders that each hold them (the Visual
 * Wake Words layout; val/ becomes the cache's /val split). Classes are the subfolders in name order. Images are decoded on all cores in
 * blocks and written in order; resized to width x height (area averaging when shrinking,
 * bilinear when growing) and converted to `channels`. */
typedef struct mn_import_folder_options {
    const char *dir;
    const char *output;
    int width, height;     /* 0: the first image's size; then every image must have it */
    int channels;          /* 1 or 3; 0: the first image's (gray: 1, colour: 3) */
    double test_split;     /* without a test/ folder: this fraction becomes the test split */
    uint64_t seed;         /* of the test split and of the training images' order */
    size_t limit;          /* 0: all; else N training images (a seeded random subset) */
    int skip_bad;          /* skip unreadable images (counted) instead of failing */
    size_t *skipped;       /* out, optional: images skipped */
    mn_progress_fn progress;
    void *progress_user;
    volatile int *stop;    /* when non-NULL and set, the import stops with MN_ERR_INTERRUPTED
                            * and leaves no file (nor its temporary) behind */
} mn_import_folder_options;
mn_status mn_import_folder(const mn_import_folder_options *opts);

/* Visual Wake Words built from COCO instances_*.json annotations (Chowdhery et al. 2019):
 * an image is class 1 "person" when an annotation of category 1 (person) has an `area`
 * (the segmentation's, not the box's) greater than MN_VWW_PERSON_AREA_FRACTION of the
 * image's width x height, crowd annotations included as in the public build scripts;
 * otherwise class 0 "no-person", including images without annotations. With `minival_ids`
 * (a text file of COCO image ids, one a line: the standard 8,059-image minival), those
 * images form /test and every other image /train: COCO 2014 train + val give the standard
 * split. Without it, every image is /train. The annotation files are read one element at
 * a time (memory grows with the number of images, not with the file); images are decoded
 * and written as mn_import_folder does. */
#define MN_VWW_PERSON_AREA_FRACTION 0.005
typedef struct mn_import_vww_options {
    const char *const *annotations; /* n_sources COCO instances_*.json files */
    const char *const *image_dirs;  /* per file: the folder its images' file_name is in */
    int n_sources;
    const char *minival_ids;        /* optional: these image ids become /test */
    const char *output;
    int width, height;              /* required: COCO images differ in size */
    int channels;                   /* 1 or 3; 0: 3 */
    uint64_t seed;                  /* of the training images' order (and --limit's subset) */
    size_t limit;                   /* 0: all; else N training images (a seeded random subset) */
    int skip_bad;                   /* skip unreadable images (counted) instead of failing */
    size_t *skipped;                /* out, optional: images skipped */
    mn_progress_fn progress;
    void *progress_user;
    volatile int *stop;             /* when non-NULL and set, the import stops with
                                     * MN_ERR_INTERRUPTED and leaves no file behind */
} mn_import_vww_options;
mn_status mn_import_vww(const mn_import_vww_options *opts);

/* Resizes an 8-bit image (area averaging along an axis that shrinks, bilinear with pixel
 * centres aligned along one that grows, a copy along one that keeps its size). */
void mn_resize_image(const uint8_t *src, int sw, int sh, int channels, uint8_t *dst, int dw,
                     int dh);

#ifdef __cplusplus
}
#endif
#endif
