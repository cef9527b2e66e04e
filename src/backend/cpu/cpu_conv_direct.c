/* Direct 3x3 'same' convolution kernels for narrow tensors, where im2col + sgemm is slow:
 * with 1-4 channels on one side the im2col matrix has 9-36 columns (or the GEMM 1-4
 * output columns), so copying and packing cost more than the multiply-adds. These kernels
 * read the NHWC tensor in place instead.
 *
 * Both gathers compute out[p][o] = sum over taps t = ky*3+kx inside the image, in t order,
 * of sum_i in[p + off(t)][i] * wmat[o][t*cin + i] for the flattened output rows [g0, g1)
 * (g = n*H + y). A pixel's sum is always formed in the same order whichever path (edge or
 * 4-pixel interior block) computes it, so results depend on the inputs only.
 *   wide (cin <= 4):  vectorised over the cout outputs, one accumulator vector a pixel,
 *                     4 pixels at once for independent chains. Weights as wt[t][i][o].
 *   dot (cout <= 4):  vectorised over the cin inputs: acc[o][0..cin) collects the
 *                     products of all taps lane by lane, then a fixed halving tree adds
 *                     the lanes up.
 * dW of a narrow input: part[o][t*cin + i] = sum_p dy[p][o] * in[p + off(t)][i], with
 * acc[t][i][0..cout) vectors accumulated over the rows in pixel order. */
#include "cpu_internal.h"

#include <string.h>

#define MN_INLINE static inline __attribute__((always_inline))

/* Eight floats: GCC's generic vectors compile to AVX, SSE or NEON as the target has.
 * Multiply and add stay two roundings (no contraction in ISO C mode), like the scalar
 * code. Loads and stores go through memcpy, so no alignment is assumed. */
typedef float mn_v8 __attribute__((vector_size(32)));
MN_INLINE mn_v8 mn_v8_load(const float *p) {
    mn_v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
MN_INLINE void mn_v8_store(float *p, mn_v8 v) { memcpy(p, &v, sizeof v); }

/* ---- wide: few input channels, vectorised over the outputs ---- */

/* acc[o] += sum_i in_px[i] * wt[i][o] for one tap. */
MN_INLINE void mn_wide_tap(const float *restrict px, const float *restrict wt, int cin,
                           int cout, float *restrict acc) {
    for (int i = 0; i < cin; i++) {
        const float v = px[i];
        const float *wr = wt + (size_t)i * (size_t)cout;
        for (int o = 0; o < cout; o += 8)
            mn_v8_store(acc + o, mn_v8_load(acc + o) + v * mn_v8_load(wr + o));
    }
}

/* One output pixel (x, y) of image `img`, taps bounds-checked. */
MN_INLINE void mn_wide_px(const float *img, int h, int w, int cin, int cout,
                          const float *wt, const float *bias, int y, int x, float *out) {
    float acc[MN_CPU_DIRECT_WIDE_MAX];
    for (int o = 0; o < cout; o++) acc[o] = bias ? bias[o] : 0.0f;
    for (int ky = 0; ky < 3; ky++) {
        const int iy = y + ky - 1;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < 3; kx++) {
            const int ix = x + kx - 1;
            if (ix < 0 || ix >= w) continue;
            mn_wide_tap(img + ((size_t)iy * (size_t)w + (size_t)ix) * (size_t)cin,
                        wt + (size_t)(ky * 3 + kx) * (size_t)cin * (size_t)cout, cin, cout,
                        acc);
        }
    }
    memcpy(out, acc, (size_t)cout * sizeof(float));
}

/* Four interior pixels x..x+3 (1 <= x, x+3 <= w-2) of row y: every kx tap is inside. */
MN_INLINE void mn_wide_px4(const float *img, int h, int w, int cin, int cout,
                           const float *wt, const float *bias, int y, int x, float *out) {
    mn_v8 a[4][MN_CPU_DIRECT_WIDE_MAX / 8];
    const int nv = cout / 8;
    for (int j = 0; j < nv; j++)
        a[0][j] = a[1][j] = a[2][j] = a[3][j] = bias ? mn_v8_load(bias + 8 * j) : (mn_v8){0};
    const size_t cz = (size_t)cin;
    for (int ky = 0; ky < 3; ky++) {
        const int iy = y + ky - 1;
        if (iy < 0 || iy >= h) continue;
        const float *r = img + ((size_t)iy * (size_t)w + (size_t)(x - 1)) * cz;
        for (int kx = 0; kx < 3; kx++) {
            const float *wtap = wt + (size_t)(ky * 3 + kx) * cz * (size_t)cout;
            const float *p = r + (size_t)kx * cz;
            for (int i = 0; i < cin; i++) {
                const float v0 = p[i], v1 = p[cz + i], v2 = p[2 * cz + i], v3 = p[3 * cz + i];
                const float *wr = wtap + (size_t)i * (size_t)cout;
                for (int j = 0; j < nv; j++) {
                    const mn_v8 wv = mn_v8_load(wr + 8 * j);
                    a[0][j] += v0 * wv;
                    a[1][j] += v1 * wv;
                    a[2][j] += v2 * wv;
                    a[3][j] += v3 * wv;
                }
            }
        }
    }
    for (int q = 0; q < 4; q++)
        for (int j = 0; j < nv; j++) mn_v8_store(out + (size_t)q * (size_t)cout + 8 * j, a[q][j]);
}

MN_INLINE void mn_wide_rows(const float *in, int h, int w, int cin, int cout,
                            const float *wt, const float *bias, size_t g0, size_t g1,
                            float *out) {
    const size_t plane = (size_t)h * (size_t)w * (size_t)cin, oz = (size_t)cout;
    for (size_t g = g0; g < g1; g++) {
        const float *img = in + g / (size_t)h * plane;
        const int y = (int)(g % (size_t)h);
        float *orow = out + g * (size_t)w * oz;
        int x = 0;
        mn_wide_px(img, h, w, cin, cout, wt, bias, y, x++, orow);
        for (; x + 4 <= w - 1; x += 4)
            mn_wide_px4(img, h, w, cin, cout, wt, bias, y, x, orow + (size_t)x * oz);
        for (; x < w; x++)
            mn_wide_px(img, h, w, cin, cout, wt, bias, y, x, orow + (size_t)x * oz);
    }
}

void mn_cpu_direct_wide(const float *in, int h, int w, int cin, int cout, const float *wt,
                        const float *bias, size_t g0, size_t g1, float *out) {
    /* Constant channel counts let the compiler keep the accumulators in registers. */
#define MN_WIDE_CASE(CI, CO)                                                              \
    if (cin == CI && cout == CO) {                                                        \
        mn_wide_rows(in, h, w, CI, CO, wt, bias, g0, g1, out);                            \
        return;                                                                           \
    }
    MN_WIDE_CASE(1, 8) MN_WIDE_CASE(1, 16) MN_WIDE_CASE(3, 8) MN_WIDE_CASE(3, 16)
    MN_WIDE_CASE(3, 32) MN_WIDE_CASE(1, 32)
#undef MN_WIDE_CASE
    mn_wide_rows(in, h, w, cin, cout, wt, bias, g0, g1, out);
}

/* ---- dot: few output channels, vectorised over the inputs ---- */

/* a[0] = sum of a[0..n) by a fixed tree: halves added while n is even, then in order. */
MN_INLINE float mn_dot_hsum(float *a, int n) {
    while (n > 1 && n % 2 == 0) {
        n /= 2;
        for (int i = 0; i < n; i++) a[i] += a[i + n];
    }
    float s = a[0];
    for (int i = 1; i < n; i++) s += a[i];
    return s;
}

/* out[0..cout) for pixel (x, y): acc[o] += in[nb][i..i+8) * wmat[o][t*cin + i..] lane by
 * lane, then the vectors and their lanes are added by a fixed tree. */
MN_INLINE void mn_dot_px(const float *img, int h, int w, int cin, int cout,
                         const float *wmat, const float *bias, int y, int x, float *out) {
    mn_v8 acc[MN_CPU_DIRECT_NARROW_MAX][MN_CPU_DIRECT_WIDE_MAX / 8];
    const size_t cz = (size_t)cin, row = 9 * cz;
    const int nv = cin / 8;
    for (int o = 0; o < cout; o++)
        for (int j = 0; j < nv; j++) acc[o][j] = (mn_v8){0};
    for (int ky = 0; ky < 3; ky++) {
        const int iy = y + ky - 1;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < 3; kx++) {
            const int ix = x + kx - 1;
            if (ix < 0 || ix >= w) continue;
            const float *p = img + ((size_t)iy * (size_t)w + (size_t)ix) * cz;
            const size_t t = (size_t)(ky * 3 + kx) * cz;
            for (int j = 0; j < nv; j++) {
                const mn_v8 pv = mn_v8_load(p + 8 * j);
                for (int o = 0; o < cout; o++)
                    acc[o][j] += pv * mn_v8_load(wmat + (size_t)o * row + t + 8 * (size_t)j);
            }
        }
    }
    for (int o = 0; o < cout; o++) {
        int n = nv;
        while (n > 1 && n % 2 == 0) {
            n /= 2;
            for (int j = 0; j < n; j++) acc[o][j] += acc[o][j + n];
        }
        mn_v8 v = acc[o][0];
        for (int j = 1; j < n; j++) v += acc[o][j];
        float lanes[8];
        mn_v8_store(lanes, v);
        const float sum = mn_dot_hsum(lanes, 8);
        out[o] = bias ? bias[o] + sum : sum;
    }
}

MN_INLINE void mn_dot_rows(const float *in, int h, int w, int cin, int cout,
                           const float *wmat, const float *bias, size_t g0, size_t g1,
                           float *out) {
    const size_t plane = (size_t)h * (size_t)w * (size_t)cin, oz = (size_t)cout;
    for (size_t g = g0; g < g1; g++) {
        const float *img = in + g / (size_t)h * plane;
        const int y = (int)(g % (size_t)h);
        float *orow = out + g * (size_t)w * oz;
        for (int x = 0; x < w; x++)
            mn_dot_px(img, h, w, cin, cout, wmat, bias, y, x, orow + (size_t)x * oz);
    }
}

void mn_cpu_direct_dot(const float *in, int h, int w, int cin, int cout, const float *wmat,
                       const float *bias, size_t g0, size_t g1, float *out) {
#define MN_DOT_CASE(CI, CO)                                                               \
    if (cin == CI && cout == CO) {                                                        \
        mn_dot_rows(in, h, w, CI, CO, wmat, bias, g0, g1, out);                                 \
        return;                                                                           \
    }
    MN_DOT_CASE(8, 1) MN_DOT_CASE(16, 1) MN_DOT_CASE(8, 3) MN_DOT_CASE(16, 3)
    MN_DOT_CASE(32, 3) MN_DOT_CASE(32, 1)
#undef MN_DOT_CASE
    mn_dot_rows(in, h, w, cin, cout, wmat, bias, g0, g1, out);
}

/* ---- dW of a narrow input ---- */

MN_INLINE void mn_dw_rows(const float *x, const float *dy, int h, int w, int cin, int cout,
                          size_t g0, size_t g1, float *part) {
    mn_v8 acc[9 * MN_CPU_DIRECT_NARROW_MAX * MN_CPU_DIRECT_WIDE_MAX / 8];
    mn_v8 d[MN_CPU_DIRECT_WIDE_MAX / 8];
    const size_t cz = (size_t)cin, oz = (size_t)cout, plane = (size_t)h * (size_t)w * cz;
    const int nv = cout / 8;
    for (size_t j = 0; j < 9 * cz * (size_t)nv; j++) acc[j] = (mn_v8){0};
    for (size_t g = g0; g < g1; g++) {
        const float *img = x + g / (size_t)h * plane;
        const int y = (int)(g % (size_t)h);
        const float *drow = dy + g * (size_t)w * oz;
        for (int px = 0; px < w; px++) {
            for (int j = 0; j < nv; j++) d[j] = mn_v8_load(drow + (size_t)px * oz + 8 * j);
            for (int ky = 0; ky < 3; ky++) {
                const int iy = y + ky - 1;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < 3; kx++) {
                    const int ix = px + kx - 1;
                    if (ix < 0 || ix >= w) continue;
                    const float *p = img + ((size_t)iy * (size_t)w + (size_t)ix) * cz;
                    mn_v8 *a = acc + (size_t)(ky * 3 + kx) * cz * (size_t)nv;
                    for (int i = 0; i < cin; i++)
                        for (int j = 0; j < nv; j++) a[i * nv + j] += p[i] * d[j];
                }
            }
        }
    }
    for (size_t ti = 0; ti < 9 * cz; ti++)
        for (int j = 0; j < nv; j++)
            for (int l = 0; l < 8; l++) part[(size_t)(8 * j + l) * 9 * cz + ti] = acc[ti * (size_t)nv + (size_t)j][l];
}

void mn_cpu_direct_dw(const float *x, const float *dy, int h, int w, int cin, int cout,
                      size_t g0, size_t g1, float *part) {
#define MN_DW_CASE(CI, CO)                                                                \
    if (cin == CI && cout == CO) {                                                        \
        mn_dw_rows(x, dy, h, w, CI, CO, g0, g1, part);                                    \
        return;                                                                           \
    }
    MN_DW_CASE(1, 8) MN_DW_CASE(1, 16) MN_DW_CASE(3, 8) MN_DW_CASE(3, 16)
#undef MN_DW_CASE
    mn_dw_rows(x, dy, h, w, cin, cout, g0, g1, part);
}
