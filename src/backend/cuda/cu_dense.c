/* Dense layer (cuBLAS SGEMM) and softmax cross-entropy on CUDA.
 * cuBLAS is column-major: a row-major [r][c] matrix is its column-major transpose, so
 *   forward:  y = x W^T     is  y^T  = W x^T      sgemm(T, N, out, n, in)
 *   backward: dx = dy W     is  dx^T = W^T dy^T   sgemm(N, N, in, n, out)
 *             dW = dy^T x   is  dW^T = x^T dy     sgemm(N, T, in, out, n)
 *             db = column sums of dy (our kernel, a fixed-order tree)
 * With one stream and the same shapes, cuBLAS gives the same bits every run. These ops
 * take no workspace. */
#include "cu_internal.h"

#include <stdlib.h>

static mn_status mn_cu_dense_dims(const char *op, int n, int in, int out) {
    int dims[3] = {n, in, out};
    size_t t;
    return mn_backend_dims(op, "n, in, out", dims, 3, 0, &t);
}

/* C (m x n, ldc) = op(A) op(B), column-major, beta 0. */
static mn_status mn_cu_sgemm(mn_cu *c, const char *op, int ta, int tb, int m, int n, int k,
                             CUdeviceptr a, int lda, CUdeviceptr b, int ldb, CUdeviceptr out,
                             int ldc) {
    const float one = 1.0f, zero = 0.0f;
    MN_CU_TRY(mn_cu_enter(c));
    cublasStatus_t s = mn_cu_fn.cublasSgemm(
        c->blas, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &one,
        (const float *)(uintptr_t)a, lda, (const float *)(uintptr_t)b, ldb, &zero,
        (float *)(uintptr_t)out, ldc);
    if (s != CUBLAS_STATUS_SUCCESS)
        return mn_cu_blas_fail(s, "%s: cublasSgemm(%d x %d x %d)", op, m, n, k);
    return MN_OK;
}

mn_status mn_cu_dense_forward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                              mn_view b, mn_view y) {
    static const char op[] = "dense_forward";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr px, pw, pb, py;
    MN_CU_TRY(mn_cu_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_CU_TRY(mn_cu_view(op, "x", x, nz * iz, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "w", w, oz * iz, 4, &pw));
    MN_CU_TRY(mn_cu_view_opt(op, "b", b, oz, 4, &pb));
    MN_CU_TRY(mn_cu_view(op, "y", y, nz * oz, 4, &py));
    MN_CU_TRY(mn_cu_sgemm(c, op, 1, 0, out, n, in, pw, in, px, in, py, out));
    if (!pb) return MN_OK;
    return mn_cu_run(c, MN_CU_BIAS_ROWS, nz * oz,
                     MN_CU_ARGS(MN_KP(py), MN_KP(pb), MN_KU32(oz), MN_KU32(nz * oz)));
}

mn_status mn_cu_dense_backward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                               mn_view dy, mn_view dx, mn_view dw, mn_view db) {
    static const char op[] = "dense_backward";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr px, pw, pdy, pdx, pdw, pdb;
    MN_CU_TRY(mn_cu_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_CU_TRY(mn_cu_view(op, "x", x, nz * iz, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "w", w, oz * iz, 4, &pw));
    MN_CU_TRY(mn_cu_view(op, "dy", dy, nz * oz, 4, &pdy));
    MN_CU_TRY(mn_cu_view_opt(op, "dx", dx, nz * iz, 4, &pdx));
    MN_CU_TRY(mn_cu_view(op, "dw", dw, oz * iz, 4, &pdw));
    MN_CU_TRY(mn_cu_view_opt(op, "db", db, oz, 4, &pdb));
    if (pdx) MN_CU_TRY(mn_cu_sgemm(c, op, 0, 0, in, n, out, pw, in, pdy, out, pdx, in));
    MN_CU_TRY(mn_cu_sgemm(c, op, 0, 1, in, out, n, px, in, pdy, out, pdw, in));
    if (!pdb) return MN_OK;
    return mn_cu_run_blocks(c, MN_CU_COLSUM, oz,
                            MN_CU_ARGS(MN_KP(pdy), MN_KU32(nz), MN_KU32(oz), MN_KP(pdb)));
}

mn_status mn_cu_softmax_xent(mn_backend *be, int n, int classes, mn_view logits,
                             mn_view labels, float grad_scale, mn_view probs, mn_view loss,
                             mn_view dlogits) {
    static const char op[] = "softmax_xent";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr pl, plab, pp, ploss, pdl;
    int dims[2] = {n, classes};
    size_t nc;
    MN_CU_TRY(mn_backend_dims(op, "n, classes", dims, 2, 0, &nc));
    MN_CU_TRY(mn_cu_view(op, "logits", logits, nc, 4, &pl));
    MN_CU_TRY(mn_cu_view(op, "labels", labels, (size_t)n, sizeof(int32_t), &plab));
    MN_CU_TRY(mn_cu_view(op, "probs", probs, nc, 4, &pp));
    MN_CU_TRY(mn_cu_view(op, "loss", loss, (size_t)n, 4, &ploss));
    MN_CU_TRY(mn_cu_view_opt(op, "dlogits", dlogits, nc, 4, &pdl));
    /* Labels are checked before anything is written, so a bad batch leaves no half result
     * behind: they are read back (n ints; the stream is waited for). A captured graph of a
     * training step would move this check to the host side of the batch upload. */
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    if (!lab) return mn_error_set(MN_ERR_NOMEM, "%s: no memory for %d labels", op, n);
    mn_status st = be->ops->download(be, labels, lab, (size_t)n * sizeof *lab);
    if (st != MN_OK) {
        free(lab);
        return mn_error_prefix(st, "%s: reading the labels: ", op);
    }
    for (int i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= classes) {
            int bad = (int)lab[i];
            free(lab);
            return mn_error_set(MN_ERR_INVALID_ARG, "%s: labels[%d] = %d is outside [0, %d)",
                                op, i, bad, classes);
        }
    free(lab);
    return mn_cu_run(c, MN_CU_SOFTMAX_XENT, (size_t)n,
                     MN_CU_ARGS(MN_KP(pl), MN_KP(plab), MN_KF32(grad_scale), MN_KP(pp),
                                MN_KP(ploss), MN_KP(pdl), MN_KU32(classes), MN_KU32(n)));
}
