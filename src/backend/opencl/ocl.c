/* OpenCL backend: the op table, construction, device memory and argument checks. */
#include "ocl_internal.h"

#include <stdlib.h>
#include <string.h>

/* Work-group size of elementwise kernels and the most a reduction uses. */
#define MN_OCL_WG 64

/* ---- accounting ---- */

void mn_ocl_count_alloc(mn_ocl *o, size_t bytes) {
    o->allocated += bytes;
    if (o->allocated > o->peak) o->peak = o->allocated;
}

void mn_ocl_count_free(mn_ocl *o, size_t bytes) { o->allocated -= bytes; }

/* ---- argument checks ---- */

mn_status mn_ocl_view(const char *op, const char *arg, mn_view v, size_t count, size_t elem,
                      mn_ocl_arg_view *out) {
    size_t bytes;
    out->mem = NULL;
    out->off = 0;
    if (!v.buf)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument '%s' is absent", op, arg);
    if (count > UINT32_MAX)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument '%s' has %zu elements; the opencl backend handles "
                            "tensors of fewer than 2^32",
                            op, arg, count);
    if (__builtin_mul_overflow(count, elem, &bytes))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument '%s' of %zu elements overflows",
                            op, arg, count);
    if (v.offset > v.buf->size || bytes > v.buf->size - v.offset)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument '%s' needs %zu bytes at offset %zu but its buffer "
                            "holds %zu",
                            op, arg, bytes, v.offset, v.buf->size);
    if (elem > 1 && v.offset % elem != 0)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument '%s' offset %zu is not a multiple of %zu", op, arg,
                            v.offset, elem);
    out->mem = v.buf->mem;
    out->off = (cl_ulong)(v.offset / elem);
    return MN_OK;
}

mn_status mn_ocl_view_opt(const char *op, const char *arg, mn_view v, size_t count,
                          size_t elem, mn_ocl_arg_view *out) {
    out->mem = NULL;
    out->off = 0;
    if (!v.buf) return MN_OK;
    return mn_ocl_view(op, arg, v, count, elem, out);
}

/* ---- kernel launches ---- */

static mn_status mn_ocl_set_args(mn_ocl *o, mn_ocl_kernel k, size_t nargs,
                                 const mn_ocl_karg *args) {
    for (size_t i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(o->kernels[k], (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS)
            return mn_ocl_fail(err, "clSetKernelArg(kernel %d, arg %zu)", (int)k, i);
    }
    return MN_OK;
}

mn_status mn_ocl_run(mn_ocl *o, mn_ocl_kernel k, size_t items, size_t nargs,
                     const mn_ocl_karg *args) {
    if (items == 0) return MN_OK;
    if (items > UINT32_MAX - 4096)
        return mn_error_set(MN_ERR_INVALID_ARG, "opencl: %zu work-items are too many for one "
                            "launch (kernels index in 32 bits)", items);
    MN_OCL_TRY(mn_ocl_set_args(o, k, nargs, args));
    size_t local = o->wg, global = (items + local - 1) / local * local;
    cl_int err = clEnqueueNDRangeKernel(o->queue, o->kernels[k], 1, NULL, &global, &local, 0,
                                        NULL, NULL);
    if (err != CL_SUCCESS)
        return mn_ocl_fail(err, "clEnqueueNDRangeKernel(kernel %d, %zu items)", (int)k, items);
    return MN_OK;
}

mn_status mn_ocl_run_groups(mn_ocl *o, mn_ocl_kernel k, size_t groups, size_t nargs,
                            const mn_ocl_karg *args) {
    if (groups == 0) return MN_OK;
    MN_OCL_TRY(mn_ocl_set_args(o, k, nargs, args));
    size_t local = o->red_wg, global = groups * local;
    cl_int err = clEnqueueNDRangeKernel(o->queue, o->kernels[k], 1, NULL, &global, &local, 0,
                                        NULL, NULL);
    if (err != CL_SUCCESS)
        return mn_ocl_fail(err, "clEnqueueNDRangeKernel(kernel %d, %zu groups)", (int)k,
                           groups);
    return MN_OK;
}

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
    buf->mem = clCreateBuffer(o->context, CL_MEM_READ_WRITE, rounded, NULL, &err);
    if (err != CL_SUCCESS) {
        free(buf);
        return mn_ocl_fail(err, "clCreateBuffer(%zu bytes)", bytes);
    }
    const cl_uchar zero = 0;
    err = clEnqueueFillBuffer(o->queue, buf->mem, &zero, 1, 0, rounded, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(buf->mem);
        free(buf);
        return mn_ocl_fail(err, "clEnqueueFillBuffer(zeroing %zu bytes)", bytes);
    }
    buf->size = bytes;
    mn_ocl_count_alloc(o, bytes);
    *out = buf;
    return MN_OK;
}

static void mn_ocl_buf_free(mn_backend *be, mn_buf *buf) {
    if (!buf) return;
    mn_ocl_count_free(mn_ocl_impl(be), buf->size);
    clReleaseMemObject(buf->mem);
    free(buf);
}

static mn_status mn_ocl_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes) {
    mn_ocl_arg_view d;
    MN_OCL_TRY(mn_ocl_view("upload", "dst", dst, bytes, 1, &d));
    if (bytes && !src) return mn_error_set(MN_ERR_INVALID_ARG, "upload: argument 'src' is NULL");
    if (!bytes) return MN_OK;
    cl_int err = clEnqueueWriteBuffer(mn_ocl_impl(be)->queue, d.mem, CL_TRUE, dst.offset, bytes,
                                      src, 0, NULL, NULL);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "upload of %zu bytes", bytes);
    return MN_OK;
}

static mn_status mn_ocl_download(mn_backend *be, mn_view src, void *dst, size_t bytes) {
    mn_ocl_arg_view s;
    MN_OCL_TRY(mn_ocl_view("download", "src", src, bytes, 1, &s));
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
    MN_OCL_TRY(mn_ocl_view("fill", "dst", dst, count, sizeof(float), &d));
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
    out->allocated_bytes = o->allocated;
    out->peak_allocated_bytes = o->peak;
    out->device_total_bytes = o->info.global_mem_bytes;
    out->max_alloc_bytes = o->info.max_alloc_bytes;
    out->shares_host_memory = o->info.host_unified || strcmp(o->info.type, "cpu") == 0;
}

/* ---- table and lifetime ---- */

static void mn_ocl_release(mn_ocl *o) {
    if (!o) return;
    if (o->queue) clFinish(o->queue);
    for (int i = 0; i < MN_OCL_KERNEL_COUNT; i++)
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
#define MN_BACKEND_OP(fn, OP_ID, params, args) .fn = mn_ocl_##fn,
#include "mcunas/backend_ops.def"
};

static mn_status mn_ocl_setup(mn_ocl *o, int device) {
    cl_int err;
    MN_OCL_TRY(mn_ocl_find_device(device, &o->platform, &o->device, &o->info));
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
    MN_OCL_TRY(mn_ocl_program_load(o));
    mn_ocl_gemm_configure(o);
    /* every kernel must run work-groups of o->wg (elementwise) and o->red_wg (reductions) */
    o->wg = MN_OCL_WG;
    for (int i = 0; i < MN_OCL_KERNEL_COUNT; i++) {
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
