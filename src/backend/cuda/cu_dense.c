/* Dense layer on CUDA: cuBLAS SGEMMs, the bias and db through the shared launches.
 * cuBLAS is column-major: a row-major [r][c] matrix is its column-major transpose, so
 *   forward:  y = x W^T     is  y^T  = W x^T      sgemm(T, N, out, n, in)
 *   backward: dx = dy W     is  dx^T = W^T dy^T   sgemm(N, N, in, n, out)
 *             dW = dy^T x   is  dW^T = x^T dy     sgemm(N, T, in, out, n)
 *             db = column sums of dy (our kernel, a fixed-order tree: mn_gpu_colsum)
 * With one stream and the same shapes, cuBLAS gives the same bits every run. These ops
 * take no workspace. */
#include "cu_internal.h"

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
    MN_CU_TRY(mn_cu_view(c, op, "x", x, nz * iz, 4, &px));
    MN_CU_TRY(mn_cu_view(c, op, "w", w, oz * iz, 4, &pw));
    MN_CU_TRY(mn_cu_view_opt(c, op, "b", b, oz, 4, &pb));
    MN_CU_TRY(mn_cu_view(c, op, "y", y, nz * oz, 4, &py));
    MN_CU_TRY(mn_cu_sgemm(c, op, 1, 0, out, n, in, pw, in, px, in, py, out));
    if (!pb) return MN_OK;
    return mn_gpu_bias_rows(be, mn_cu_ptr(py), mn_cu_ptr(pb), nz, oz);
}

mn_status mn_cu_dense_backward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                               mn_view dy, mn_view dx, mn_view dw, mn_view db) {
    static const char op[] = "dense_backward";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr px, pw, pdy, pdx, pdw, pdb;
    MN_CU_TRY(mn_cu_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_CU_TRY(mn_cu_view(c, op, "x", x, nz * iz, 4, &px));
    MN_CU_TRY(mn_cu_view(c, op, "w", w, oz * iz, 4, &pw));
    MN_CU_TRY(mn_cu_view(c, op, "dy", dy, nz * oz, 4, &pdy));
    MN_CU_TRY(mn_cu_view_opt(c, op, "dx", dx, nz * iz, 4, &pdx));
    MN_CU_TRY(mn_cu_view(c, op, "dw", dw, oz * iz, 4, &pdw));
    MN_CU_TRY(mn_cu_view_opt(c, op, "db", db, oz, 4, &pdb));
    if (pdx) MN_CU_TRY(mn_cu_sgemm(c, op, 0, 0, in, n, out, pw, in, pdy, out, pdx, in));
    MN_CU_TRY(mn_cu_sgemm(c, op, 0, 1, in, out, n, px, in, pdy, out, pdw, in));
    if (!pdb) return MN_OK;
    return mn_gpu_colsum(be, mn_cu_ptr(pdy), nz, oz, mn_cu_ptr(pdb));
}
