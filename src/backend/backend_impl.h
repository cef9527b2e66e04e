/* What a backend implements, behind the opaque handle of include/mcunas/backend.h (in
 * the manner of ggml's ggml-backend-impl.h): the function table, the backend object,
 * and the registry entry. Only src/backend/ and tests that exercise the table itself
 * include this; everything else calls the wrappers (mn_backend_<op>, mn_buf_alloc, ...).
 *
 * Adding an op: add its entry to include/mcunas/backend_ops.def (the enum value, name,
 * table field, wrapper and per-backend declarations follow) and implement mn_<be>_<op>
 * in each backend that can; a backend without it leaves the field NULL.
 * Adding a backend: see the comment at mn_backend_reg below. */
#ifndef MN_BACKEND_IMPL_H
#define MN_BACKEND_IMPL_H

#include "mcunas/backend.h"

/* The function table. Every entry receives the backend itself first. The entries before
 * the ops are required (mn_backend_create refuses a table that lacks one); each op may be
 * NULL. */
typedef struct mn_backend_ops {
    const char *name;
    void (*destroy)(mn_backend *be);

    /* Memory. `buf_alloc` returns zeroed memory. */
    mn_status (*buf_alloc)(mn_backend *be, size_t bytes, mn_buf **out);
    void (*buf_free)(mn_backend *be, mn_buf *buf);
    mn_status (*upload)(mn_backend *be, mn_view dst, const void *src, size_t bytes);
    mn_status (*download)(mn_backend *be, mn_view src, void *dst, size_t bytes);
    mn_status (*fill)(mn_backend *be, mn_view dst, float value, size_t count);
    mn_status (*sync)(mn_backend *be);
    void (*mem_info)(mn_backend *be, mn_backend_mem *out);
    /* A backend without the conv ops returns 0. */
    size_t (*conv3x3_workspace_bytes)(mn_backend *be, const mn_conv_shape *s);

    /* The ops of mcunas/backend_ops.def, in order. */
#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status(*fn) params;
#include "mcunas/backend_ops.def"
} mn_backend_ops;

struct mn_backend {
    const mn_backend_ops *ops;
    int threads; /* worker threads this backend uses (CPU: OpenMP threads) */
    void *impl;  /* backend-private state */
};

/* MN_OK when every required entry of be's table is there; else MN_ERR_BACKEND naming the
 * backend and the missing entry. mn_backend_create checks each new backend with it. */
mn_status mn_backend_check_table(const mn_backend *be);

/* What a backend gives the registry (src/backend/registry.c, which also holds its name,
 * title and notes).
 *
 * Adding a backend "foo": put its sources in src/backend/foo/ with a private header that
 * declares its ops (`#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status
 * mn_foo_##fn params;` then `#include "mcunas/backend_ops.def"`); fill an
 * mn_backend_ops table (the same include with `.fn = mn_foo_##fn,` when it implements
 * every op, or by hand, leaving out what it lacks); define `const mn_backend_reg
 * mn_backend_foo_reg`, declare it below, add its line to the registry's table (with the
 * reason it may be missing when it is optional), and compile it in CMakeLists.txt. */
typedef struct mn_backend_reg {
    mn_status (*create)(const mn_backend_options *opts, mn_backend **out);
    /* Backends with devices (--device N): every device in index order, *out malloc'ed;
     * none gives *count = 0 and MN_OK. NULL for a backend without devices. */
    mn_status (*list_devices)(mn_device_info **out, int *count);
} mn_backend_reg;

extern const mn_backend_reg mn_backend_cpu_reg;    /* src/backend/cpu/cpu.c */
extern const mn_backend_reg mn_backend_opencl_reg; /* src/backend/opencl/ocl.c */
extern const mn_backend_reg mn_backend_cuda_reg;   /* src/backend/cuda/cu.c */

#endif
