/* The training data stream (include/mcunas/stream.h): resident when the data fits the
 * budget, otherwise a reader thread filling two blocks in shuffled chunk order. */
#include "mcunas/stream.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/rng.h"

#define MN_PI 3.14159265358979323846

enum { BLOCK_FREE = 0, BLOCK_READY = 1 };

typedef struct mn_block {
    uint8_t *images;
    int32_t *labels;
    uint32_t *index; /* split index of each image */
    uint32_t *order; /* delivery order (a permutation of [0, fill)) */
    size_t fill, pos;
    int state;
} mn_block;

struct mn_stream {
    mn_dataset_info info;
    mn_dataset *ds; /* NULL for a memory stream */
    size_t image_bytes;
    int batch;
    double rotate_factor;
    int resident;
    size_t memory_bytes;

    /* resident data: owned (file) or the caller's (memory) */
    const uint8_t *img[MN_SPLITS];
    const int32_t *lab[MN_SPLITS];
    uint8_t *own_img[MN_SPLITS];
    int32_t *own_lab[MN_SPLITS];

    /* the pass */
    uint32_t *idx; /* pass indices (resident: delivery order; streaming: sorted) */
    size_t idx_cap, n, pos;
    mn_split split;
    int augment, shuffle, active;
    uint64_t seed;

    /* the batch handed out */
    uint8_t *bimg;
    int32_t *blab;
    uint32_t *bidx;

    /* streaming */
    size_t unit;       /* images per read: whole chunks */
    uint32_t *chunks;  /* start of each present read unit in idx, plus n */
    uint32_t *corder;  /* order of the units */
    size_t chunks_cap, n_chunks;
    mn_block blk[2];
    size_t cap; /* images per block */
    pthread_t thread;
    int thread_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int cancel; /* read by the reader between chunks without the lock */
    int reader_done, want;
    mn_status err;
    char errmsg[1024];
};

void mn_stream_options_default(mn_stream_options *o) {
    memset(o, 0, sizeof *o);
    o->memory_budget = MN_STREAM_DEFAULT_BUDGET;
    o->batch = 16;
    o->rotate_factor = 0.2;
}

const mn_dataset_info *mn_stream_info(const mn_stream *s) { return &s->info; }
int mn_stream_is_resident(const mn_stream *s) { return s->resident; }
int mn_stream_batch(const mn_stream *s) { return s->batch; }
size_t mn_stream_memory_bytes(const mn_stream *s) { return s ? s->memory_bytes : 0; }

/* ---------------------------------------------------------------- augmentation */

/* TF's map_coordinate for fill_mode REFLECT (d c b a | a b c d | d c b a). */
static float reflect_coord(float in, int len) {
    if (in < 0) {
        if (len <= 1) return 0;
        const float sz2 = 2.0f * (float)len;
        if (in < sz2) in = sz2 * (float)(long)(-in / sz2) + in;
        in = (in < (float)-len) ? in + sz2 : -in - 1.0f;
    } else if (in > (float)(len - 1)) {
        if (len <= 1) return 0;
        const float sz2 = 2.0f * (float)len;
        in -= sz2 * (float)(long)(in / sz2);
        if (in >= (float)len) in = sz2 - in - 1.0f;
    }
    if (in < 0) in = 0;
    if (in > (float)(len - 1)) in = (float)(len - 1);
    return in;
}

static float read_px(const uint8_t *src, mn_shape sh, int flip, int y, int x, int c) {
    if (y < 0 || y >= sh.h || x < 0 || x >= sh.w) return 0.0f;
    if (flip) x = sh.w - 1 - x;
    return (float)src[((size_t)y * (size_t)sh.w + (size_t)x) * (size_t)sh.c + (size_t)c];
}

/* Output pixel (x, y) samples the (optionally flipped) input at Keras's rotation matrix
 * [cos, -sin, x_off; sin, cos, y_off] applied to (x, y). */
static void rotate_flip(const uint8_t *src, uint8_t *dst, mn_shape sh, double angle, int flip) {
    const double cs = cos(angle), sn = sin(angle);
    const double w1 = sh.w - 1, h1 = sh.h - 1;
    const double x_off = (w1 - (cs * w1 - sn * h1)) / 2.0;
    const double y_off = (h1 - (sn * w1 + cs * h1)) / 2.0;
    for (int y = 0; y < sh.h; y++)
        for (int x = 0; x < sh.w; x++) {
            float xi = reflect_coord((float)(cs * x - sn * y + x_off), sh.w);
            float yi = reflect_coord((float)(sn * x + cs * y + y_off), sh.h);
            float xf = floorf(xi), yf = floorf(yi);
            int x0 = (int)xf, y0 = (int)yf;
            for (int c = 0; c < sh.c; c++) {
                float top = ((xf + 1) - xi) * read_px(src, sh, flip, y0, x0, c) +
                            (xi - xf) * read_px(src, sh, flip, y0, x0 + 1, c);
                float bot = ((xf + 1) - xi) * read_px(src, sh, flip, y0 + 1, x0, c) +
                            (xi - xf) * read_px(src, sh, flip, y0 + 1, x0 + 1, c);
                float v = ((yf + 1) - yi) * top + (yi - yf) * bot;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                dst[((size_t)y * (size_t)sh.w + (size_t)x) * (size_t)sh.c + (size_t)c] =
                    (uint8_t)lrintf(v);
            }
        }
}

void mn_rotate_image(const uint8_t *src, uint8_t *dst, mn_shape shape, double angle) {
    rotate_flip(src, dst, shape, angle, 0);
}

void mn_augment_image(const uint8_t *src, uint8_t *dst, mn_shape sh, int augment,
                      double rotate_factor, uint64_t seed) {
    mn_rng r;
    mn_rng_seed(&r, seed);
    int flip = (augment & MN_AUGMENT_FLIP) && mn_rng_uniform(&r) < 0.5;
    if (augment & MN_AUGMENT_ROTATE) {
        double f = rotate_factor > 0 ? rotate_factor : 0.2;
        double angle = (2.0 * mn_rng_uniform(&r) - 1.0) * f * 2.0 * MN_PI;
        rotate_flip(src, dst, sh, angle, flip);
        return;
    }
    const size_t row = (size_t)sh.w * (size_t)sh.c, px = (size_t)sh.c;
    if (!flip) {
        memcpy(dst, src, row * (size_t)sh.h);
        return;
    }
    for (int y = 0; y < sh.h; y++)
        for (int x = 0; x < sh.w; x++)
            memcpy(dst + (size_t)y * row + (size_t)x * px,
                   src + (size_t)y * row + (size_t)(sh.w - 1 - x) * px, px);
}

/* ---------------------------------------------------------------- open / close */

static mn_stream *stream_alloc(void) {
    mn_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

static size_t max_count(const mn_stream *s) {
    size_t m = 0;
    for (int i = 0; i < MN_SPLITS; i++) m = s->info.count[i] > m ? s->info.count[i] : m;
    return m;
}

/* The pass index array and the batch: every stream has them. */
static mn_status alloc_common(mn_stream *s, const char *what) {
    s->idx_cap = max_count(s);
    s->idx = malloc((s->idx_cap ? s->idx_cap : 1) * sizeof *s->idx);
    s->bimg = malloc((size_t)s->batch * s->image_bytes);
    s->blab = malloc((size_t)s->batch * sizeof *s->blab);
    s->bidx = malloc((size_t)s->batch * sizeof *s->bidx);
    if (!s->idx || !s->bimg || !s->blab || !s->bidx)
        return mn_error_set(MN_ERR_NOMEM, "%s: no memory for the stream's batch and indices", what);
    return MN_OK;
}

static size_t common_bytes(const mn_stream *s) {
    return sizeof *s + max_count(s) * sizeof(uint32_t) +
           (size_t)s->batch * (s->image_bytes + sizeof(int32_t) + sizeof(uint32_t));
}

static mn_status check_options(const mn_stream_options *o) {
    if (!o) return mn_error_set(MN_ERR_INVALID_ARG, "mn_stream: NULL options");
    if (o->batch < 1) return mn_error_set(MN_ERR_INVALID_ARG, "stream batch must be >= 1 (got %d)", o->batch);
    if (!(o->rotate_factor >= 0 && o->rotate_factor <= 1))
        return mn_error_set(MN_ERR_INVALID_ARG, "rotate factor must be in [0, 1] (got %g)",
                            o->rotate_factor);
    return MN_OK;
}

mn_status mn_stream_open_memory(mn_shape shape, int classes, const mn_samples *train,
                                const mn_samples *test, const mn_stream_options *o,
                                mn_stream **out) {
    *out = NULL;
    mn_status st = check_options(o);
    if (st) return st;
    if (!train || (train->count && (!train->images || !train->labels)))
        return mn_error_set(MN_ERR_INVALID_ARG, "mn_stream_open_memory: no training samples");
    if (train->count > UINT32_MAX || (test && test->count > UINT32_MAX))
        return mn_error_set(MN_ERR_INVALID_ARG, "more than 2^32 images in a split");
    mn_stream *s = stream_alloc();
    if (!s) return mn_error_set(MN_ERR_NOMEM, "no memory for a stream");
    s->info.shape = shape;
    s->info.classes = classes;
    s->info.format_version = MN_DATASET_FORMAT_VERSION;
    snprintf(s->info.source, sizeof s->info.source, "memory");
    s->image_bytes = mn_shape_count(shape);
    s->batch = o->batch;
    s->rotate_factor = o->rotate_factor > 0 ? o->rotate_factor : 0.2;
    s->resident = 1;
    s->info.count[MN_SPLIT_TRAIN] = train->count;
    if (o->limit && o->limit < train->count) s->info.count[MN_SPLIT_TRAIN] = o->limit;
    s->img[0] = train->images;
    s->lab[0] = train->labels;
    if (test && test->count) {
        s->info.count[MN_SPLIT_TEST] = test->count;
        s->img[1] = test->images;
        s->lab[1] = test->labels;
    }
    size_t budget = o->memory_budget ? o->memory_budget : MN_STREAM_DEFAULT_BUDGET;
    s->memory_bytes = common_bytes(s);
    if (s->memory_bytes > budget) {
        st = mn_error_set(MN_ERR_BUDGET,
                          "a memory budget of %zu bytes is too small for the stream's batch and "
                          "indices (%zu bytes)",
                          budget, s->memory_bytes);
    } else {
        st = alloc_common(s, "memory");
    }
    if (st) {
        mn_stream_close(s);
        return st;
    }
    *out = s;
    return MN_OK;
}

mn_status mn_stream_open(const char *path, const mn_stream_options *o, mn_stream **out) {
    *out = NULL;
    mn_status st = check_options(o);
    if (st) return st;
    mn_stream *s = stream_alloc();
    if (!s) return mn_error_set(MN_ERR_NOMEM, "no memory for a stream");
    /* No chunk cache: the stream reads whole chunks straight into its own blocks. */
    st = mn_dataset_open_cached(path, 0, &s->ds);
    if (st) {
        mn_stream_close(s);
        return st;
    }
    s->info = *mn_dataset_get_info(s->ds);
    if (o->limit && o->limit < s->info.count[MN_SPLIT_TRAIN]) s->info.count[MN_SPLIT_TRAIN] = o->limit;
    if (s->info.count[MN_SPLIT_TRAIN] == 0) {
        mn_stream_close(s);
        return mn_error_set(MN_ERR_FORMAT, "%s: the train split is empty", path);
    }
    if (max_count(s) > UINT32_MAX) {
        mn_stream_close(s);
        return mn_error_set(MN_ERR_UNSUPPORTED, "%s: more than 2^32 images in a split", path);
    }
    s->image_bytes = mn_shape_count(s->info.shape);
    s->batch = o->batch;
    s->rotate_factor = o->rotate_factor > 0 ? o->rotate_factor : 0.2;
    const size_t budget = o->memory_budget ? o->memory_budget : MN_STREAM_DEFAULT_BUDGET;
    const size_t ib = s->image_bytes, per_image = ib + sizeof(int32_t);
    const size_t fixed = MN_STREAM_HDF5_OVERHEAD + common_bytes(s);
    const size_t resident_bytes =
        fixed + (s->info.count[0] + s->info.count[1] + s->info.count[2]) * per_image;

    if (!o->force_streaming && resident_bytes <= budget) {
        s->resident = 1;
        s->memory_bytes = resident_bytes;
        st = alloc_common(s, path);
        for (int sp = 0; sp < MN_SPLITS && !st; sp++) {
            size_t n = s->info.count[sp];
            if (!n) continue;
            s->own_img[sp] = malloc(n * ib);
            s->own_lab[sp] = malloc(n * sizeof(int32_t));
            if (!s->own_img[sp] || !s->own_lab[sp])
                st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for %zu %s images", path, n,
                                  mn_split_name((mn_split)sp));
            else
                st = mn_dataset_read(s->ds, (mn_split)sp, 0, n, s->own_img[sp], s->own_lab[sp]);
            s->img[sp] = s->own_img[sp];
            s->lab[sp] = s->own_lab[sp];
        }
        /* Everything is in RAM: the file is not needed any more. */
        mn_dataset_close(s->ds);
        s->ds = NULL;
        if (st) {
            mn_stream_close(s);
            return st;
        }
        *out = s;
        return MN_OK;
    }

    /* Streaming: read units of whole chunks, two blocks of `cap` images. */
    mn_dataset_storage sto[MN_SPLITS];
    size_t scratch = 0, unit = 0;
    for (int sp = 0; sp < MN_SPLITS && !st; sp++) {
        st = mn_dataset_storage_info(s->ds, (mn_split)sp, &sto[sp]);
        if (st || !s->info.count[sp]) continue;
        size_t u = sto[sp].chunk_images ? sto[sp].chunk_images : MN_DATASET_DEFAULT_CHUNK;
        if (u < 64) u *= (64 + u - 1) / u;
        if (u > unit) unit = u;
        /* A compressed chunk is inflated into a temporary buffer of its size. */
        if (sto[sp].compressed && sto[sp].chunk_images * ib > scratch)
            scratch = sto[sp].chunk_images * ib;
    }
    if (st) {
        mn_stream_close(s);
        return st;
    }
    /* Read units must nest chunks of both splits: use a common multiple when they differ. */
    for (int sp = 0; sp < MN_SPLITS; sp++) {
        size_t c = sto[sp].chunk_images;
        if (s->info.count[sp] && c && unit % c) unit *= c;
    }
    s->unit = unit;
    s->chunks_cap = max_count(s) / unit + 2;
    const size_t fixed_stream = fixed + scratch + 2 * s->chunks_cap * sizeof(uint32_t);
    const size_t per = ib + sizeof(int32_t) + 2 * sizeof(uint32_t);
    const size_t need = fixed_stream + 2 * unit * per;
    if (budget < need) {
        st = mn_error_set(MN_ERR_BUDGET,
                          "%s: a memory budget of %zu bytes cannot stream this dataset: it "
                          "needs at least %zu (two blocks of %zu images of %dx%dx%d, the "
                          "indices and one batch)",
                          path, budget, need, unit, s->info.shape.h, s->info.shape.w,
                          s->info.shape.c);
        mn_stream_close(s);
        return st;
    }
    size_t cap = (budget - fixed_stream) / (2 * per);
    size_t most = max_count(s) + unit; /* a block never needs more */
    if (cap > most) cap = most;
    s->cap = cap;
    s->memory_bytes = fixed_stream + 2 * cap * per;
    st = alloc_common(s, path);
    s->chunks = malloc(s->chunks_cap * sizeof(uint32_t));
    s->corder = malloc(s->chunks_cap * sizeof(uint32_t));
    if (!st && (!s->chunks || !s->corder))
        st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for the stream's chunk list", path);
    for (int b = 0; b < 2 && !st; b++) {
        mn_block *bk = &s->blk[b];
        bk->images = malloc(cap * ib);
        bk->labels = malloc(cap * sizeof(int32_t));
        bk->index = malloc(cap * sizeof(uint32_t));
        bk->order = malloc(cap * sizeof(uint32_t));
        if (!bk->images || !bk->labels || !bk->index || !bk->order)
            st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for a stream block of %zu images",
                              path, cap);
    }
    if (st) {
        mn_stream_close(s);
        return st;
    }
    *out = s;
    return MN_OK;
}

static void stop_reader(mn_stream *s) {
    if (!s->thread_running) return;
    pthread_mutex_lock(&s->mu);
    s->cancel = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_running = 0;
}

void mn_stream_close(mn_stream *s) {
    if (!s) return;
    stop_reader(s);
    mn_dataset_close(s->ds);
    for (int i = 0; i < MN_SPLITS; i++) {
        free(s->own_img[i]);
        free(s->own_lab[i]);
    }
    for (int i = 0; i < 2; i++) {
        free(s->blk[i].images);
        free(s->blk[i].labels);
        free(s->blk[i].index);
        free(s->blk[i].order);
    }
    free(s->idx);
    free(s->bimg);
    free(s->blab);
    free(s->bidx);
    free(s->chunks);
    free(s->corder);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---------------------------------------------------------------- the reader thread */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Waits until block b is free; 0 when cancelled. */
static int wait_free(mn_stream *s, int b) {
    pthread_mutex_lock(&s->mu);
    while (s->blk[b].state != BLOCK_FREE && !s->cancel) pthread_cond_wait(&s->cv, &s->mu);
    int ok = !s->cancel;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static void publish(mn_stream *s, int b, size_t fill, mn_rng *rng) {
    mn_block *bk = &s->blk[b];
    for (size_t i = 0; i < fill; i++) bk->order[i] = (uint32_t)i;
    if (s->shuffle) mn_rng_shuffle(rng, bk->order, fill);
    pthread_mutex_lock(&s->mu);
    bk->fill = fill;
    bk->pos = 0;
    bk->state = BLOCK_READY;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *reader_main(void *arg) {
    mn_stream *s = arg;
    mn_rng rng;
    mn_rng_seed(&rng, mn_seed_mix(s->seed, 0xB10C));
    const size_t ib = s->image_bytes;
    int b = 0;
    size_t fill = 0;
    mn_status st = MN_OK;
    if (!wait_free(s, b)) return NULL;
    for (size_t k = 0; k < s->n_chunks; k++) {
        if (s->cancel) return NULL;
        size_t c = s->corder[k];
        size_t p0 = s->chunks[c], p1 = s->chunks[c + 1];
        size_t first = s->idx[p0], last = s->idx[p1 - 1], range = last - first + 1;
        if (fill + range > s->cap) {
            publish(s, b, fill, &rng);
            b ^= 1;
            fill = 0;
            if (!wait_free(s, b)) return NULL;
        }
        mn_block *bk = &s->blk[b];
        st = mn_dataset_read(s->ds, s->split, first, range, bk->images + fill * ib,
                             bk->labels + fill);
        if (st) break;
        /* Keep the pass's members of the range, in place (destinations never pass sources). */
        for (size_t j = p0; j < p1; j++) {
            size_t src = fill + (s->idx[j] - first), dst = fill + (j - p0);
            if (src != dst) {
                memcpy(bk->images + dst * ib, bk->images + src * ib, ib);
                bk->labels[dst] = bk->labels[src];
            }
            bk->index[dst] = s->idx[j];
        }
        fill += p1 - p0;
    }
    if (!st && fill) publish(s, b, fill, &rng);
    pthread_mutex_lock(&s->mu);
    if (st) {
        s->err = st;
        snprintf(s->errmsg, sizeof s->errmsg, "%s", mn_error_message());
    }
    s->reader_done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---------------------------------------------------------------- passes */

mn_status mn_stream_begin(mn_stream *s, mn_split split, const uint32_t *idx, size_t count,
                          int shuffle, uint64_t seed, int augment) {
    stop_reader(s);
    s->active = 0;
    if ((unsigned)split >= MN_SPLITS)
        return mn_error_set(MN_ERR_INVALID_ARG, "stream: invalid split %d", (int)split);
    const size_t total = s->info.count[split];
    if (!idx) count = total;
    if (count > s->idx_cap)
        return mn_error_set(MN_ERR_INVALID_ARG, "stream: a pass of %zu images over /%s, which has %zu",
                            count, mn_split_name(split), total);
    for (size_t i = 0; i < count; i++) {
        uint32_t v = idx ? idx[i] : (uint32_t)i;
        if (v >= total)
            return mn_error_set(MN_ERR_INVALID_ARG,
                                "stream: index %u (entry %zu of the pass) is outside /%s, which "
                                "has %zu images",
                                v, i, mn_split_name(split), total);
        s->idx[i] = v;
    }
    s->n = count;
    s->pos = 0;
    s->split = split;
    s->shuffle = shuffle;
    s->seed = seed;
    s->augment = augment;
    if (s->resident) {
        if (shuffle) {
            mn_rng rng;
            mn_rng_seed(&rng, seed);
            mn_rng_shuffle(&rng, s->idx, count);
        }
        s->active = 1;
        return MN_OK;
    }
    if (idx) qsort(s->idx, count, sizeof *s->idx, cmp_u32);
    for (size_t i = 1; i < count; i++)
        if (s->idx[i] == s->idx[i - 1])
            return mn_error_set(MN_ERR_INVALID_ARG, "stream: index %u appears twice in the pass",
                                s->idx[i]);
    /* Read units present in the pass, and their (seeded) order. */
    s->n_chunks = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || s->idx[i] / s->unit != s->idx[i - 1] / s->unit) s->chunks[s->n_chunks++] = (uint32_t)i;
    }
    s->chunks[s->n_chunks] = (uint32_t)count;
    for (size_t i = 0; i < s->n_chunks; i++) s->corder[i] = (uint32_t)i;
    if (shuffle) {
        mn_rng rng;
        mn_rng_seed(&rng, seed);
        mn_rng_shuffle(&rng, s->corder, s->n_chunks);
    }
    s->blk[0].state = s->blk[1].state = BLOCK_FREE;
    s->cancel = s->reader_done = 0;
    s->err = MN_OK;
    s->errmsg[0] = '\0';
    s->want = 0;
    if (count) {
        if (pthread_create(&s->thread, NULL, reader_main, s) != 0)
            return mn_error_set(MN_ERR_NOMEM, "stream: cannot start the reader thread");
        s->thread_running = 1;
    }
    s->active = 1;
    return MN_OK;
}

mn_status mn_stream_next(mn_stream *s, mn_batch *b) {
    memset(b, 0, sizeof *b);
    if (!s->active) return mn_error_set(MN_ERR_INVALID_ARG, "stream: no pass in progress");
    const size_t ib = s->image_bytes;
    size_t k = 0;
    while (k < (size_t)s->batch && s->pos < s->n) {
        const uint8_t *src;
        mn_block *release = NULL;
        if (s->resident) {
            uint32_t j = s->idx[s->pos];
            src = s->img[s->split] + (size_t)j * ib;
            s->blab[k] = s->lab[s->split][j];
            s->bidx[k] = j;
        } else {
            mn_block *bk = &s->blk[s->want];
            pthread_mutex_lock(&s->mu);
            while (bk->state != BLOCK_READY && !s->err && !s->reader_done)
                pthread_cond_wait(&s->cv, &s->mu);
            int ready = bk->state == BLOCK_READY;
            mn_status err = s->err;
            pthread_mutex_unlock(&s->mu);
            if (!ready) {
                s->active = 0;
                stop_reader(s);
                if (err) return mn_error_set(err, "%s", s->errmsg);
                return mn_error_set(MN_ERR_FORMAT, "stream: the reader ended after %zu of %zu images",
                                    s->pos, s->n);
            }
            uint32_t o = bk->order[bk->pos++];
            src = bk->images + (size_t)o * ib;
            s->blab[k] = bk->labels[o];
            s->bidx[k] = bk->index[o];
            if (bk->pos == bk->fill) release = bk;
        }
        uint8_t *dst = s->bimg + k * ib;
        if (s->augment)
            mn_augment_image(src, dst, s->info.shape, s->augment, s->rotate_factor,
                             mn_seed_mix(s->seed ^ 0xA46u, s->pos));
        else
            memcpy(dst, src, ib);
        if (release) {
            /* The block's last image is taken: hand it back to the reader. */
            pthread_mutex_lock(&s->mu);
            release->state = BLOCK_FREE;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            s->want ^= 1;
        }
        s->pos++;
        k++;
    }
    if (s->pos == s->n && !s->resident) stop_reader(s);
    b->images = s->bimg;
    b->labels = s->blab;
    b->index = s->bidx;
    b->count = k;
    return MN_OK;
}
