/* Pooling, batch norm, activation, dropout, optimiser and conversion ops on CUDA: one
 * kernel launch (two for batch norm) each, kernels in kernels/mcunas.cu. These are our
 * kernels rather than cuDNN's on purpose: max-pool backward must route to the first
 * maximum in row-major order (cuDNN does not promise which tie wins), and batch norm
 * must be the CPU's exact form (biased batch variance for normalising, unbiased for the
 * Keras running update, momentum as Keras's) with sums in a fixed order, where cuDNN's
 * training kernels may reduce in a run-dependent order. Per-channel sums run one block
 * per channel (see the kernels' header). */
#include "cu_internal.h"

#include <math.h>

/* ---- 2x2 max pool ---- */

mn_status mn_cu_maxpool2_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                 mn_view y) {
    static const char op[] = "maxpool2_forward";
    CUdeviceptr px, py;
    size_t nx, ny;
    MN_CU_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_CU_TRY(mn_cu_view(op, "x", x, nx, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "y", y, ny, 4, &py));
    return mn_cu_run(mn_cu_impl(be), MN_CU_MAXPOOL2_FWD, ny,
                     MN_CU_ARGS(MN_KP(px), MN_KP(py), MN_KU32(h), MN_KU32(w), MN_KU32(c),
                                MN_KU32(ny)));
}

mn_status mn_cu_maxpool2_backward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                  mn_view y, mn_view dy, mn_view dx) {
    static const char op[] = "maxpool2_backward";
    CUdeviceptr px, py, pdy, pdx;
    size_t nx, ny;
    MN_CU_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_CU_TRY(mn_cu_view(op, "x", x, nx, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "y", y, ny, 4, &py));
    MN_CU_TRY(mn_cu_view(op, "dy", dy, ny, 4, &pdy));
    MN_CU_TRY(mn_cu_view(op, "dx", dx, nx, 4, &pdx));
    mn_cu *cu = mn_cu_impl(be);
    /* the rows/columns the floor drops get 0 (and all of dx when ny = 0) */
    if (h % 2 || w % 2) MN_CU_TRY(mn_cu_zero(cu, pdx, nx * sizeof(float)));
    return mn_cu_run(cu, MN_CU_MAXPOOL2_BWD, ny,
                     MN_CU_ARGS(MN_KP(px), MN_KP(py), MN_KP(pdy), MN_KP(pdx), MN_KU32(h),
                                MN_KU32(w), MN_KU32(c), MN_KU32(ny)));
}

/* ---- batch norm ---- */

static mn_status mn_cu_bn_dims(const char *op, int m, int c, size_t *mc) {
    int dims[2] = {m, c};
    return mn_backend_dims(op, "m, c", dims, 2, 0, mc);
}

mn_status mn_cu_batchnorm_train(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                mn_view beta, mn_view running_mean, mn_view running_var,
                                float momentum, float eps, mn_view y, mn_view save_mean,
                                mn_view save_invstd) {
    static const char op[] = "batchnorm_train";
    mn_cu *cu = mn_cu_impl(be);
    CUdeviceptr px, pg, pb, prm, prv, py, psm, psi;
    size_t mc;
    MN_CU_TRY(mn_cu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_CU_TRY(mn_cu_view(op, "x", x, mc, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "gamma", gamma, cz, 4, &pg));
    MN_CU_TRY(mn_cu_view(op, "beta", beta, cz, 4, &pb));
    MN_CU_TRY(mn_cu_view(op, "running_mean", running_mean, cz, 4, &prm));
    MN_CU_TRY(mn_cu_view(op, "running_var", running_var, cz, 4, &prv));
    MN_CU_TRY(mn_cu_view(op, "y", y, mc, 4, &py));
    MN_CU_TRY(mn_cu_view(op, "save_mean", save_mean, cz, 4, &psm));
    MN_CU_TRY(mn_cu_view(op, "save_invstd", save_invstd, cz, 4, &psi));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    MN_CU_TRY(mn_cu_run_blocks(cu, MN_CU_BN_STATS, cz,
                               MN_CU_ARGS(MN_KP(px), MN_KU32(m), MN_KU32(c), MN_KP(prm),
                                          MN_KP(prv), MN_KF32(momentum), MN_KF32(eps),
                                          MN_KP(psm), MN_KP(psi))));
    return mn_cu_run(cu, MN_CU_BN_APPLY, mc,
                     MN_CU_ARGS(MN_KP(px), MN_KP(py), MN_KP(psm), MN_KP(psi), MN_KP(pg),
                                MN_KP(pb), MN_KU32(c), MN_KU32(mc)));
}

mn_status mn_cu_batchnorm_infer(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                mn_view beta, mn_view running_mean, mn_view running_var,
                                float eps, mn_view y) {
    static const char op[] = "batchnorm_infer";
    CUdeviceptr px, pg, pb, prm, prv, py;
    size_t mc;
    MN_CU_TRY(mn_cu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_CU_TRY(mn_cu_view(op, "x", x, mc, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "gamma", gamma, cz, 4, &pg));
    MN_CU_TRY(mn_cu_view(op, "beta", beta, cz, 4, &pb));
    MN_CU_TRY(mn_cu_view(op, "running_mean", running_mean, cz, 4, &prm));
    MN_CU_TRY(mn_cu_view(op, "running_var", running_var, cz, 4, &prv));
    MN_CU_TRY(mn_cu_view(op, "y", y, mc, 4, &py));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    return mn_cu_run(mn_cu_impl(be), MN_CU_BN_INFER, mc,
                     MN_CU_ARGS(MN_KP(px), MN_KP(py), MN_KP(prm), MN_KP(prv), MN_KP(pg),
                                MN_KP(pb), MN_KF32(eps), MN_KU32(c), MN_KU32(mc)));
}

mn_status mn_cu_batchnorm_backward(mn_backend *be, int m, int c, mn_view x, mn_view dy,
                                   mn_view gamma, mn_view save_mean, mn_view save_invstd,
                                   mn_view dx, mn_view dgamma, mn_view dbeta) {
    static const char op[] = "batchnorm_backward";
    mn_cu *cu = mn_cu_impl(be);
    CUdeviceptr px, pdy, pg, psm, psi, pdx, pdg, pdb;
    size_t mc;
    MN_CU_TRY(mn_cu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_CU_TRY(mn_cu_view(op, "x", x, mc, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "dy", dy, mc, 4, &pdy));
    MN_CU_TRY(mn_cu_view(op, "gamma", gamma, cz, 4, &pg));
    MN_CU_TRY(mn_cu_view(op, "save_mean", save_mean, cz, 4, &psm));
    MN_CU_TRY(mn_cu_view(op, "save_invstd", save_invstd, cz, 4, &psi));
    MN_CU_TRY(mn_cu_view(op, "dx", dx, mc, 4, &pdx));
    MN_CU_TRY(mn_cu_view(op, "dgamma", dgamma, cz, 4, &pdg));
    MN_CU_TRY(mn_cu_view(op, "dbeta", dbeta, cz, 4, &pdb));
    MN_CU_TRY(mn_cu_run_blocks(cu, MN_CU_BN_BWD_SUMS, cz,
                               MN_CU_ARGS(MN_KP(px), MN_KP(pdy), MN_KP(psm), MN_KP(psi),
                                          MN_KU32(m), MN_KU32(c), MN_KP(pdg), MN_KP(pdb))));
    return mn_cu_run(cu, MN_CU_BN_BWD_APPLY, mc,
                     MN_CU_ARGS(MN_KP(px), MN_KP(pdy), MN_KP(pg), MN_KP(psm), MN_KP(psi),
                                MN_KP(pdg), MN_KP(pdb), MN_KU32(m), MN_KU32(c), MN_KP(pdx),
                                MN_KU32(mc)));
}

/* ---- ReLU ---- */

mn_status mn_cu_relu_forward(mn_backend *be, size_t count, mn_view x, mn_view y) {
    static const char op[] = "relu_forward";
    CUdeviceptr px, py;
    MN_CU_TRY(mn_cu_view(op, "x", x, count, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "y", y, count, 4, &py));
    return mn_cu_run(mn_cu_impl(be), MN_CU_RELU_FWD, count,
                     MN_CU_ARGS(MN_KP(px), MN_KP(py), MN_KU32(count)));
}

mn_status mn_cu_relu_backward(mn_backend *be, size_t count, mn_view y, mn_view dy,
                              mn_view dx) {
    static const char op[] = "relu_backward";
    CUdeviceptr py, pdy, pdx;
    MN_CU_TRY(mn_cu_view(op, "y", y, count, 4, &py));
    MN_CU_TRY(mn_cu_view(op, "dy", dy, count, 4, &pdy));
    MN_CU_TRY(mn_cu_view(op, "dx", dx, count, 4, &pdx));
    return mn_cu_run(mn_cu_impl(be), MN_CU_RELU_BWD, count,
                     MN_CU_ARGS(MN_KP(py), MN_KP(pdy), MN_KP(pdx), MN_KU32(count)));
}

/* ---- global average pool ---- */

mn_status mn_cu_gap_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                            mn_view y) {
    static const char op[] = "gap_forward";
    int dims[4] = {n, h, w, c};
    size_t nx;
    CUdeviceptr px, py;
    MN_CU_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    const size_t ny = (size_t)n * (size_t)c;
    MN_CU_TRY(mn_cu_view(op, "x", x, nx, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "y", y, ny, 4, &py));
    return mn_cu_run(mn_cu_impl(be), MN_CU_GAP_FWD, ny,
                     MN_CU_ARGS(MN_KP(px), MN_KP(py), MN_KU32((size_t)h * (size_t)w),
                                MN_KU32(c), MN_KU32(ny)));
}

mn_status mn_cu_gap_backward(mn_backend *be, int n, int h, int w, int c, mn_view dy,
                             mn_view dx) {
    static const char op[] = "gap_backward";
    int dims[4] = {n, h, w, c};
    size_t nx;
    CUdeviceptr pdy, pdx;
    MN_CU_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_CU_TRY(mn_cu_view(op, "dy", dy, (size_t)n * (size_t)c, 4, &pdy));
    MN_CU_TRY(mn_cu_view(op, "dx", dx, nx, 4, &pdx));
    return mn_cu_run(mn_cu_impl(be), MN_CU_GAP_BWD, nx,
                     MN_CU_ARGS(MN_KP(pdy), MN_KP(pdx), MN_KU32((size_t)h * (size_t)w),
                                MN_KU32(c), MN_KU32(nx)));
}

/* ---- dropout ---- */

mn_status mn_cu_dropout_forward(mn_backend *be, size_t count, float rate, uint64_t seed,
                                mn_view x, mn_view mask, mn_view y) {
    static const char op[] = "dropout_forward";
    CUdeviceptr px, pm, py;
    if (!(rate >= 0.0f && rate < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: rate must be in [0, 1) (got %g)", op,
                            rate);
    MN_CU_TRY(mn_cu_view(op, "x", x, count, 4, &px));
    MN_CU_TRY(mn_cu_view(op, "mask", mask, count, 4, &pm));
    MN_CU_TRY(mn_cu_view(op, "y", y, count, 4, &py));
    /* keep <=> (z >> 11) * 2^-53 >= rate <=> (z >> 11) >= ceil(rate * 2^53), exactly */
    const uint64_t thr = (uint64_t)ceil((double)rate * 9007199254740992.0);
    const float keep_scale = 1.0f / (1.0f - rate);
    return mn_cu_run(mn_cu_impl(be), MN_CU_DROPOUT_FWD, count,
                     MN_CU_ARGS(MN_KP(px), MN_KP(pm), MN_KP(py), MN_KU64(seed), MN_KU64(thr),
                                MN_KF32(keep_scale), MN_KU32(count)));
}

mn_status mn_cu_dropout_backward(mn_backend *be, size_t count, mn_view mask, mn_view dy,
                                 mn_view dx) {
    static const char op[] = "dropout_backward";
    CUdeviceptr pm, pdy, pdx;
    MN_CU_TRY(mn_cu_view(op, "mask", mask, count, 4, &pm));
    MN_CU_TRY(mn_cu_view(op, "dy", dy, count, 4, &pdy));
    MN_CU_TRY(mn_cu_view(op, "dx", dx, count, 4, &pdx));
    return mn_cu_run(mn_cu_impl(be), MN_CU_DROPOUT_BWD, count,
                     MN_CU_ARGS(MN_KP(pm), MN_KP(pdy), MN_KP(pdx), MN_KU32(count)));
}

/* ---- Adam ---- */

mn_status mn_cu_adam_step(mn_backend *be, size_t count, mn_view param, mn_view grad,
                          mn_view m, mn_view v, float lr, float beta1, float beta2, float eps,
                          int step) {
    static const char op[] = "adam_step";
    CUdeviceptr pp, pg, pm, pv;
    MN_CU_TRY(mn_cu_view(op, "param", param, count, 4, &pp));
    MN_CU_TRY(mn_cu_view(op, "grad", grad, count, 4, &pg));
    MN_CU_TRY(mn_cu_view(op, "m", m, count, 4, &pm));
    MN_CU_TRY(mn_cu_view(op, "v", v, count, 4, &pv));
    if (step < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: step must be >= 1 (got %d)", op, step);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: beta1 and beta2 must be in [0, 1) (got %g, %g)", op, beta1,
                            beta2);
    /* the bias corrections folded into the step size in double, as on the CPU */
    const float lr_t = (float)((double)lr * sqrt(1.0 - pow((double)beta2, step)) /
                               (1.0 - pow((double)beta1, step)));
    return mn_cu_run(mn_cu_impl(be), MN_CU_ADAM, count,
                     MN_CU_ARGS(MN_KP(pp), MN_KP(pg), MN_KP(pm), MN_KP(pv), MN_KF32(lr_t),
                                MN_KF32(beta1), MN_KF32(beta2), MN_KF32(1.0f - beta1),
                                MN_KF32(1.0f - beta2), MN_KF32(eps), MN_KU32(count)));
}

/* ---- uint8 to float ---- */

mn_status mn_cu_scale_u8(mn_backend *be, size_t count, mn_view x_u8, float scale, mn_view y) {
    static const char op[] = "scale_u8";
    CUdeviceptr px, py;
    MN_CU_TRY(mn_cu_view(op, "x_u8", x_u8, count, 1, &px));
    MN_CU_TRY(mn_cu_view(op, "y", y, count, 4, &py));
    return mn_cu_run(mn_cu_impl(be), MN_CU_SCALE_U8, count,
                     MN_CU_ARGS(MN_KP(px), MN_KF32(scale), MN_KP(py), MN_KU32(count)));
}
