/* The ops the GPU backends share: pooling, batch norm, activation, dropout, optimiser,
 * conversion and softmax cross-entropy, one kernel launch (two for batch norm) each, the
 * dense ops, and the bias and column-sum launches of the dense and conv ops. The kernels
 * are kernels/mcunas.cl's and kernels/mcunas.cu's (one list, gpu_kernels.def); the dense
 * ops' GEMMs are the backend's BLAS (mn_gpu_dev.gemm). They are our kernels rather than a
 * vendor library's on purpose: max-pool backward must route to the first maximum in
 * row-major order (cuDNN does not promise which tie wins), and batch norm must be the
 * CPU's exact form (biased batch variance for normalising, unbiased for the Keras running
 * update, momentum as Keras's) with sums in a fixed order. Per-channel sums run one
 * work-group per channel (see the kernels' headers). */
#include "gpu_impl.h"

#include <math.h>
#include <stdlib.h>

/* ---- bias and column sums (dense and conv) ---- */

mn_status mn_gpu_bias_rows(mn_backend *be, mn_gpu_ptr y, mn_gpu_ptr b, size_t rows,
                           size_t cols) {
    return mn_gpu_run(be, MN_GPU_BIAS_ROWS, rows * cols,
                      MN_GPU_ARGS(MN_GA_P(y), MN_GA_P(b), MN_GA_U32(cols),
                                  MN_GA_U32(rows * cols)));
}

mn_status mn_gpu_colsum(mn_backend *be, mn_gpu_ptr src, size_t rows, size_t cols,
                        mn_gpu_ptr dst) {
    return mn_gpu_run_groups(be, MN_GPU_COLSUM, cols,
                             MN_GPU_ARGS(MN_GA_P(src), MN_GA_U32(rows), MN_GA_U32(cols),
                                         MN_GA_P(dst)));
}

/* ---- 2x2 max pool ---- */

mn_status mn_gpu_maxpool2_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                  mn_view y) {
    static const char op[] = "maxpool2_forward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vy;
    size_t nx, ny;
    MN_GPU_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, nx, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, ny, 4, &vy));
    return mn_gpu_run(be, MN_GPU_MAXPOOL2_FWD, ny,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vy), MN_GA_U32(h), MN_GA_U32(w),
                                  MN_GA_U32(c), MN_GA_U32(ny)));
}

mn_status mn_gpu_maxpool2_backward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                   mn_view y, mn_view dy, mn_view dx) {
    static const char op[] = "maxpool2_backward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vy, vdy, vdx;
    size_t nx, ny;
    MN_GPU_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, nx, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, ny, 4, &vy));
    MN_GPU_TRY(mn_gpu_view(g, op, "dy", dy, ny, 4, &vdy));
    MN_GPU_TRY(mn_gpu_view(g, op, "dx", dx, nx, 4, &vdx));
    /* the rows/columns the floor drops get 0 (and all of dx when ny = 0) */
    if (h % 2 || w % 2) MN_GPU_TRY(g->dev->zero(be, op, dx, nx * sizeof(float)));
    return mn_gpu_run(be, MN_GPU_MAXPOOL2_BWD, ny,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vy), MN_GA_P(vdy), MN_GA_P(vdx),
                                  MN_GA_U32(h), MN_GA_U32(w), MN_GA_U32(c), MN_GA_U32(ny)));
}

/* ---- batch norm ---- */

static mn_status mn_gpu_bn_dims(const char *op, int m, int c, size_t *mc) {
    int dims[2] = {m, c};
    return mn_backend_dims(op, "m, c", dims, 2, 0, mc);
}

mn_status mn_gpu_batchnorm_train(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float momentum, float eps, mn_view y, mn_view save_mean,
                                 mn_view save_invstd) {
    static const char op[] = "batchnorm_train";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vg, vb, vrm, vrv, vy, vsm, vsi;
    size_t mc;
    MN_GPU_TRY(mn_gpu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, mc, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "gamma", gamma, cz, 4, &vg));
    MN_GPU_TRY(mn_gpu_view(g, op, "beta", beta, cz, 4, &vb));
    MN_GPU_TRY(mn_gpu_view(g, op, "running_mean", running_mean, cz, 4, &vrm));
    MN_GPU_TRY(mn_gpu_view(g, op, "running_var", running_var, cz, 4, &vrv));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, mc, 4, &vy));
    MN_GPU_TRY(mn_gpu_view(g, op, "save_mean", save_mean, cz, 4, &vsm));
    MN_GPU_TRY(mn_gpu_view(g, op, "save_invstd", save_invstd, cz, 4, &vsi));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    MN_GPU_TRY(mn_gpu_run_groups(be, MN_GPU_BN_STATS, cz,
                                 MN_GPU_ARGS(MN_GA_P(vx), MN_GA_U32(m), MN_GA_U32(c), MN_GA_P(vrm),
                                             MN_GA_P(vrv), MN_GA_F32(momentum), MN_GA_F32(eps),
                                             MN_GA_P(vsm), MN_GA_P(vsi))));
    return mn_gpu_run(be, MN_GPU_BN_APPLY, mc,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vy), MN_GA_P(vsm), MN_GA_P(vsi),
                                  MN_GA_P(vg), MN_GA_P(vb), MN_GA_U32(c), MN_GA_U32(mc)));
}

mn_status mn_gpu_batchnorm_infer(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float eps, mn_view y) {
    static const char op[] = "batchnorm_infer";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vg, vb, vrm, vrv, vy;
    size_t mc;
    MN_GPU_TRY(mn_gpu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, mc, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "gamma", gamma, cz, 4, &vg));
    MN_GPU_TRY(mn_gpu_view(g, op, "beta", beta, cz, 4, &vb));
    MN_GPU_TRY(mn_gpu_view(g, op, "running_mean", running_mean, cz, 4, &vrm));
    MN_GPU_TRY(mn_gpu_view(g, op, "running_var", running_var, cz, 4, &vrv));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, mc, 4, &vy));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    return mn_gpu_run(be, MN_GPU_BN_INFER, mc,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vy), MN_GA_P(vrm), MN_GA_P(vrv),
                                  MN_GA_P(vg), MN_GA_P(vb), MN_GA_F32(eps), MN_GA_U32(c),
                                  MN_GA_U32(mc)));
}

mn_status mn_gpu_batchnorm_backward(mn_backend *be, int m, int c, mn_view x, mn_view dy,
                                    mn_view gamma, mn_view save_mean, mn_view save_invstd,
                                    mn_view dx, mn_view dgamma, mn_view dbeta) {
    static const char op[] = "batchnorm_backward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vdy, vg, vsm, vsi, vdx, vdg, vdb;
    size_t mc;
    MN_GPU_TRY(mn_gpu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, mc, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "dy", dy, mc, 4, &vdy));
    MN_GPU_TRY(mn_gpu_view(g, op, "gamma", gamma, cz, 4, &vg));
    MN_GPU_TRY(mn_gpu_view(g, op, "save_mean", save_mean, cz, 4, &vsm));
    MN_GPU_TRY(mn_gpu_view(g, op, "save_invstd", save_invstd, cz, 4, &vsi));
    MN_GPU_TRY(mn_gpu_view(g, op, "dx", dx, mc, 4, &vdx));
    MN_GPU_TRY(mn_gpu_view(g, op, "dgamma", dgamma, cz, 4, &vdg));
    MN_GPU_TRY(mn_gpu_view(g, op, "dbeta", dbeta, cz, 4, &vdb));
    MN_GPU_TRY(mn_gpu_run_groups(be, MN_GPU_BN_BWD_SUMS, cz,
                                 MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vdy), MN_GA_P(vsm),
                                             MN_GA_P(vsi), MN_GA_U32(m), MN_GA_U32(c),
                                             MN_GA_P(vdg), MN_GA_P(vdb))));
    return mn_gpu_run(be, MN_GPU_BN_BWD_APPLY, mc,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vdy), MN_GA_P(vg), MN_GA_P(vsm),
                                  MN_GA_P(vsi), MN_GA_P(vdg), MN_GA_P(vdb), MN_GA_U32(m),
                                  MN_GA_U32(c), MN_GA_P(vdx), MN_GA_U32(mc)));
}

/* ---- ReLU ---- */

mn_status mn_gpu_relu_forward(mn_backend *be, size_t count, mn_view x, mn_view y) {
    static const char op[] = "relu_forward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vy;
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, count, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, count, 4, &vy));
    return mn_gpu_run(be, MN_GPU_RELU_FWD, count,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vy), MN_GA_U32(count)));
}

mn_status mn_gpu_relu_backward(mn_backend *be, size_t count, mn_view y, mn_view dy,
                               mn_view dx) {
    static const char op[] = "relu_backward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vy, vdy, vdx;
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, count, 4, &vy));
    MN_GPU_TRY(mn_gpu_view(g, op, "dy", dy, count, 4, &vdy));
    MN_GPU_TRY(mn_gpu_view(g, op, "dx", dx, count, 4, &vdx));
    return mn_gpu_run(be, MN_GPU_RELU_BWD, count,
                      MN_GPU_ARGS(MN_GA_P(vy), MN_GA_P(vdy), MN_GA_P(vdx), MN_GA_U32(count)));
}

/* ---- global average pool ---- */

mn_status mn_gpu_gap_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                             mn_view y) {
    static const char op[] = "gap_forward";
    mn_gpu *g = mn_gpu_of(be);
    int dims[4] = {n, h, w, c};
    size_t nx;
    mn_gpu_ptr vx, vy;
    MN_GPU_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, nx, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, (size_t)n * (size_t)c, 4, &vy));
    const size_t ny = (size_t)n * (size_t)c;
    return mn_gpu_run(be, MN_GPU_GAP_FWD, ny,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vy),
                                  MN_GA_U32((size_t)h * (size_t)w), MN_GA_U32(c), MN_GA_U32(ny)));
}

mn_status mn_gpu_gap_backward(mn_backend *be, int n, int h, int w, int c, mn_view dy,
                              mn_view dx) {
    static const char op[] = "gap_backward";
    mn_gpu *g = mn_gpu_of(be);
    int dims[4] = {n, h, w, c};
    size_t nx;
    mn_gpu_ptr vdy, vdx;
    MN_GPU_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_GPU_TRY(mn_gpu_view(g, op, "dy", dy, (size_t)n * (size_t)c, 4, &vdy));
    MN_GPU_TRY(mn_gpu_view(g, op, "dx", dx, nx, 4, &vdx));
    return mn_gpu_run(be, MN_GPU_GAP_BWD, nx,
                      MN_GPU_ARGS(MN_GA_P(vdy), MN_GA_P(vdx),
                                  MN_GA_U32((size_t)h * (size_t)w), MN_GA_U32(c), MN_GA_U32(nx)));
}

/* ---- dropout ---- */

mn_status mn_gpu_dropout_forward(mn_backend *be, size_t count, float rate, uint64_t seed,
                                 mn_view x, mn_view mask, mn_view y) {
    static const char op[] = "dropout_forward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vm, vy;
    if (!(rate >= 0.0f && rate < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: rate must be in [0, 1) (got %g)", op,
                            rate);
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, count, 4, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "mask", mask, count, 4, &vm));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, count, 4, &vy));
    /* keep <=> (z >> 11) * 2^-53 >= rate <=> (z >> 11) >= ceil(rate * 2^53), exactly */
    const uint64_t thr = (uint64_t)ceil((double)rate * 9007199254740992.0);
    const float keep_scale = 1.0f / (1.0f - rate);
    return mn_gpu_run(be, MN_GPU_DROPOUT_FWD, count,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_P(vm), MN_GA_P(vy), MN_GA_U64(seed),
                                  MN_GA_U64(thr), MN_GA_F32(keep_scale), MN_GA_U32(count)));
}

mn_status mn_gpu_dropout_backward(mn_backend *be, size_t count, mn_view mask, mn_view dy,
                                  mn_view dx) {
    static const char op[] = "dropout_backward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vm, vdy, vdx;
    MN_GPU_TRY(mn_gpu_view(g, op, "mask", mask, count, 4, &vm));
    MN_GPU_TRY(mn_gpu_view(g, op, "dy", dy, count, 4, &vdy));
    MN_GPU_TRY(mn_gpu_view(g, op, "dx", dx, count, 4, &vdx));
    return mn_gpu_run(be, MN_GPU_DROPOUT_BWD, count,
                      MN_GPU_ARGS(MN_GA_P(vm), MN_GA_P(vdy), MN_GA_P(vdx), MN_GA_U32(count)));
}

/* ---- Adam ---- */

mn_status mn_gpu_adam_step(mn_backend *be, size_t count, mn_view param, mn_view grad,
                           mn_view m, mn_view v, float lr, float beta1, float beta2,
                           float eps, int step) {
    static const char op[] = "adam_step";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vp, vg, vm, vv;
    MN_GPU_TRY(mn_gpu_view(g, op, "param", param, count, 4, &vp));
    MN_GPU_TRY(mn_gpu_view(g, op, "grad", grad, count, 4, &vg));
    MN_GPU_TRY(mn_gpu_view(g, op, "m", m, count, 4, &vm));
    MN_GPU_TRY(mn_gpu_view(g, op, "v", v, count, 4, &vv));
    if (step < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: step must be >= 1 (got %d)", op, step);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: beta1 and beta2 must be in [0, 1) (got %g, %g)", op, beta1,
                            beta2);
    /* the bias corrections folded into the step size in double, as on the CPU */
    const float lr_t = (float)((double)lr * sqrt(1.0 - pow((double)beta2, step)) /
                               (1.0 - pow((double)beta1, step)));
    return mn_gpu_run(be, MN_GPU_ADAM, count,
                      MN_GPU_ARGS(MN_GA_P(vp), MN_GA_P(vg), MN_GA_P(vm), MN_GA_P(vv),
                                  MN_GA_F32(lr_t), MN_GA_F32(beta1), MN_GA_F32(beta2),
                                  MN_GA_F32(1.0f - beta1), MN_GA_F32(1.0f - beta2), MN_GA_F32(eps),
                                  MN_GA_U32(count)));
}

/* ---- uint8 to float ---- */

mn_status mn_gpu_scale_u8(mn_backend *be, size_t count, mn_view x_u8, float scale,
                          mn_view y) {
    static const char op[] = "scale_u8";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr vx, vy;
    MN_GPU_TRY(mn_gpu_view(g, op, "x_u8", x_u8, count, 1, &vx));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, count, 4, &vy));
    return mn_gpu_run(be, MN_GPU_SCALE_U8, count,
                      MN_GPU_ARGS(MN_GA_P(vx), MN_GA_F32(scale), MN_GA_P(vy), MN_GA_U32(count)));
}

/* ---- dense ----
 *   forward:  y = x W^T (GEMM N,T), then + b per row
 *   backward: dx = dy W (GEMM N,N), dW = dy^T x (GEMM T,N), db = column sums of dy
 * These ops take no workspace (a temp buffer the backend's BLAS wants is its business). */

static mn_status mn_gpu_dense_dims(const char *op, int n, int in, int out) {
    int dims[3] = {n, in, out};
    size_t t;
    return mn_backend_dims(op, "n, in, out", dims, 3, 0, &t);
}

mn_status mn_gpu_dense_forward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                               mn_view b, mn_view y) {
    static const char op[] = "dense_forward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr px, pw, pb, py;
    MN_GPU_TRY(mn_gpu_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, nz * iz, 4, &px));
    MN_GPU_TRY(mn_gpu_view(g, op, "w", w, oz * iz, 4, &pw));
    MN_GPU_TRY(mn_gpu_view_opt(g, op, "b", b, oz, 4, &pb));
    MN_GPU_TRY(mn_gpu_view(g, op, "y", y, nz * oz, 4, &py));
    MN_GPU_TRY(g->dev->gemm(be, op, 0, 1, nz, oz, iz, px, iz, pw, iz, py, oz));
    if (!b.buf) return MN_OK;
    return mn_gpu_bias_rows(be, py, pb, nz, oz);
}

mn_status mn_gpu_dense_backward(mn_backend *be, int n, int in, int out, mn_view x, mn_view w,
                                mn_view dy, mn_view dx, mn_view dw, mn_view db) {
    static const char op[] = "dense_backward";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr px, pw, pdy, pdx, pdw, pdb;
    MN_GPU_TRY(mn_gpu_dense_dims(op, n, in, out));
    const size_t nz = (size_t)n, iz = (size_t)in, oz = (size_t)out;
    MN_GPU_TRY(mn_gpu_view(g, op, "x", x, nz * iz, 4, &px));
    MN_GPU_TRY(mn_gpu_view(g, op, "w", w, oz * iz, 4, &pw));
    MN_GPU_TRY(mn_gpu_view(g, op, "dy", dy, nz * oz, 4, &pdy));
    MN_GPU_TRY(mn_gpu_view_opt(g, op, "dx", dx, nz * iz, 4, &pdx));
    MN_GPU_TRY(mn_gpu_view(g, op, "dw", dw, oz * iz, 4, &pdw));
    MN_GPU_TRY(mn_gpu_view_opt(g, op, "db", db, oz, 4, &pdb));
    if (dx.buf) MN_GPU_TRY(g->dev->gemm(be, op, 0, 0, nz, iz, oz, pdy, oz, pw, iz, pdx, iz));
    MN_GPU_TRY(g->dev->gemm(be, op, 1, 0, oz, iz, nz, pdy, oz, px, iz, pdw, iz));
    if (!db.buf) return MN_OK;
    return mn_gpu_colsum(be, pdy, nz, oz, pdb);
}

/* ---- softmax cross-entropy ---- */

mn_status mn_gpu_softmax_xent(mn_backend *be, int n, int classes, mn_view logits,
                              mn_view labels, float grad_scale, mn_view probs, mn_view loss,
                              mn_view dlogits) {
    static const char op[] = "softmax_xent";
    mn_gpu *g = mn_gpu_of(be);
    mn_gpu_ptr pl, plab, pp, ploss, pdl;
    int dims[2] = {n, classes};
    size_t nc;
    MN_GPU_TRY(mn_backend_dims(op, "n, classes", dims, 2, 0, &nc));
    MN_GPU_TRY(mn_gpu_view(g, op, "logits", logits, nc, 4, &pl));
    MN_GPU_TRY(mn_gpu_view(g, op, "labels", labels, (size_t)n, sizeof(int32_t), &plab));
    MN_GPU_TRY(mn_gpu_view(g, op, "probs", probs, nc, 4, &pp));
    MN_GPU_TRY(mn_gpu_view(g, op, "loss", loss, (size_t)n, 4, &ploss));
    MN_GPU_TRY(mn_gpu_view_opt(g, op, "dlogits", dlogits, nc, 4, &pdl));
    /* Labels are checked before anything is written, so a bad batch leaves no half result
     * behind: they are read back (n ints; the queue is waited for). A captured graph of a
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
    const int has_dl = dlogits.buf != NULL;
    if (!has_dl) pdl = pp; /* a valid buffer for the unused argument */
    return mn_gpu_run(be, MN_GPU_SOFTMAX_XENT, (size_t)n,
                      MN_GPU_ARGS(MN_GA_P(pl), MN_GA_P(plab), MN_GA_F32(grad_scale),
                                  MN_GA_P(pp), MN_GA_P(ploss), MN_GA_P(pdl), MN_GA_I32(has_dl),
                                  MN_GA_U32(classes), MN_GA_U32(n)));
}
