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

#include "backend/cuda/cuda_backend.h"
#include "backend/shape_check.h"
#include "mcunas/backend.h"

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

/* Describes device `index` (cu_device.c). */
mn_status mn_cu_describe(int index, CUdevice dev, mn_cu_device_info *info);

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
mn_status mn_cu_conv3x3_forward(mn_backend *be, const mn_conv_shape *s, mn_view x, mn_view w,
                                mn_view b, mn_view y, mn_view workspace);
mn_status mn_cu_conv3x3_backward_data(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                      mn_view w, mn_view dx, mn_view workspace);
mn_status mn_cu_conv3x3_backward_weights(mn_backend *be, const mn_conv_shape *s, mn_view x,
                                         mn_view dy, mn_view dw, mn_view db,
                                         mn_view workspace);
/* Releases the cuDNN descriptors of the shape cache. */
void mn_cu_conv_cache_clear(mn_cu *c);

mn_status mn_cu_maxpool2_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                 mn_view y);
mn_status mn_cu_maxpool2_backward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                  mn_view y, mn_view dy, mn_view dx);
mn_status mn_cu_batchnorm_train(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                mn_view beta, mn_view running_mean, mn_view running_var,
                                float momentum, float eps, mn_view y, mn_view save_mean,
                                mn_view save_invstd);
mn_status mn_cu_batchnorm_infer(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                mn_view beta, mn_view running_mean, mn_view running_var,
                                float eps, mn_view y);
mn_status mn_cu_batchnorm_backward(mn_backend *be, int m, int c, mn_view x, mn_view dy,
                                   mn_view gamma, mn_view save_mean, mn_view save_invstd,
                                   mn_view dx, mn_view dgamma, mn_view dbeta);
mn_status mn_cu_relu_forward(mn_backend *be, size_t count, mn_view x, mn_view y);
mn_status mn_cu_relu_backward(mn_backend *be, size_t count, mn_view y, mn_view dy,
                              mn_view dx);
mn_status mn_cu_gap_forward(mn_backend *be, int n, int h, int w, int c, mn_view x, mn_view y);
mn_status mn_cu_gap_backward(mn_backend *be, int n, int h, int w, int c, mn_view dy,
                             mn_view dx);
mn_status mn_cu_dropout_forward(mn_backend *be, size_t count, float rate, uint64_t seed,
                                mn_view x, mn_view mask, mn_view y);
mn_status mn_cu_dropout_backward(mn_backend *be, size_t count, mn_view mask, mn_view dy,
                                 mn_view dx);
mn_status mn_cu_adam_step(mn_backend *be, size_t count, mn_view param, mn_view grad,
                          mn_view m, mn_view v, float lr, float beta1, float beta2, float eps,
                          int step);
mn_status mn_cu_scale_u8(mn_backend *be, size_t count, mn_view x_u8, float scale, mn_view y);
mn_status mn_cu_dense_forward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                              mn_view b, mn_view y);
mn_status mn_cu_dense_backward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                               mn_view dy, mn_view dx, mn_view dw, mn_view db);
mn_status mn_cu_softmax_xent(mn_backend *be, int n, int classes, mn_view logits,
                             mn_view labels, float grad_scale, mn_view probs, mn_view loss,
                             mn_view dlogits);

#endif
