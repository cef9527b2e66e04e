/* OpenCL platforms and devices: the flat device index and each device's properties. */
#include "ocl_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mn_ocl_error_name(cl_int err) {
    switch (err) {
#define MN_E(x) \
    case x: return #x;
        MN_E(CL_SUCCESS)
        MN_E(CL_DEVICE_NOT_FOUND)
        MN_E(CL_DEVICE_NOT_AVAILABLE)
        MN_E(CL_COMPILER_NOT_AVAILABLE)
        MN_E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        MN_E(CL_OUT_OF_RESOURCES)
        MN_E(CL_OUT_OF_HOST_MEMORY)
        MN_E(CL_BUILD_PROGRAM_FAILURE)
        MN_E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        MN_E(CL_INVALID_VALUE)
        MN_E(CL_INVALID_DEVICE)
        MN_E(CL_INVALID_CONTEXT)
        MN_E(CL_INVALID_COMMAND_QUEUE)
        MN_E(CL_INVALID_MEM_OBJECT)
        MN_E(CL_INVALID_BINARY)
        MN_E(CL_INVALID_BUILD_OPTIONS)
        MN_E(CL_INVALID_PROGRAM)
        MN_E(CL_INVALID_PROGRAM_EXECUTABLE)
        MN_E(CL_INVALID_KERNEL_NAME)
        MN_E(CL_INVALID_KERNEL)
        MN_E(CL_INVALID_ARG_INDEX)
        MN_E(CL_INVALID_ARG_VALUE)
        MN_E(CL_INVALID_ARG_SIZE)
        MN_E(CL_INVALID_KERNEL_ARGS)
        MN_E(CL_INVALID_WORK_GROUP_SIZE)
        MN_E(CL_INVALID_WORK_ITEM_SIZE)
        MN_E(CL_INVALID_GLOBAL_OFFSET)
        MN_E(CL_INVALID_EVENT_WAIT_LIST)
        MN_E(CL_INVALID_OPERATION)
        MN_E(CL_INVALID_BUFFER_SIZE)
        MN_E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef MN_E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL error";
    }
}

mn_status mn_ocl_fail(cl_int err, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mn_error_set(MN_ERR_BACKEND, "opencl: %s failed: %s (%d)", what,
                        mn_ocl_error_name(err), (int)err);
}

/* A string property, truncated to fit `out` (OpenCL refuses a short buffer). */
static void mn_ocl_str(cl_device_id d, cl_device_info what, char *out, size_t size) {
    size_t need = 0;
    out[0] = '\0';
    if (clGetDeviceInfo(d, what, 0, NULL, &need) != CL_SUCCESS || need == 0) return;
    char *tmp = malloc(need + 1);
    if (!tmp) return;
    if (clGetDeviceInfo(d, what, need, tmp, NULL) == CL_SUCCESS) {
        tmp[need] = '\0';
        snprintf(out, size, "%s", tmp);
    }
    free(tmp);
}

static void mn_ocl_describe(cl_platform_id p, cl_device_id d, mn_device_info *info) {
    cl_ulong gmem = 0, amax = 0;
    cl_uint cu = 0;
    cl_bool unified = CL_FALSE;
    cl_device_type type = 0;
    char ext[8192];
    memset(info, 0, sizeof *info);
    size_t need = 0;
    if (clGetPlatformInfo(p, CL_PLATFORM_NAME, 0, NULL, &need) == CL_SUCCESS && need > 0) {
        char *tmp = malloc(need + 1);
        if (tmp && clGetPlatformInfo(p, CL_PLATFORM_NAME, need, tmp, NULL) == CL_SUCCESS) {
            tmp[need] = '\0';
            snprintf(info->platform, sizeof info->platform, "%s", tmp);
        }
        free(tmp);
    }
    mn_ocl_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    mn_ocl_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    mn_ocl_str(d, CL_DRIVER_VERSION, info->driver, sizeof info->driver);
    mn_ocl_str(d, CL_DEVICE_VERSION, info->version, sizeof info->version);
    mn_ocl_str(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof amax, &amax, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    info->global_mem_bytes = (size_t)gmem;
    info->max_alloc_bytes = (size_t)amax;
    info->compute_units = cu;
    info->host_unified = unified == CL_TRUE;
    info->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    snprintf(info->type, sizeof info->type, "%s",
             (type & CL_DEVICE_TYPE_GPU)           ? "gpu"
             : (type & CL_DEVICE_TYPE_CPU)         ? "cpu"
             : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator"
                                                   : "other");
}

/* Calls fn for every device in flat order; stops early when fn returns nonzero. */
typedef int (*mn_ocl_visit)(void *user, int index, int pindex, cl_platform_id p,
                            cl_device_id d);

static mn_status mn_ocl_walk(mn_ocl_visit fn, void *user, int *total) {
    cl_uint np = 0;
    *total = 0;
    MN_GPU_TRY(mn_ocl_api_load());
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD installed */ || np == 0)
        return MN_OK;
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "clGetPlatformIDs");
    cl_platform_id *ps = calloc(np, sizeof *ps);
    if (!ps) return mn_error_set(MN_ERR_NOMEM, "opencl: no memory for %u platforms", np);
    err = clGetPlatformIDs(np, ps, NULL);
    if (err != CL_SUCCESS) {
        free(ps);
        return mn_ocl_fail(err, "clGetPlatformIDs");
    }
    int index = 0, stop = 0;
    for (cl_uint pi = 0; pi < np && !stop; pi++) {
        cl_uint nd = 0;
        err = clGetDeviceIDs(ps[pi], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (err == CL_DEVICE_NOT_FOUND || nd == 0) continue;
        if (err != CL_SUCCESS) {
            free(ps);
            return mn_ocl_fail(err, "clGetDeviceIDs (platform %u)", pi);
        }
        cl_device_id *ds = calloc(nd, sizeof *ds);
        if (!ds) {
            free(ps);
            return mn_error_set(MN_ERR_NOMEM, "opencl: no memory for %u devices", nd);
        }
        err = clGetDeviceIDs(ps[pi], CL_DEVICE_TYPE_ALL, nd, ds, NULL);
        for (cl_uint di = 0; err == CL_SUCCESS && di < nd && !stop; di++, index++)
            stop = fn ? fn(user, index, (int)pi, ps[pi], ds[di]) : 0;
        free(ds);
        if (err != CL_SUCCESS) {
            free(ps);
            return mn_ocl_fail(err, "clGetDeviceIDs (platform %u)", pi);
        }
    }
    free(ps);
    *total = index;
    return MN_OK;
}

typedef struct mn_ocl_list_ctx {
    mn_device_info *items;
    int cap, n;
} mn_ocl_list_ctx;

static int mn_ocl_list_one(void *user, int index, int pindex, cl_platform_id p,
                           cl_device_id d) {
    mn_ocl_list_ctx *ctx = user;
    if (ctx->n >= ctx->cap) return 0;
    mn_device_info *info = &ctx->items[ctx->n++];
    mn_ocl_describe(p, d, info);
    info->index = index;
    info->platform_index = pindex;
    return 0;
}

mn_status mn_ocl_list_devices(mn_device_info **out, int *count) {
    int total = 0;
    *out = NULL;
    *count = 0;
    MN_GPU_TRY(mn_ocl_walk(NULL, NULL, &total));
    if (total == 0) return MN_OK;
    mn_ocl_list_ctx ctx = {calloc((size_t)total, sizeof(mn_device_info)), total, 0};
    if (!ctx.items) return mn_error_set(MN_ERR_NOMEM, "opencl: no memory for a device list");
    mn_status st = mn_ocl_walk(mn_ocl_list_one, &ctx, &total);
    if (st != MN_OK) {
        free(ctx.items);
        return st;
    }
    *out = ctx.items;
    *count = ctx.n;
    return MN_OK;
}

typedef struct mn_ocl_find_ctx {
    int want;
    cl_platform_id p;
    cl_device_id d;
    int found;
} mn_ocl_find_ctx;

static int mn_ocl_find_one(void *user, int index, int pindex, cl_platform_id p,
                           cl_device_id d) {
    mn_ocl_find_ctx *ctx = user;
    if (index != ctx->want) return 0;
    ctx->p = p;
    ctx->d = d;
    ctx->found = 1;
    return 1;
}

mn_status mn_ocl_find_device(int want, cl_platform_id *p, cl_device_id *d,
                             mn_device_info *info) {
    mn_ocl_find_ctx ctx = {want, NULL, NULL, 0};
    int total = 0;
    MN_GPU_TRY(mn_ocl_walk(mn_ocl_find_one, &ctx, &total));
    if (!ctx.found) {
        int all = 0;
        MN_GPU_TRY(mn_ocl_walk(NULL, NULL, &all));
        if (all == 0)
            return mn_error_set(MN_ERR_UNSUPPORTED,
                                "opencl: no OpenCL device found (no platform or ICD installed; "
                                "`mcunas devices` lists them)");
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "opencl: device %d does not exist (there %s %d: 0..%d; see "
                            "`mcunas devices`)",
                            want, all == 1 ? "is" : "are", all, all - 1);
    }
    *p = ctx.p;
    *d = ctx.d;
    mn_ocl_describe(ctx.p, ctx.d, info);
    info->index = want;
    return MN_OK;
}
