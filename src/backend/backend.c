/* The checked wrappers every caller goes through, op names and mn_backend_supports: the
 * only code outside a backend that reads a function table. */
#include "backend/backend_impl.h"

#include <string.h>

static const char *const mn_op_names[MN_OP_COUNT] = {
#define MN_BACKEND_OP(fn, OP_ID, params, args) [OP_ID] = #fn,
#include "mcunas/backend_ops.def"
};

const char *mn_op_name(mn_op op) {
    return (op >= 0 && op < MN_OP_COUNT) ? mn_op_names[op] : "unknown-op";
}

const char *mn_backend_name(const mn_backend *be) { return be->ops->name; }

int mn_backend_threads(const mn_backend *be) { return be->threads; }

int mn_backend_supports(const mn_backend *be, mn_op op) {
    switch (op) {
#define MN_BACKEND_OP(fn, OP_ID, params, args)                                            \
    case OP_ID: return be->ops->fn != NULL;
#include "mcunas/backend_ops.def"
    case MN_OP_COUNT: break;
    }
    return 0;
}

mn_status mn_backend_unsupported(const mn_backend *be, mn_op op) {
    return mn_error_set(MN_ERR_UNSUPPORTED, "backend '%s' does not implement %s",
                        be->ops->name, mn_op_name(op));
}

mn_status mn_backend_check_table(const mn_backend *be) {
    const mn_backend_ops *o = be->ops;
    const char *missing = NULL;
    if (!o || !o->name)
        return mn_error_set(MN_ERR_BACKEND, "a backend was created without a name");
    /* the required entries, in table order */
    if (!o->destroy) missing = "destroy";
    else if (!o->buf_alloc) missing = "buf_alloc";
    else if (!o->buf_free) missing = "buf_free";
    else if (!o->upload) missing = "upload";
    else if (!o->download) missing = "download";
    else if (!o->fill) missing = "fill";
    else if (!o->sync) missing = "sync";
    else if (!o->mem_info) missing = "mem_info";
    else if (!o->conv3x3_workspace_bytes) missing = "conv3x3_workspace_bytes";
    if (missing)
        return mn_error_set(MN_ERR_BACKEND, "backend '%s' lacks the required function %s",
                            o->name, missing);
    return MN_OK;
}

/* ---- memory and synchronisation ---- */

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

mn_status mn_backend_fill(mn_backend *be, mn_view dst, float value, size_t count) {
    return be->ops->fill(be, dst, value, count);
}

mn_status mn_backend_sync(mn_backend *be) { return be->ops->sync(be); }

/* Zeroed first: a field the backend does not know stays 0, which reads as "unknown". */
void mn_backend_mem_info(mn_backend *be, mn_backend_mem *out) {
    memset(out, 0, sizeof *out);
    be->ops->mem_info(be, out);
}

size_t mn_backend_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s) {
    return be->ops->conv3x3_workspace_bytes(be, s);
}

/* ---- the ops: mn_backend_<fn>(be, ...) calls the table or names what is missing ---- */

#define MN_BACKEND_OP(fn, OP_ID, params, args)                                            \
    mn_status mn_backend_##fn params {                                                    \
        if (!be->ops->fn) return mn_backend_unsupported(be, OP_ID);                       \
        return be->ops->fn args;                                                          \
    }
#include "mcunas/backend_ops.def"
