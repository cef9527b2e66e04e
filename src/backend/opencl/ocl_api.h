/* The OpenCL and CLBlast functions the backend calls, loaded with dlopen on first use.
 *
 * libOpenCL and libclblast are not linked into libmcunas: a CPU-only run never maps them
 * (CLBlast alone adds ~6 MB of resident memory at load, which a host memory budget would
 * otherwise count), and a binary built with OpenCL still runs where the libraries are
 * missing, the opencl backend then failing with a message. Every call site keeps the
 * plain names: after this header, `clFinish(q)` means `(mn_ocl_fn.clFinish)(q)`. */
#ifndef MN_BACKEND_OPENCL_API_H
#define MN_BACKEND_OPENCL_API_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <clblast_c.h>

#include "mcunas/status.h"

#define MN_OCL_CL_FUNCTIONS(X)                                                            \
    X(clGetPlatformIDs) X(clGetPlatformInfo) X(clGetDeviceIDs) X(clGetDeviceInfo)         \
    X(clCreateContext) X(clReleaseContext) X(clCreateCommandQueue)                        \
    X(clReleaseCommandQueue) X(clFinish) X(clCreateBuffer) X(clCreateSubBuffer)           \
    X(clReleaseMemObject) X(clEnqueueFillBuffer) X(clEnqueueWriteBuffer)                  \
    X(clEnqueueReadBuffer) X(clCreateProgramWithSource) X(clCreateProgramWithBinary)      \
    X(clBuildProgram) X(clGetProgramBuildInfo) X(clGetProgramInfo) X(clReleaseProgram)    \
    X(clCreateKernel) X(clReleaseKernel) X(clSetKernelArg) X(clGetKernelWorkGroupInfo)    \
    X(clEnqueueNDRangeKernel)
#define MN_OCL_BLAS_FUNCTIONS(X)                                                          \
    X(CLBlastSGemmTempBufferSize) X(CLBlastSgemmWithTempBuffer) X(CLBlastOverrideParameters)

typedef struct mn_ocl_api {
#define MN_OCL_API_PTR(f) __typeof__(&f) f;
    MN_OCL_CL_FUNCTIONS(MN_OCL_API_PTR)
    MN_OCL_BLAS_FUNCTIONS(MN_OCL_API_PTR)
#undef MN_OCL_API_PTR
} mn_ocl_api;

extern mn_ocl_api mn_ocl_fn;

/* Loads both libraries once (thread-safe); MN_ERR_UNSUPPORTED naming the library and
 * dlerror() when either is missing. */
mn_status mn_ocl_api_load(void);

#ifndef MN_OCL_API_IMPL
#define clGetPlatformIDs (mn_ocl_fn.clGetPlatformIDs)
#define clGetPlatformInfo (mn_ocl_fn.clGetPlatformInfo)
#define clGetDeviceIDs (mn_ocl_fn.clGetDeviceIDs)
#define clGetDeviceInfo (mn_ocl_fn.clGetDeviceInfo)
#define clCreateContext (mn_ocl_fn.clCreateContext)
#define clReleaseContext (mn_ocl_fn.clReleaseContext)
#define clCreateCommandQueue (mn_ocl_fn.clCreateCommandQueue)
#define clReleaseCommandQueue (mn_ocl_fn.clReleaseCommandQueue)
#define clFinish (mn_ocl_fn.clFinish)
#define clCreateBuffer (mn_ocl_fn.clCreateBuffer)
#define clCreateSubBuffer (mn_ocl_fn.clCreateSubBuffer)
#define clReleaseMemObject (mn_ocl_fn.clReleaseMemObject)
#define clEnqueueFillBuffer (mn_ocl_fn.clEnqueueFillBuffer)
#define clEnqueueWriteBuffer (mn_ocl_fn.clEnqueueWriteBuffer)
#define clEnqueueReadBuffer (mn_ocl_fn.clEnqueueReadBuffer)
#define clCreateProgramWithSource (mn_ocl_fn.clCreateProgramWithSource)
#define clCreateProgramWithBinary (mn_ocl_fn.clCreateProgramWithBinary)
#define clBuildProgram (mn_ocl_fn.clBuildProgram)
#define clGetProgramBuildInfo (mn_ocl_fn.clGetProgramBuildInfo)
#define clGetProgramInfo (mn_ocl_fn.clGetProgramInfo)
#define clReleaseProgram (mn_ocl_fn.clReleaseProgram)
#define clCreateKernel (mn_ocl_fn.clCreateKernel)
#define clReleaseKernel (mn_ocl_fn.clReleaseKernel)
#define clSetKernelArg (mn_ocl_fn.clSetKernelArg)
#define clGetKernelWorkGroupInfo (mn_ocl_fn.clGetKernelWorkGroupInfo)
#define clEnqueueNDRangeKernel (mn_ocl_fn.clEnqueueNDRangeKernel)
#define CLBlastSGemmTempBufferSize (mn_ocl_fn.CLBlastSGemmTempBufferSize)
#define CLBlastSgemmWithTempBuffer (mn_ocl_fn.CLBlastSgemmWithTempBuffer)
#define CLBlastOverrideParameters (mn_ocl_fn.CLBlastOverrideParameters)
#endif

#endif
