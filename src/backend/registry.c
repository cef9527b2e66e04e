/* Backend registry and the checked wrappers every caller goes through. */
#include "mcunas/backend.h"

#include <string.h>

#ifdef MN_HAVE_OPENCL
#include "backend/opencl/opencl.h"
#endif
#ifdef MN_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

static const char *const mn_op_names[MN_OP_COUNT] = {
    [MN_OP_CONV3X3_FORWARD] = "conv3x3_forward",
    [MN_OP_CONV3X3_BACKWARD_DATA] = "conv3x3_backward_data",
    [MN_OP_CONV3X3_BACKWARD_WEIGHTS] = "conv3x3_backward_weights",
    [MN_OP_MAXPOOL2_FORWARD] = "maxpool2_forward",
    [MN_OP_MAXPOOL2_BACKWARD] = "maxpool2_backward",
    [MN_OP_BATCHNORM_TRAIN] = "batchnorm_train",
    [MN_OP_BATCHNORM_INFER] = "batchnorm_infer",
    [MN_OP_BATCHNORM_BACKWARD] = "batchnorm_backward",
    [MN_OP_RELU_FORWARD] = "relu_forward",
    [MN_OP_RELU_BACKWARD] = "relu_backward",
    [MN_OP_GAP_FORWARD] = "gap_forward",
    [MN_OP_GAP_BACKWARD] = "gap_backward",
    [MN_OP_DROPOUT_FORWARD] = "dropout_forward",
    [MN_OP_DROPOUT_BACKWARD] = "dropout_backward",
    [MN_OP_DENSE_FORWARD] = "dense_forward",
    [MN_OP_DENSE_BACKWARD] = "dense_backward",
    [MN_OP_SOFTMAX_XENT] = "softmax_xent",
    [MN_OP_ADAM_STEP] = "adam_step",
    [MN_OP_SCALE_U8] = "scale_u8",
};

const char *mn_op_name(mn_op op) {
    return (op >= 0 && op < MN_OP_COUNT) ? mn_op_names[op] : "unknown-op";
}

typedef struct mn_backend_entry {
    const char *name;
    mn_status (*create)(const mn_backend_options *opts, mn_backend **out);
} mn_backend_entry;

static const mn_backend_entry mn_backends[] = {
    {"cpu", mn_backend_cpu_create},
#ifdef MN_HAVE_OPENCL
    {"opencl", mn_backend_opencl_create},
#endif
#ifdef MN_HAVE_CUDA
    {"cuda", mn_backend_cuda_create},
#endif
};
#define MN_N_BACKENDS (sizeof mn_backends / sizeof mn_backends[0])

#ifdef MN_HAVE_OPENCL
#define MN_AVAILABLE_OPENCL ",opencl"
#else
#define MN_AVAILABLE_OPENCL ""
#endif
#ifdef MN_HAVE_CUDA
#define MN_AVAILABLE_CUDA ",cuda"
#else
#define MN_AVAILABLE_CUDA ""
#endif

const char *mn_backend_available(void) { return "cpu" MN_AVAILABLE_OPENCL MN_AVAILABLE_CUDA; }

mn_status mn_backend_create(const char *name, const mn_backend_options *opts,
                            mn_backend **out) {
    mn_backend_options defaults = {0, 0};
    *out = NULL;
    if (!name) name = "cpu";
    if (!opts) opts = &defaults;
    if (opts->threads < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "threads must be >= 0 (got %d)", opts->threads);
    for (size_t i = 0; i < MN_N_BACKENDS; i++)
        if (strcmp(mn_backends[i].name, name) == 0) return mn_backends[i].create(opts, out);
    return mn_error_set(MN_ERR_UNSUPPORTED, "unknown backend '%s' (available: %s)", name,
                        mn_backend_available());
}

void mn_backend_destroy(mn_backend *be) {
    if (be) be->ops->destroy(be);
}

int mn_backend_supports(const mn_backend *be, mn_op op) {
    const mn_backend_ops *o = be->ops;
    switch (op) {
    case MN_OP_CONV3X3_FORWARD: return o->conv3x3_forward != NULL;
    case MN_OP_CONV3X3_BACKWARD_DATA: return o->conv3x3_backward_data != NULL;
    case MN_OP_CONV3X3_BACKWARD_WEIGHTS: return o->conv3x3_backward_weights != NULL;
    case MN_OP_MAXPOOL2_FORWARD: return o->maxpool2_forward != NULL;
    case MN_OP_MAXPOOL2_BACKWARD: return o->maxpool2_backward != NULL;
    case MN_OP_BATCHNORM_TRAIN: return o->batchnorm_train != NULL;
    case MN_OP_BATCHNORM_INFER: return o->batchnorm_infer != NULL;
    case MN_OP_BATCHNORM_BACKWARD: return o->batchnorm_backward != NULL;
    case MN_OP_RELU_FORWARD: return o->relu_forward != NULL;
    case MN_OP_RELU_BACKWARD: return o->relu_backward != NULL;
    case MN_OP_GAP_FORWARD: return o->gap_forward != NULL;
    case MN_OP_GAP_BACKWARD: return o->gap_backward != NULL;
    case MN_OP_DROPOUT_FORWARD: return o->dropout_forward != NULL;
    case MN_OP_DROPOUT_BACKWARD: return o->dropout_backward != NULL;
    case MN_OP_DENSE_FORWARD: return o->dense_forward != NULL;
    case MN_OP_DENSE_BACKWARD: return o->dense_backward != NULL;
    case MN_OP_SOFTMAX_XENT: return o->softmax_xent != NULL;
    case MN_OP_ADAM_STEP: return o->adam_step != NULL;
    case MN_OP_SCALE_U8: return o->scale_u8 != NULL;
    case MN_OP_COUNT: break;
    }
    return 0;
}

mn_status mn_backend_unsupported(const mn_backend *be, mn_op op) {
    return mn_error_set(MN_ERR_UNSUPPORTED, "backend '%s' does not implement %s",
                        be->ops->name, mn_op_name(op));
}

mn_status mn_buf_alloc(mn_backend *be, size_t bytes, mn_buf **out) {
    *out = NULL;
    mn_status st = be->ops->buf_alloc(be, bytes, out);
    if (st != MN_OK)
        return mn_error_prefix(st, "allocating %zu bytes on backend '%s': ", bytes,
                               be->ops->name);
    return MN_OK;
}

void mn_buf_free(mn_backend *be, mn_buf *buf) {
    if (buf) be->ops->buf_free(be, buf);
}

mn_status mn_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes) {
    return be->ops->upload(be, dst, src, bytes);
}

mn_status mn_download(mn_backend *be, mn_view src, void *dst, size_t bytes) {
    return be->ops->download(be, src, dst, bytes);
}
