/* CUDA backend: the op table, construction, device memory, argument checks and kernel
 * launches. */
#include "cu_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* kernels/mcunas.cu compiled by nvcc (PTX, or a fatbin of PTX and SASS), embedded by
 * kernels/embed.cmake; NUL-terminated. */
extern const char mn_cu_kernel_image[];
extern const size_t mn_cu_kernel_image_len;

/* ---- errors ---- */

mn_status mn_cu_fail(CUresult err, const char *fmt, ...) {
    char what[1024]; /* room for a JIT error log */
    const char *name = NULL, *desc = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (mn_cu_fn.cuGetErrorName) mn_cu_fn.cuGetErrorName(err, &name);
    if (mn_cu_fn.cuGetErrorString) mn_cu_fn.cuGetErrorString(err, &desc);
    return mn_error_set(MN_ERR_BACKEND, "cuda: %s failed: %s (%d)%s%s", what,
                        name ? name : "CUDA error", (int)err, desc ? ": " : "",
                        desc ? desc : "");
}

static const char *mn_cu_blas_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
    }
}

mn_status mn_cu_blas_fail(cublasStatus_t err, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mn_error_set(MN_ERR_BACKEND, "cuda: %s failed: %s (%d)", what, mn_cu_blas_name(err),
                        (int)err);
}

mn_status mn_cu_dnn_fail(cudnnStatus_t err, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *s = mn_cu_fn.cudnnGetErrorString ? mn_cu_fn.cudnnGetErrorString(err) : NULL;
    return mn_error_set(MN_ERR_BACKEND, "cuda: %s failed: %s (%d)", what, s ? s : "cuDNN error",
                        (int)err);
}

mn_status mn_cu_enter(mn_cu *c) {
    CUresult r = mn_cu_fn.cuCtxSetCurrent(c->ctx);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuCtxSetCurrent");
    return MN_OK;
}

/* ---- argument checks ---- */

mn_status mn_cu_view(mn_cu *c, const char *op, const char *arg, mn_view v, size_t count,
                     size_t elem, CUdeviceptr *out) {
    mn_gpu_ptr p;
    mn_status st = mn_gpu_view(&c->gpu, op, arg, v, count, elem, &p);
    *out = (CUdeviceptr)p.addr;
    return st;
}

mn_status mn_cu_view_opt(mn_cu *c, const char *op, const char *arg, mn_view v, size_t count,
                         size_t elem, CUdeviceptr *out) {
    mn_gpu_ptr p;
    mn_status st = mn_gpu_view_opt(&c->gpu, op, arg, v, count, elem, &p);
    *out = (CUdeviceptr)p.addr;
    return st;
}

size_t mn_cu_view_room(mn_view v) {
    if (!v.buf || v.offset > v.buf->size) return 0;
    return v.buf->size - v.offset;
}

/* ---- the device interface of the shared ops (gpu_impl.h) ---- */

static mn_gpu_ptr mn_cu_resolve(const mn_buf *buf, size_t offset, size_t elem) {
    (void)elem; /* kernels take pointers already offset, in bytes */
    return (mn_gpu_ptr){.addr = buf->base.addr + (uint64_t)offset};
}

/* One thread per item in blocks of MN_CU_BLOCK, or n blocks of MN_CU_RED threads. Each
 * argument is passed as a pointer to a value of exactly the kernel parameter's type. */
static mn_status mn_cu_launch(mn_backend *be, mn_gpu_kernel k, mn_gpu_grid grid, size_t n,
                              size_t nargs, const mn_gpu_arg *args) {
    mn_cu *c = mn_cu_impl(be);
    union {
        CUdeviceptr p;
        unsigned int u;
        unsigned long long U;
        int i;
        float f;
    } val[MN_GPU_MAX_ARGS];
    void *ptr[MN_GPU_MAX_ARGS];
    for (size_t i = 0; i < nargs && i < MN_GPU_MAX_ARGS; i++) {
        const mn_gpu_arg *a = &args[i];
        switch (a->kind) {
        case 'p': val[i].p = (CUdeviceptr)a->v.p.addr; ptr[i] = &val[i].p; break;
        case 'u': val[i].u = (unsigned int)a->v.u; ptr[i] = &val[i].u; break;
        case 'U': val[i].U = (unsigned long long)a->v.U; ptr[i] = &val[i].U; break;
        case 'i': val[i].i = (int)a->v.i; ptr[i] = &val[i].i; break;
        default: val[i].f = a->v.f; ptr[i] = &val[i].f; break;
        }
    }
    const int items = grid == MN_GPU_ITEMS;
    const size_t blocks = items ? (n + MN_CU_BLOCK - 1) / MN_CU_BLOCK : n;
    const unsigned threads = items ? MN_CU_BLOCK : MN_CU_RED;
    if (blocks > 0x7fffffffu)
        return mn_error_set(MN_ERR_INVALID_ARG, "cuda: %zu blocks are too many for one launch",
                            blocks);
    MN_GPU_TRY(mn_cu_enter(c));
    CUresult r = mn_cu_fn.cuLaunchKernel(c->kernels[k], (unsigned)blocks, 1, 1, threads, 1, 1,
                                         0, c->stream, ptr, NULL);
    if (r != CUDA_SUCCESS)
        return mn_cu_fail(r, "cuLaunchKernel(%s, %zu blocks)", mn_gpu_kernels[k].name, blocks);
    return MN_OK;
}

static mn_status mn_cu_zero(mn_backend *be, const char *op, mn_view v, size_t bytes) {
    mn_cu *c = mn_cu_impl(be);
    if (!bytes) return MN_OK;
    MN_GPU_TRY(mn_cu_enter(c));
    CUresult r = mn_cu_fn.cuMemsetD8Async(v.buf->base.addr + (CUdeviceptr)v.offset, 0, bytes,
                                          c->stream);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "%s: cuMemsetD8Async(%zu bytes)", op, bytes);
    return MN_OK;
}

static const mn_gpu_dev mn_cu_dev = {"cuda", mn_cu_resolve, mn_cu_launch, mn_cu_zero,
                                     mn_cu_dev_gemm};

/* ---- memory ---- */

/* Allocation granularity: cuMemAlloc aligns to 256 bytes anyway. */
#define MN_CU_ALIGN 256

static mn_status mn_cu_buf_alloc(mn_backend *be, size_t bytes, mn_buf **out) {
    mn_cu *c = mn_cu_impl(be);
    *out = NULL;
    if (bytes > SIZE_MAX - MN_CU_ALIGN)
        return mn_error_set(MN_ERR_NOMEM, "cuda: cannot allocate %zu bytes", bytes);
    /* a zero-byte request still gets a real allocation so that views of it are uniform */
    size_t rounded = (bytes + MN_CU_ALIGN - 1) / MN_CU_ALIGN * MN_CU_ALIGN;
    if (rounded == 0) rounded = MN_CU_ALIGN;
    MN_GPU_TRY(mn_cu_enter(c));
    mn_buf *buf = malloc(sizeof *buf);
    if (!buf) return mn_error_set(MN_ERR_NOMEM, "cuda: cannot allocate a buffer handle");
    CUdeviceptr dptr = 0;
    CUresult r = mn_cu_fn.cuMemAlloc(&dptr, rounded);
    if (r != CUDA_SUCCESS) {
        free(buf);
        if (r == CUDA_ERROR_OUT_OF_MEMORY) {
            size_t free_b = 0, total_b = 0;
            mn_cu_fn.cuMemGetInfo(&free_b, &total_b);
            return mn_error_set(MN_ERR_NOMEM,
                                "cuda: out of device memory allocating %zu bytes on '%s': %zu "
                                "bytes free of %zu (%zu allocated by this backend)",
                                bytes, c->info.name, free_b, total_b, c->gpu.allocated);
        }
        return mn_cu_fail(r, "cuMemAlloc(%zu bytes)", bytes);
    }
    r = mn_cu_fn.cuMemsetD8Async(dptr, 0, rounded, c->stream);
    if (r != CUDA_SUCCESS) {
        mn_cu_fn.cuMemFree(dptr);
        free(buf);
        return mn_cu_fail(r, "cuMemsetD8Async(zeroing %zu bytes)", bytes);
    }
    buf->base = mn_cu_ptr(dptr);
    buf->size = bytes;
    mn_gpu_count_alloc(&c->gpu, bytes);
    *out = buf;
    return MN_OK;
}

static void mn_cu_buf_free(mn_backend *be, mn_buf *buf) {
    mn_cu *c = mn_cu_impl(be);
    if (!buf) return;
    mn_gpu_count_free(&c->gpu, buf->size);
    /* cuMemFree waits for the work queued on the buffer's context to finish with it */
    if (mn_cu_enter(c) == MN_OK) mn_cu_fn.cuMemFree((CUdeviceptr)buf->base.addr);
    free(buf);
}

static mn_status mn_cu_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes) {
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr d;
    MN_GPU_TRY(mn_cu_view(c, "upload", "dst", dst, bytes, 1, &d));
    if (bytes && !src) return mn_error_set(MN_ERR_INVALID_ARG, "upload: argument 'src' is NULL");
    if (!bytes) return MN_OK;
    MN_GPU_TRY(mn_cu_enter(c));
    /* From pageable memory the call returns once src has been staged, so the caller may
     * reuse it; the copy itself stays ordered on the stream. */
    CUresult r = mn_cu_fn.cuMemcpyHtoDAsync(d, src, bytes, c->stream);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "upload of %zu bytes", bytes);
    return MN_OK;
}

static mn_status mn_cu_download(mn_backend *be, mn_view src, void *dst, size_t bytes) {
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr s;
    MN_GPU_TRY(mn_cu_view(c, "download", "src", src, bytes, 1, &s));
    if (bytes && !dst)
        return mn_error_set(MN_ERR_INVALID_ARG, "download: argument 'dst' is NULL");
    if (!bytes) return MN_OK;
    MN_GPU_TRY(mn_cu_enter(c));
    CUresult r = mn_cu_fn.cuMemcpyDtoHAsync(dst, s, bytes, c->stream);
    if (r == CUDA_SUCCESS) r = mn_cu_fn.cuStreamSynchronize(c->stream);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "download of %zu bytes", bytes);
    return MN_OK;
}

static mn_status mn_cu_fill(mn_backend *be, mn_view dst, float value, size_t count) {
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr d;
    MN_GPU_TRY(mn_cu_view(c, "fill", "dst", dst, count, sizeof(float), &d));
    if (!count) return MN_OK;
    unsigned int bits;
    memcpy(&bits, &value, sizeof bits);
    MN_GPU_TRY(mn_cu_enter(c));
    CUresult r = mn_cu_fn.cuMemsetD32Async(d, bits, count, c->stream);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "fill of %zu floats", count);
    return MN_OK;
}

static mn_status mn_cu_sync(mn_backend *be) {
    mn_cu *c = mn_cu_impl(be);
    MN_GPU_TRY(mn_cu_enter(c));
    CUresult r = mn_cu_fn.cuStreamSynchronize(c->stream);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuStreamSynchronize");
    return MN_OK;
}

/* Capacity is the device's memory, as `mcunas devices` lists it; an integrated GPU
 * (Jetson) allocates from the host's RAM. What other processes (and cuBLAS's and cuDNN's
 * own buffers) hold is not subtracted: an allocation beyond the free memory fails with
 * MN_ERR_NOMEM and both numbers (buf_alloc). */
static void mn_cu_mem_info(mn_backend *be, mn_backend_mem *out) {
    mn_cu *c = mn_cu_impl(be);
    out->allocated_bytes = c->gpu.allocated;
    out->peak_allocated_bytes = c->gpu.peak;
    out->device_total_bytes = c->info.total_mem_bytes;
    out->max_alloc_bytes = c->info.total_mem_bytes; /* no per-allocation limit below it */
    out->shares_host_memory = c->info.integrated;
}

/* ---- table and lifetime ---- */

static void mn_cu_release(mn_cu *c) {
    if (!c) return;
    if (c->ctx && mn_cu_enter(c) == MN_OK) {
        if (c->stream) mn_cu_fn.cuStreamSynchronize(c->stream);
        mn_cu_conv_cache_clear(c);
        if (c->dnn) mn_cu_fn.cudnnDestroy(c->dnn);
        if (c->blas) mn_cu_fn.cublasDestroy(c->blas);
        if (c->module) mn_cu_fn.cuModuleUnload(c->module);
        if (c->stream) mn_cu_fn.cuStreamDestroy(c->stream);
    }
    if (c->ctx) mn_cu_fn.cuDevicePrimaryCtxRelease(c->dev);
    free(c);
}

static void mn_cu_destroy(mn_backend *be) {
    if (!be) return;
    mn_cu_release(mn_cu_impl(be));
    free(be);
}

static const mn_backend_ops mn_cu_ops = {
    .name = "cuda",
    .destroy = mn_cu_destroy,
    .buf_alloc = mn_cu_buf_alloc,
    .buf_free = mn_cu_buf_free,
    .upload = mn_cu_upload,
    .download = mn_cu_download,
    .fill = mn_cu_fill,
    .sync = mn_cu_sync,
    .mem_info = mn_cu_mem_info,
    .conv3x3_workspace_bytes = mn_cu_conv3x3_workspace_bytes,
    .conv3x3_forward = mn_cu_conv3x3_forward,
    .conv3x3_backward_data = mn_cu_conv3x3_backward_data,
    .conv3x3_backward_weights = mn_cu_conv3x3_backward_weights,
    MN_GPU_SHARED_OPS,
};

/* JIT-compiles the embedded kernels for this device and looks every one up. */
static mn_status mn_cu_module_load(mn_cu *c) {
    char log[4096] = "";
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {log, (void *)(uintptr_t)sizeof log};
    CUresult r = mn_cu_fn.cuModuleLoadDataEx(&c->module, mn_cu_kernel_image, 2, opts, vals);
    if (r != CUDA_SUCCESS) {
        c->module = NULL;
        const int stale = r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION ||
                          r == CUDA_ERROR_NO_BINARY_FOR_GPU || r == CUDA_ERROR_INVALID_PTX;
        char hint[160] = "";
        if (stale)
            snprintf(hint, sizeof hint,
                     "; rebuild with the driver's CUDA toolkit, or with MN_CUDA_PTX_ARCH at most "
                     "compute_%d%d",
                     c->info.cc_major, c->info.cc_minor);
        return mn_cu_fail(r, "loading the embedded kernels on '%s' (compute %d.%d)%s%s%s",
                          c->info.name, c->info.cc_major, c->info.cc_minor, log[0] ? ": " : "",
                          log, hint);
    }
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++) {
        if (!(mn_gpu_kernels[i].where & MN_GPU_IN_CU)) continue;
        r = mn_cu_fn.cuModuleGetFunction(&c->kernels[i], c->module, mn_gpu_kernels[i].name);
        if (r != CUDA_SUCCESS)
            return mn_cu_fail(r, "cuModuleGetFunction(%s)", mn_gpu_kernels[i].name);
    }
    return MN_OK;
}

static mn_status mn_cu_setup(mn_cu *c, int device) {
    int count = 0;
    CUresult r = mn_cu_fn.cuDeviceGetCount(&count);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuDeviceGetCount");
    if (count == 0)
        return mn_error_set(MN_ERR_UNSUPPORTED, "cuda: no CUDA device on this machine");
    if (device >= count)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "cuda: device %d does not exist (there %s %d: 0..%d; see "
                            "`mcunas devices`)",
                            device, count == 1 ? "is" : "are", count, count - 1);
    r = mn_cu_fn.cuDeviceGet(&c->dev, device);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuDeviceGet(%d)", device);
    MN_GPU_TRY(mn_cu_describe(device, c->dev, &c->info));
    r = mn_cu_fn.cuDevicePrimaryCtxRetain(&c->ctx, c->dev);
    if (r != CUDA_SUCCESS) {
        c->ctx = NULL;
        return mn_cu_fail(r, "cuDevicePrimaryCtxRetain on '%s'", c->info.name);
    }
    MN_GPU_TRY(mn_cu_enter(c));
    r = mn_cu_fn.cuStreamCreate(&c->stream, CU_STREAM_NON_BLOCKING);
    if (r != CUDA_SUCCESS) {
        c->stream = NULL;
        return mn_cu_fail(r, "cuStreamCreate on '%s'", c->info.name);
    }
    MN_GPU_TRY(mn_cu_module_load(c));
    MN_GPU_TRY(mn_cu_libs_load());
    cublasStatus_t bs = mn_cu_fn.cublasCreate(&c->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        return mn_cu_blas_fail(bs, "cublasCreate");
    }
    bs = mn_cu_fn.cublasSetStream(c->blas, c->stream);
    /* no tensor-op (TF32) shortcuts: results must match the CPU up to float rounding */
    if (bs == CUBLAS_STATUS_SUCCESS) bs = mn_cu_fn.cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) return mn_cu_blas_fail(bs, "configuring cuBLAS");
    cudnnStatus_t ds = mn_cu_fn.cudnnCreate(&c->dnn);
    if (ds != CUDNN_STATUS_SUCCESS) {
        c->dnn = NULL;
        return mn_cu_dnn_fail(ds, "cudnnCreate");
    }
    ds = mn_cu_fn.cudnnSetStream(c->dnn, c->stream);
    if (ds != CUDNN_STATUS_SUCCESS) return mn_cu_dnn_fail(ds, "cudnnSetStream");
    const char *conv = getenv("MN_CUDA_CONV");
    if (conv && *conv && strcmp(conv, "direct") != 0 && strcmp(conv, "cudnn") != 0)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "cuda: MN_CUDA_CONV must be 'cudnn' or 'direct' (got '%s')", conv);
    c->conv_direct = conv && strcmp(conv, "direct") == 0;
    return MN_OK;
}

static mn_status mn_cu_create(const mn_backend_options *opts, mn_backend **out) {
    int device = opts ? opts->device : 0;
    *out = NULL;
    if (device < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "cuda: device must be >= 0 (got %d)", device);
    MN_GPU_TRY(mn_cu_driver_load());
    mn_backend *be = calloc(1, sizeof *be);
    mn_cu *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return mn_error_set(MN_ERR_NOMEM, "cuda: cannot allocate the backend");
    }
    c->gpu.dev = &mn_cu_dev;
    mn_status st = mn_cu_setup(c, device);
    if (st != MN_OK) {
        mn_cu_release(c);
        free(be);
        return st;
    }
    be->ops = &mn_cu_ops;
    /* the device runs its own threads; report its multiprocessors */
    be->threads = c->info.multiprocessors > 0 ? c->info.multiprocessors : 1;
    be->impl = c;
    *out = be;
    return MN_OK;
}

const mn_backend_reg mn_backend_cuda_reg = {mn_cu_create, mn_cu_list_devices};
