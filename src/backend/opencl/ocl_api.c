/* dlopen/dlsym of libOpenCL and libclblast (see ocl_api.h). */
#define MN_OCL_API_IMPL
#include "ocl_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

mn_ocl_api mn_ocl_fn;

/* Names tried in order: the runtime sonames, then what CMake found at build time. */
#ifndef MN_OCL_LIBOPENCL_PATH
#define MN_OCL_LIBOPENCL_PATH "libOpenCL.so"
#endif
#ifndef MN_OCL_LIBCLBLAST_PATH
#define MN_OCL_LIBCLBLAST_PATH "libclblast.so"
#endif

static pthread_once_t mn_ocl_once = PTHREAD_ONCE_INIT;
static mn_status mn_ocl_load_status = MN_OK;
static char mn_ocl_load_error[512];

static void *mn_ocl_open(const char *const *names, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
    }
    const char *e = dlerror();
    snprintf(mn_ocl_load_error, sizeof mn_ocl_load_error,
             "opencl: cannot load %s (%s; install the OpenCL loader and CLBlast, e.g. "
             "ocl-icd-libopencl1 and libclblast1)",
             what, e ? e : "not found");
    return NULL;
}

static void mn_ocl_load_once(void) {
    static const char *const cl_names[] = {"libOpenCL.so.1", MN_OCL_LIBOPENCL_PATH};
    static const char *const blas_names[] = {"libclblast.so.1", MN_OCL_LIBCLBLAST_PATH};
    void *cl = mn_ocl_open(cl_names, 2, "libOpenCL.so.1");
    void *blas = cl ? mn_ocl_open(blas_names, 2, "libclblast.so.1") : NULL;
    if (!cl || !blas) {
        mn_ocl_load_status = MN_ERR_UNSUPPORTED;
        return;
    }
    const char *missing = NULL;
#define MN_OCL_SYM(h, f)                                                                  \
    do {                                                                                  \
        void *p_ = dlsym((h), #f);                                                        \
        if (!p_ && !missing) missing = #f;                                                \
        *(void **)&mn_ocl_fn.f = p_;                                                      \
    } while (0);
#define MN_OCL_SYM_CL(f) MN_OCL_SYM(cl, f)
#define MN_OCL_SYM_BLAS(f) MN_OCL_SYM(blas, f)
    MN_OCL_CL_FUNCTIONS(MN_OCL_SYM_CL)
    MN_OCL_BLAS_FUNCTIONS(MN_OCL_SYM_BLAS)
    if (missing) {
        snprintf(mn_ocl_load_error, sizeof mn_ocl_load_error,
                 "opencl: the loaded OpenCL/CLBlast libraries lack %s", missing);
        mn_ocl_load_status = MN_ERR_UNSUPPORTED;
    }
    /* the libraries stay loaded until exit */
}

mn_status mn_ocl_api_load(void) {
    pthread_once(&mn_ocl_once, mn_ocl_load_once);
    if (mn_ocl_load_status != MN_OK)
        return mn_error_set(mn_ocl_load_status, "%s", mn_ocl_load_error);
    return MN_OK;
}
