/* The GPU backends' shared plumbing: the kernel list, memory accounting, view checks and
 * checked launches (see gpu_impl.h). */
#include "gpu_impl.h"

#include <string.h>

const mn_gpu_kernel_info mn_gpu_kernels[MN_GPU_KERNEL_COUNT] = {
#define MN_GPU_KERNEL(ID, name, where, sig) [MN_GPU_##ID] = {#name, where, sig},
#include "gpu_kernels.def"
};

/* ---- accounting ---- */

void mn_gpu_count_alloc(mn_gpu *g, size_t bytes) {
    g->allocated += bytes;
    if (g->allocated > g->peak) g->peak = g->allocated;
}

void mn_gpu_count_free(mn_gpu *g, size_t bytes) { g->allocated -= bytes; }

/* ---- argument checks ---- */

mn_status mn_gpu_view(const mn_gpu *g, const char *op, const char *arg, mn_view v,
                      size_t count, size_t elem, mn_gpu_ptr *out) {
    size_t bytes;
    memset(out, 0, sizeof *out);
    if (!v.buf)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument '%s' is absent", op, arg);
    if (count > UINT32_MAX)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument '%s' has %zu elements; the %s backend handles "
                            "tensors of fewer than 2^32",
                            op, arg, count, g->dev->name);
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
    *out = g->dev->resolve(v.buf, v.offset, elem);
    return MN_OK;
}

mn_status mn_gpu_view_opt(const mn_gpu *g, const char *op, const char *arg, mn_view v,
                          size_t count, size_t elem, mn_gpu_ptr *out) {
    memset(out, 0, sizeof *out);
    if (!v.buf) return MN_OK;
    return mn_gpu_view(g, op, arg, v, count, elem, out);
}

/* ---- launches ---- */

/* A mismatch is a bug in the caller, caught on every backend the same way. */
static mn_status mn_gpu_args_match(mn_gpu_kernel k, size_t nargs, const mn_gpu_arg *args) {
    const char *sig = mn_gpu_kernels[k].sig;
    const size_t want = strlen(sig);
    int ok = nargs == want && nargs <= MN_GPU_MAX_ARGS;
    for (size_t i = 0; ok && i < nargs; i++) {
        const char s = sig[i], a = args[i].kind;
        ok = (s == 'F' || s == 'I' || s == 'B') ? a == 'p' : a == s;
    }
    if (ok) return MN_OK;
    char got[MN_GPU_MAX_ARGS + 1];
    size_t n = nargs < MN_GPU_MAX_ARGS ? nargs : MN_GPU_MAX_ARGS;
    for (size_t i = 0; i < n; i++) got[i] = args[i].kind;
    got[n] = '\0';
    return mn_error_set(MN_ERR_BACKEND,
                        "internal: kernel %s launched with arguments '%s'%s; it takes '%s'",
                        mn_gpu_kernels[k].name, got, n < nargs ? "..." : "", sig);
}

static mn_status mn_gpu_launch(mn_backend *be, mn_gpu_kernel k, mn_gpu_grid grid, size_t n,
                               size_t nargs, const mn_gpu_arg *args) {
    MN_GPU_TRY(mn_gpu_args_match(k, nargs, args));
    if (n == 0) return MN_OK;
    return mn_gpu_of(be)->dev->launch(be, k, grid, n, nargs, args);
}

mn_status mn_gpu_run(mn_backend *be, mn_gpu_kernel k, size_t items, size_t nargs,
                     const mn_gpu_arg *args) {
    return mn_gpu_launch(be, k, MN_GPU_ITEMS, items, nargs, args);
}

mn_status mn_gpu_run_groups(mn_backend *be, mn_gpu_kernel k, size_t groups, size_t nargs,
                            const mn_gpu_arg *args) {
    return mn_gpu_launch(be, k, MN_GPU_GROUPS, groups, nargs, args);
}
