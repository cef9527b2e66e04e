/* OpenCL backend: the op table, construction, device memory and argument checks. */
#include "ocl_internal.h"

#include <stdlib.h>
#include <string.h>

/* Work-group size of elementwise kernels and the most a reduction uses. */
#define MN_OCL_WG 64

/* ---- argument checks ---- */

mn_status mn_ocl_view(mn_ocl *o, const char *op, const char *arg, mn_view v, size_t count,
                      size_t elem, mn_ocl_arg_view *out) {
    mn_gpu_ptr p;
    mn_status st = mn_gpu_view(&o->gpu, op, arg, v, count, elem, &p);
    out->mem = (cl_mem)p.cl.mem;
    out->off = (cl_ulong)p.cl.off;
    return st;
}

mn_status mn_ocl_view_opt(mn_ocl *o, const char *op, const char *arg, mn_view v,
                          size_t count, size_t elem, mn_ocl_arg_view *out) {
    mn_gpu_ptr p;
    mn_status st = mn_gpu_view_opt(&o->gpu, op, arg, v, count, elem, &p);
    out->mem = (cl_mem)p.cl.mem;
    out->off = (cl_ulong)p.cl.off;
    return st;
}

/* ---- the device interface of the shared ops (gpu_impl.h) ---- */

static mn_gpu_ptr mn_ocl_resolve(const mn_buf *buf, size_t offset, size_t elem) {
    mn_gpu_ptr p = buf->base;
    p.cl.off = offset / elem;
    return p;
}

/* Sets the arguments in order: a tensor is two kernel arguments, its cl_mem and its
 * element offset. */
static mn_status mn_ocl_set_args(mn_ocl *o, mn_gpu_kernel k, size_t nargs,
                                 const mn_gpu_arg *args) {
    cl_uint ai = 0;
    for (size_t i = 0; i < nargs; i++) {
        const mn_gpu_arg *a = &args[i];
        const cl_kernel kern = o->kernels[k];
        cl_int err;
        switch (a->kind) {
        case 'p': {
            const cl_mem mem = (cl_mem)a->v.p.cl.mem;
            const cl_ulong off = (cl_ulong)a->v.p.cl.off;
            err = clSetKernelArg(kern, ai++, sizeof mem, &mem);
            if (err == CL_SUCCESS) err = clSetKernelArg(kern, ai++, sizeof off, &off);
            break;
        }
        case 'u': {
            const cl_uint u32 = (cl_uint)a->v.u;
            err = clSetKernelArg(kern, ai++, sizeof u32, &u32);
            break;
        }
        case 'U': {
            const cl_ulong u64 = (cl_ulong)a->v.U;
            err = clSetKernelArg(kern, ai++, sizeof u64, &u64);
            break;
        }
        case 'i': {
            const cl_int i32 = (cl_int)a->v.i;
            err = clSetKernelArg(kern, ai++, sizeof i32, &i32);
            break;
        }
        default: {
            const cl_float f32 = (cl_float)a->v.f;
            err = clSetKernelArg(kern, ai++, sizeof f32, &f32);
            break;
        }
        }
        if (err != CL_SUCCESS)
            return mn_ocl_fail(err, "clSetKernelArg(kernel %s, arg %u)",
                               mn_gpu_kernels[k].name, (unsigned)(ai - 1));
    }
    return MN_OK;
}

static mn_status mn_ocl_launch(mn_backend *be, mn_gpu_kernel k, mn_gpu_grid grid, size_t n,
                               size_t nargs, const mn_gpu_arg *args) {
    mn_ocl *o = mn_ocl_impl(be);
    const int items = grid == MN_GPU_ITEMS;
    if (items && n > UINT32_MAX - 4096)
        return mn_error_set(MN_ERR_INVALID_ARG, "opencl: %zu work-items are too many for one "
                            "launch (kernels index in 32 bits)", n);
    MN_GPU_TRY(mn_ocl_set_args(o, k, nargs, args));
    size_t local = items ? o->wg : o->red_wg;
    size_t global = items ? (n + local - 1) / local * local : n * local;
    cl_int err = clEnqueueNDRangeKernel(o->queue, o->kernels[k], 1, NULL, &global, &local, 0,
                                        NULL, NULL);
    if (err != CL_SUCCESS)
        return mn_ocl_fail(err, "clEnqueueNDRangeKernel(kernel %s, %zu %s)",
                           mn_gpu_kernels[k].name, n, items ? "items" : "groups");
    return MN_OK;
}

static mn_status mn_ocl_zero(mn_backend *be, const char *op, mn_view v, size_t bytes) {
    const cl_float zero = 0.0f;
    cl_int err = clEnqueueFillBuffer(mn_ocl_impl(be)->queue, (cl_mem)v.buf->base.cl.mem, &zero,
                                     sizeof zero, v.offset, bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "%s: zeroing %zu bytes", op, bytes);
    return MN_OK;
}

static const mn_gpu_dev mn_ocl_dev = {"opencl", mn_ocl_resolve, mn_ocl_launch, mn_ocl_zero,
                                      mn_ocl_dev_gemm};

/* ---- memory ---- */

static mn_status mn_ocl_buf_alloc(mn_backend *be, size_t bytes, mn_buf **out) {
    mn_ocl *o = mn_ocl_impl(be);
    *out = NULL;
    if (o->info.max_alloc_bytes && bytes > o->info.max_alloc_bytes)
        return mn_error_set(MN_ERR_NOMEM,
                            "opencl: %zu bytes exceed the device's largest allocation (%zu "
                            "bytes, CL_DEVICE_MAX_MEM_ALLOC_SIZE of '%s')",
                            bytes, o->info.max_alloc_bytes, o->info.name);
    if (bytes > SIZE_MAX - 64)
        return mn_error_set(MN_ERR_NOMEM, "opencl: cannot allocate %zu bytes", bytes);
    /* a zero-byte request still gets a real buffer so that views of it are uniform */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    mn_buf *buf = malloc(sizeof *buf);
    if (!buf) return mn_error_set(MN_ERR_NOMEM, "opencl: cannot allocate a buffer handle");
    cl_int err;
    cl_mem mem = clCreateBuffer(o->context, CL_MEM_READ_WRITE, rounded, NULL, &err);
    if (err != CL_SUCCESS) {
        free(buf);
        return mn_ocl_fail(err, "clCreateBuffer(%zu bytes)", bytes);
    }
    const cl_uchar zero = 0;
    err = clEnqueueFillBuffer(o->queue, mem, &zero, 1, 0, rounded, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(mem);
        free(buf);
        return mn_ocl_fail(err, "clEnqueueFillBuffer(zeroing %zu bytes)", bytes);
    }
    buf->base = (mn_gpu_ptr){.cl = {(void *)mem, 0}};
    buf->size = bytes;
    mn_gpu_count_alloc(&o->gpu, bytes);
    *out = buf;
    return MN_OK;
}

static void mn_ocl_buf_free(mn_backend *be, mn_buf *buf) {
    if (!buf) return;
    mn_gpu_count_free(&mn_ocl_impl(be)->gpu, buf->size);
    clReleaseMemObject((cl_mem)buf->base.cl.mem);
    free(buf);
}

static mn_status mn_ocl_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes) {
    mn_ocl_arg_view d;
    MN_GPU_TRY(mn_ocl_view(mn_ocl_impl(be), "upload", "dst", dst, bytes, 1, &d));
    if (bytes && !src) return mn_error_set(MN_ERR_INVALID_ARG, "upload: argument 'src' is NULL");
    if (!bytes) return MN_OK;
    cl_int err = clEnqueueWriteBuffer(mn_ocl_impl(be)->queue, d.mem, CL_TRUE, dst.offset, bytes,
                                      src, 0, NULL, NULL);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "upload of %zu bytes", bytes);
    return MN_OK;
}

static mn_status mn_ocl_download(mn_backend *be, mn_view src, void *dst, size_t bytes) {
    mn_ocl_arg_view s;
    MN_GPU_TRY(mn_ocl_view(mn_ocl_impl(be), "download", "src", src, bytes, 1, &s));
    if (bytes && !dst)
        return mn_error_set(MN_ERR_INVALID_ARG, "download: argument 'dst' is NULL");
    if (!bytes) return MN_OK;
    cl_int err = clEnqueueReadBuffer(mn_ocl_impl(be)->queue, s.mem, CL_TRUE, src.offset, bytes,
                                     dst, 0, NULL, NULL);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "download of %zu bytes", bytes);
    return MN_OK;
}

static mn_status mn_ocl_fill(mn_backend *be, mn_view dst, float value, size_t count) {
    mn_ocl_arg_view d;
    MN_GPU_TRY(mn_ocl_view(mn_ocl_impl(be), "fill", "dst", dst, count, sizeof(float), &d));
    if (!count) return MN_OK;
    const cl_float pattern = value;
    cl_int err = clEnqueueFillBuffer(mn_ocl_impl(be)->queue, d.mem, &pattern, sizeof pattern,
                                     dst.offset, count * sizeof(float), 0, NULL, NULL);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "fill of %zu floats", count);
    return MN_OK;
}

static mn_status mn_ocl_sync(mn_backend *be) {
    cl_int err = clFinish(mn_ocl_impl(be)->queue);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "clFinish");
    return MN_OK;
}

static void mn_ocl_mem_info(mn_backend *be, mn_backend_mem *out) {
    mn_ocl *o = mn_ocl_impl(be);
    out->allocated_bytes = o->gpu.allocated;
    out->peak_allocated_bytes = o->gpu.peak;
    out->device_total_bytes = o->info.global_mem_bytes;
    out->max_alloc_bytes = o->info.max_alloc_bytes;
    out->shares_host_memory = o->info.host_unified || strcmp(o->info.type, "cpu") == 0;
}

/* ---- table and lifetime ---- */

static void mn_ocl_release(mn_ocl *o) {
    if (!o) return;
    if (o->queue) clFinish(o->queue);
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++)
        if (o->kernels[i]) clReleaseKernel(o->kernels[i]);
    if (o->program) clReleaseProgram(o->program);
    if (o->queue) clReleaseCommandQueue(o->queue);
    if (o->context) clReleaseContext(o->context);
    free(o);
}

static void mn_ocl_destroy(mn_backend *be) {
    if (!be) return;
    mn_ocl_release(mn_ocl_impl(be));
    free(be);
}

static const mn_backend_ops mn_ocl_ops = {
    .name = "opencl",
    .destroy = mn_ocl_destroy,
    .buf_alloc = mn_ocl_buf_alloc,
    .buf_free = mn_ocl_buf_free,
    .upload = mn_ocl_upload,
    .download = mn_ocl_download,
    .fill = mn_ocl_fill,
    .sync = mn_ocl_sync,
    .mem_info = mn_ocl_mem_info,
    .conv3x3_workspace_bytes = mn_ocl_conv3x3_workspace_bytes,
    .conv3x3_forward = mn_ocl_conv3x3_forward,
    .conv3x3_backward_data = mn_ocl_conv3x3_backward_data,
    .conv3x3_backward_weights = mn_ocl_conv3x3_backward_weights,
    MN_GPU_SHARED_OPS,
};

static mn_status mn_ocl_setup(mn_ocl *o, int device) {
    cl_int err;
    MN_GPU_TRY(mn_ocl_find_device(device, &o->platform, &o->device, &o->info));
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)o->platform,
                                      0};
    o->context = clCreateContext(props, 1, &o->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "clCreateContext on '%s'", o->info.name);
    o->queue = clCreateCommandQueue(o->context, o->device, 0, &err);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "clCreateCommandQueue on '%s'", o->info.name);
    size_t maxwg = 0;
    cl_uint align_bits = 0;
    clGetDeviceInfo(o->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL);
    clGetDeviceInfo(o->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits,
                    NULL);
    o->sub_align = align_bits >= 8 ? align_bits / 8 : 128;
    o->red_wg = 1;
    while (o->red_wg * 2 <= MN_OCL_WG && o->red_wg * 2 <= (maxwg ? maxwg : 1)) o->red_wg *= 2;
    MN_GPU_TRY(mn_ocl_program_load(o));
    mn_ocl_gemm_configure(o);
    /* every kernel must run work-groups of o->wg (elementwise) and o->red_wg (reductions) */
    o->wg = MN_OCL_WG;
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++) {
        if (!o->kernels[i]) continue; /* a CUDA-only kernel */
        size_t kwg = 0;
        err = clGetKernelWorkGroupInfo(o->kernels[i], o->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof kwg, &kwg, NULL);
        if (err != CL_SUCCESS) return mn_ocl_fail(err, "clGetKernelWorkGroupInfo");
        if (kwg < o->red_wg)
            return mn_error_set(MN_ERR_UNSUPPORTED,
                                "opencl: device '%s' runs work-groups of at most %zu items; "
                                "the reductions need %zu",
                                o->info.name, kwg, o->red_wg);
        while (o->wg > kwg) o->wg /= 2;
    }
    return MN_OK;
}

static mn_status mn_ocl_create(const mn_backend_options *opts, mn_backend **out) {
    int device = opts ? opts->device : 0;
    *out = NULL;
    if (device < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "opencl: device must be >= 0 (got %d)", device);
    mn_backend *be = calloc(1, sizeof *be);
    mn_ocl *o = calloc(1, sizeof *o);
    if (!be || !o) {
        free(be);
        free(o);
        return mn_error_set(MN_ERR_NOMEM, "opencl: cannot allocate the backend");
    }
    o->gpu.dev = &mn_ocl_dev;
    mn_status st = mn_ocl_setup(o, device);
    if (st != MN_OK) {
        mn_ocl_release(o);
        free(be);
        return st;
    }
    be->ops = &mn_ocl_ops;
    /* the device runs its own threads; report its compute units */
    be->threads = o->info.compute_units ? (int)o->info.compute_units : 1;
    be->impl = o;
    *out = be;
    return MN_OK;
}

const mn_backend_reg mn_backend_opencl_reg = {mn_ocl_create, mn_ocl_list_devices};
