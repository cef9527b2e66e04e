/* Private declarations shared by the CUDA backend's translation units.
 *
 * One device, its primary context, one stream per backend instance: every op enqueues on
 * that stream and returns; `sync` and downloads wait. One stream is also what a later
 * CUDA-graph capture of a whole training step needs (cuStreamBeginCapture on it). The
 * convolutions are cuDNN's (deterministic algorithms only), dense GEMMs cuBLAS's, the
 * rest our kernels (kernels/mcunas.cu, embedded as PTX and JIT-compiled by the driver at
 * creation). A buffer is a CUdeviceptr; a view is that plus its byte offset. Memory is
 * counted here: every buffer the backend creates for the caller. */
#ifndef MN_BACKEND_CUDA_INTERNAL_H
#define MN_BACKEND_CUDA_INTERNAL_H

#include "cu_api.h" /* cuda.h, cublas_v2.h, cudnn.h and the dlopen'ed functions */

#include <stddef.h>
#include <stdint.h>

#include "backend/backend_impl.h"
#include "backend/shape_check.h"

/* One CUDA device; `index` is the driver's ordinal, the `--device N` of the CLI. */
typedef struct mn_cu_device_info {
    int index;
    char name[128];
    int cc_major, cc_minor; /* compute capability */
    int multiprocessors;
    int integrated;         /* CU_DEVICE_ATTRIBUTE_INTEGRATED: memory is the host's */
    int driver_version;     /* cuDriverGetVersion: 1000*major + 10*minor */
    size_t total_mem_bytes;
} mn_cu_device_info;

/* Block sizes: elementwise kernels, and reductions (kernels/mcunas.cu's MN_CU_RED). */
#define MN_CU_BLOCK 256
#define MN_CU_RED 128

struct mn_buf {
    CUdeviceptr ptr;
    size_t size; /* what the caller asked for (the allocation may be a little larger) */
};

/* The kernels of kernels/mcunas.cu, in this order (names in cu.c). */
typedef enum mn_cu_kernel {
    MN_CU_BIAS_ROWS,
    MN_CU_COLSUM,
    MN_CU_MAXPOOL2_FWD,
    MN_CU_MAXPOOL2_BWD,
    MN_CU_BN_STATS,
    MN_CU_BN_APPLY,
    MN_CU_BN_INFER,
    MN_CU_BN_BWD_SUMS,
    MN_CU_BN_BWD_APPLY,
    MN_CU_RELU_FWD,
    MN_CU_RELU_BWD,
    MN_CU_GAP_FWD,
    MN_CU_GAP_BWD,
    MN_CU_DROPOUT_FWD,
    MN_CU_DROPOUT_BWD,
    MN_CU_ADAM,
    MN_CU_SCALE_U8,
    MN_CU_SOFTMAX_XENT,
    MN_CU_CONV_FWD_DIRECT,
    MN_CU_CONV_BWD_DATA_DIRECT,
    MN_CU_CONV_BWD_FILTER_DIRECT,
    MN_CU_KERNEL_COUNT
} mn_cu_kernel;

/* cuDNN's state for one convolution shape: descriptors and, per direction, the
 * deterministic algorithms the heuristics offer, best first, with their workspace, then
 * always our direct kernel (MN_CU_ALGO_DIRECT, no workspace) last. Chosen once per shape
 * (the heuristics are not timed, so the same choice every run). */
#define MN_CU_ALGOS 9
#define MN_CU_ALGO_DIRECT (-1)
typedef struct mn_cu_algo_list {
    int n;
    int algo[MN_CU_ALGOS];
    size_t bytes[MN_CU_ALGOS];
} mn_cu_algo_list;

typedef struct mn_cu_conv_entry {
    int used;
    mn_conv_shape s;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    mn_cu_algo_list fwd, data, filt;
} mn_cu_conv_entry;

#define MN_CU_CONV_CACHE 64

/* conv3x3_workspace_bytes's answers per shape (each costs several cuDNN rankings). */
#define MN_CU_WS_MEMO 64
typedef struct mn_cu_ws_memo {
    int used;
    mn_conv_shape s;
    size_t bytes;
} mn_cu_ws_memo;

typedef struct mn_cu {
    CUdevice dev;
    CUcontext ctx; /* the device's primary context, retained */
    CUstream stream;
    CUmodule module;
    CUfunction kernels[MN_CU_KERNEL_COUNT];
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    mn_cu_device_info info;
    size_t allocated, peak;
    mn_cu_conv_entry conv[MN_CU_CONV_CACHE];
    int conv_next;
    mn_cu_ws_memo ws_memo[MN_CU_WS_MEMO];
    int ws_memo_next;
    int conv_direct; /* MN_CUDA_CONV=direct: our kernels only, cuDNN's convolutions unused */
} mn_cu;

static inline mn_cu *mn_cu_impl(mn_backend *be) { return (mn_cu *)be->impl; }

#define MN_CU_TRY(expr)                                                                   \
    do {                                                                                  \
        mn_status mn_cu_st_ = (expr);                                                     \
        if (mn_cu_st_ != MN_OK) return mn_cu_st_;                                         \
    } while (0)

/* MN_ERR_BACKEND with "cuda: <what> failed: <error name> (<code>): <description>". */
mn_status mn_cu_fail(CUresult err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
mn_status mn_cu_blas_fail(cublasStatus_t err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
mn_status mn_cu_dnn_fail(cudnnStatus_t err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes the backend's context current on the calling thread (every entry point that
 * touches the device calls it: a backend may be used from any one thread at a time). */
mn_status mn_cu_enter(mn_cu *c);

/* ---- devices (cu_device.c) ---- */

/* Describes device `index`. */
mn_status mn_cu_describe(int index, CUdevice dev, mn_cu_device_info *info);
/* Every CUDA device (mn_backend_cuda_reg.list_devices). *out is malloc'ed; no driver or
 * no device gives *count = 0 and MN_OK; a failing query, MN_ERR_BACKEND. */
mn_status mn_cu_list_devices(mn_device_info **out, int *count);

/* ---- argument checks (cu.c); as the other backends', naming op and argument ---- */

/* `count` elements of `elem` bytes at the view; the offset must be a multiple of elem and
 * count below 2^32 (kernels index in 32 bits). *out = the device address. */
mn_status mn_cu_view(const char *op, const char *arg, mn_view v, size_t count, size_t elem,
                     CUdeviceptr *out);
/* Same, absent allowed: *out = 0. */
mn_status mn_cu_view_opt(const char *op, const char *arg, mn_view v, size_t count,
                         size_t elem, CUdeviceptr *out);
/* Bytes of v's buffer from its offset to the end (0 when absent or past the end). */
size_t mn_cu_view_room(mn_view v);

/* ---- kernel launches (cu.c) ---- */

/* Kernel arguments: pointers to values of exactly the kernel's parameter types. */
#define MN_KP(p) (&(CUdeviceptr){(p)})
#define MN_KU32(v) (&(unsigned int){(unsigned int)(v)})
#define MN_KU64(v) (&(unsigned long long){(unsigned long long)(v)})
#define MN_KF32(v) (&(float){(float)(v)})
#define MN_CU_ARGS(...) (void *[]){__VA_ARGS__}

/* One thread per item (`items` of them, blocks of MN_CU_BLOCK); nothing is launched
 * when items is 0. */
mn_status mn_cu_run(mn_cu *c, mn_cu_kernel k, size_t items, void **args);
/* `blocks` blocks of MN_CU_RED threads (reduction kernels). */
mn_status mn_cu_run_blocks(mn_cu *c, mn_cu_kernel k, size_t blocks, void **args);
/* bytes of zeros at ptr, on the stream. */
mn_status mn_cu_zero(mn_cu *c, CUdeviceptr ptr, size_t bytes);

/* ---- ops ---- */

size_t mn_cu_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s);
/* Releases the cuDNN descriptors of the shape cache. */
void mn_cu_conv_cache_clear(mn_cu *c);

/* mn_cu_<fn> for every op of mcunas/backend_ops.def. */
#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status mn_cu_##fn params;
#include "mcunas/backend_ops.def"

#endif
