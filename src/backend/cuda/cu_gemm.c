/* The device interface's GEMM (the shared dense ops) through cuBLAS.
 * cuBLAS is column-major: a row-major [r][c] matrix is its column-major transpose, so the
 * row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T: sgemm with the
 * operands and their transposition flags swapped, m and n swapped. For the dense ops:
 *   forward:  y = x W^T     is  y^T  = W x^T      sgemm(T, N, out, n, in)
 *   backward: dx = dy W     is  dx^T = W^T dy^T   sgemm(N, N, in, n, out)
 *             dW = dy^T x   is  dW^T = x^T dy     sgemm(N, T, in, out, n)
 * With one stream and the same shapes, cuBLAS gives the same bits every run. */
#include "cu_internal.h"

mn_status mn_cu_dev_gemm(mn_backend *be, const char *op, int ta, int tb, size_t m, size_t n,
                         size_t k, mn_gpu_ptr a, size_t lda, mn_gpu_ptr b, size_t ldb,
                         mn_gpu_ptr c, size_t ldc) {
    mn_cu *cu = mn_cu_impl(be);
    const float one = 1.0f, zero = 0.0f;
    /* the dense ops' sizes are ints already (checked by mn_backend_dims) */
    const int cm = (int)n, cn = (int)m, ck = (int)k;
    MN_GPU_TRY(mn_cu_enter(cu));
    cublasStatus_t s = mn_cu_fn.cublasSgemm(
        cu->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, cm, cn, ck,
        &one, (const float *)(uintptr_t)b.addr, (int)ldb, (const float *)(uintptr_t)a.addr,
        (int)lda, &zero, (float *)(uintptr_t)c.addr, (int)ldc);
    if (s != CUBLAS_STATUS_SUCCESS)
        return mn_cu_blas_fail(s, "%s: cublasSgemm(%d x %d x %d)", op, cm, cn, ck);
    return MN_OK;
}
