/* The compute backend interface: an opaque backend handle (its function table lives in
 * src/backend/backend_impl.h, ggml-style) over opaque, backend-owned buffers
 * (CLBlast-style caller-held handles, status codes), the registry, and checked wrappers.
 *
 * Conventions shared by every op:
 *  - Tensors cross the interface as `mn_view`s: a buffer plus a byte offset. All float
 *    tensors are float32; labels are int32.
 *  - Activations are NHWC: x[n][h][w][c], contiguous. Dense activations are [N][F].
 *  - Conv weights are OHWI: w[k][ky][kx][c] (TFLite's CONV_2D layout); conv bias [K].
 *  - Dense weights are [O][I] (TFLite's FULLY_CONNECTED layout); dense bias [O].
 *  - Ops overwrite their outputs (no accumulation) unless documented otherwise.
 *  - Ops that need scratch memory take a caller-allocated workspace whose size the caller
 *    asks for first (`mn_backend_conv3x3_workspace_bytes`), so a training plan knows
 *    every byte.
 *  - The ops are listed once, with their contracts, in mcunas/backend_ops.def; callers
 *    go through the wrappers declared below (mn_backend_<op>). A backend may leave an op
 *    out; `mn_backend_supports` tells, and the wrapper returns MN_ERR_UNSUPPORTED with a
 *    message naming the op and backend.
 * Results must not depend on anything but the inputs and the backend's thread count:
 * same inputs, same threads, bit-identical outputs. */
#ifndef MCUNAS_BACKEND_H
#define MCUNAS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_backend mn_backend;
typedef struct mn_buf mn_buf; /* opaque; owned by the backend that allocated it */

typedef struct mn_view {
    mn_buf *buf;   /* NULL means "absent" for optional arguments (e.g. no bias) */
    size_t offset; /* bytes from the start of buf */
} mn_view;

static inline mn_view mn_view_at(mn_buf *buf, size_t offset) {
    mn_view v = {buf, offset};
    return v;
}
static inline mn_view mn_view_none(void) {
    mn_view v = {NULL, 0};
    return v;
}

/* Geometry of a 3x3, stride 1, 'same' (pad 1) convolution over a batch. */
typedef struct mn_conv_shape {
    int n, h, w; /* batch, height, width (input and output share them) */
    int c;       /* input channels */
    int k;       /* output channels */
} mn_conv_shape;

/* The ops, one per entry of mcunas/backend_ops.def (MN_OP_CONV3X3_FORWARD, ...). */
typedef enum mn_op {
#define MN_BACKEND_OP(fn, OP_ID, params, args) OP_ID,
#include "mcunas/backend_ops.def"
    MN_OP_COUNT
} mn_op;

/* "conv3x3_forward" for MN_OP_CONV3X3_FORWARD; "unknown-op" outside the enum. */
const char *mn_op_name(mn_op op);

/* Memory a backend reports: what it has allocated through this interface, its peak, and
 * the device's capacity. `shares_host_memory` is true when device buffers live in the
 * host's RAM (the CPU backend, PoCL, Jetson's unified memory), so a budget counts them
 * once against host RAM. */
typedef struct mn_backend_mem {
    size_t allocated_bytes;
    size_t peak_allocated_bytes;
    size_t device_total_bytes;   /* 0 when unknown */
    size_t max_alloc_bytes;      /* largest single buffer; 0 when unlimited/unknown */
    int shares_host_memory;
} mn_backend_mem;

/* ---- registry ---- */

typedef struct mn_backend_options {
    int threads; /* 0: the machine's cores (or OMP_NUM_THREADS when set) */
    int device;  /* device index for backends with several; 0 by default */
} mn_backend_options;

/* Creates a backend by name ("cpu", ...). Unknown or unavailable names fail with a
 * message listing the available ones. */
mn_status mn_backend_create(const char *name, const mn_backend_options *opts,
                            mn_backend **out);
void mn_backend_destroy(mn_backend *be);
/* Comma-separated names of the backends built into this binary. */
const char *mn_backend_available(void);

/* What the registry knows of a backend, built into this binary or not. */
typedef struct mn_backend_desc {
    const char *name;  /* what mn_backend_create takes: "opencl" */
    const char *title; /* how messages name it: "OpenCL" */
    int built;         /* compiled into this binary */
    int has_devices;   /* addresses devices (--device N) that mn_backend_list_devices lists */
    /* Not built: why ("OpenCL/CLBlast not found when mcunas was configured").
     * Built with devices: the likely reason when none is found, and the cure. */
    const char *note;
} mn_backend_desc;

/* The i-th backend mcunas knows (built-in ones first, in mn_backend_available's order);
 * NULL past the last. */
const mn_backend_desc *mn_backend_describe(int i);

/* One device of a backend that addresses devices. `index` is what `--device N` (and
 * mn_backend_options.device) takes for that backend. */
typedef struct mn_device_info {
    int index;
    int platform_index; /* the platform (OpenCL) or driver the device belongs to */
    char platform[128];
    char name[128];
    char vendor[128];
    char driver[64];
    char version[128];  /* the device's API version string */
    char type[16];      /* "gpu", "cpu", "accelerator", "other" */
    size_t global_mem_bytes;
    size_t max_alloc_bytes;
    unsigned compute_units;
    int host_unified;   /* the device's memory is the host's */
    int fp64;
} mn_device_info;

/* The devices of backend `name`, in index order. *out is malloc'ed (free it); a machine
 * without any gives *count = 0 and MN_OK. A backend that is unknown, not built, or has no
 * devices (cpu) fails with MN_ERR_UNSUPPORTED naming it; a failing device query with
 * MN_ERR_BACKEND. */
mn_status mn_backend_list_devices(const char *name, mn_device_info **out, int *count);

/* ---- a backend's properties ---- */

/* The name it was created by ("cpu"). */
const char *mn_backend_name(const mn_backend *be);
/* Worker threads it uses (CPU: OpenMP threads). */
int mn_backend_threads(const mn_backend *be);
/* Nonzero when it implements `op`; the op's wrapper fails otherwise. */
int mn_backend_supports(const mn_backend *be, mn_op op);
/* Fails with MN_ERR_UNSUPPORTED and "backend '<name>' does not implement <op>". */
mn_status mn_backend_unsupported(const mn_backend *be, mn_op op);

/* The counter-based keep decision shared by every backend's dropout. */
static inline int mn_dropout_keep(uint64_t seed, uint64_t index, float rate) {
    /* splitmix64 finaliser of (seed, index): stateless, so any thread, any backend,
     * any order reproduces the same mask. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    return u >= (double)rate;
}

/* ---- memory and synchronisation (every backend implements these) ---- */

/* Zeroed memory; a failure's message names the size and the backend. */
mn_status mn_buf_alloc(mn_backend *be, size_t bytes, mn_buf **out);
void mn_buf_free(mn_backend *be, mn_buf *buf); /* NULL is a no-op */
mn_status mn_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes);
mn_status mn_download(mn_backend *be, mn_view src, void *dst, size_t bytes);
/* dst[0..count) = value (floats). */
mn_status mn_backend_fill(mn_backend *be, mn_view dst, float value, size_t count);
/* Waits until every op enqueued so far has finished. */
mn_status mn_backend_sync(mn_backend *be);
void mn_backend_mem_info(mn_backend *be, mn_backend_mem *out);
/* Bytes of workspace the conv3x3 ops need for shape s. Must not grow when s->n shrinks,
 * so one workspace planned for the full batch serves a partial last batch. */
size_t mn_backend_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s);

/* ---- the ops ----
 * One checked wrapper per entry of mcunas/backend_ops.def, where each op's contract is
 * documented: mn_backend_conv3x3_forward(be, s, x, w, b, y, workspace), ... A backend
 * that leaves the op out makes its wrapper fail with MN_ERR_UNSUPPORTED and a message
 * naming the op and the backend. */
#define MN_BACKEND_OP(fn, OP_ID, params, args) mn_status mn_backend_##fn params;
#include "mcunas/backend_ops.def"

#ifdef __cplusplus
}
#endif
#endif
