/* oneDNN's convolutions for the CPU backend's wide layers: forward and backward-data of
 * the 3x3 'same' convolutions that would otherwise run im2col + sgemm (both sides wider
 * than the direct kernels take, maps of at least MN_DNNL_MIN_PIX pixels). Measured on the
 * reference networks' layers, one thread: 1.2-2.0x faster than im2col + OpenBLAS on both
 * ops; backward-weights was about even and stays ours (benchmarks/RESULTS.md).
 *
 * Results do not depend on the thread count, as everywhere in this backend: the batch is
 * split into chunks of `sub` whole images, `sub` from the map size alone (about
 * MN_DNNL_CHUNK_PIX pixels a chunk; the last chunk takes the rest), and each chunk is one
 * single-threaded oneDNN call on its own images. Neither op sums across images, so a
 * chunk's output is the same whichever thread runs it. oneDNN is kept single-threaded by
 * the calling task's OpenMP thread count (1 while a primitive is created and inside the
 * chunk loop), and its scratchpad is ours (user mode: one per thread, in the op's
 * workspace), so two threads may run one primitive at once.
 *
 * Primitives are cached per backend, keyed by op and shape (sub-batch included); the
 * weights are reordered from OHWI into the primitive's own layout once per call, into the
 * workspace. Workspace of one op, in bytes (r64 rounds up to 64):
 *   r64(weights in the primitive's layout) + r64(4K) (a zero bias, forward)
 *   + min(threads, chunks) * r64(largest scratchpad of any sub-batch up to `sub`). */
#include "cpu_internal.h"

#if MN_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Pixels of one chunk: one image of 25x25 and up, two of 12x12, eight of 6x6. Measured on
 * the reference layers; bigger chunks were slower (the outputs leave the cache). */
#define MN_DNNL_CHUNK_PIX 320
/* Smaller maps (3x3, 1x1) keep the im2col path: they are a few % of a step, and a chunk
 * would take dozens of images, each size a primitive of its own. */
#define MN_DNNL_MIN_PIX 36
/* Primitives cached per backend; past this the cache is emptied at the start of an op. */
#define MN_DNNL_MAX_ENTRIES 128

typedef struct mn_dnnl_entry {
    int data; /* 0: forward, 1: backward_data */
    int n, h, w, c, k;
    dnnl_primitive_desc_t pd; /* NULL: oneDNN has no implementation for it */
    dnnl_primitive_t prim;    /* created on first run */
    dnnl_primitive_t reorder; /* OHWI weights into the primitive's layout; first run */
    size_t wbytes, scratch;
} mn_dnnl_entry;

struct mn_cpu_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t streams[MN_CPU_CHUNKS_MAX];
    int n_streams;
    mn_dnnl_entry entries[MN_DNNL_MAX_ENTRIES];
    int n_entries;
};

static size_t mn_dnnl_r64(size_t bytes) { return (bytes + 63) / 64 * 64; }

/* Images a chunk of an h x w map takes. */
static int mn_dnnl_sub(int h, int w) {
    const size_t pix = (size_t)h * (size_t)w;
    return pix >= MN_DNNL_CHUNK_PIX ? 1 : (int)(MN_DNNL_CHUNK_PIX / pix);
}

/* Runs with the calling task's OpenMP thread count at 1, so that oneDNN plans and runs
 * single-threaded; restores it after. */
typedef struct {
    int saved;
} mn_dnnl_serial;
static mn_dnnl_serial mn_dnnl_serial_begin(void) {
    mn_dnnl_serial s = {omp_get_max_threads()};
    omp_set_num_threads(1);
    return s;
}
static void mn_dnnl_serial_end(mn_dnnl_serial s) { omp_set_num_threads(s.saved); }

static void mn_dnnl_entry_clear(mn_dnnl_entry *e) {
    if (e->reorder) dnnl_primitive_destroy(e->reorder);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    memset(e, 0, sizeof *e);
}

void mn_cpu_dnnl_destroy(mn_cpu_dnnl *d) {
    if (!d) return;
    for (int i = 0; i < d->n_entries; i++) mn_dnnl_entry_clear(&d->entries[i]);
    for (int i = 0; i < d->n_streams; i++) dnnl_stream_destroy(d->streams[i]);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

static mn_status mn_dnnl_fail(const char *what, dnnl_status_t st, const mn_conv_shape *s) {
    return mn_error_set(MN_ERR_BACKEND,
                        "cpu: oneDNN %s failed (status %d) for the 3x3 convolution "
                        "n=%d h=%d w=%d c=%d k=%d",
                        what, (int)st, s->n, s->h, s->w, s->c, s->k);
}

/* The backend's oneDNN state, made on first use. NULL when it cannot be (no memory, or
 * oneDNN refuses the CPU engine): the backend then stays on its own kernels. */
static mn_cpu_dnnl *mn_dnnl_state(mn_cpu *cpu) {
    if (cpu->dnnl || cpu->dnnl_failed) return cpu->dnnl;
    mn_cpu_dnnl *d = calloc(1, sizeof *d);
    if (!d || dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success) {
        free(d);
        cpu->dnnl_failed = 1;
        return NULL;
    }
    cpu->dnnl = d;
    return d;
}

/* Memory descriptors of one shape with `n` images: x [n][h][w][c], y [n][h][w][k] (NHWC),
 * weights [k][c][3][3] in layout `wtag`. */
static void mn_dnnl_mds(int n, const mn_conv_shape *s, dnnl_format_tag_t wtag,
                        dnnl_memory_desc_t *x, dnnl_memory_desc_t *wt, dnnl_memory_desc_t *b,
                        dnnl_memory_desc_t *y) {
    dnnl_dims_t xd = {n, s->c, s->h, s->w}, yd = {n, s->k, s->h, s->w};
    dnnl_dims_t wd = {s->k, s->c, 3, 3}, bd = {s->k};
    dnnl_memory_desc_init_by_tag(x, 4, xd, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(y, 4, yd, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(wt, 4, wd, dnnl_f32, wtag);
    dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x);
}

/* The primitive descriptor of one op for `n` images (NULL where oneDNN has none). */
static dnnl_primitive_desc_t mn_dnnl_pd(mn_cpu_dnnl *d, int data, int n,
                                        const mn_conv_shape *s) {
    dnnl_memory_desc_t x, wt, b, y;
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    const dnnl_dims_t one = {1, 1}, pad = {1, 1};
    mn_dnnl_mds(n, s, dnnl_format_tag_any, &x, &wt, &b, &y);
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ==
            dnnl_success &&
        dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                           dnnl_convolution_direct, &x, &wt, &b, &y, one, pad,
                                           pad) == dnnl_success &&
        dnnl_primitive_desc_create(&fpd, &fd, attr, d->engine, NULL) == dnnl_success) {
        if (!data) {
            pd = fpd;
            fpd = NULL;
        } else if (dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &x,
                                                            &wt, &y, one, pad,
                                                            pad) == dnnl_success &&
                   dnnl_primitive_desc_create(&pd, &bd, attr, d->engine, fpd) !=
                       dnnl_success) {
            pd = NULL;
        }
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

/* The cached entry of one op for `n` images, made when missing. NULL when out of memory
 * (an entry whose pd is NULL means oneDNN has no implementation). */
static mn_dnnl_entry *mn_dnnl_entry_get(mn_cpu_dnnl *d, int data, int n,
                                        const mn_conv_shape *s) {
    for (int i = 0; i < d->n_entries; i++) {
        mn_dnnl_entry *e = &d->entries[i];
        if (e->data == data && e->n == n && e->h == s->h && e->w == s->w && e->c == s->c &&
            e->k == s->k)
            return e;
    }
    if (d->n_entries == MN_DNNL_MAX_ENTRIES) return NULL;
    mn_dnnl_entry *e = &d->entries[d->n_entries++];
    *e = (mn_dnnl_entry){.data = data, .n = n, .h = s->h, .w = s->w, .c = s->c, .k = s->k};
    mn_dnnl_serial ser = mn_dnnl_serial_begin();
    e->pd = mn_dnnl_pd(d, data, n, s);
    mn_dnnl_serial_end(ser);
    if (e->pd) {
        e->wbytes = dnnl_memory_desc_get_size(
            dnnl_primitive_desc_query_md(e->pd, dnnl_query_weights_md, 0));
        e->scratch = dnnl_memory_desc_get_size(
            dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0));
    }
    return e;
}

/* How one op of one shape runs: `chunks` chunks of `sub` images (the last takes the rest)
 * shared by `team` threads, and where its workspace's parts sit. */
typedef struct mn_dnnl_layout {
    int sub, chunks, team;
    const dnnl_memory_desc_t *wmd; /* the weights' layout, one for every sub-batch size */
    size_t wbytes;                 /* r64 of the reordered weights */
    size_t bias_bytes;             /* r64(4K) for the forward's zero bias, else 0 */
    size_t scratch;                /* r64 of the largest scratchpad: one per thread */
    size_t ws;                     /* the whole workspace */
} mn_dnnl_layout;

/* Whether oneDNN runs this op of this shape, and how (see the header). Every sub-batch
 * size up to min(sub, n) must have a primitive, all with one weights layout. */
static int mn_dnnl_plan(mn_backend *be, const mn_conv_shape *s, int data, mn_dnnl_layout *l) {
    mn_cpu *cpu = (mn_cpu *)be->impl;
    if (cpu->kernels < MN_CPU_KERNELS_DNNL || (size_t)s->h * (size_t)s->w < MN_DNNL_MIN_PIX)
        return 0;
    mn_cpu_dnnl *d = mn_dnnl_state(cpu);
    if (!d) return 0;
    l->sub = mn_dnnl_sub(s->h, s->w);
    const int top = l->sub < s->n ? l->sub : s->n;
    if (d->n_entries > MN_DNNL_MAX_ENTRIES - top) { /* room for this op's entries */
        for (int i = 0; i < d->n_entries; i++) mn_dnnl_entry_clear(&d->entries[i]);
        d->n_entries = 0;
    }
    l->wmd = NULL;
    l->scratch = 0;
    for (int m = 1; m <= top; m++) {
        mn_dnnl_entry *e = mn_dnnl_entry_get(d, data, m, s);
        if (!e || !e->pd) return 0;
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(e->pd,
                                                                    dnnl_query_weights_md, 0);
        if (l->wmd && !dnnl_memory_desc_equal(l->wmd, md)) return 0;
        l->wmd = md;
        if (e->scratch > l->scratch) l->scratch = e->scratch;
    }
    l->chunks = (s->n + l->sub - 1) / l->sub;
    l->team = be->threads < l->chunks ? be->threads : l->chunks;
    if (l->team > MN_CPU_CHUNKS_MAX) l->team = MN_CPU_CHUNKS_MAX;
    l->wbytes = mn_dnnl_r64(dnnl_memory_desc_get_size(l->wmd));
    l->bias_bytes = data ? 0 : mn_dnnl_r64((size_t)s->k * sizeof(float));
    l->scratch = mn_dnnl_r64(l->scratch);
    l->ws = l->wbytes + l->bias_bytes + (size_t)l->team * l->scratch;
    return 1;
}

int mn_cpu_dnnl_workspace(mn_backend *be, const mn_conv_shape *s, int data, size_t *bytes) {
    mn_dnnl_layout l;
    if (!mn_dnnl_plan(be, s, data, &l)) return 0;
    *bytes = l.ws;
    return 1;
}

/* The entry's primitive and weights reorder, made on first use. */
static dnnl_status_t mn_dnnl_entry_ready(mn_cpu_dnnl *d, mn_dnnl_entry *e,
                                         const mn_conv_shape *s) {
    dnnl_status_t st = dnnl_success;
    mn_dnnl_serial ser = mn_dnnl_serial_begin();
    if (!e->prim) st = dnnl_primitive_create(&e->prim, e->pd);
    if (st == dnnl_success && !e->reorder) {
        dnnl_memory_desc_t x, wt, b, y;
        dnnl_primitive_desc_t rpd;
        mn_dnnl_mds(e->n, s, dnnl_ohwi, &x, &wt, &b, &y);
        st = dnnl_reorder_primitive_desc_create(
            &rpd, &wt, d->engine,
            dnnl_primitive_desc_query_md(e->pd, dnnl_query_weights_md, 0), d->engine, NULL);
        if (st == dnnl_success) {
            st = dnnl_primitive_create(&e->reorder, rpd);
            dnnl_primitive_desc_destroy(rpd);
        }
    }
    mn_dnnl_serial_end(ser);
    return st;
}

/* Runs `prim` with `n` arguments of which the memory objects are made here over the given
 * pointers (descriptors in `md`), on `stream`. */
static dnnl_status_t mn_dnnl_exec(mn_cpu_dnnl *d, dnnl_primitive_t prim, dnnl_stream_t stream,
                                  int n, const int *arg, const dnnl_memory_desc_t *const *md,
                                  void *const *ptr) {
    dnnl_exec_arg_t args[5];
    dnnl_status_t st = dnnl_success;
    int made = 0;
    for (; made < n && st == dnnl_success; made++) {
        args[made].arg = arg[made];
        st = dnnl_memory_create(&args[made].memory, md[made], d->engine, ptr[made]);
        if (st != dnnl_success) break;
    }
    if (st == dnnl_success) st = dnnl_primitive_execute(prim, stream, n, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    for (int i = 0; i < made; i++) dnnl_memory_destroy(args[i].memory);
    return st;
}

mn_status mn_cpu_dnnl_conv(mn_backend *be, const mn_conv_shape *s, int data, const float *in,
                           const float *w, const float *bias, float *out, char *ws) {
    mn_cpu_dnnl *d = ((mn_cpu *)be->impl)->dnnl;
    mn_dnnl_layout l;
    if (!d || !mn_dnnl_plan(be, s, data, &l))
        return mn_error_set(MN_ERR_BACKEND, "cpu: oneDNN has no plan for n=%d h=%d w=%d "
                            "c=%d k=%d", s->n, s->h, s->w, s->c, s->k);
    const int sub = l.sub, chunks = l.chunks;
    mn_dnnl_entry *full = mn_dnnl_entry_get(d, data, sub < s->n ? sub : s->n, s);
    mn_dnnl_entry *last = mn_dnnl_entry_get(d, data, s->n - (chunks - 1) * sub, s);
    dnnl_status_t st = mn_dnnl_entry_ready(d, full, s);
    if (st == dnnl_success) st = mn_dnnl_entry_ready(d, last, s);
    while (st == dnnl_success && d->n_streams < l.team) {
        dnnl_stream_t stream;
        st = dnnl_stream_create(&stream, d->engine, dnnl_stream_default_flags);
        if (st == dnnl_success) d->streams[d->n_streams++] = stream;
    }
    if (st != dnnl_success) return mn_dnnl_fail("setup", st, s);

    /* The weights into the primitive's layout; a zero bias where the forward has none. */
    const dnnl_memory_desc_t *wmd = l.wmd;
    char *wbuf = ws, *zeros = ws + l.wbytes, *scratch = zeros + l.bias_bytes;
    {
        dnnl_memory_desc_t x, wt, b, y;
        mn_dnnl_mds(1, s, dnnl_ohwi, &x, &wt, &b, &y);
        const int arg[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
        const dnnl_memory_desc_t *md[2] = {&wt, wmd};
        void *ptr[2] = {(void *)w, wbuf};
        mn_dnnl_serial ser = mn_dnnl_serial_begin();
        st = mn_dnnl_exec(d, full->reorder, d->streams[0], 2, arg, md, ptr);
        mn_dnnl_serial_end(ser);
        if (st != dnnl_success) return mn_dnnl_fail("weights reorder", st, s);
    }
    if (!data && !bias) {
        memset(zeros, 0, (size_t)s->k * sizeof(float));
        bias = (const float *)zeros;
    }

    const size_t in_img = (size_t)s->h * (size_t)s->w * (size_t)(data ? s->k : s->c);
    const size_t out_img = (size_t)s->h * (size_t)s->w * (size_t)(data ? s->c : s->k);
    dnnl_status_t failed = dnnl_success;
#pragma omp parallel num_threads(l.team)
    {
        mn_cpu_blas_serial();
        const int tid = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < chunks; q++) {
            const mn_dnnl_entry *e = q == chunks - 1 ? last : full;
            dnnl_memory_desc_t x, wt, b, y;
            mn_dnnl_mds(e->n, s, dnnl_ohwi, &x, &wt, &b, &y);
            const dnnl_memory_desc_t *scr =
                dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
            void *src = (void *)(in + (size_t)q * (size_t)sub * in_img);
            void *dst = out + (size_t)q * (size_t)sub * out_img;
            void *sp = scratch + (size_t)tid * l.scratch;
            dnnl_status_t rc;
            if (data) {
                const int arg[4] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC,
                                    DNNL_ARG_SCRATCHPAD};
                const dnnl_memory_desc_t *md[4] = {&y, wmd, &x, scr};
                void *ptr[4] = {src, wbuf, dst, sp};
                rc = mn_dnnl_exec(d, e->prim, d->streams[tid], 4, arg, md, ptr);
            } else {
                const int arg[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS,
                                    DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
                const dnnl_memory_desc_t *md[5] = {&x, wmd, &b, &y, scr};
                void *ptr[5] = {src, wbuf, (void *)bias, dst, sp};
                rc = mn_dnnl_exec(d, e->prim, d->streams[tid], 5, arg, md, ptr);
            }
            if (rc != dnnl_success) {
#pragma omp critical(mn_dnnl_failed)
                failed = rc;
            }
        }
    }
    if (failed != dnnl_success) return mn_dnnl_fail(data ? "backward data" : "forward",
                                                    failed, s);
    return MN_OK;
}

#endif
