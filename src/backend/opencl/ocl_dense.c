/* Dense layer (CLBlast SGEMM) and softmax cross-entropy on OpenCL.
 *   forward:  y = x W^T (GEMM N,T), then + b per row
 *   backward: dx = dy W (GEMM N,N), dW = dy^T x (GEMM T,N), db = column sums of dy
 * These ops take no workspace: a temp buffer CLBlast may want is made per call, counted,
 * and released after the GEMM (ocl_gemm.c). */
#include "ocl_internal.h"

#include <stdlib.h>

static mn_status mn_ocl_dense_dims(const char *op, int n, int in, int out) {
    int dims[3] = {n, in, out};
    size_t t;
    return mn_backend_dims(op, "n, in, out", dims, 3, 0, &t);
}

mn_status mn_ocl_dense_forward(mn_backend *be, int n, int in, int out, mn_view x,
                               mn_view w, mn_view b, mn_view y) {
    static const char op[] = "dense_forward";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vw, vb, vy;
    MN_OCL_TRY(mn_ocl_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_OCL_TRY(mn_ocl_view(op, "x", x, nz * iz, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "w", w, oz * iz, 4, &vw));
    MN_OCL_TRY(mn_ocl_view_opt(op, "b", b, oz, 4, &vb));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, nz * oz, 4, &vy));
    MN_OCL_TRY(mn_ocl_gemm(o, op, 0, 1, nz, oz, iz, vx, iz, vw, iz, 0.0f, vy, oz, NULL));
    if (!vb.mem) return MN_OK;
    return mn_ocl_run(o, MN_OCL_BIAS_ROWS, nz * oz,
                      MN_OCL_ARGS(MN_KVIEW(vy), MN_KVIEW(vb), MN_KU32(oz), MN_KU32(nz * oz)));
}

mn_status mn_ocl_dense_backward(mn_backend *be, int n, int in, int out, mn_view x,
                                mn_view w, mn_view dy, mn_view dx, mn_view dw, mn_view db) {
    static const char op[] = "dense_backward";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vw, vdy, vdx, vdw, vdb;
    MN_OCL_TRY(mn_ocl_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_OCL_TRY(mn_ocl_view(op, "x", x, nz * iz, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "w", w, oz * iz, 4, &vw));
    MN_OCL_TRY(mn_ocl_view(op, "dy", dy, nz * oz, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view_opt(op, "dx", dx, nz * iz, 4, &vdx));
    MN_OCL_TRY(mn_ocl_view(op, "dw", dw, oz * iz, 4, &vdw));
    MN_OCL_TRY(mn_ocl_view_opt(op, "db", db, oz, 4, &vdb));
    if (vdx.mem)
        MN_OCL_TRY(mn_ocl_gemm(o, op, 0, 0, nz, iz, oz, vdy, oz, vw, iz, 0.0f, vdx, iz, NULL));
    MN_OCL_TRY(mn_ocl_gemm(o, op, 1, 0, oz, iz, nz, vdy, oz, vx, iz, 0.0f, vdw, iz, NULL));
    if (!vdb.mem) return MN_OK;
    return mn_ocl_run_groups(o, MN_OCL_COLSUM, oz,
                             MN_OCL_ARGS(MN_KVIEW(vdy), MN_KU32(nz), MN_KU32(oz), MN_KVIEW(vdb)));
}

mn_status mn_ocl_softmax_xent(mn_backend *be, int n, int classes, mn_view logits,
                              mn_view labels, float grad_scale, mn_view probs,
                              mn_view loss, mn_view dlogits) {
    static const char op[] = "softmax_xent";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vl, vlab, vp, vloss, vdl;
    int dims[2] = {n, classes};
    size_t nc;
    MN_OCL_TRY(mn_backend_dims(op, "n, classes", dims, 2, 0, &nc));
    MN_OCL_TRY(mn_ocl_view(op, "logits", logits, nc, 4, &vl));
    MN_OCL_TRY(mn_ocl_view(op, "labels", labels, (size_t)n, sizeof(int32_t), &vlab));
    MN_OCL_TRY(mn_ocl_view(op, "probs", probs, nc, 4, &vp));
    MN_OCL_TRY(mn_ocl_view(op, "loss", loss, (size_t)n, 4, &vloss));
    MN_OCL_TRY(mn_ocl_view_opt(op, "dlogits", dlogits, nc, 4, &vdl));
    /* Labels are checked before anything is written, so a bad batch leaves no half
     * result behind: they are read back (n ints; the queue is waited for). */
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    if (!lab) return mn_error_set(MN_ERR_NOMEM, "%s: no memory for %d labels", op, n);
    cl_int err = clEnqueueReadBuffer(o->queue, vlab.mem, CL_TRUE, labels.offset,
                                     (size_t)n * sizeof *lab, lab, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        free(lab);
        return mn_ocl_fail(err, "%s: reading the labels", op);
    }
    for (int i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= classes) {
            int bad = (int)lab[i];
            free(lab);
            return mn_error_set(MN_ERR_INVALID_ARG, "%s: labels[%d] = %d is outside [0, %d)",
                                op, i, bad, classes);
        }
    free(lab);
    const int has_dl = vdl.mem != NULL;
    if (!has_dl) vdl = vp; /* a valid buffer for the unused argument */
    return mn_ocl_run(o, MN_OCL_SOFTMAX_XENT, (size_t)n,
                      MN_OCL_ARGS(MN_KVIEW(vl), MN_KVIEW(vlab), MN_KF32(grad_scale),
                                  MN_KVIEW(vp), MN_KVIEW(vloss), MN_KVIEW(vdl),
                                  MN_KI32(has_dl), MN_KU32(classes), MN_KU32(n)));
}
