/* CUDA devices: the driver's ordinal and each device's properties. */
#include "cu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int mn_cu_attr(CUdevice dev, CUdevice_attribute a) {
    int v = 0;
    if (mn_cu_fn.cuDeviceGetAttribute(&v, a, dev) != CUDA_SUCCESS) return 0;
    return v;
}

mn_status mn_cu_describe(int index, CUdevice dev, mn_cu_device_info *info) {
    size_t total = 0;
    memset(info, 0, sizeof *info);
    info->index = index;
    CUresult r = mn_cu_fn.cuDeviceGetName(info->name, (int)sizeof info->name, dev);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuDeviceGetName(%d)", index);
    r = mn_cu_fn.cuDeviceTotalMem(&total, dev);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuDeviceTotalMem(%d)", index);
    info->total_mem_bytes = total;
    info->cc_major = mn_cu_attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    info->cc_minor = mn_cu_attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    info->multiprocessors = mn_cu_attr(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    info->integrated = mn_cu_attr(dev, CU_DEVICE_ATTRIBUTE_INTEGRATED) != 0;
    mn_cu_fn.cuDriverGetVersion(&info->driver_version);
    return MN_OK;
}

/* The interface's description: CUDA's "platform" is the driver, one per machine. */
static void mn_cu_public_info(const mn_cu_device_info *c, mn_device_info *d) {
    memset(d, 0, sizeof *d);
    d->index = c->index;
    d->platform_index = 0;
    snprintf(d->platform, sizeof d->platform, "NVIDIA CUDA driver %d.%d",
             c->driver_version / 1000, c->driver_version % 1000 / 10);
    snprintf(d->name, sizeof d->name, "%s", c->name);
    snprintf(d->vendor, sizeof d->vendor, "NVIDIA");
    snprintf(d->driver, sizeof d->driver, "%d.%d", c->driver_version / 1000,
             c->driver_version % 1000 / 10);
    snprintf(d->version, sizeof d->version, "compute capability %d.%d", c->cc_major,
             c->cc_minor);
    snprintf(d->type, sizeof d->type, "gpu");
    d->global_mem_bytes = c->total_mem_bytes;
    d->max_alloc_bytes = c->total_mem_bytes; /* as mem_info: no limit below the capacity */
    d->compute_units = c->multiprocessors > 0 ? (unsigned)c->multiprocessors : 0;
    d->host_unified = c->integrated;
    d->fp64 = 1;
}

mn_status mn_cu_list_devices(mn_device_info **out, int *count) {
    int n = 0;
    *out = NULL;
    *count = 0;
    if (mn_cu_driver_load() != MN_OK) return MN_OK; /* no driver or no device: none */
    CUresult r = mn_cu_fn.cuDeviceGetCount(&n);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuDeviceGetCount");
    if (n <= 0) return MN_OK;
    mn_device_info *items = calloc((size_t)n, sizeof *items);
    if (!items) return mn_error_set(MN_ERR_NOMEM, "cuda: no memory for a device list");
    for (int i = 0; i < n; i++) {
        CUdevice dev;
        mn_cu_device_info info;
        r = mn_cu_fn.cuDeviceGet(&dev, i);
        mn_status st = r == CUDA_SUCCESS ? mn_cu_describe(i, dev, &info)
                                         : mn_cu_fail(r, "cuDeviceGet(%d)", i);
        if (st != MN_OK) {
            free(items);
            return st;
        }
        mn_cu_public_info(&info, &items[i]);
    }
    *out = items;
    *count = n;
    return MN_OK;
}
