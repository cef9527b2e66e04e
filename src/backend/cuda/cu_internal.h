/* Private declarations shared by the CUDA backend's translation units.
 *
 * One device, its primary context, one stream per backend instance: every op enqueues on
 * that stream and returns; `sync` and downloads wait. One stream is also what a later
 * CUDA-graph capture of a whole training step needs (cuStreamBeginCapture on it). The
 * convolutions are cuDNN's (deterministic algorithms only), dense GEMMs cuBLAS's, the
 * rest our kernels (kernels/mcunas.cu, embedded as PTX and JIT-compiled by the driver at
 * creation): the ops that are only those kernels are the GPU backends' shared ones
 * (src/backend/gpu/), run through this backend's device interface (cu.c). A buffer is a
 * CUdeviceptr; a view is that plus its byte offset. Memory is counted (mn_gpu): every
 * buffer the backend creates for the caller. */
#ifndef MN_BACKEND_CUDA_INTERNAL_H
#define MN_BACKEND_CUDA_INTERNAL_H

#include "cu_api.h" /* cuda.h, cublas_v2.h, cudnn.h and the dlopen'ed functions */

#include <stddef.h>
#include <stdint.h>

#include "backend/gpu/gpu_impl.h" /* the shared ops, kernel ids, mn_buf and mn_gpu */

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
    mn_gpu gpu; /* first: the shared ops' view of the backend (device interface, memory) */
    CUdevice dev;
    CUcontext ctx; /* the device's primary context, retained */
    CUstream stream;
    CUmodule module;
    CUfunction kernels[MN_GPU_KERNEL_COUNT]; /* those of MN_GPU_IN_CU, others NULL */
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    mn_cu_device_info info;
    mn_cu_conv_entry conv[MN_CU_CONV_CACHE];
    int conv_next;
    mn_cu_ws_memo ws_memo[MN_CU_WS_MEMO];
    int ws_memo_next;
    int conv_direct; /* MN_CUDA_CONV=direct: our kernels only, cuDNN's convolutions unused */
} mn_cu;

static inline mn_cu *mn_cu_impl(mn_backend *be) { return (mn_cu *)be->impl; }

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

/* ---- argument checks (cu.c) ---- */

/* mn_gpu_view and mn_gpu_view_opt (absent: *out = 0) as a device address. */
mn_status mn_cu_view(mn_cu *c, const char *op, const char *arg, mn_view v, size_t count,
                     size_t elem, CUdeviceptr *out);
mn_status mn_cu_view_opt(mn_cu *c, const char *op, const char *arg, mn_view v, size_t count,
                         size_t elem, CUdeviceptr *out);
/* Bytes of v's buffer from its offset to the end (0 when absent or past the end). */
size_t mn_cu_view_room(mn_view v);

/* A device address as the shared launches take it, and as a kernel argument. */
static inline mn_gpu_ptr mn_cu_ptr(CUdeviceptr p) { return (mn_gpu_ptr){.addr = p}; }
#define MN_KP(p) MN_GA_P(mn_cu_ptr(p))

/* ---- ops ---- */

size_t mn_cu_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s);
/* Releases the cuDNN descriptors of the shape cache. */
void mn_cu_conv_cache_clear(mn_cu *c);

/* The convolutions (cu_conv.c); the rest are shared. */
mn_status mn_cu_conv3x3_forward(mn_backend *be, const mn_conv_shape *s, mn_view x, mn_view w,
                                mn_view b, mn_view y, mn_view workspace);
mn_status mn_cu_conv3x3_backward_data(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                      mn_view w, mn_view dx, mn_view workspace);
mn_status mn_cu_conv3x3_backward_weights(mn_backend *be, const mn_conv_shape *s, mn_view x,
                                         mn_view dy, mn_view dw, mn_view db,
                                         mn_view workspace);

/* The device interface's gemm (cu_gemm.c): row-major through column-major cuBLAS. */
mn_status mn_cu_dev_gemm(mn_backend *be, const char *op, int ta, int tb, size_t m, size_t n,
                         size_t k, mn_gpu_ptr a, size_t lda, mn_gpu_ptr b, size_t ldb,
                         mn_gpu_ptr c, size_t ldc);

#endif
