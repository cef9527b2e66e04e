/* The data stream of training: batches of a dataset cache's images over an index subset,
 * within a memory budget it never exceeds.
 *
 * A stream holds the train and test splits of one cache (or of caller-owned memory). When
 * both splits fit in the budget they are read once at open and kept in RAM (resident);
 * otherwise each pass streams: a reader thread (one: HDF5 is not reentrant here) reads the
 * chunks that hold the pass's indices, in a seeded random chunk order, into one of two
 * blocks while the caller consumes the other, and each block is shuffled before it is
 * handed over. Either way a pass delivers every index of its subset exactly once.
 * docs/dataset-format.md ("Streaming") has the details and the memory accounting. */
#ifndef MCUNAS_STREAM_H
#define MCUNAS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/dataset.h"
#include "mcunas/samples.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_STREAM_DEFAULT_BUDGET ((size_t)256 << 20)
/* HDF5's own metadata cache and bookkeeping, counted against a file stream's budget. */
#define MN_STREAM_HDF5_OVERHEAD ((size_t)2 << 20)

/* Augmentations (flags), applied on the fly to passes that ask for them. */
enum { MN_AUGMENT_FLIP = 1, MN_AUGMENT_ROTATE = 2 };

typedef struct mn_stream_options {
    size_t memory_budget;  /* bytes; 0: MN_STREAM_DEFAULT_BUDGET */
    int batch;             /* images per batch, >= 1 */
    size_t limit;          /* train split: only its first N images; 0: all */
    double rotate_factor;  /* MN_AUGMENT_ROTATE: angles uniform in +-factor*2*pi (Keras
                              RandomRotation's factor); 0: 0.2 */
    int force_streaming;   /* stream even when everything would fit (tests, benchmarks) */
} mn_stream_options;

void mn_stream_options_default(mn_stream_options *o);

typedef struct mn_stream mn_stream;

/* Opens a cache. Fails with MN_ERR_BUDGET (saying the minimum) when the budget cannot hold
 * two blocks of one chunk each. */
mn_status mn_stream_open(const char *path, const mn_stream_options *o, mn_stream **out);
/* A stream over images the caller keeps in memory (test may be NULL or empty); the budget
 * applies to what the stream allocates itself (indices and one batch). */
mn_status mn_stream_open_memory(mn_shape shape, int classes, const mn_samples *train,
                                const mn_samples *test, const mn_stream_options *o,
                                mn_stream **out);
void mn_stream_close(mn_stream *s);

const mn_dataset_info *mn_stream_info(const mn_stream *s); /* counts honour `limit` */
int mn_stream_is_resident(const mn_stream *s);
int mn_stream_batch(const mn_stream *s);
/* Bytes the stream holds: everything it allocated at open (its whole footprint, fixed for
 * its lifetime), plus MN_STREAM_HDF5_OVERHEAD for a file. Never above the budget. */
size_t mn_stream_memory_bytes(const mn_stream *s);

/* Starts a pass over indices idx[0..count) of a split (all of the split when idx is NULL).
 * shuffle: a seeded random order (resident: a full permutation; streaming: chunk order
 * plus a shuffle inside each block). augment: MN_AUGMENT_* flags, seeded by `seed` and the
 * position in the pass. A pass in progress is abandoned. */
mn_status mn_stream_begin(mn_stream *s, mn_split split, const uint32_t *idx, size_t count,
                          int shuffle, uint64_t seed, int augment);

typedef struct mn_batch {
    const uint8_t *images;  /* count * H*W*C bytes, NHWC */
    const int32_t *labels;
    const uint32_t *index;  /* each image's index in its split */
    size_t count;           /* 0: the pass is over */
} mn_batch;

/* The next batch of the pass (valid until the next call). Read errors from the reader
 * thread come back here, with the file and the index. */
mn_status mn_stream_next(mn_stream *s, mn_batch *b);

/* One image's augmentation, exposed for tests: flip and/or rotate `src` (H x W x C) into
 * `dst` with the transform drawn from `seed`. */
void mn_augment_image(const uint8_t *src, uint8_t *dst, mn_shape shape, int augment,
                      double rotate_factor, uint64_t seed);
/* Rotation by `angle` radians about the centre, Keras's (TF ImageProjectiveTransformV3)
 * bilinear sampling with fill mode 'reflect'. */
void mn_rotate_image(const uint8_t *src, uint8_t *dst, mn_shape shape, double angle);

#ifdef __cplusplus
}
#endif
#endif
