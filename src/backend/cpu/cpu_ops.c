/* Pooling, activation, dropout, optimiser and conversion ops on the CPU. These are
 * memory-bound loops: static OpenMP schedules over rows or elements, no reductions across
 * threads (GAP's sums stay inside one (image, channel block) item), so their results do
 * not even depend on the thread count. */
#include "cpu_internal.h"

#include <math.h>
#include <string.h>

/* ---- 2x2 max pool ---- */

/* y[n][i][j][ch] = max_{a,b in {0,1}} x[n][2i+a][2j+b][ch] (the first wins ties).
 * x: [N][H][W][C], y: [N][H/2][W/2][C]. */
mn_status mn_cpu_maxpool2_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                  mn_view y) {
    static const char op[] = "maxpool2_forward";
    float *px, *py;
    size_t nx, ny;
    MN_CPU_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, nx, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, ny, &py));
    const size_t ho = (size_t)(h / 2), wo = (size_t)(w / 2), cz = (size_t)c, wz = (size_t)w;
    const size_t rows = (size_t)n * ho;
#pragma omp parallel for num_threads(mn_cpu_slots(be, rows, 4 * wo * cz)) schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const size_t img = r / ho, i = r % ho;
        const float *x0 = px + ((img * (size_t)h + 2 * i) * wz) * cz, *x1 = x0 + wz * cz;
        float *yr = py + r * wo * cz;
        for (size_t j = 0; j < wo; j++)
            for (size_t ch = 0; ch < cz; ch++) {
                const size_t a = 2 * j * cz + ch, b = a + cz;
                float best = x0[a];
                if (x0[b] > best) best = x0[b];
                if (x1[a] > best) best = x1[a];
                if (x1[b] > best) best = x1[b];
                yr[j * cz + ch] = best;
            }
    }
    return MN_OK;
}

/* Which of a window's values v[0..3] (row-major) gets the gradient: the first equal to the
 * pooled value, or, where none is (NaN), the one the forward pass picks. */
static int mn_cpu_pool_pick(const float v[4], float y) {
    int best = 0;
    for (int t = 0; t < 4; t++)
        if (v[t] == y) return t;
    for (int t = 1; t < 4; t++)
        if (v[t] > v[best]) best = t;
    return best;
}

/* One output row i of image img: route dy to each window's first maximum (row-major) and
 * write 0 to the other three; zero what the floor dropped (last column of an odd width,
 * row 2i+2 when it is the last of an odd height). Branch-free so it vectorises over
 * channels: a data-dependent branch per element cost a misprediction each.
 * x, dx: [N][H][W][C]; y, dy: [N][H/2][W/2][C]. */
static void mn_cpu_pool_back_row(size_t img, size_t i, int h, int w, size_t cz,
                                 const float *x, const float *y, const float *dy, float *dx) {
    const size_t ho = (size_t)(h / 2), wo = (size_t)(w / 2), wz = (size_t)w;
    const size_t base = (img * (size_t)h + 2 * i) * wz * cz, orow = (img * ho + i) * wo * cz;
    const float *x0 = x + base, *x1 = x0 + wz * cz;
    float *d0 = dx + base, *d1 = d0 + wz * cz;
    int nan_seen = 0;
    for (size_t j = 0; j < wo; j++) {
        const float *a0 = x0 + 2 * j * cz, *b0 = a0 + cz, *a1 = x1 + 2 * j * cz, *b1 = a1 + cz;
        const float *yj = y + orow + j * cz, *gj = dy + orow + j * cz;
        float *da0 = d0 + 2 * j * cz, *db0 = da0 + cz, *da1 = d1 + 2 * j * cz, *db1 = da1 + cz;
        int miss = 0;
        /* The gradient walks the window in row-major order and stops at the first value
         * equal to the max: a chain of compare+blend, no branch, no integer logic. */
#pragma omp simd simdlen(8) reduction(| : miss)
        for (size_t ch = 0; ch < cz; ch++) {
            const float m = yj[ch], g0 = gj[ch];
            const int e0 = a0[ch] == m;
            const float g1 = e0 ? 0.0f : g0;
            const int e1 = b0[ch] == m;
            const float g2 = e1 ? 0.0f : g1;
            const int e2 = a1[ch] == m;
            const float g3 = e2 ? 0.0f : g2;
            const int e3 = b1[ch] == m;
            da0[ch] = e0 ? g0 : 0.0f;
            db0[ch] = e1 ? g1 : 0.0f;
            da1[ch] = e2 ? g2 : 0.0f;
            db1[ch] = e3 ? g3 : 0.0f;
            miss |= !(e0 | e1 | e2 | e3); /* only a NaN window matches nothing */
        }
        nan_seen |= miss;
    }
    if (nan_seen) { /* a NaN window: fall back to the forward pass's strict-max pick */
        for (size_t j = 0; j < wo; j++)
            for (size_t ch = 0; ch < cz; ch++) {
                const size_t a = 2 * j * cz + ch, b = a + cz;
                const float v[4] = {x0[a], x0[b], x1[a], x1[b]};
                float *dst[4] = {d0 + a, d0 + b, d1 + a, d1 + b};
                const size_t o = orow + j * cz + ch;
                for (int t = 0; t < 4; t++) *dst[t] = 0.0f;
                *dst[mn_cpu_pool_pick(v, y[o])] = dy[o];
            }
    }
    if (wz % 2) { /* the dropped last column of both rows */
        memset(d0 + 2 * wo * cz, 0, cz * sizeof(float));
        memset(d1 + 2 * wo * cz, 0, cz * sizeof(float));
    }
    if (i + 1 == ho && h % 2) memset(d1 + wz * cz, 0, wz * cz * sizeof(float));
}

mn_status mn_cpu_maxpool2_backward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                                   mn_view y, mn_view dy, mn_view dx) {
    static const char op[] = "maxpool2_backward";
    float *px, *py, *pdy, *pdx;
    size_t nx, ny;
    MN_CPU_TRY(mn_backend_pool_dims(op, n, h, w, c, &nx, &ny));
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, nx, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, ny, &py));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, ny, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "dx", dx, nx, &pdx));
    const size_t ho = (size_t)(h / 2), cz = (size_t)c;
    if (ny == 0) { /* h or w is 1: every input is dropped by the floor */
        memset(pdx, 0, nx * sizeof(float));
        return MN_OK;
    }
    const size_t rows = (size_t)n * ho;
    const int slots = mn_cpu_slots(be, rows, 8 * (size_t)w * cz);
#pragma omp parallel for num_threads(slots) schedule(static)
    for (size_t r = 0; r < rows; r++)
        mn_cpu_pool_back_row(r / ho, r % ho, h, w, cz, px, py, pdy, pdx);
    return MN_OK;
}

/* ---- ReLU ---- */

mn_status mn_cpu_relu_forward(mn_backend *be, size_t count, mn_view x, mn_view y) {
    static const char op[] = "relu_forward";
    float *px, *py;
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, count, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, count, &py));
#pragma omp parallel for num_threads(mn_cpu_slots(be, count, 1)) schedule(static)
    for (size_t i = 0; i < count; i++) py[i] = px[i] > 0.0f ? px[i] : 0.0f;
    return MN_OK;
}

mn_status mn_cpu_relu_backward(mn_backend *be, size_t count, mn_view y, mn_view dy,
                               mn_view dx) {
    static const char op[] = "relu_backward";
    float *py, *pdy, *pdx;
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, count, &py));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, count, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "dx", dx, count, &pdx));
#pragma omp parallel for num_threads(mn_cpu_slots(be, count, 1)) schedule(static)
    for (size_t i = 0; i < count; i++) {
        /* Both loads unconditional, so this compiles to a vector blend instead of a
         * branch that mispredicts on ReLU's random sign pattern. */
        const float g = pdy[i];
        pdx[i] = py[i] > 0.0f ? g : 0.0f;
    }
    return MN_OK;
}

/* ---- global average pool ---- */

/* Channels summed together per item: the block's double accumulators live on the stack. */
#define MN_CPU_GAP_BLOCK 64

/* y[img][c0+j] = mean over the h*w pixels of x[img][.][.][c0+j], j < cb. x: [N][HW][C]. */
static void mn_cpu_gap_block(const float *x, size_t hw, size_t cz, size_t img, size_t c0,
                             size_t cb, float *y) {
    double acc[MN_CPU_GAP_BLOCK] = {0};
    const float *src = x + img * hw * cz + c0;
    for (size_t p = 0; p < hw; p++)
        for (size_t j = 0; j < cb; j++) acc[j] += src[p * cz + j];
    for (size_t j = 0; j < cb; j++) y[img * cz + c0 + j] = (float)(acc[j] / (double)hw);
}

mn_status mn_cpu_gap_forward(mn_backend *be, int n, int h, int w, int c, mn_view x,
                             mn_view y) {
    static const char op[] = "gap_forward";
    int dims[4] = {n, h, w, c};
    size_t nx;
    float *px, *py;
    MN_CPU_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, nx, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, (size_t)n * (size_t)c, &py));
    const size_t cz = (size_t)c, hw = (size_t)h * (size_t)w;
    const size_t blocks = (cz + MN_CPU_GAP_BLOCK - 1) / MN_CPU_GAP_BLOCK;
    const size_t items = (size_t)n * blocks;
    const int slots = mn_cpu_slots(be, items, hw * MN_CPU_GAP_BLOCK);
#pragma omp parallel for num_threads(slots) schedule(static)
    for (size_t it = 0; it < items; it++) {
        const size_t c0 = it % blocks * MN_CPU_GAP_BLOCK;
        const size_t cb = cz - c0 < MN_CPU_GAP_BLOCK ? cz - c0 : MN_CPU_GAP_BLOCK;
        mn_cpu_gap_block(px, hw, cz, it / blocks, c0, cb, py);
    }
    return MN_OK;
}

/* dx[img][p][ch] = dy[img][ch] / (h*w). dy: [N][C], dx: [N][H][W][C]. */
mn_status mn_cpu_gap_backward(mn_backend *be, int n, int h, int w, int c, mn_view dy,
                              mn_view dx) {
    static const char op[] = "gap_backward";
    int dims[4] = {n, h, w, c};
    size_t nx;
    float *pdy, *pdx;
    MN_CPU_TRY(mn_backend_dims(op, "n, h, w, c", dims, 4, 0, &nx));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, (size_t)n * (size_t)c, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "dx", dx, nx, &pdx));
    const size_t cz = (size_t)c, wz = (size_t)w, rows = (size_t)n * (size_t)h;
    const float hw = (float)((double)h * (double)w);
#pragma omp parallel for num_threads(mn_cpu_slots(be, rows, wz * cz)) schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *g = pdy + r / (size_t)h * cz;
        float *d = pdx + r * wz * cz;
        for (size_t p = 0; p < wz; p++)
            for (size_t ch = 0; ch < cz; ch++) d[p * cz + ch] = g[ch] / hw;
    }
    return MN_OK;
}

/* ---- dropout ---- */

mn_status mn_cpu_dropout_forward(mn_backend *be, size_t count, float rate, uint64_t seed,
                                 mn_view x, mn_view mask, mn_view y) {
    static const char op[] = "dropout_forward";
    float *px, *pm, *py;
    if (!(rate >= 0.0f && rate < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: rate must be in [0, 1) (got %g)", op,
                            rate);
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, count, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "mask", mask, count, &pm));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, count, &py));
    const float keep_scale = 1.0f / (1.0f - rate);
#pragma omp parallel for num_threads(mn_cpu_slots(be, count, 8)) schedule(static)
    for (size_t i = 0; i < count; i++) {
        pm[i] = mn_dropout_keep(seed, (uint64_t)i, rate) ? keep_scale : 0.0f;
        py[i] = px[i] * pm[i];
    }
    return MN_OK;
}

mn_status mn_cpu_dropout_backward(mn_backend *be, size_t count, mn_view mask, mn_view dy,
                                  mn_view dx) {
    static const char op[] = "dropout_backward";
    float *pm, *pdy, *pdx;
    MN_CPU_TRY(mn_cpu_fview(op, "mask", mask, count, &pm));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, count, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "dx", dx, count, &pdx));
#pragma omp parallel for num_threads(mn_cpu_slots(be, count, 1)) schedule(static)
    for (size_t i = 0; i < count; i++) pdx[i] = pdy[i] * pm[i];
    return MN_OK;
}

/* ---- Adam ---- */

mn_status mn_cpu_adam_step(mn_backend *be, size_t count, mn_view param, mn_view grad,
                           mn_view m, mn_view v, float lr, float beta1, float beta2,
                           float eps, int step) {
    static const char op[] = "adam_step";
    float *pp, *pg, *pm, *pv;
    MN_CPU_TRY(mn_cpu_fview(op, "param", param, count, &pp));
    MN_CPU_TRY(mn_cpu_fview(op, "grad", grad, count, &pg));
    MN_CPU_TRY(mn_cpu_fview(op, "m", m, count, &pm));
    MN_CPU_TRY(mn_cpu_fview(op, "v", v, count, &pv));
    if (step < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: step must be >= 1 (got %d)", op, step);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: beta1 and beta2 must be in [0, 1) (got %g, %g)", op, beta1,
                            beta2);
    /* The bias corrections, folded into the step size in double (b^t underflows
     * gracefully for large t). */
    const float lr_t = (float)((double)lr * sqrt(1.0 - pow((double)beta2, step)) /
                               (1.0 - pow((double)beta1, step)));
    const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
#pragma omp parallel for num_threads(mn_cpu_slots(be, count, 8)) schedule(static)
    for (size_t i = 0; i < count; i++) {
        const float g = pg[i];
        pm[i] = beta1 * pm[i] + c1 * g;
        pv[i] = beta2 * pv[i] + c2 * g * g;
        pp[i] -= lr_t * pm[i] / (sqrtf(pv[i]) + eps);
    }
    return MN_OK;
}

/* ---- uint8 to float ---- */

mn_status mn_cpu_scale_u8(mn_backend *be, size_t count, mn_view x_u8, float scale,
                          mn_view y) {
    static const char op[] = "scale_u8";
    void *pv;
    float *py;
    MN_CPU_TRY(mn_cpu_view(op, "x_u8", x_u8, count, 1, &pv));
    const uint8_t *px = pv;
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, count, &py));
#pragma omp parallel for num_threads(mn_cpu_slots(be, count, 1)) schedule(static)
    for (size_t i = 0; i < count; i++) py[i] = (float)px[i] * scale;
    return MN_OK;
}
