/* Private declarations shared by the CPU backend's translation units.
 * The CPU backend keeps tensors in 64-byte aligned host memory and runs its kernels with
 * OpenMP (up to be->threads threads) and OpenBLAS's sgemm. Results do not depend on the
 * thread count: every sum across items (a reduction, or the rows of one sgemm call) is
 * split into a fixed number of fixed chunks computed from the shape alone
 * (mn_cpu_chunks); a chunk's partial is the same whichever thread computes it, and the
 * partials are combined in chunk order. The thread count only decides how many threads
 * share the chunks. Element-wise loops have nothing to combine and split their items by
 * thread (mn_cpu_slots). */
#ifndef MN_BACKEND_CPU_INTERNAL_H
#define MN_BACKEND_CPU_INTERNAL_H

#include "backend/backend_impl.h"
#include "backend/shape_check.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MN_CPU_ALIGN 64

/* A host allocation: `size` is what the caller asked for, `data` is 64-byte aligned and
 * rounded up to a multiple of 64 bytes. */
struct mn_buf {
    size_t size;
    void *data;
};

/* Which convolution kernels the backend may use, each level adding to the one before:
 * im2col + sgemm only; the direct kernels for narrow layers; oneDNN for wide ones (when
 * built with it). The default is the fastest built; MCUNAS_CPU_CONV=im2col|direct|dnnl
 * picks one, to compare them (mcunas bench, benchmarks/train_throughput). */
typedef enum mn_cpu_kernels {
    MN_CPU_KERNELS_IM2COL = 0,
    MN_CPU_KERNELS_DIRECT,
    MN_CPU_KERNELS_DNNL,
} mn_cpu_kernels;

/* oneDNN's engine, streams and cached primitives (cpu_conv_dnnl.c). */
typedef struct mn_cpu_dnnl mn_cpu_dnnl;

/* Backend-private state (be->impl). Counters are atomic so that allocations from several
 * threads keep the books right. */
typedef struct mn_cpu {
    atomic_size_t allocated;
    atomic_size_t peak;
    size_t phys_bytes;
    mn_cpu_kernels kernels;
    mn_cpu_dnnl *dnnl; /* when kernels is MN_CPU_KERNELS_DNNL */
    int dnnl_failed;   /* oneDNN could not start: the backend stays on its own kernels */
} mn_cpu;

/* Stops on the first failing check and hands its status up. */
#define MN_CPU_TRY(expr)                                                                  \
    do {                                                                                  \
        mn_status mn_cpu_st_ = (expr);                                                    \
        if (mn_cpu_st_ != MN_OK) return mn_cpu_st_;                                       \
    } while (0)

/* ---- argument checks (cpu.c) ---- */

/* Resolves a required view of `bytes` bytes: fails with MN_ERR_INVALID_ARG naming `op`
 * and `arg` when the view is absent, out of its buffer, or misaligned for `align`. */
mn_status mn_cpu_view(const char *op, const char *arg, mn_view v, size_t bytes,
                      size_t align, void **out);
/* Same for an optional view: absent gives *out = NULL and MN_OK. */
mn_status mn_cpu_view_opt(const char *op, const char *arg, mn_view v, size_t bytes,
                          size_t align, void **out);
/* Float/double/int32 tensors of `count` elements (overflow-checked). */
mn_status mn_cpu_fview(const char *op, const char *arg, mn_view v, size_t count,
                       float **out);
mn_status mn_cpu_fview_opt(const char *op, const char *arg, mn_view v, size_t count,
                           float **out);

/* Makes OpenBLAS single-threaded for the calling OpenMP task only. Inside an active
 * parallel region OpenBLAS already runs serially, but a region of one thread is
 * inactive and OpenBLAS would then spawn its own threads; setting this task's
 * nthreads-var to 1 prevents that without touching the program-wide setting. */
void mn_cpu_blas_serial(void);

/* [begin, end) of slot s when `total` items are split into `slots` contiguous blocks
 * whose sizes differ by at most one. */
static inline size_t mn_cpu_slot_begin(size_t total, int slots, int s) {
    size_t q = total / (size_t)slots, r = total % (size_t)slots;
    return q * (size_t)s + ((size_t)s < r ? (size_t)s : r);
}

/* How many slots a loop over `items` items of about `cost` flops each deserves: one per
 * thread, but no more than the items and a single one for tiny jobs, where waking the
 * team costs more than the work. Only for loops whose items are independent. */
int mn_cpu_slots(const mn_backend *be, size_t items, size_t cost);

/* Most chunks a reduction is split into: bounds the partials a reduction keeps and the
 * threads that can share it. */
#define MN_CPU_CHUNKS_MAX 64

/* How many fixed chunks a reduction over `items` items of about `cost` flops each is
 * split into: as many as give every chunk at least `min_work` flops, at most one per
 * item and MN_CPU_CHUNKS_MAX, rounded down to 1, 2, 2^j or 3*2^j (4, 6, 8, 12, ...) so
 * that 2, 4, 8 ... threads share them evenly. A function of the shape alone; never
 * decreases as `items` grows. */
int mn_cpu_chunks(size_t items, size_t cost, size_t min_work);

/* Threads to run `chunks` chunks of `work` flops in all: one per chunk up to
 * be->threads, a single one for tiny jobs. */
int mn_cpu_team(const mn_backend *be, int chunks, size_t work);

/* ---- ops (one file per family) ---- */

size_t mn_cpu_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s);

/* Direct convolution kernels for narrow tensors (cpu_conv_direct.c): a side of at most
 * MN_CPU_DIRECT_NARROW_MAX channels against at most MN_CPU_DIRECT_WIDE_MAX on the other.
 * Each computes the flattened output rows [g0, g1) (g = n*H + y) of an NHWC tensor.
 *   wide: out[p][o] = bias[o] + sum_t sum_i in[p+off(t)][i] * wt[t][i][o], cin narrow;
 *   dot:  the same sum with the weights as wmat[o][t*cin + i], cout narrow;
 *   dw:   part[o][t*cin + i] = sum_p dy[p][o] * x[p+off(t)][i], cin narrow (the chunk's
 *         partial of dW, overwritten). */
#define MN_CPU_DIRECT_NARROW_MAX 4
#define MN_CPU_DIRECT_WIDE_MAX 64
void mn_cpu_direct_wide(const float *in, int h, int w, int cin, int cout, const float *wt,
                        const float *bias, size_t g0, size_t g1, float *out);
void mn_cpu_direct_dot(const float *in, int h, int w, int cin, int cout, const float *wmat,
                       const float *bias, size_t g0, size_t g1, float *out);
void mn_cpu_direct_dw(const float *x, const float *dy, int h, int w, int cin, int cout,
                      size_t g0, size_t g1, float *part);
/* oneDNN's convolutions (cpu_conv_dnnl.c). mn_cpu_dnnl_workspace says whether oneDNN runs
 * `op` for this shape on this backend and, if so, the workspace bytes it needs.
 * mn_cpu_dnnl_conv runs it: in [n][h][w][data ? k : c], w OHWI [k][3][3][c], bias [k] or
 * NULL (forward only), out [n][h][w][data ? c : k]. */
typedef enum mn_cpu_dnnl_op {
    MN_CPU_DNNL_FORWARD,
    MN_CPU_DNNL_DATA,
} mn_cpu_dnnl_op;
#if MN_HAVE_DNNL
int mn_cpu_dnnl_workspace(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                          size_t *bytes);
mn_status mn_cpu_dnnl_conv(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                           const float *in, const float *w, const float *bias, float *out,
                           char *ws);
/* The backend's oneDNN state (made with the backend, so that its allocation fails there;
 * the engine and primitives come on first use), and its end. */
mn_status mn_cpu_dnnl_create(mn_cpu_dnnl **out);
void mn_cpu_dnnl_destroy(mn_cpu_dnnl *d);
#define MN_CPU_KERNELS_BEST MN_CPU_KERNELS_DNNL
#else
/* Without oneDNN nothing is handed to it, so the run functions are never called. */
static inline int mn_cpu_dnnl_workspace(mn_backend *be, const mn_conv_shape *s,
                                        mn_cpu_dnnl_op op, size_t *bytes) {
    (void)be, (void)s, (void)op, (void)bytes;
    return 0;
}
static inline mn_status mn_cpu_dnnl_conv(mn_backend *be, const mn_conv_shape *s,
                                         mn_cpu_dnnl_op op, const float *in, const float *w,
                                         const float *bias, float *out, char *ws) {
    (void)be, (void)op, (void)in, (void)w, (void)bias, (void)out, (void)ws;
    return mn_error_set(MN_ERR_UNSUPPORTED, "cpu: built without oneDNN (n=%d h=%d w=%d)",
                        s->n, s->h, s->w);
}
static inline mn_status mn_cpu_dnnl_create(mn_cpu_dnnl **out) {
    *out = NULL;
    return MN_OK;
}
static inline void mn_cpu_dnnl_destroy(mn_cpu_dnnl *d) { (void)d; }
#define MN_CPU_KERNELS_BEST MN_CPU_KERNELS_DIRECT
#endif

/* mn_cpu_<fn> for every op of mcunas/backend_ops.def. */
#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status mn_cpu_##fn params;
#include "mcunas/backend_ops.def"

#endif
