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
 * acc[t][i][0..cout) vectors accumulated over the rows in pixel order.
 * The vectorised side must be a multiple of 4 channels (mn_cpu_conv_direct checks); the
 * kernels are written once (cpu_conv_direct_kern.h) for vectors of 8 and of 4 floats. */
#include "cpu_internal.h"

#include <string.h>

/* The vector helpers below are static inline: no vector crosses this file's boundary, so the
 * ABI note compilers give for 32-byte vectors on targets without AVX (a portable x86-64
 * build, clang's ThreadSanitizer build, aarch64) does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define MN_INLINE static inline __attribute__((always_inline))

/* Eight and four floats: GCC's generic vectors compile to AVX, SSE or NEON as the target
 * has. Multiply and add stay two roundings (no contraction in ISO C mode), like scalar
 * code. Loads and stores go through memcpy, so no alignment is assumed. The kernels use
 * eight where the vectorised side is a multiple of 8 channels, four otherwise. */
typedef float mn_v8 __attribute__((vector_size(32)));
typedef float mn_v4 __attribute__((vector_size(16)));
MN_INLINE mn_v8 mn_v8_load(const float *p) {
    mn_v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
MN_INLINE void mn_v8_store(float *p, mn_v8 v) { memcpy(p, &v, sizeof v); }
MN_INLINE mn_v4 mn_v4_load(const float *p) {
    mn_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}
MN_INLINE void mn_v4_store(float *p, mn_v4 v) { memcpy(p, &v, sizeof v); }

/* ---- the dot kernels' lane sum, the same for both widths ---- */

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

#define MN_VW 8
#define MN_V mn_v8
#define MN_V_LOAD mn_v8_load
#define MN_V_STORE mn_v8_store
#define MN_K(name) name##_v8
#include "cpu_conv_direct_kern.h"
#undef MN_VW
#undef MN_V
#undef MN_V_LOAD
#undef MN_V_STORE
#undef MN_K
#define MN_VW 4
#define MN_V mn_v4
#define MN_V_LOAD mn_v4_load
#define MN_V_STORE mn_v4_store
#define MN_K(name) name##_v4
#include "cpu_conv_direct_kern.h"
#undef MN_VW
#undef MN_V
#undef MN_V_LOAD
#undef MN_V_STORE
#undef MN_K



/* ---- entry points: constant channel counts for the shapes of the search space let the
 * compiler keep the accumulators in registers ---- */

void mn_cpu_direct_wide(const float *in, int h, int w, int cin, int cout, const float *wt,
                        const float *bias, size_t g0, size_t g1, float *out) {
#define MN_WIDE_CASE(CI, CO, V)                                                           \
    if (cin == CI && cout == CO) {                                                        \
        mn_wide_rows_##V(in, h, w, CI, CO, wt, bias, g0, g1, out);                        \
        return;                                                                           \
    }
    MN_WIDE_CASE(1, 8, v8) MN_WIDE_CASE(1, 16, v8) MN_WIDE_CASE(3, 8, v8)
    MN_WIDE_CASE(3, 16, v8) MN_WIDE_CASE(3, 32, v8) MN_WIDE_CASE(4, 8, v8)
    MN_WIDE_CASE(1, 4, v4) MN_WIDE_CASE(3, 4, v4) MN_WIDE_CASE(2, 4, v4)
#undef MN_WIDE_CASE
    if (cout % 8 == 0) mn_wide_rows_v8(in, h, w, cin, cout, wt, bias, g0, g1, out);
    else mn_wide_rows_v4(in, h, w, cin, cout, wt, bias, g0, g1, out);
}

void mn_cpu_direct_dot(const float *in, int h, int w, int cin, int cout, const float *wmat,
                       const float *bias, size_t g0, size_t g1, float *out) {
#define MN_DOT_CASE(CI, CO, V)                                                            \
    if (cin == CI && cout == CO) {                                                        \
        mn_dot_rows_##V(in, h, w, CI, CO, wmat, bias, g0, g1, out);                       \
        return;                                                                           \
    }
    MN_DOT_CASE(8, 1, v8) MN_DOT_CASE(16, 1, v8) MN_DOT_CASE(8, 3, v8)
    MN_DOT_CASE(16, 3, v8) MN_DOT_CASE(8, 4, v8) MN_DOT_CASE(4, 3, v4) MN_DOT_CASE(4, 1, v4)
#undef MN_DOT_CASE
    if (cin % 8 == 0) mn_dot_rows_v8(in, h, w, cin, cout, wmat, bias, g0, g1, out);
    else mn_dot_rows_v4(in, h, w, cin, cout, wmat, bias, g0, g1, out);
}

void mn_cpu_direct_dw(const float *x, const float *dy, int h, int w, int cin, int cout,
                      size_t g0, size_t g1, float *part) {
#define MN_DW_CASE(CI, CO, V)                                                             \
    if (cin == CI && cout == CO) {                                                        \
        mn_dw_rows_##V(x, dy, h, w, CI, CO, g0, g1, part);                                \
        return;                                                                           \
    }
    MN_DW_CASE(1, 8, v8) MN_DW_CASE(1, 16, v8) MN_DW_CASE(3, 8, v8) MN_DW_CASE(3, 16, v8)
    MN_DW_CASE(4, 8, v8) MN_DW_CASE(1, 4, v4) MN_DW_CASE(3, 4, v4)
#undef MN_DW_CASE
    if (cout % 8 == 0) mn_dw_rows_v8(x, dy, h, w, cin, cout, g0, g1, part);
    else mn_dw_rows_v4(x, dy, h, w, cin, cout, g0, g1, part);
}
