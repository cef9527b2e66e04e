/* oneDNN's convolutions for the CPU backend's wide layers: the 3x3 'same' convolutions
 * that would otherwise run im2col + sgemm (both sides wider than the direct kernels take),
 * on maps of at least MN_DNNL_MIN_PIX pixels, forward and backward-data. Measured on the
 * reference networks' layers (calls of both alternated in one process,
 * benchmarks/conv_ops), oneDNN took 0.46-0.82x the time of im2col + OpenBLAS on
 * backward-data and 0.58-0.88x on most forwards (0.97-1.13x on the widest layers of the
 * smallest maps); on backward-weights it took 0.81-1.29x (slower on most layers), so that
 * one stays ours (benchmarks/RESULTS.md).
 *
 * Results do not depend on the thread count, as everywhere in this backend: the batch is
 * split into chunks of `sub` whole images, `sub` from the map size alone (about
 * MN_DNNL_CHUNK_PIX pixels a chunk; the last chunk takes the rest), and each chunk is one
 * single-threaded oneDNN call on its own images. Neither op sums across images, so a
 * chunk's output is the same whichever thread runs it. oneDNN is kept single-threaded by the calling task's OpenMP thread count (1 while a primitive
 * is created and inside the chunk loop), and its scratchpad is ours (user mode: one per
 * thread, in the op's workspace), so two threads may run one primitive at once.
 *
 * Primitives are cached per backend, keyed by op and shape (sub-batch included); the
 * weights are reordered from OHWI into the primitive's own layout once per call, in the
 * workspace. Workspace of one op, in bytes (r64 rounds up to 64; W = r64(weights in the
 * primitive's layout), S = r64(largest scratchpad of any sub-batch size up to `sub`),
 * T = min(threads, chunks)):
 *   forward          W + r64(4K) (a zero bias when there is none) + T * S
 *   backward_data    W + T * S */
#include "cpu_internal.h"

#if MN_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Pixels of one chunk: one image of 25x25 and up, two of 12x12, eight of 6x6. Measured on
 * the reference layers; bigger chunks were slower (the outputs leave the cache). */
#ifndef MN_DNNL_CHUNK_PIX
#define MN_DNNL_CHUNK_PIX 320
#endif
/* Smaller maps (3x3, 1x1) keep the im2col path: they are a few % of a step, and a chunk
 * would take dozens of images, each size a primitive of its own. */
#define MN_DNNL_MIN_PIX 36
/* Primitives cached per backend; past this the cache is emptied at the start of an op. */
#define MN_DNNL_MAX_ENTRIES 128
/* Arguments of one call: forward src, weights, bias, dst, scratchpad; backward-data
 * diff_dst, weights, diff_src, scratchpad. */
#define MN_DNNL_ARGS 5

typedef struct mn_dnnl_entry {
    mn_cpu_dnnl_op op;
    int n, h, w, c, k;
    dnnl_primitive_desc_t pd; /* NULL: oneDNN has no implementation for it */
    dnnl_primitive_t prim;    /* created on first run */
    dnnl_primitive_t reorder; /* OHWI weights into the primitive's layout; first run */
    size_t wbytes, scratch;
    /* The call's arguments for each thread slot (nargs of them, the memory objects made
     * once, their pointers set per call): no allocation per chunk. */
    int nargs, slots;
    dnnl_exec_arg_t (*args)[MN_DNNL_ARGS];
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
    for (int t = 0; t < e->slots; t++)
        for (int i = 0; i < e->nargs; i++)
            if (e->args[t][i].memory) dnnl_memory_destroy(e->args[t][i].memory);
    free(e->args);
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
    if (st == dnnl_out_of_memory)
        return mn_error_set(MN_ERR_NOMEM,
                            "cpu: out of memory in oneDNN's %s for the 3x3 convolution "
                            "n=%d h=%d w=%d c=%d k=%d",
                            what, s->n, s->h, s->w, s->c, s->k);
    return mn_error_set(MN_ERR_BACKEND,
                        "cpu: oneDNN %s failed (status %d) for the 3x3 convolution "
                        "n=%d h=%d w=%d c=%d k=%d",
                        what, (int)st, s->n, s->h, s->w, s->c, s->k);
}

/* The backend's oneDNN state, made on first use. NULL when it cannot be (no memory, or
 * oneDNN refuses the CPU engine): the backend then stays on its own kernels. */
mn_status mn_cpu_dnnl_create(mn_cpu_dnnl **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return mn_error_set(MN_ERR_NOMEM, "cpu: cannot allocate oneDNN's state");
    return MN_OK;
}

/* The backend's oneDNN state with its engine, made on first use. NULL when the backend
 * does not use oneDNN, or oneDNN refuses the CPU engine (it then stays on its own
 * kernels, for good, so that every plan and op of the backend agree). */
static mn_cpu_dnnl *mn_dnnl_state(mn_cpu *cpu) {
    mn_cpu_dnnl *d = cpu->dnnl;
    if (!d || cpu->dnnl_failed) return NULL;
    /* oneDNN keeps up to 1,024 primitives (their JIT code) in a process-wide cache of its
     * own, which would grow over a search's candidates outside any memory plan; the
     * backend's cache holds what it reuses, and is freed with it. */
    if (!d->engine && (dnnl_set_primitive_cache_capacity(0) != dnnl_success ||
                       dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success)) {
        d->engine = NULL;
        cpu->dnnl_failed = 1;
        return NULL;
    }
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
static dnnl_primitive_desc_t mn_dnnl_pd(mn_cpu_dnnl *d, mn_cpu_dnnl_op op, int n,
                                        const mn_conv_shape *s) {
    dnnl_memory_desc_t x, wt, b, y;
    dnnl_convolution_desc_t fd, bd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    const dnnl_dims_t one = {1, 1}, pad = {1, 1};
    const dnnl_alg_kind_t alg = dnnl_convolution_direct;
    mn_dnnl_mds(n, s, dnnl_format_tag_any, &x, &wt, &b, &y);
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ==
            dnnl_success &&
        dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &x, &wt, &b, &y,
                                           one, pad, pad) == dnnl_success &&
        dnnl_primitive_desc_create(&fpd, &fd, attr, d->engine, NULL) == dnnl_success) {
        if (op == MN_CPU_DNNL_FORWARD) {
            pd = fpd;
            fpd = NULL;
        } else if (dnnl_convolution_backward_data_desc_init(&bd, alg, &x, &wt, &y, one, pad,
                                                            pad) != dnnl_success ||
                   dnnl_primitive_desc_create(&pd, &bd, attr, d->engine, fpd) !=
                       dnnl_success) {
            pd = NULL;
        }
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
    return pd;
}

/* The layout of the weights that a primitive reads. */
static const dnnl_memory_desc_t *mn_dnnl_wmd(const mn_dnnl_entry *e) {
    return dnnl_primitive_desc_query_md(e->pd, dnnl_query_weights_md, 0);
}

/* The cached entry of one op for `n` images, made when missing. NULL when out of memory
 * (an entry whose pd is NULL means oneDNN has no implementation). */
static mn_dnnl_entry *mn_dnnl_entry_get(mn_cpu_dnnl *d, mn_cpu_dnnl_op op, int n,
                                        const mn_conv_shape *s) {
    for (int i = 0; i < d->n_entries; i++) {
        mn_dnnl_entry *e = &d->entries[i];
        if (e->op == op && e->n == n && e->h == s->h && e->w == s->w && e->c == s->c &&
            e->k == s->k)
            return e;
    }
    if (d->n_entries == MN_DNNL_MAX_ENTRIES) return NULL;
    mn_dnnl_entry *e = &d->entries[d->n_entries++];
    *e = (mn_dnnl_entry){.op = op, .n = n, .h = s->h, .w = s->w, .c = s->c, .k = s->k};
    mn_dnnl_serial ser = mn_dnnl_serial_begin();
    e->pd = mn_dnnl_pd(d, op, n, s);
    mn_dnnl_serial_end(ser);
    if (e->pd) {
        e->wbytes = dnnl_memory_desc_get_size(mn_dnnl_wmd(e));
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
    size_t wbytes;                 /* W: r64 of the weights in that layout */
    size_t bias_bytes;             /* r64(4K) for the forward's zero bias, else 0 */
    size_t scratch;                /* S: r64 of the largest scratchpad, one per thread */
    size_t ws;                     /* the whole workspace */
} mn_dnnl_layout;

/* Whether oneDNN runs this op of this shape, and how (see the header). Every sub-batch
 * size up to min(sub, n) must have a primitive, all with one weights layout. */
static int mn_dnnl_plan(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                        mn_dnnl_layout *l) {
    mn_cpu *cpu = (mn_cpu *)be->impl;
    if (cpu->kernels < MN_CPU_KERNELS_DNNL || (size_t)s->h * (size_t)s->w < MN_DNNL_MIN_PIX)
        return 0;
    l->sub = mn_dnnl_sub(s->h, s->w);
    l->chunks = (s->n + l->sub - 1) / l->sub;
    mn_cpu_dnnl *d = mn_dnnl_state(cpu);
    if (!d) return 0;
    const int top = l->sub < s->n ? l->sub : s->n;
    if (d->n_entries > MN_DNNL_MAX_ENTRIES - top) { /* room for this op's entries */
        for (int i = 0; i < d->n_entries; i++) mn_dnnl_entry_clear(&d->entries[i]);
        d->n_entries = 0;
    }
    l->wmd = NULL;
    l->scratch = 0;
    for (int m = 1; m <= top; m++) {
        mn_dnnl_entry *e = mn_dnnl_entry_get(d, op, m, s);
        if (!e || !e->pd) return 0;
        const dnnl_memory_desc_t *md = mn_dnnl_wmd(e);
        if (l->wmd && !dnnl_memory_desc_equal(l->wmd, md)) return 0;
        l->wmd = md;
        if (e->scratch > l->scratch) l->scratch = e->scratch;
    }
    l->team = be->threads < l->chunks ? be->threads : l->chunks;
    if (l->team > MN_CPU_CHUNKS_MAX) l->team = MN_CPU_CHUNKS_MAX;
    l->wbytes = mn_dnnl_r64(dnnl_memory_desc_get_size(l->wmd));
    l->bias_bytes = op == MN_CPU_DNNL_FORWARD ? mn_dnnl_r64((size_t)s->k * sizeof(float)) : 0;
    l->scratch = mn_dnnl_r64(l->scratch);
    l->ws = l->wbytes + l->bias_bytes + (size_t)l->team * l->scratch;
    return 1;
}

int mn_cpu_dnnl_workspace(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                          size_t *bytes) {
    mn_dnnl_layout l;
    if (!mn_dnnl_plan(be, s, op, &l)) return 0;
    *bytes = l.ws;
    return 1;
}

/* Memory objects without data for the arguments of `e` in thread slots [e->slots, slots). */
static dnnl_status_t mn_dnnl_entry_slots(mn_cpu_dnnl *d, mn_dnnl_entry *e,
                                         const mn_conv_shape *s, int slots) {
    if (slots <= e->slots) return dnnl_success;
    dnnl_exec_arg_t(*args)[MN_DNNL_ARGS] = realloc(e->args, (size_t)slots * sizeof *args);
    if (!args) return dnnl_out_of_memory;
    e->args = args;
    dnnl_memory_desc_t x, wt, b, y;
    mn_dnnl_mds(e->n, s, dnnl_ohwi, &x, &wt, &b, &y);
    const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md(e->pd,
                                                                dnnl_query_scratchpad_md, 0);
    const int data = e->op == MN_CPU_DNNL_DATA;
    const int fwd_arg[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST,
                            DNNL_ARG_SCRATCHPAD};
    const int data_arg[4] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC,
                             DNNL_ARG_SCRATCHPAD};
    const dnnl_memory_desc_t *fwd_md[5] = {&x, mn_dnnl_wmd(e), &b, &y, scr};
    const dnnl_memory_desc_t *data_md[4] = {&y, mn_dnnl_wmd(e), &x, scr};
    e->nargs = data ? 4 : 5;
    for (; e->slots < slots; e->slots++) {
        dnnl_exec_arg_t *a = e->args[e->slots];
        memset(a, 0, sizeof *e->args);
        for (int i = 0; i < e->nargs; i++) {
            a[i].arg = data ? data_arg[i] : fwd_arg[i];
            dnnl_status_t st = dnnl_memory_create(&a[i].memory, data ? data_md[i] : fwd_md[i],
                                                  d->engine, DNNL_MEMORY_NONE);
            if (st != dnnl_success) {
                e->slots++; /* the slot's objects made so far are destroyed with the entry */
                return st;
            }
        }
    }
    return dnnl_success;
}

/* The entry's primitive, its weights reorder (OHWI into the primitive's layout) and its
 * arguments for `slots` threads, made on first use. */
static dnnl_status_t mn_dnnl_entry_ready(mn_cpu_dnnl *d, mn_dnnl_entry *e,
                                         const mn_conv_shape *s, int slots) {
    dnnl_status_t st = mn_dnnl_entry_slots(d, e, s, slots);
    mn_dnnl_serial ser = mn_dnnl_serial_begin();
    if (st == dnnl_success && !e->prim) st = dnnl_primitive_create(&e->prim, e->pd);
    if (st == dnnl_success && !e->reorder) {
        dnnl_memory_desc_t x, wt, b, y;
        dnnl_primitive_desc_t rpd;
        mn_dnnl_mds(e->n, s, dnnl_ohwi, &x, &wt, &b, &y);
        st = dnnl_reorder_primitive_desc_create(&rpd, &wt, d->engine, mn_dnnl_wmd(e),
                                                d->engine, NULL);
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
    for (; made < n; made++) {
        args[made].arg = arg[made];
        st = dnnl_memory_create(&args[made].memory, md[made], d->engine, ptr[made]);
        if (st != dnnl_success) break;
    }
    if (st == dnnl_success) st = dnnl_primitive_execute(prim, stream, n, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    for (int i = 0; i < made; i++) dnnl_memory_destroy(args[i].memory);
    return st;
}

/* Reorders the OHWI weights `ohwi` into the layout of `e`, at `own`. Single-threaded (a
 * few KiB). */
static dnnl_status_t mn_dnnl_reorder(mn_cpu_dnnl *d, const mn_dnnl_entry *e,
                                     const mn_dnnl_layout *l, const mn_conv_shape *s,
                                     const float *ohwi, void *own) {
    dnnl_memory_desc_t x, wt, b, y;
    mn_dnnl_mds(1, s, dnnl_ohwi, &x, &wt, &b, &y);
    const int arg[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    const dnnl_memory_desc_t *md[2] = {&wt, l->wmd};
    void *ptr[2] = {(void *)ohwi, own};
    mn_dnnl_serial ser = mn_dnnl_serial_begin();
    dnnl_status_t st = mn_dnnl_exec(d, e->reorder, d->streams[0], 2, arg, md, ptr);
    mn_dnnl_serial_end(ser);
    return st;
}

/* The pointers one op works on. */
typedef struct mn_dnnl_io {
    const float *in;   /* forward: x; backward_data: dy */
    const float *bias; /* forward; NULL: none */
    float *out;        /* forward: y; backward_data: dx */
} mn_dnnl_io;

/* Chunk q of the op: one primitive call on its images, with thread slot tid's arguments
 * (their weights and bias already point at this call's). */
static dnnl_status_t mn_dnnl_chunk(mn_cpu_dnnl *d, const mn_dnnl_layout *l,
                                   const mn_conv_shape *s, const mn_dnnl_entry *e, int q,
                                   int tid, const mn_dnnl_io *io, char *scratch) {
    const size_t img = (size_t)s->h * (size_t)s->w, first = (size_t)q * (size_t)l->sub;
    const int data = e->op == MN_CPU_DNNL_DATA;
    dnnl_exec_arg_t *a = e->args[tid];
    void *src = (void *)(io->in + first * img * (size_t)(data ? s->k : s->c));
    void *dst = io->out + first * img * (size_t)(data ? s->c : s->k);
    dnnl_status_t st = dnnl_memory_set_data_handle(a[0].memory, src);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle(a[data ? 2 : 3].memory, dst);
    if (st == dnnl_success)
        st = dnnl_memory_set_data_handle(a[e->nargs - 1].memory,
                                         scratch + (size_t)tid * l->scratch);
    if (st == dnnl_success) st = dnnl_primitive_execute(e->prim, d->streams[tid], e->nargs, a);
    if (st == dnnl_success) st = dnnl_stream_wait(d->streams[tid]);
    return st;
}

/* Points every thread slot's weights (and the forward's bias) of `e` at this call's. */
static dnnl_status_t mn_dnnl_bind(mn_dnnl_entry *e, int team, void *wbuf, const float *bias) {
    dnnl_status_t st = dnnl_success;
    for (int t = 0; t < team && st == dnnl_success; t++) {
        st = dnnl_memory_set_data_handle(e->args[t][1].memory, wbuf);
        if (st == dnnl_success && e->op == MN_CPU_DNNL_FORWARD)
            st = dnnl_memory_set_data_handle(e->args[t][2].memory, (void *)bias);
    }
    return st;
}

static mn_status mn_dnnl_run(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                             const float *w, const mn_dnnl_io *io, char *ws) {
    mn_cpu_dnnl *d = mn_dnnl_state((mn_cpu *)be->impl);
    mn_dnnl_layout l;
    if (!d || !mn_dnnl_plan(be, s, op, &l))
        return mn_error_set(MN_ERR_BACKEND, "cpu: oneDNN has no plan for the 3x3 convolution "
                            "n=%d h=%d w=%d c=%d k=%d", s->n, s->h, s->w, s->c, s->k);
    const int chunks = l.chunks;
    mn_dnnl_entry *full = mn_dnnl_entry_get(d, op, l.sub < s->n ? l.sub : s->n, s);
    mn_dnnl_entry *last = mn_dnnl_entry_get(d, op, s->n - (chunks - 1) * l.sub, s);
    dnnl_status_t st = mn_dnnl_entry_ready(d, full, s, l.team);
    if (st == dnnl_success) st = mn_dnnl_entry_ready(d, last, s, l.team);
    while (st == dnnl_success && d->n_streams < l.team) {
        dnnl_stream_t stream;
        st = dnnl_stream_create(&stream, d->engine, dnnl_stream_default_flags);
        if (st == dnnl_success) d->streams[d->n_streams++] = stream;
    }
    if (st != dnnl_success) return mn_dnnl_fail("setup", st, s);

    /* Workspace: the weights in the primitive's layout, the zero bias (forward), then the
     * scratchpads. */
    char *wbuf = ws, *zeros = ws + l.wbytes, *scratch = zeros + l.bias_bytes;
    mn_dnnl_io run = *io;
    st = mn_dnnl_reorder(d, full, &l, s, w, wbuf);
    if (st != dnnl_success) return mn_dnnl_fail("weights reorder", st, s);
    if (op == MN_CPU_DNNL_FORWARD && !run.bias) {
        memset(zeros, 0, (size_t)s->k * sizeof(float));
        run.bias = (const float *)zeros;
    }
    st = mn_dnnl_bind(full, l.team, wbuf, run.bias);
    if (st == dnnl_success && last != full) st = mn_dnnl_bind(last, l.team, wbuf, run.bias);
    if (st != dnnl_success) return mn_dnnl_fail("setup", st, s);

    dnnl_status_t failed = dnnl_success;
#pragma omp parallel num_threads(l.team)
    {
        mn_cpu_blas_serial();
        const int tid = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < chunks; q++) {
            dnnl_status_t rc = mn_dnnl_chunk(d, &l, s, q == chunks - 1 ? last : full, q, tid,
                                             &run, scratch);
            if (rc != dnnl_success) {
#pragma omp critical(mn_dnnl_failed)
                failed = rc;
            }
        }
    }
    if (failed != dnnl_success)
        return mn_dnnl_fail(op == MN_CPU_DNNL_DATA ? "backward data" : "forward", failed, s);
    return MN_OK;
}

mn_status mn_cpu_dnnl_conv(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                           const float *in, const float *w, const float *bias, float *out,
                           char *ws) {
    mn_dnnl_io io = {in, bias, out};
    return mn_dnnl_run(be, s, op, w, &io, ws);
}

#endif
