/* Private declarations shared by the OpenCL backend's translation units.
 *
 * One device, one context, one in-order command queue: ops enqueue kernels and return;
 * `sync` (and every download) waits. GEMMs go through CLBlast; everything else runs the
 * kernels of kernels/mcunas.cl, embedded at build time and compiled once per device into
 * a program cached on disk (ocl_program.c). The ops that are only our kernels are the
 * GPU backends' shared ones (src/backend/gpu/), run through this backend's device
 * interface (ocl.c). Buffers are plain cl_mems; a view's byte offset becomes an element
 * offset kernel argument. Memory is counted (mn_gpu): every buffer the backend creates,
 * the caller's and its own transient ones (a CLBlast temp buffer for dense GEMMs), so
 * mem_info's peak is honest. */
#ifndef MN_BACKEND_OPENCL_INTERNAL_H
#define MN_BACKEND_OPENCL_INTERNAL_H

#include "ocl_api.h" /* CL/cl.h, clblast_c.h, and the dlopen'ed functions */

#include <stddef.h>
#include <stdint.h>

#include "backend/gpu/gpu_impl.h" /* the shared ops, kernel ids, mn_buf and mn_gpu */

/* A memo of CLBlast temp-buffer sizes (asking CLBlast costs a routine set-up per call). */
#define MN_OCL_TEMP_MEMO 64
typedef struct mn_ocl_temp_memo {
    size_t key[11];
    size_t bytes;
    int used;
} mn_ocl_temp_memo;

typedef struct mn_ocl {
    mn_gpu gpu; /* first: the shared ops' view of the backend (device interface, memory) */
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    cl_program program;
    cl_kernel kernels[MN_GPU_KERNEL_COUNT]; /* those of MN_GPU_IN_CL, others NULL */
    mn_device_info info;
    size_t wg;        /* work-group size of elementwise kernels */
    size_t red_wg;    /* work-group size of reduction kernels (power of two) */
    size_t sub_align; /* sub-buffer origin alignment in bytes (CL_DEVICE_MEM_BASE_ADDR_ALIGN) */
    int program_from_cache; /* 1 when the program came from the disk cache */
    mn_ocl_temp_memo memo[MN_OCL_TEMP_MEMO];
    int memo_next;
} mn_ocl;

static inline mn_ocl *mn_ocl_impl(mn_backend *be) { return (mn_ocl *)be->impl; }

/* ---- devices (ocl_device.c) ----
 * A device's index is its flat index over every platform's devices, in the order the
 * platforms and their devices are reported: the `--device N` of the CLI. */

/* Every OpenCL device of every platform (mn_backend_opencl_reg.list_devices). *out is
 * malloc'ed; no platform gives *count = 0 and MN_OK; a failing query, MN_ERR_BACKEND. */
mn_status mn_ocl_list_devices(mn_device_info **out, int *count);

/* The device of flat index `want`, described; MN_ERR_UNSUPPORTED when the
 * machine has no OpenCL device at all, MN_ERR_INVALID_ARG when the index is out of range. */
mn_status mn_ocl_find_device(int want, cl_platform_id *p, cl_device_id *d,
                             mn_device_info *info);

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *mn_ocl_error_name(cl_int err);
/* MN_ERR_BACKEND with "opencl: <what> failed: <CL error> (<code>)". */
mn_status mn_ocl_fail(cl_int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- argument checks (ocl.c) ---- */

/* A resolved view: the buffer and the offset in elements of `elem` bytes (CLBlast's
 * form). */
typedef struct mn_ocl_arg_view {
    cl_mem mem;
    cl_ulong off;
} mn_ocl_arg_view;

/* mn_gpu_view and mn_gpu_view_opt (absent: out->mem = NULL) in CLBlast's form. */
mn_status mn_ocl_view(mn_ocl *o, const char *op, const char *arg, mn_view v, size_t count,
                      size_t elem, mn_ocl_arg_view *out);
mn_status mn_ocl_view_opt(mn_ocl *o, const char *op, const char *arg, mn_view v,
                          size_t count, size_t elem, mn_ocl_arg_view *out);

/* A resolved view as the shared launches take it, and as a kernel argument. */
static inline mn_gpu_ptr mn_ocl_ptr(mn_ocl_arg_view v) {
    return (mn_gpu_ptr){.cl = {(void *)v.mem, (uint64_t)v.off}};
}
#define MN_KVIEW(v) MN_GA_P(mn_ocl_ptr(v))
static inline mn_ocl_arg_view mn_ocl_av(mn_gpu_ptr p) {
    return (mn_ocl_arg_view){(cl_mem)p.cl.mem, (cl_ulong)p.cl.off};
}

/* ---- program (ocl_program.c) ---- */

/* Builds (or loads from the disk cache) the program and creates every kernel. */
mn_status mn_ocl_program_load(mn_ocl *o);

/* Where compiled programs are cached: $XDG_CACHE_HOME/mcunas or ~/.cache/mcunas, with
 * MN_OCL_CACHE_DIR overriding both and an empty value disabling the cache. Writes into
 * `dir` (size bytes); returns 0 when there is no cache directory. */
int mn_ocl_cache_dir(char *dir, size_t size);

/* ---- GEMM through CLBlast (ocl_gemm.c) ---- */

/* A temp buffer for CLBlast: a region of a workspace (mem + byte origin + bytes), or
 * none (mem NULL). */
typedef struct mn_ocl_temp {
    cl_mem mem;
    size_t origin, bytes;
} mn_ocl_temp;

/* Applies CLBlast overrides asked for in the environment (MN_OCL_GEMM_INDIRECT=1). */
void mn_ocl_gemm_configure(mn_ocl *o);

/* Bytes of temp buffer CLBlast may need for this row-major GEMM at any offsets (so an
 * upper bound for the workspace); 0 when CLBlast needs none. */
size_t mn_ocl_gemm_temp_bound(mn_ocl *o, int ta, int tb, size_t m, size_t n, size_t k);

/* C[m][n] = A * B (+ beta C), row-major, offsets in elements; ta/tb transpose A/B.
 * The temp buffer CLBlast needs comes from `temp` (a workspace region, which must be
 * large enough) or, when temp is NULL, is created for this call, counted, and released
 * after the GEMM has finished. */
mn_status mn_ocl_gemm(mn_ocl *o, const char *op, int ta, int tb, size_t m, size_t n,
                      size_t k, mn_ocl_arg_view a, size_t lda, mn_ocl_arg_view b, size_t ldb,
                      float beta, mn_ocl_arg_view c, size_t ldc, const mn_ocl_temp *temp);
/* The device interface's gemm (the shared dense ops): mn_ocl_gemm, beta 0, a temp
 * buffer made for the call. */
mn_status mn_ocl_dev_gemm(mn_backend *be, const char *op, int ta, int tb, size_t m, size_t n,
                          size_t k, mn_gpu_ptr a, size_t lda, mn_gpu_ptr b, size_t ldb,
                          mn_gpu_ptr c, size_t ldc);

/* ---- ops: the convolutions (ocl_conv.c); the rest are shared ---- */

size_t mn_ocl_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s);
mn_status mn_ocl_conv3x3_forward(mn_backend *be, const mn_conv_shape *s, mn_view x, mn_view w,
                                 mn_view b, mn_view y, mn_view workspace);
mn_status mn_ocl_conv3x3_backward_data(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                       mn_view w, mn_view dx, mn_view workspace);
mn_status mn_ocl_conv3x3_backward_weights(mn_backend *be, const mn_conv_shape *s,
                                          mn_view x, mn_view dy, mn_view dw, mn_view db,
                                          mn_view workspace);

#endif
