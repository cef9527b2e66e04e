/* 3x3 stride-1 'same' convolution on OpenCL: im2col kernel + CLBlast SGEMM.
 *
 * As on the CPU, the N*H output rows form one flattened range g = n*H + y, walked in
 * chunks of `rows` rows (the last may be shorter); a chunk's im2col matrix has rows*W
 * pixel rows and 9*C columns in OHWI order, about MN_OCL_COL_BYTES of it.
 *   forward:          y[chunk] = col(x) * Wt, then + b, Wt[9C][K] = W^T  (GEMM N,N)
 *   backward_data:    dx = the forward gather of dy with the flipped kernel as
 *                     Wt[(ky*3+kx)*K + k][c] = w[k][2-ky][2-kx][c]      (GEMM N,N)
 *   (N,N rather than N,T with W as it is: CLBlast's direct kernel ran 10-25% faster on
 *   PoCL for these skinny shapes in isolation, a few percent of a training step.)
 *   backward_weights: dW = sum over chunks, in order, of dy[chunk]^T col(x) (GEMM T,N,
 *                     beta 0 for the first chunk, 1 after); db = column sums of dy.
 * Every step is queued in order on one queue and each reduction has a fixed order, so
 * results are bit-identical run to run.
 *
 * Workspace (bytes from the view's offset, which must be a multiple of 4):
 *   [col: r64(rows*W*9*cc*4)] [Wt: r64(9*K*C*4), forward and backward_data]
 *   [slack to the device's sub-buffer alignment] [CLBlast temp buffer]
 * conv3x3_workspace_bytes = max over the three ops of col + kernel + temp + alignment,
 * temp being CLBlast's own bound for that op's largest GEMM at any offsets. None of it
 * grows when n shrinks (rows = min(N*H, fit) and the temp bound grow with the GEMM). */
#include "ocl_internal.h"

#include <limits.h>

/* Target size of one im2col matrix. */
#ifndef MN_OCL_COL_BYTES
#define MN_OCL_COL_BYTES ((size_t)8 << 20)
#endif

static size_t mn_ocl_r64(size_t b) { return (b + 63) / 64 * 64; }

typedef struct mn_ocl_conv_plan {
    size_t total;     /* N*H flattened rows */
    size_t rows;      /* rows per chunk */
    size_t cols;      /* 9 * channels gathered */
    size_t col_bytes; /* one chunk's im2col matrix, rounded to 64 */
    size_t kern_bytes;
    size_t temp_bytes; /* CLBlast's bound for the op's largest GEMM */
    size_t ws_bytes;   /* what the op needs of the workspace */
} mn_ocl_conv_plan;

enum { MN_CONV_FWD, MN_CONV_DATA, MN_CONV_WEIGHTS };

static mn_ocl_conv_plan mn_ocl_conv_plan_for(mn_ocl *o, const mn_conv_shape *s, int which) {
    mn_ocl_conv_plan p;
    const size_t cc = (size_t)(which == MN_CONV_DATA ? s->k : s->c);
    const size_t cout = (size_t)(which == MN_CONV_DATA ? s->c : s->k);
    p.total = (size_t)s->n * (size_t)s->h;
    p.cols = 9 * cc;
    const size_t row_bytes = (size_t)s->w * p.cols * sizeof(float);
    size_t fit = MN_OCL_COL_BYTES / row_bytes;
    if (fit < 1) fit = 1;
    p.rows = fit < p.total ? fit : p.total;
    p.col_bytes = mn_ocl_r64(p.rows * row_bytes);
    p.kern_bytes = which != MN_CONV_WEIGHTS ? mn_ocl_r64(9 * (size_t)s->k * (size_t)s->c * 4) : 0;
    const size_t m = p.rows * (size_t)s->w;
    if (which == MN_CONV_WEIGHTS)
        p.temp_bytes = mn_ocl_gemm_temp_bound(o, 1, 0, (size_t)s->k, p.cols, m);
    else
        p.temp_bytes = mn_ocl_gemm_temp_bound(o, 0, 0, m, cout, p.cols);
    p.ws_bytes = p.col_bytes + p.kern_bytes + (p.temp_bytes ? p.temp_bytes + o->sub_align : 0);
    return p;
}

static mn_status mn_ocl_conv_check(const char *op, const mn_conv_shape *s) {
    if (!s) return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument 's' is absent", op);
    int dims[5] = {s->n, s->h, s->w, s->c, s->k};
    size_t pix, ck, t;
    MN_GPU_TRY(mn_backend_dims(op, "n, h, w", dims, 3, 0, &pix));
    MN_GPU_TRY(mn_backend_dims(op, "c, k", dims + 3, 2, 0, &ck));
    const size_t cmax = (size_t)(s->c > s->k ? s->c : s->k);
    if (cmax > INT_MAX / 9 || __builtin_mul_overflow(pix, cmax, &t) ||
        __builtin_mul_overflow(t, (size_t)36, &t) ||
        __builtin_mul_overflow((size_t)s->w, cmax * 36, &t) ||
        __builtin_add_overflow(t, MN_OCL_COL_BYTES + 64, &t) ||
        __builtin_mul_overflow(ck, (size_t)72, &t))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: shape n=%d h=%d w=%d c=%d k=%d is too large", op, s->n, s->h,
                            s->w, s->c, s->k);
    return MN_OK;
}

size_t mn_ocl_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s) {
    mn_ocl *o = mn_ocl_impl(be);
    if (mn_ocl_conv_check("conv3x3_workspace_bytes", s) != MN_OK) return 0;
    size_t best = 0;
    for (int which = MN_CONV_FWD; which <= MN_CONV_WEIGHTS; which++) {
        size_t b = mn_ocl_conv_plan_for(o, s, which).ws_bytes;
        if (b > best) best = b;
    }
    return best;
}

/* The workspace for plan p: the col matrix and kernel as views, the temp region. */
typedef struct mn_ocl_conv_ws {
    mn_ocl_arg_view col, kern;
    mn_ocl_temp temp;
} mn_ocl_conv_ws;

static mn_status mn_ocl_conv_ws_resolve(mn_ocl *o, const char *op, mn_view ws,
                                        const mn_ocl_conv_plan *p, mn_ocl_conv_ws *out) {
    mn_ocl_arg_view all;
    MN_GPU_TRY(mn_ocl_view(o, op, "workspace", ws, p->ws_bytes, 1, &all));
    if (ws.offset % sizeof(float) != 0)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument 'workspace' offset %zu is not a multiple of 4", op,
                            ws.offset);
    out->col.mem = all.mem;
    out->col.off = ws.offset / sizeof(float);
    out->kern.mem = all.mem;
    out->kern.off = (ws.offset + p->col_bytes) / sizeof(float);
    out->temp.mem = NULL;
    out->temp.origin = out->temp.bytes = 0;
    if (p->temp_bytes) {
        const size_t start = ws.offset + p->col_bytes + p->kern_bytes;
        const size_t origin = (start + o->sub_align - 1) / o->sub_align * o->sub_align;
        out->temp.mem = all.mem;
        out->temp.origin = origin;
        out->temp.bytes = ws.offset + p->ws_bytes - origin;
    }
    return MN_OK;
}

/* out[n][y][x][o] = bias[o] + sum in[n][y+ky-1][x+kx-1][i] * wt[t*cin + i][o]. */
static mn_status mn_ocl_conv_gather(mn_backend *be, const char *op, const mn_ocl_conv_plan *p,
                                    int h, int w, int cin, int cout, mn_ocl_arg_view in,
                                    mn_ocl_arg_view wt, mn_ocl_arg_view bias,
                                    mn_ocl_arg_view out, const mn_ocl_conv_ws *ws) {
    mn_ocl *o = mn_ocl_impl(be);
    const size_t wz = (size_t)w, cz = (size_t)cout;
    for (size_t g0 = 0; g0 < p->total; g0 += p->rows) {
        const size_t g1 = g0 + p->rows < p->total ? g0 + p->rows : p->total;
        const size_t m = (g1 - g0) * wz;
        MN_GPU_TRY(mn_gpu_run(be, MN_GPU_IM2COL, m * 9,
                              MN_GPU_ARGS(MN_KVIEW(in), MN_KVIEW(ws->col), MN_GA_U32(h),
                                          MN_GA_U32(w), MN_GA_U32(cin), MN_GA_U32(g0),
                                          MN_GA_U32(m * 9))));
        mn_ocl_arg_view oc = {out.mem, out.off + g0 * wz * cz};
        MN_GPU_TRY(mn_ocl_gemm(o, op, 0, 0, m, cz, p->cols, ws->col, p->cols, wt, cz, 0.0f,
                               oc, cz, &ws->temp));
        if (bias.mem)
            MN_GPU_TRY(mn_gpu_bias_rows(be, mn_ocl_ptr(oc), mn_ocl_ptr(bias), m, cz));
    }
    return MN_OK;
}

mn_status mn_ocl_conv3x3_forward(mn_backend *be, const mn_conv_shape *s, mn_view x,
                                 mn_view w, mn_view b, mn_view y, mn_view workspace) {
    static const char op[] = "conv3x3_forward";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vw, vb, vy;
    mn_ocl_conv_ws ws;
    MN_GPU_TRY(mn_ocl_conv_check(op, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    MN_GPU_TRY(mn_ocl_view(o, op, "x", x, pix * (size_t)s->c, 4, &vx));
    MN_GPU_TRY(mn_ocl_view(o, op, "w", w, 9 * (size_t)s->k * (size_t)s->c, 4, &vw));
    MN_GPU_TRY(mn_ocl_view_opt(o, op, "b", b, (size_t)s->k, 4, &vb));
    MN_GPU_TRY(mn_ocl_view(o, op, "y", y, pix * (size_t)s->k, 4, &vy));
    mn_ocl_conv_plan p = mn_ocl_conv_plan_for(o, s, MN_CONV_FWD);
    MN_GPU_TRY(mn_ocl_conv_ws_resolve(o, op, workspace, &p, &ws));
    MN_GPU_TRY(mn_gpu_run(be, MN_GPU_CONV_FLIP, 9 * (size_t)s->k * (size_t)s->c,
                          MN_GPU_ARGS(MN_KVIEW(vw), MN_KVIEW(ws.kern), MN_GA_U32(s->k),
                                      MN_GA_U32(s->c), MN_GA_I32(0))));
    return mn_ocl_conv_gather(be, op, &p, s->h, s->w, s->c, s->k, vx, ws.kern, vb, vy, &ws);
}

mn_status mn_ocl_conv3x3_backward_data(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                       mn_view w, mn_view dx, mn_view workspace) {
    static const char op[] = "conv3x3_backward_data";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vdy, vw, vdx, none = {NULL, 0};
    mn_ocl_conv_ws ws;
    MN_GPU_TRY(mn_ocl_conv_check(op, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    MN_GPU_TRY(mn_ocl_view(o, op, "dy", dy, pix * (size_t)s->k, 4, &vdy));
    MN_GPU_TRY(mn_ocl_view(o, op, "w", w, 9 * (size_t)s->k * (size_t)s->c, 4, &vw));
    MN_GPU_TRY(mn_ocl_view(o, op, "dx", dx, pix * (size_t)s->c, 4, &vdx));
    mn_ocl_conv_plan p = mn_ocl_conv_plan_for(o, s, MN_CONV_DATA);
    MN_GPU_TRY(mn_ocl_conv_ws_resolve(o, op, workspace, &p, &ws));
    MN_GPU_TRY(mn_gpu_run(be, MN_GPU_CONV_FLIP, 9 * (size_t)s->k * (size_t)s->c,
                          MN_GPU_ARGS(MN_KVIEW(vw), MN_KVIEW(ws.kern), MN_GA_U32(s->k),
                                      MN_GA_U32(s->c), MN_GA_I32(1))));
    return mn_ocl_conv_gather(be, op, &p, s->h, s->w, s->k, s->c, vdy, ws.kern, none, vdx, &ws);
}

mn_status mn_ocl_conv3x3_backward_weights(mn_backend *be, const mn_conv_shape *s,
                                          mn_view x, mn_view dy, mn_view dw, mn_view db,
                                          mn_view workspace) {
    static const char op[] = "conv3x3_backward_weights";
    mn_ocl *o = mn_ocl_impl(be);
    mn_ocl_arg_view vx, vdy, vdw, vdb;
    mn_ocl_conv_ws ws;
    MN_GPU_TRY(mn_ocl_conv_check(op, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    const size_t kz = (size_t)s->k, wz = (size_t)s->w;
    MN_GPU_TRY(mn_ocl_view(o, op, "x", x, pix * (size_t)s->c, 4, &vx));
    MN_GPU_TRY(mn_ocl_view(o, op, "dy", dy, pix * kz, 4, &vdy));
    MN_GPU_TRY(mn_ocl_view(o, op, "dw", dw, 9 * kz * (size_t)s->c, 4, &vdw));
    MN_GPU_TRY(mn_ocl_view_opt(o, op, "db", db, kz, 4, &vdb));
    mn_ocl_conv_plan p = mn_ocl_conv_plan_for(o, s, MN_CONV_WEIGHTS);
    MN_GPU_TRY(mn_ocl_conv_ws_resolve(o, op, workspace, &p, &ws));
    float beta = 0.0f; /* the first chunk overwrites dW */
    for (size_t g0 = 0; g0 < p.total; g0 += p.rows) {
        const size_t g1 = g0 + p.rows < p.total ? g0 + p.rows : p.total;
        const size_t m = (g1 - g0) * wz;
        MN_GPU_TRY(mn_gpu_run(be, MN_GPU_IM2COL, m * 9,
                              MN_GPU_ARGS(MN_KVIEW(vx), MN_KVIEW(ws.col), MN_GA_U32(s->h),
                                          MN_GA_U32(s->w), MN_GA_U32(s->c), MN_GA_U32(g0),
                                          MN_GA_U32(m * 9))));
        mn_ocl_arg_view dyc = {vdy.mem, vdy.off + g0 * wz * kz};
        MN_GPU_TRY(mn_ocl_gemm(o, op, 1, 0, kz, p.cols, m, dyc, kz, ws.col, p.cols, beta, vdw,
                               p.cols, &ws.temp));
        beta = 1.0f;
    }
    if (vdb.mem)
        MN_GPU_TRY(mn_gpu_colsum(be, mn_ocl_ptr(vdy), pix, kz, mn_ocl_ptr(vdb)));
    return MN_OK;
}
