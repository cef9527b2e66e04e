/* Shared by the importers of image files (folder, vww): decode a list of files on all
 * cores, one block at a time, and append them to a dataset writer in order. */
#ifndef MN_IMPORT_IMAGES_H
#define MN_IMPORT_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/dataset.h"

typedef struct mn_image_item {
    char *path;
    int32_t label;
    uint8_t split; /* mn_split */
} mn_image_item;

typedef struct mn_image_write_options {
    int width, height, channels; /* the cache's image shape */
    int exact;                   /* 1: every image must already have this size */
    int skip_bad;                /* skip unreadable images (counted) instead of failing */
    size_t *skipped;             /* out, optional */
    mn_progress_fn progress;
    void *progress_user;
} mn_image_write_options;

/* Decodes items[order[0 .. count[0])] into /train, the next count[1] into /test and the
 * next count[2] into /val, converting to `channels` and resizing (mn_resize_image) unless
 * `exact`. Only one block of images is in memory; progress is reported per block. The
 * first unreadable image fails with a message naming its path, unless skip_bad. */
mn_status mn_import_images_write(mn_dataset_writer *w, const mn_image_item *items,
                                 const uint32_t *order, const size_t count[MN_SPLITS],
                                 const mn_image_write_options *opts);

/* The size and channel count (1 or 3) of the first decodable of items[order[0..n)]:
 * fills *w, *h only when they are 0, *c only when it is 0. Unless skip_bad, an
 * undecodable file fails naming its path; `what` names the source when none is readable. */
mn_status mn_import_images_probe(const mn_image_item *items, const uint32_t *order, size_t n,
                                 int skip_bad, const char *what, int *w, int *h, int *c);

#endif
