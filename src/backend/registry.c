/* The backends mcunas knows, built in or not: names to constructors and device listings. */
#include "backend/backend_impl.h"

#include <pthread.h>
#include <string.h>

typedef struct mn_backend_entry {
    mn_backend_desc desc;
    const mn_backend_reg *reg; /* NULL when not built into this binary */
} mn_backend_entry;

/* Built-in backends first (mn_backend_available lists them in this order), then the
 * optional ones this build lacks, with the reason. desc.has_devices says whether the
 * backend lists devices (reg->list_devices), also when it is not built. */
static const mn_backend_entry mn_backends[] = {
    {{"cpu", "CPU", 1, 0, NULL}, &mn_backend_cpu_reg},
#ifdef MN_HAVE_OPENCL
    {{"opencl", "OpenCL", 1, 1,
      "no platform or ICD installed; on Debian, pocl-opencl-icd gives a CPU device"},
     &mn_backend_opencl_reg},
#endif
#ifdef MN_HAVE_CUDA
    {{"cuda", "CUDA", 1, 1,
      "no NVIDIA driver (libcuda.so.1) or no NVIDIA GPU; the backend also needs cuBLAS and "
      "cuDNN 8 or 9"},
     &mn_backend_cuda_reg},
#endif
#ifndef MN_HAVE_OPENCL
    {{"opencl", "OpenCL", 0, 1, "OpenCL/CLBlast not found when mcunas was configured"},
     NULL},
#endif
#ifndef MN_HAVE_CUDA
    {{"cuda", "CUDA", 0, 1,
      "the CUDA toolkit with cuBLAS and cuDNN headers not found when mcunas was configured, "
      "or -DMN_CUDA=OFF"},
     NULL},
#endif
};
#define MN_N_BACKENDS ((int)(sizeof mn_backends / sizeof mn_backends[0]))

const mn_backend_desc *mn_backend_describe(int i) {
    return (i >= 0 && i < MN_N_BACKENDS) ? &mn_backends[i].desc : NULL;
}

/* "cpu,opencl": the names of the built-in entries, joined once. */
static char mn_available[256];
static pthread_once_t mn_available_once = PTHREAD_ONCE_INIT;

static void mn_available_join(void) {
    size_t len = 0;
    for (int i = 0; i < MN_N_BACKENDS; i++) {
        if (!mn_backends[i].reg) continue;
        size_t n = strlen(mn_backends[i].desc.name);
        if (len + (len ? 1 : 0) + n + 1 > sizeof mn_available) break;
        if (len) mn_available[len++] = ',';
        memcpy(mn_available + len, mn_backends[i].desc.name, n + 1);
        len += n;
    }
}

const char *mn_backend_available(void) {
    pthread_once(&mn_available_once, mn_available_join);
    return mn_available;
}

/* The entry called `name`, or NULL with MN_ERR_UNSUPPORTED: unknown, or not built. */
static const mn_backend_entry *mn_backend_find(const char *name, mn_status *st) {
    for (int i = 0; i < MN_N_BACKENDS; i++) {
        const mn_backend_entry *e = &mn_backends[i];
        if (strcmp(e->desc.name, name) != 0) continue;
        if (e->reg) return e;
        *st = mn_error_set(MN_ERR_UNSUPPORTED,
                           "backend '%s' is not built into this binary (%s; available: %s)",
                           name, e->desc.note, mn_backend_available());
        return NULL;
    }
    *st = mn_error_set(MN_ERR_UNSUPPORTED, "unknown backend '%s' (available: %s)", name,
                       mn_backend_available());
    return NULL;
}

mn_status mn_backend_create(const char *name, const mn_backend_options *opts,
                            mn_backend **out) {
    mn_backend_options defaults = {0, 0};
    mn_status st = MN_OK;
    *out = NULL;
    if (!name) name = "cpu";
    if (!opts) opts = &defaults;
    if (opts->threads < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "threads must be >= 0 (got %d)", opts->threads);
    const mn_backend_entry *e = mn_backend_find(name, &st);
    if (!e) return st;
    mn_backend *be = NULL;
    st = e->reg->create(opts, &be);
    if (st != MN_OK) return st;
    st = mn_backend_check_table(be);
    if (st != MN_OK) {
        if (be->ops && be->ops->destroy) be->ops->destroy(be);
        return st;
    }
    *out = be;
    return MN_OK;
}

void mn_backend_destroy(mn_backend *be) {
    if (be) be->ops->destroy(be);
}

mn_status mn_backend_list_devices(const char *name, mn_device_info **out, int *count) {
    mn_status st = MN_OK;
    *out = NULL;
    *count = 0;
    if (!name) return mn_error_set(MN_ERR_INVALID_ARG, "listing devices: no backend named");
    const mn_backend_entry *e = mn_backend_find(name, &st);
    if (!e) return st;
    if (!e->reg->list_devices)
        return mn_error_set(MN_ERR_UNSUPPORTED, "backend '%s' has no devices to list", name);
    return e->reg->list_devices(out, count);
}
