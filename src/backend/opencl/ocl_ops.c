/* Pooling, batch norm, activation, dropout, optimiser and conversion ops on OpenCL: one
 * kernel launch (two for batch norm) each, kernels in kernels/mcunas.cl. Per-channel sums
 * run one work-group per channel with a fixed order (see the kernels' header). */
#include "ocl_internal.h"

#include <math.h>

/* ---- 2x2 max pool ---- */

mn_status mn_ocl_maxpool2_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                  mn_view y) {
    static const char op[] = "maxpool2_forward";
    mn_ocl_arg_view vx, vy;
    size_t nx, ny;
    MN_OCL_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_OCL_TRY(mn_ocl_view(op, "x", x, nx, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, ny, 4, &vy));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_MAXPOOL2_FWD, ny,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vy), MN_KU32(h), MN_KU32(w),
                                  MN_KU32(c), MN_KU32(ny)));
}

mn_status mn_ocl_maxpool2_backward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                   mn_view y, mn_view dy, mn_view dx) {
    static const char op[] = "maxpool2_backward";
    mn_ocl_arg_view vx, vy, vdy, vdx;
    size_t nx, ny;
    MN_OCL_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_OCL_TRY(mn_ocl_view(op, "x", x, nx, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, ny, 4, &vy));
    MN_OCL_TRY(mn_ocl_view(op, "dy", dy, ny, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view(op, "dx", dx, nx, 4, &vdx));
    mn_ocl *o = mn_ocl_impl(be);
    if (h % 2 || w % 2) { /* the rows/columns the floor drops get 0 (and all of dx when ny = 0) */
        const cl_float zero = 0.0f;
        cl_int err = clEnqueueFillBuffer(o->queue, vdx.mem, &zero, sizeof zero, dx.offset,
                                         nx * sizeof(float), 0, NULL, NULL);
        if (err != CL_SUCCESS) return mn_ocl_fail(err, "%s: zeroing dx", op);
    }
    return mn_ocl_run(o, MN_OCL_MAXPOOL2_BWD, ny,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vy), MN_KVIEW(vdy), MN_KVIEW(vdx),
                                  MN_KU32(h), MN_KU32(w), MN_KU32(c), MN_KU32(ny)));
}

/* ---- batch norm ---- */

static mn_status mn_ocl_bn_dims(const char *op, int m, int c, size_t *mc) {
    int dims[2] = {m, c};
    return mn_backend_dims(op, "m, c", dims, 2, 0, mc);
}

mn_status mn_ocl_batchnorm_train(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float momentum, float eps, mn_view y, mn_view save_mean,
                                 mn_view save_invstd) {
    static const char op[] = "batchnorm_train";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vg, vb, vrm, vrv, vy, vsm, vsi;
    size_t mc;
    MN_OCL_TRY(mn_ocl_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_OCL_TRY(mn_ocl_view(op, "x", x, mc, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "gamma", gamma, cz, 4, &vg));
    MN_OCL_TRY(mn_ocl_view(op, "beta", beta, cz, 4, &vb));
    MN_OCL_TRY(mn_ocl_view(op, "running_mean", running_mean, cz, 4, &vrm));
    MN_OCL_TRY(mn_ocl_view(op, "running_var", running_var, cz, 4, &vrv));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, mc, 4, &vy));
    MN_OCL_TRY(mn_ocl_view(op, "save_mean", save_mean, cz, 4, &vsm));
    MN_OCL_TRY(mn_ocl_view(op, "save_invstd", save_invstd, cz, 4, &vsi));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    MN_OCL_TRY(mn_ocl_run_groups(o, MN_OCL_BN_STATS, cz,
                                 MN_OCL_ARGS(MN_KVIEW(vx), MN_KU32(m), MN_KU32(c), MN_KVIEW(vrm),
                                             MN_KVIEW(vrv), MN_KF32(momentum), MN_KF32(eps),
                                             MN_KVIEW(vsm), MN_KVIEW(vsi))));
    return mn_ocl_run(o, MN_OCL_BN_APPLY, mc,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vy), MN_KVIEW(vsm), MN_KVIEW(vsi),
                                  MN_KVIEW(vg), MN_KVIEW(vb), MN_KU32(c), MN_KU32(mc)));
}

mn_status mn_ocl_batchnorm_infer(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float eps, mn_view y) {
    static const char op[] = "batchnorm_infer";
    mn_ocl_arg_view vx, vg, vb, vrm, vrv, vy;
    size_t mc;
    MN_OCL_TRY(mn_ocl_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_OCL_TRY(mn_ocl_view(op, "x", x, mc, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "gamma", gamma, cz, 4, &vg));
    MN_OCL_TRY(mn_ocl_view(op, "beta", beta, cz, 4, &vb));
    MN_OCL_TRY(mn_ocl_view(op, "running_mean", running_mean, cz, 4, &vrm));
    MN_OCL_TRY(mn_ocl_view(op, "running_var", running_var, cz, 4, &vrv));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, mc, 4, &vy));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_BN_INFER, mc,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vy), MN_KVIEW(vrm), MN_KVIEW(vrv),
                                  MN_KVIEW(vg), MN_KVIEW(vb), MN_KF32(eps), MN_KU32(c),
                                  MN_KU32(mc)));
}

mn_status mn_ocl_batchnorm_backward(mn_backend *be, int m, int c, mn_view x, mn_view dy,
                                    mn_view gamma, mn_view save_mean, mn_view save_invstd,
                                    mn_view dx, mn_view dgamma, mn_view dbeta) {
    static const char op[] = "batchnorm_backward";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vdy, vg, vsm, vsi, vdx, vdg, vdb;
    size_t mc;
    MN_OCL_TRY(mn_ocl_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_OCL_TRY(mn_ocl_view(op, "x", x, mc, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "dy", dy, mc, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view(op, "gamma", gamma, cz, 4, &vg));
    MN_OCL_TRY(mn_ocl_view(op, "save_mean", save_mean, cz, 4, &vsm));
    MN_OCL_TRY(mn_ocl_view(op, "save_invstd", save_invstd, cz, 4, &vsi));
    MN_OCL_TRY(mn_ocl_view(op, "dx", dx, mc, 4, &vdx));
    MN_OCL_TRY(mn_ocl_view(op, "dgamma", dgamma, cz, 4, &vdg));
    MN_OCL_TRY(mn_ocl_view(op, "dbeta", dbeta, cz, 4, &vdb));
    MN_OCL_TRY(mn_ocl_run_groups(o, MN_OCL_BN_BWD_SUMS, cz,
                                 MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vdy), MN_KVIEW(vsm),
                                             MN_KVIEW(vsi), MN_KU32(m), MN_KU32(c),
                                             MN_KVIEW(vdg), MN_KVIEW(vdb))));
    return mn_ocl_run(o, MN_OCL_BN_BWD_APPLY, mc,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vdy), MN_KVIEW(vg), MN_KVIEW(vsm),
                                  MN_KVIEW(vsi), MN_KVIEW(vdg), MN_KVIEW(vdb), MN_KU32(m),
                                  MN_KU32(c), MN_KVIEW(vdx), MN_KU32(mc)));
}

/* ---- ReLU ---- */

mn_status mn_ocl_relu_forward(mn_backend *be, size_t count, mn_view x, mn_view y) {
    static const char op[] = "relu_forward";
    mn_ocl_arg_view vx, vy;
    MN_OCL_TRY(mn_ocl_view(op, "x", x, count, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, count, 4, &vy));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_RELU_FWD, count,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vy), MN_KU32(count)));
}

mn_status mn_ocl_relu_backward(mn_backend *be, size_t count, mn_view y, mn_view dy,
                               mn_view dx) {
    static const char op[] = "relu_backward";
    mn_ocl_arg_view vy, vdy, vdx;
    MN_OCL_TRY(mn_ocl_view(op, "y", y, count, 4, &vy));
    MN_OCL_TRY(mn_ocl_view(op, "dy", dy, count, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view(op, "dx", dx, count, 4, &vdx));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_RELU_BWD, count,
                      MN_OCL_ARGS(MN_KVIEW(vy), MN_KVIEW(vdy), MN_KVIEW(vdx), MN_KU32(count)));
}

/* ---- global average pool ---- */

mn_status mn_ocl_gap_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                             mn_view y) {
    static const char op[] = "gap_forward";
    int dims[4] = {n, h, w, c};
    size_t nx;
    mn_ocl_arg_view vx, vy;
    MN_OCL_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_OCL_TRY(mn_ocl_view(op, "x", x, nx, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, (size_t)n * (size_t)c, 4, &vy));
    const size_t ny = (size_t)n * (size_t)c;
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_GAP_FWD, ny,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vy),
                                  MN_KU32((size_t)h * (size_t)w), MN_KU32(c), MN_KU32(ny)));
}

mn_status mn_ocl_gap_backward(mn_backend *be, int n, int h, int w, int c, mn_view dy,
                              mn_view dx) {
    static const char op[] = "gap_backward";
    int dims[4] = {n, h, w, c};
    size_t nx;
    mn_ocl_arg_view vdy, vdx;
    MN_OCL_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_OCL_TRY(mn_ocl_view(op, "dy", dy, (size_t)n * (size_t)c, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view(op, "dx", dx, nx, 4, &vdx));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_GAP_BWD, nx,
                      MN_OCL_ARGS(MN_KVIEW(vdy), MN_KVIEW(vdx),
                                  MN_KU32((size_t)h * (size_t)w), MN_KU32(c), MN_KU32(nx)));
}

/* ---- dropout ---- */

mn_status mn_ocl_dropout_forward(mn_backend *be, size_t count, float rate, uint64_t seed,
                                 mn_view x, mn_view mask, mn_view y) {
    static const char op[] = "dropout_forward";
    mn_ocl_arg_view vx, vm, vy;
    if (!(rate >= 0.0f && rate < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: rate must be in [0, 1) (got %g)", op,
                            rate);
    MN_OCL_TRY(mn_ocl_view(op, "x", x, count, 4, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "mask", mask, count, 4, &vm));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, count, 4, &vy));
    /* keep <=> (z >> 11) * 2^-53 >= rate <=> (z >> 11) >= ceil(rate * 2^53), exactly */
    const uint64_t thr = (uint64_t)ceil((double)rate * 9007199254740992.0);
    const float keep_scale = 1.0f / (1.0f - rate);
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_DROPOUT_FWD, count,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KVIEW(vm), MN_KVIEW(vy), MN_KU64(seed),
                                  MN_KU64(thr), MN_KF32(keep_scale), MN_KU32(count)));
}

mn_status mn_ocl_dropout_backward(mn_backend *be, size_t count, mn_view mask, mn_view dy,
                                  mn_view dx) {
    static const char op[] = "dropout_backward";
    mn_ocl_arg_view vm, vdy, vdx;
    MN_OCL_TRY(mn_ocl_view(op, "mask", mask, count, 4, &vm));
    MN_OCL_TRY(mn_ocl_view(op, "dy", dy, count, 4, &vdy));
    MN_OCL_TRY(mn_ocl_view(op, "dx", dx, count, 4, &vdx));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_DROPOUT_BWD, count,
                      MN_OCL_ARGS(MN_KVIEW(vm), MN_KVIEW(vdy), MN_KVIEW(vdx), MN_KU32(count)));
}

/* ---- Adam ---- */

mn_status mn_ocl_adam_step(mn_backend *be, size_t count, mn_view param, mn_view grad,
                           mn_view m, mn_view v, float lr, float beta1, float beta2,
                           float eps, int step) {
    static const char op[] = "adam_step";
    mn_ocl_arg_view vp, vg, vm, vv;
    MN_OCL_TRY(mn_ocl_view(op, "param", param, count, 4, &vp));
    MN_OCL_TRY(mn_ocl_view(op, "grad", grad, count, 4, &vg));
    MN_OCL_TRY(mn_ocl_view(op, "m", m, count, 4, &vm));
    MN_OCL_TRY(mn_ocl_view(op, "v", v, count, 4, &vv));
    if (step < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: step must be >= 1 (got %d)", op, step);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: beta1 and beta2 must be in [0, 1) (got %g, %g)", op, beta1,
                            beta2);
    const float lr_t = (float)((double)lr * sqrt(1.0 - pow((double)beta2, step)) /
                               (1.0 - pow((double)beta1, step)));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_ADAM, count,
                      MN_OCL_ARGS(MN_KVIEW(vp), MN_KVIEW(vg), MN_KVIEW(vm), MN_KVIEW(vv),
                                  MN_KF32(lr_t), MN_KF32(beta1), MN_KF32(beta2),
                                  MN_KF32(1.0f - beta1), MN_KF32(1.0f - beta2), MN_KF32(eps),
                                  MN_KU32(count)));
}

/* ---- uint8 to float ---- */

mn_status mn_ocl_scale_u8(mn_backend *be, size_t count, mn_view x_u8, float scale,
                          mn_view y) {
    static const char op[] = "scale_u8";
    mn_ocl_arg_view vx, vy;
    MN_OCL_TRY(mn_ocl_view(op, "x_u8", x_u8, count, 1, &vx));
    MN_OCL_TRY(mn_ocl_view(op, "y", y, count, 4, &vy));
    return mn_ocl_run(mn_ocl_impl(be), MN_OCL_SCALE_U8, count,
                      MN_OCL_ARGS(MN_KVIEW(vx), MN_KF32(scale), MN_KVIEW(vy), MN_KU32(count)));
}
