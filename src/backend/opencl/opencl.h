/* The OpenCL backend's entry points outside the op table: its constructor (registered in
 * src/backend/registry.c) and the device listing behind `mcunas devices`. Compiled only
 * when CMake finds OpenCL and CLBlast (MN_HAVE_OPENCL). Include without OpenCL headers. */
#ifndef MN_BACKEND_OPENCL_H
#define MN_BACKEND_OPENCL_H

#include <stddef.h>

#include "mcunas/backend.h"
#include "mcunas/status.h"

/* One OpenCL device. `index` is the flat index over every platform's devices in the
 * order the platforms and their devices are reported: the `--device N` of the CLI. */
typedef struct mn_ocl_device_info {
    int index;
    int platform_index;
    char platform[128];
    char name[128];
    char vendor[128];
    char driver[64];
    char version[128];   /* CL_DEVICE_VERSION */
    char type[16];       /* "gpu", "cpu", "accelerator", "other" */
    size_t global_mem_bytes;
    size_t max_alloc_bytes;
    unsigned compute_units;
    int host_unified;    /* CL_DEVICE_HOST_UNIFIED_MEMORY */
    int fp64;            /* cl_khr_fp64 */
} mn_ocl_device_info;

/* Every OpenCL device of every platform. *out is malloc'ed (free it); no platform gives
 * *count = 0 and MN_OK; a failing query gives MN_ERR_BACKEND. */
mn_status mn_ocl_list_devices(mn_ocl_device_info **out, int *count);

/* "opencl" backend on device opts->device (a flat index, see above). */
mn_status mn_backend_opencl_create(const mn_backend_options *opts, mn_backend **out);

/* Where compiled programs are cached: $XDG_CACHE_HOME/mcunas or ~/.cache/mcunas, with
 * MN_OCL_CACHE_DIR overriding both and an empty value disabling the cache. Writes into
 * `dir` (size bytes); returns 0 when there is no cache directory. */
int mn_ocl_cache_dir(char *dir, size_t size);

#endif
