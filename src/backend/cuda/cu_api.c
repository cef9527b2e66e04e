/* dlopen/dlsym of libcuda, libcublas and libcudnn (see cu_api.h). */
#include "cu_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

mn_cu_api mn_cu_fn;

#define MN_CU_STR_(x) #x
#define MN_CU_STR(x) MN_CU_STR_(x) /* expands the headers' versioning macros first */

static pthread_once_t mn_cu_driver_once = PTHREAD_ONCE_INIT;
static pthread_once_t mn_cu_libs_once = PTHREAD_ONCE_INIT;
static mn_status mn_cu_driver_status = MN_OK, mn_cu_libs_status = MN_OK;
static char mn_cu_driver_error[512], mn_cu_libs_error[512];

/* The first of `names` that loads, or NULL with the message in err. */
static void *mn_cu_open(const char *const *names, size_t n, const char *hint, char *err,
                        size_t errsize) {
    char first[256] = "not found";
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        const char *e = dlerror();
        if (i == 0 && e) snprintf(first, sizeof first, "%s", e);
    }
    snprintf(err, errsize, "cuda: cannot load %s (%s; %s)", names[0], first, hint);
    return NULL;
}

#define MN_CU_SYM(h, f)                                                                   \
    do {                                                                                  \
        void *p_ = dlsym((h), MN_CU_STR(f));                                              \
        if (!p_ && !missing) missing = MN_CU_STR(f);                                      \
        *(void **)&mn_cu_fn.f = p_;                                                       \
    } while (0);

static void mn_cu_driver_load_once(void) {
    static const char *const names[] = {"libcuda.so.1", "libcuda.so"};
    const char *missing = NULL;
    void *drv = mn_cu_open(names, 2, "no NVIDIA driver is installed",
                           mn_cu_driver_error, sizeof mn_cu_driver_error);
    if (!drv) {
        mn_cu_driver_status = MN_ERR_UNSUPPORTED;
        return;
    }
#define MN_CU_SYM_DRV(f) MN_CU_SYM(drv, f)
    MN_CU_DRIVER_FUNCTIONS(MN_CU_SYM_DRV)
#undef MN_CU_SYM_DRV
    if (missing) {
        snprintf(mn_cu_driver_error, sizeof mn_cu_driver_error,
                 "cuda: the loaded libcuda.so.1 lacks %s (driver too old?)", missing);
        mn_cu_driver_status = MN_ERR_UNSUPPORTED;
        return;
    }
    CUresult r = mn_cu_fn.cuInit(0);
    if (r != CUDA_SUCCESS) {
        const char *name = NULL;
        mn_cu_fn.cuGetErrorName(r, &name);
        snprintf(mn_cu_driver_error, sizeof mn_cu_driver_error,
                 "cuda: cuInit failed: %s (%d)%s", name ? name : "unknown error", (int)r,
                 r == CUDA_ERROR_NO_DEVICE ? ": no CUDA device on this machine" : "");
        mn_cu_driver_status = MN_ERR_UNSUPPORTED;
    }
    /* the library stays loaded until exit */
}

static void mn_cu_libs_load_once(void) {
    /* sonames of the supported releases, newest first, then the unversioned dev link */
    static const char *const blas_names[] = {"libcublas.so.13", "libcublas.so.12",
                                             "libcublas.so.11", "libcublas.so.10",
                                             "libcublas.so"};
    static const char *const dnn_names[] = {"libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"};
    const char *missing = NULL;
    void *blas = mn_cu_open(blas_names, sizeof blas_names / sizeof blas_names[0],
                            "install cuBLAS, part of the CUDA toolkit", mn_cu_libs_error,
                            sizeof mn_cu_libs_error);
    void *dnn = blas ? mn_cu_open(dnn_names, sizeof dnn_names / sizeof dnn_names[0],
                                  "install cuDNN 8 or 9", mn_cu_libs_error,
                                  sizeof mn_cu_libs_error)
                     : NULL;
    if (!blas || !dnn) {
        mn_cu_libs_status = MN_ERR_UNSUPPORTED;
        return;
    }
#define MN_CU_SYM_BLAS(f) MN_CU_SYM(blas, f)
#define MN_CU_SYM_DNN(f) MN_CU_SYM(dnn, f)
    MN_CU_BLAS_FUNCTIONS(MN_CU_SYM_BLAS)
    MN_CU_DNN_FUNCTIONS(MN_CU_SYM_DNN)
#undef MN_CU_SYM_BLAS
#undef MN_CU_SYM_DNN
    if (missing) {
        snprintf(mn_cu_libs_error, sizeof mn_cu_libs_error,
                 "cuda: the loaded cuBLAS/cuDNN libraries lack %s", missing);
        mn_cu_libs_status = MN_ERR_UNSUPPORTED;
    }
}

mn_status mn_cu_driver_load(void) {
    pthread_once(&mn_cu_driver_once, mn_cu_driver_load_once);
    if (mn_cu_driver_status != MN_OK)
        return mn_error_set(mn_cu_driver_status, "%s", mn_cu_driver_error);
    return MN_OK;
}

mn_status mn_cu_libs_load(void) {
    pthread_once(&mn_cu_libs_once, mn_cu_libs_load_once);
    if (mn_cu_libs_status != MN_OK)
        return mn_error_set(mn_cu_libs_status, "%s", mn_cu_libs_error);
    return MN_OK;
}
