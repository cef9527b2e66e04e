/* The CUDA backend's entry points outside the op table: its constructor (registered in
 * src/backend/registry.c) and the device listing behind `mcunas devices`. Compiled only
 * when CMake finds the CUDA toolkit and cuDNN (MN_HAVE_CUDA). Include without CUDA
 * headers. */
#ifndef MN_BACKEND_CUDA_BACKEND_H
#define MN_BACKEND_CUDA_BACKEND_H

#include <stddef.h>

#include "mcunas/backend.h"
#include "mcunas/status.h"

/* One CUDA device; `index` is the driver's ordinal, the `--device N` of the CLI. */
typedef struct mn_cu_device_info {
    int index;
    char name[128];
    int cc_major, cc_minor;   /* compute capability */
    int multiprocessors;
    int integrated;           /* CU_DEVICE_ATTRIBUTE_INTEGRATED: memory is the host's */
    int driver_version;       /* cuDriverGetVersion: 1000*major + 10*minor */
    size_t total_mem_bytes;
} mn_cu_device_info;

/* Every CUDA device. *out is malloc'ed (free it). No driver or no device gives
 * *count = 0 and MN_OK (the reason is left in the error context); a failing query
 * gives MN_ERR_BACKEND. */
mn_status mn_cu_list_devices(mn_cu_device_info **out, int *count);

/* "cuda" backend on device opts->device. MN_ERR_UNSUPPORTED when the machine has no
 * NVIDIA driver, no device, or lacks cuBLAS/cuDNN. */
mn_status mn_backend_cuda_create(const mn_backend_options *opts, mn_backend **out);

#endif
