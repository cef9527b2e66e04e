/* The CUDA driver, cuBLAS and cuDNN functions the cuda backend calls, loaded with dlopen
 * on first use.
 *
 * None of the three is linked into libmcunas: a binary built with CUDA runs where no
 * NVIDIA driver is installed (the cuda backend then fails with a message naming the
 * missing library), and CPU-only runs never map them. Only the toolkit's headers are used
 * at build time. The driver API (not the runtime) is used, so nothing of libcudart is
 * needed either; cuBLAS and cuDNN take the driver's CUstream as their cudaStream_t (the
 * same `struct CUstream_st *`).
 *
 * Call sites go through the table: `mn_cu_fn.cuMemAlloc(...)`. The toolkit headers
 * #define versioned names (cuMemAlloc -> cuMemAlloc_v2, cublasSgemm -> cublasSgemm_v2),
 * and both the table's fields and the dlsym'ed names go through that same expansion, so
 * the versioned symbol the header declares is the one loaded. Everything used exists in
 * CUDA 10.2 and cuDNN 8 (Jetson Nano's JetPack 4.6) as well as CUDA 13 and cuDNN 9. */
#ifndef MN_BACKEND_CUDA_API_H
#define MN_BACKEND_CUDA_API_H

#include <cublas_v2.h>
#include <cuda.h>
#include <cudnn.h>

#include "mcunas/status.h"

#define MN_CU_DRIVER_FUNCTIONS(X)                                                         \
    X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName)  \
    X(cuDeviceTotalMem) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain)               \
    X(cuDevicePrimaryCtxRelease) X(cuCtxSetCurrent) X(cuCtxSynchronize) X(cuMemGetInfo)   \
    X(cuMemAlloc) X(cuMemFree) X(cuMemsetD8Async) X(cuMemsetD32Async)                     \
    X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuStreamCreate) X(cuStreamDestroy)        \
    X(cuStreamSynchronize) X(cuModuleLoadDataEx) X(cuModuleUnload) X(cuModuleGetFunction)   \
    X(cuLaunchKernel) X(cuGetErrorName) X(cuGetErrorString)
#define MN_CU_BLAS_FUNCTIONS(X)                                                           \
    X(cublasCreate) X(cublasDestroy) X(cublasSetStream) X(cublasSetMathMode) X(cublasSgemm)
#define MN_CU_DNN_FUNCTIONS(X)                                                            \
    X(cudnnGetVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy)              \
    X(cudnnSetStream) X(cudnnCreateTensorDescriptor) X(cudnnSetTensor4dDescriptor)        \
    X(cudnnDestroyTensorDescriptor) X(cudnnCreateFilterDescriptor)                        \
    X(cudnnSetFilter4dDescriptor) X(cudnnDestroyFilterDescriptor)                         \
    X(cudnnCreateConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor)                \
    X(cudnnSetConvolutionMathType) X(cudnnDestroyConvolutionDescriptor)                   \
    X(cudnnGetConvolutionForwardAlgorithmMaxCount)                                        \
    X(cudnnGetConvolutionBackwardDataAlgorithmMaxCount)                                   \
    X(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount)                                 \
    X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionBackwardDataAlgorithm_v7) \
    X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)                                      \
    X(cudnnGetConvolutionForwardWorkspaceSize) X(cudnnGetConvolutionBackwardDataWorkspaceSize) \
    X(cudnnGetConvolutionBackwardFilterWorkspaceSize) X(cudnnConvolutionForward)          \
    X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter)

typedef struct mn_cu_api {
#define MN_CU_API_PTR(f) __typeof__(&f) f;
    MN_CU_DRIVER_FUNCTIONS(MN_CU_API_PTR)
    MN_CU_BLAS_FUNCTIONS(MN_CU_API_PTR)
    MN_CU_DNN_FUNCTIONS(MN_CU_API_PTR)
#undef MN_CU_API_PTR
} mn_cu_api;

extern mn_cu_api mn_cu_fn;

/* Loads the driver and calls cuInit once (thread-safe): MN_ERR_UNSUPPORTED naming the
 * library and dlerror() when libcuda is missing, or the cuInit error (no device, no
 * kernel module). Loads nothing else. */
mn_status mn_cu_driver_load(void);
/* Loads cuBLAS and cuDNN once (after the driver); MN_ERR_UNSUPPORTED naming the library
 * when either is missing or lacks a function. */
mn_status mn_cu_libs_load(void);

#endif
