/* What the GPU-like backends (OpenCL, CUDA) share: the ops that are one or two launches
 * of our own kernels (pooling, batch norm, ReLU, GAP, dropout, Adam, uint8 scaling,
 * softmax cross-entropy, bias rows and column sums) are written once here (gpu_ops.c) in
 * terms of a small device interface, mn_gpu_dev, that each backend implements: turn a
 * buffer region into a kernel argument, launch a kernel over items or work-groups, zero
 * a region, run a GEMM (the dense ops are shared too). A backend keeps only what really
 * differs (OpenCL: the program cache, CLBlast and the im2col convolution; CUDA: the
 * module, cuBLAS and cuDNN).
 *
 * A backend's private state (be->impl) begins with an mn_gpu, so the shared code reaches
 * it from the backend alone; its buffers are the mn_buf below. */
#ifndef MN_BACKEND_GPU_IMPL_H
#define MN_BACKEND_GPU_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend_impl.h"
#include "backend/shape_check.h"

/* Where the kernel files define a kernel (gpu_kernels.def's `where`). */
#define MN_GPU_IN_CL 1
#define MN_GPU_IN_CU 2

/* One id per kernel of kernels/mcunas.cl and kernels/mcunas.cu. */
typedef enum mn_gpu_kernel {
#define MN_GPU_KERNEL(ID, name, where, sig) MN_GPU_##ID,
#include "gpu_kernels.def"
    MN_GPU_KERNEL_COUNT
} mn_gpu_kernel;

typedef struct mn_gpu_kernel_info {
    const char *name; /* the function name in the kernel files */
    int where;        /* MN_GPU_IN_CL | MN_GPU_IN_CU */
    const char *sig;  /* parameter letters (gpu_kernels.def) */
} mn_gpu_kernel_info;

extern const mn_gpu_kernel_info mn_gpu_kernels[MN_GPU_KERNEL_COUNT];

/* The most arguments a kernel takes (a longer signature is refused at launch). */
#define MN_GPU_MAX_ARGS 16

/* A region of device memory as a kernel receives it. */
typedef union mn_gpu_ptr {
    struct {
        void *mem;    /* cl_mem */
        uint64_t off; /* offset in elements of the kernel parameter's type */
    } cl;             /* OpenCL */
    uint64_t addr;    /* CUDA: the CUdeviceptr of the first element */
} mn_gpu_ptr;

/* A buffer: `base` is the whole allocation as its backend resolves it (offset 0). */
struct mn_buf {
    mn_gpu_ptr base;
    size_t size; /* what the caller asked for (the allocation may be a little larger) */
};

/* A kernel argument; `kind` is 'p' (a tensor: matches F, I or B of the signature), 'u',
 * 'U', 'i' or 'f'. */
typedef struct mn_gpu_arg {
    char kind;
    union {
        mn_gpu_ptr p;
        uint32_t u;
        uint64_t U;
        int32_t i;
        float f;
    } v;
} mn_gpu_arg;

#define MN_GA_P(x) ((mn_gpu_arg){.kind = 'p', .v.p = (x)})
#define MN_GA_U32(x) ((mn_gpu_arg){.kind = 'u', .v.u = (uint32_t)(x)})
#define MN_GA_U64(x) ((mn_gpu_arg){.kind = 'U', .v.U = (uint64_t)(x)})
#define MN_GA_I32(x) ((mn_gpu_arg){.kind = 'i', .v.i = (int32_t)(x)})
#define MN_GA_F32(x) ((mn_gpu_arg){.kind = 'f', .v.f = (float)(x)})
#define MN_GPU_ARGS(...) sizeof((mn_gpu_arg[]){__VA_ARGS__}) / sizeof(mn_gpu_arg), \
                         (mn_gpu_arg[]){__VA_ARGS__}

/* How a launch is laid out: one work-item (thread) per item, the backend choosing and
 * rounding up the group size; or `n` work-groups (blocks) of the backend's reduction
 * size, one per output (the reduction kernels). */
typedef enum mn_gpu_grid { MN_GPU_ITEMS, MN_GPU_GROUPS } mn_gpu_grid;

/* The device interface a backend implements. */
typedef struct mn_gpu_dev {
    const char *name; /* "opencl", "cuda": the backend's name in messages */
    /* The region `offset` bytes into buf as an argument of `elem`-byte elements (the
     * offset is checked: in range and a multiple of elem). */
    mn_gpu_ptr (*resolve)(const mn_buf *buf, size_t offset, size_t elem);
    /* Launches kernel k (n > 0, arguments matching its signature). */
    mn_status (*launch)(mn_backend *be, mn_gpu_kernel k, mn_gpu_grid grid, size_t n,
                        size_t nargs, const mn_gpu_arg *args);
    /* bytes of zeros at the view (checked), on the backend's queue; `op` names the caller
     * in messages. */
    mn_status (*zero)(mn_backend *be, const char *op, mn_view v, size_t bytes);
    /* Row-major C[m][n] = op(A) op(B) (ta/tb: A/B transposed; leading dimensions in
     * elements; C overwritten), on the backend's queue with its BLAS (the dense ops). */
    mn_status (*gemm)(mn_backend *be, const char *op, int ta, int tb, size_t m, size_t n,
                      size_t k, mn_gpu_ptr a, size_t lda, mn_gpu_ptr b, size_t ldb,
                      mn_gpu_ptr c, size_t ldc);
} mn_gpu_dev;

/* The first member of every GPU backend's private state. */
typedef struct mn_gpu {
    const mn_gpu_dev *dev;
    size_t allocated, peak; /* bytes of device memory the backend holds, and the most */
} mn_gpu;

static inline mn_gpu *mn_gpu_of(mn_backend *be) { return (mn_gpu *)be->impl; }

#define MN_GPU_TRY(expr)                                                                  \
    do {                                                                                  \
        mn_status mn_gpu_st_ = (expr);                                                    \
        if (mn_gpu_st_ != MN_OK) return mn_gpu_st_;                                       \
    } while (0)

/* ---- gpu.c ---- */

/* Memory accounting: every buffer the backend creates, the caller's and its own. */
void mn_gpu_count_alloc(mn_gpu *g, size_t bytes);
void mn_gpu_count_free(mn_gpu *g, size_t bytes);

/* `count` elements of `elem` bytes at the view, as the CPU backend checks them (naming op
 * and argument); the offset must be a multiple of elem and count below 2^32 (kernels
 * index in 32 bits). *out is the region as a kernel argument. */
mn_status mn_gpu_view(const mn_gpu *g, const char *op, const char *arg, mn_view v,
                      size_t count, size_t elem, mn_gpu_ptr *out);
/* Same, absent allowed (then *out is zeroed and MN_OK; test v.buf for presence). */
mn_status mn_gpu_view_opt(const mn_gpu *g, const char *op, const char *arg, mn_view v,
                          size_t count, size_t elem, mn_gpu_ptr *out);

/* Launches kernel k over `items` items or `groups` work-groups; nothing is launched when
 * the count is 0. An argument list that does not match the kernel's signature is refused
 * (MN_ERR_BACKEND naming the kernel). */
mn_status mn_gpu_run(mn_backend *be, mn_gpu_kernel k, size_t items, size_t nargs,
                     const mn_gpu_arg *args);
mn_status mn_gpu_run_groups(mn_backend *be, mn_gpu_kernel k, size_t groups, size_t nargs,
                            const mn_gpu_arg *args);

/* ---- gpu_ops.c ---- */

/* y[r][j] += b[j] over `rows` rows of `cols` (dense and conv biases). */
mn_status mn_gpu_bias_rows(mn_backend *be, mn_gpu_ptr y, mn_gpu_ptr b, size_t rows,
                           size_t cols);
/* dst[j] = sum over r of src[r][j], a fixed-order reduction (dense and conv db). */
mn_status mn_gpu_colsum(mn_backend *be, mn_gpu_ptr src, size_t rows, size_t cols,
                        mn_gpu_ptr dst);

/* mn_gpu_<fn>, with the parameters of mcunas/backend_ops.def, for the ops listed in
 * MN_GPU_SHARED_OPS below (declared for every op by the .def; conv3x3_* have no shared
 * implementation: each backend has its own). */
#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status mn_gpu_##fn params;
#include "mcunas/backend_ops.def"

/* Table entries for the shared ops: a GPU backend's mn_backend_ops lists these next to
 * its own conv3x3_* entries. */
#define MN_GPU_SHARED_OPS                                                                 \
    .maxpool2_forward = mn_gpu_maxpool2_forward,                                          \
    .maxpool2_backward = mn_gpu_maxpool2_backward,                                        \
    .batchnorm_train = mn_gpu_batchnorm_train,                                            \
    .batchnorm_infer = mn_gpu_batchnorm_infer,                                            \
    .batchnorm_backward = mn_gpu_batchnorm_backward, .relu_forward = mn_gpu_relu_forward, \
    .relu_backward = mn_gpu_relu_backward, .gap_forward = mn_gpu_gap_forward,             \
    .gap_backward = mn_gpu_gap_backward, .dropout_forward = mn_gpu_dropout_forward,       \
    .dropout_backward = mn_gpu_dropout_backward, .softmax_xent = mn_gpu_softmax_xent,     \
    .adam_step = mn_gpu_adam_step, .scale_u8 = mn_gpu_scale_u8,                          \
    .dense_forward = mn_gpu_dense_forward, .dense_backward = mn_gpu_dense_backward

#endif
