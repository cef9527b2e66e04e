/* Dense layer on OpenCL: CLBlast SGEMMs, the bias and db through the shared launches.
 *   forward:  y = x W^T (GEMM N,T), then + b per row
 *   backward: dx = dy W (GEMM N,N), dW = dy^T x (GEMM T,N), db = column sums of dy
 * These ops take no workspace: a temp buffer CLBlast may want is made per call, counted,
 * and released after the GEMM (ocl_gemm.c). */
#include "ocl_internal.h"

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
    MN_OCL_TRY(mn_ocl_view(o, op, "x", x, nz * iz, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(o, op, "w", w, oz * iz, 4, &vw));
    MN_OCL_TRY(mn_ocl_view_opt(o, op, "b", b, oz, 4, &vb));
    MN_OCL_TRY(mn_ocl_view(o, op, "y", y, nz * oz, 4, &vy));
    MN_OCL_TRY(mn_ocl_gemm(o, op, 0, 1, nz, oz, iz, vx, iz, vw, iz, 0.0f, vy, oz, NULL));
    if (!vb.mem) return MN_OK;
    return mn_gpu_bias_rows(be, mn_ocl_ptr(vy), mn_ocl_ptr(vb), nz, oz);
}

mn_status mn_ocl_dense_backward(mn_backend *be, int n, int in, int out, mn_view x,
                                mn_view w, mn_view dy, mn_view dx, mn_view dw, mn_view db) {
    static const char op[] = "dense_backward";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vw, vdy, vdx, vdw, vdb;
    MN_OCL_TRY(mn_ocl_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_OCL_TRY(mn_ocl_view(o, op, "x", x, nz * iz, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(o, op, "w", w, oz * iz, 4, &vw));
    MN_OCL_TRY(mn_ocl_view(o, op, "dy", dy, nz * oz, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view_opt(o, op, "dx", dx, nz * iz, 4, &vdx));
    MN_OCL_TRY(mn_ocl_view(o, op, "dw", dw, oz * iz, 4, &vdw));
    MN_OCL_TRY(mn_ocl_view_opt(o, op, "db", db, oz, 4, &vdb));
    if (vdx.mem)
        MN_OCL_TRY(mn_ocl_gemm(o, op, 0, 0, nz, iz, oz, vdy, oz, vw, iz, 0.0f, vdx, iz, NULL));
    MN_OCL_TRY(mn_ocl_gemm(o, op, 1, 0, oz, iz, nz, vdy, oz, vx, iz, 0.0f, vdw, iz, NULL));
    if (!vdb.mem) return MN_OK;
    return mn_gpu_colsum(be, mn_ocl_ptr(vdy), nz, oz, mn_ocl_ptr(vdb));
}
