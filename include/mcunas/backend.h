/* The compute backend interface: a table of function pointers (ggml-style) over opaque,
 * backend-owned buffers (CLBlast-style caller-held handles, status codes).
 *
 * Conventions shared by every op:
 *  - Tensors cross the interface as `mn_view`s: a buffer plus a byte offset. All float
 *    tensors are float32; labels are int32.
 *  - Activations are NHWC: x[n][h][w][c], contiguous. Dense activations are [N][F].
 *  - Conv weights are OHWI: w[k][ky][kx][c] (TFLite's CONV_2D layout); conv bias [K].
 *  - Dense weights are [O][I] (TFLite's FULLY_CONNECTED layout); dense bias [O].
 *  - Ops overwrite their outputs (no accumulation) unless documented otherwise.
 *  - Ops that need scratch memory take a caller-allocated workspace whose size the caller
 *    asks for first (`conv3x3_workspace_bytes`), so a training plan knows every byte.
 *  - A backend may leave an op NULL; `mn_backend_supports` tells, and the wrappers in
 *    this header return MN_ERR_UNSUPPORTED with a message naming the op and backend.
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

typedef enum mn_op {
    MN_OP_CONV3X3_FORWARD,
    MN_OP_CONV3X3_BACKWARD_DATA,
    MN_OP_CONV3X3_BACKWARD_WEIGHTS,
    MN_OP_MAXPOOL2_FORWARD,
    MN_OP_MAXPOOL2_BACKWARD,
    MN_OP_BATCHNORM_TRAIN,
    MN_OP_BATCHNORM_INFER,
    MN_OP_BATCHNORM_BACKWARD,
    MN_OP_RELU_FORWARD,
    MN_OP_RELU_BACKWARD,
    MN_OP_GAP_FORWARD,
    MN_OP_GAP_BACKWARD,
    MN_OP_DROPOUT_FORWARD,
    MN_OP_DROPOUT_BACKWARD,
    MN_OP_DENSE_FORWARD,
    MN_OP_DENSE_BACKWARD,
    MN_OP_SOFTMAX_XENT,
    MN_OP_ADAM_STEP,
    MN_OP_SCALE_U8,
    MN_OP_COUNT
} mn_op;

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

/* The function table. Every entry receives the backend itself first. */
typedef struct mn_backend_ops {
    const char *name;
    void (*destroy)(mn_backend *be);

    /* Memory. `alloc` returns zeroed memory. */
    mn_status (*buf_alloc)(mn_backend *be, size_t bytes, mn_buf **out);
    void (*buf_free)(mn_backend *be, mn_buf *buf);
    mn_status (*upload)(mn_backend *be, mn_view dst, const void *src, size_t bytes);
    mn_status (*download)(mn_backend *be, mn_view src, void *dst, size_t bytes);
    mn_status (*fill)(mn_backend *be, mn_view dst, float value, size_t count);
    mn_status (*sync)(mn_backend *be);
    void (*mem_info)(mn_backend *be, mn_backend_mem *out);

    /* y[n,h,w,k] = b[k] + sum_{ky,kx,c} x[n,h+ky-1,w+kx-1,c] * w[k,ky,kx,c] (zero pad).
     * b may be absent. */
    size_t (*conv3x3_workspace_bytes)(mn_backend *be, const mn_conv_shape *s);
    mn_status (*conv3x3_forward)(mn_backend *be, const mn_conv_shape *s, mn_view x,
                                 mn_view w, mn_view b, mn_view y, mn_view workspace);
    /* dx[n,h,w,c] = sum over the outputs that read x of dy * w. */
    mn_status (*conv3x3_backward_data)(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                       mn_view w, mn_view dx, mn_view workspace);
    /* dw[k,ky,kx,c] = sum_{n,h,w} dy[n,h,w,k] * x[n,h+ky-1,w+kx-1,c];
     * db[k] = sum dy[.., k] (db may be absent). */
    mn_status (*conv3x3_backward_weights)(mn_backend *be, const mn_conv_shape *s,
                                          mn_view x, mn_view dy, mn_view dw, mn_view db,
                                          mn_view workspace);

    /* 2x2 stride 2 'valid' max pool: x[n,h,w,c] -> y[n,h/2,w/2,c] (floor). */
    mn_status (*maxpool2_forward)(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                  mn_view y);
    /* Routes dy to the first maximum of each window (row-major order), zero elsewhere,
     * recomputing the argmax from x and y; rows/columns dropped by the floor get 0. */
    mn_status (*maxpool2_backward)(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                   mn_view y, mn_view dy, mn_view dx);

    /* Batch norm over x[m][c] (m = N*H*W rows). Training mode normalises with the batch
     * mean and biased variance, saves mean and 1/sqrt(var+eps) for the backward pass, and
     * updates running stats the Keras way:
     *   running = momentum * running + (1 - momentum) * batch (unbiased variance). */
    mn_status (*batchnorm_train)(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float momentum, float eps, mn_view y, mn_view save_mean,
                                 mn_view save_invstd);
    mn_status (*batchnorm_infer)(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float eps, mn_view y);
    mn_status (*batchnorm_backward)(mn_backend *be, int m, int c, mn_view x, mn_view dy,
                                    mn_view gamma, mn_view save_mean, mn_view save_invstd,
                                    mn_view dx, mn_view dgamma, mn_view dbeta);

    /* y = max(x, 0); dx = dy where y > 0 else 0. In place (x == y, dy == dx) is allowed. */
    mn_status (*relu_forward)(mn_backend *be, size_t count, mn_view x, mn_view y);
    mn_status (*relu_backward)(mn_backend *be, size_t count, mn_view y, mn_view dy,
                               mn_view dx);

    /* Global average pool x[n,h,w,c] -> y[n,c] and its backward. */
    mn_status (*gap_forward)(mn_backend *be, int n, int h, int w, int c, mn_view x,
                             mn_view y);
    mn_status (*gap_backward)(mn_backend *be, int n, int h, int w, int c, mn_view dy,
                              mn_view dx);

    /* Inverted dropout: mask[i] = keep ? 1/(1-rate) : 0 with keep decided by
     * mn_dropout_keep(seed, i, rate) (a counter-based hash, identical on every backend);
     * y = x * mask. Backward: dx = dy * mask. Both may run in place (x == y, dy == dx). */
    mn_status (*dropout_forward)(mn_backend *be, size_t count, float rate, uint64_t seed,
                                 mn_view x, mn_view mask, mn_view y);
    mn_status (*dropout_backward)(mn_backend *be, size_t count, mn_view mask, mn_view dy,
                                  mn_view dx);

    /* y[n,o] = b[o] + sum_i x[n,i] w[o,i]. Backward: dx = dy w, dw = dy^T x, db = sum dy
     * (dx may be absent when x is the network input). */
    mn_status (*dense_forward)(mn_backend *be, int n, int in, int out, mn_view x,
                               mn_view w, mn_view b, mn_view y);
    mn_status (*dense_backward)(mn_backend *be, int n, int in, int out, mn_view x,
                                mn_view w, mn_view dy, mn_view dx, mn_view dw, mn_view db);

    /* Softmax cross-entropy on logits[n][classes] with int32 labels[n]:
     * probs = softmax(logits); loss[i] = -log(probs[i][label]) (per sample);
     * dlogits = (probs - onehot) * grad_scale (grad_scale is usually 1/n).
     * probs may alias nothing else; dlogits may be absent (evaluation). */
    mn_status (*softmax_xent)(mn_backend *be, int n, int classes, mn_view logits,
                              mn_view labels, float grad_scale, mn_view probs,
                              mn_view loss, mn_view dlogits);

    /* Adam, Keras form:
     *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
     *   p -= lr_t * m / (sqrt(v) + eps),  lr_t = lr * sqrt(1-b2^t) / (1-b1^t). */
    mn_status (*adam_step)(mn_backend *be, size_t count, mn_view param, mn_view grad,
                           mn_view m, mn_view v, float lr, float beta1, float beta2,
                           float eps, int step);

    /* y[i] = (float)x_u8[i] * scale: uint8 images to float (the model's x/255). */
    /* Note for workspace sizes: conv3x3_workspace_bytes must not grow when s->n shrinks,
     * so one workspace planned for the full batch serves a partial last batch. */
    mn_status (*scale_u8)(mn_backend *be, size_t count, mn_view x_u8, float scale,
                          mn_view y);
} mn_backend_ops;

struct mn_backend {
    const mn_backend_ops *ops;
    int threads;  /* worker threads this backend uses (CPU: OpenMP threads) */
    void *impl;   /* backend-private state */
};

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

int mn_backend_supports(const mn_backend *be, mn_op op);

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

/* Allocation helpers that check the table and leave a message. */
mn_status mn_buf_alloc(mn_backend *be, size_t bytes, mn_buf **out);
void mn_buf_free(mn_backend *be, mn_buf *buf);
mn_status mn_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes);
mn_status mn_download(mn_backend *be, mn_view src, void *dst, size_t bytes);

/* Calls an op through the table, or fails with MN_ERR_UNSUPPORTED naming op and backend.
 *   MN_CALL(be, relu_forward, MN_OP_RELU_FORWARD, count, x, y) */
#define MN_CALL(be, fn, opid, ...)                                                        \
    ((be)->ops->fn ? (be)->ops->fn((be), __VA_ARGS__) : mn_backend_unsupported((be), (opid)))
mn_status mn_backend_unsupported(const mn_backend *be, mn_op op);

/* Backend constructors (registered in src/backend/registry.c). */
mn_status mn_backend_cpu_create(const mn_backend_options *opts, mn_backend **out);

#ifdef __cplusplus
}
#endif
#endif
