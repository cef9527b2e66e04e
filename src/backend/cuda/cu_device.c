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

mn_status mn_cu_list_devices(mn_cu_device_info **out, int *count) {
    int n = 0;
    *out = NULL;
    *count = 0;
    if (mn_cu_driver_load() != MN_OK) return MN_OK; /* no driver or no device: none */
    CUresult r = mn_cu_fn.cuDeviceGetCount(&n);
    if (r != CUDA_SUCCESS) return mn_cu_fail(r, "cuDeviceGetCount");
    if (n <= 0) return MN_OK;
    mn_cu_device_info *items = calloc((size_t)n, sizeof *items);
    if (!items) return mn_error_set(MN_ERR_NOMEM, "cuda: no memory for a device list");
    for (int i = 0; i < n; i++) {
        CUdevice dev;
        r = mn_cu_fn.cuDeviceGet(&dev, i);
        mn_status st = r == CUDA_SUCCESS ? mn_cu_describe(i, dev, &items[i])
                                         : mn_cu_fail(r, "cuDeviceGet(%d)", i);
        if (st != MN_OK) {
            free(items);
            return st;
        }
    }
    *out = items;
    *count = n;
    return MN_OK;
}
