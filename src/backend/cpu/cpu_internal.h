/* Private declarations shared by the CPU backend's translation units.
 * The CPU backend keeps tensors in 64-byte aligned host memory and runs its kernels with
 * OpenMP (be->threads threads) and OpenBLAS's sgemm. Every parallel loop is statically
 * partitioned into "slots" that depend only on the problem and be->threads, and every
 * reduction combines per-slot partials in slot order, so results are bit-identical for
 * the same inputs and thread count whatever the OpenMP runtime actually grants. */
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

/* Backend-private state (be->impl). Counters are atomic so that allocations from several
 * threads keep the books right. */
typedef struct mn_cpu {
    atomic_size_t allocated;
    atomic_size_t peak;
    size_t phys_bytes;
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
 * team costs more than the work. */
int mn_cpu_slots(const mn_backend *be, size_t items, size_t cost);

/* ---- ops (one file per family) ---- */

size_t mn_cpu_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s);
/* mn_cpu_<fn> for every op of mcunas/backend_ops.def. */
#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status mn_cpu_##fn params;
#include "mcunas/backend_ops.def"

#endif
