/* mcunas OpenCL kernels (OpenCL C 1.2), one program for all of them so that a device
 * compiles it once. Conventions (src/backend/opencl/):
 *  - every tensor is a buffer plus an offset in elements (`xo`), so one cl_mem holds many;
 *  - sizes and indices are uint (the host refuses tensors of 2^32 elements or more),
 *    offsets ulong; one work-item per output element unless said otherwise, and the
 *    host rounds the global size up: every kernel returns early past its count;
 *  - no atomics and no reductions across work-groups: each sum has one fixed order
 *    (a Kahan-compensated loop per work-item, then a fixed binary tree in local memory),
 *    so the same inputs give the same bits on the same device.
 * MN_RED_WG (a power of two) is the work-group size of the reduction kernels; the host
 * passes it as a build option. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef MN_RED_WG
#define MN_RED_WG 64
#endif

/* ---- compensated sums ---- */

typedef struct {
    float s, c;
} mn_kahan;

inline void kahan_add(mn_kahan *k, float v) {
    float y = v - k->c;
    float t = k->s + y;
    k->c = (t - k->s) - y;
    k->s = t;
}

/* Sums `v` over the work-group (MN_RED_WG items) in a fixed tree; every item gets it. */
inline float group_sum(__local float *buf, float v) {
    const uint lid = get_local_id(0);
    buf[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = MN_RED_WG / 2; step > 0; step >>= 1) {
        if (lid < step) buf[lid] = buf[lid] + buf[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = buf[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* ---- convolution helpers ---- */

/* col[p][(ky*3+kx)*C + ch] = in[n][y+ky-1][x+kx-1][ch] (0 outside the image) for the
 * flattened output rows g = n*H + y in [g0, g0 + rows), p = (g - g0)*W + x. One work-item
 * per (p, tap) copies the tap's C channels (count = rows*W*9). */
__kernel void mn_im2col(__global const float *in, ulong ino, __global float *col, ulong colo,
                        uint h, uint w, uint c, uint g0, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint p = i / 9, t = i - p * 9;
    const uint gr = p / w, x = p - gr * w, g = g0 + gr;
    const uint n = g / h, y = g - n * h;
    const int iy = (int)y + (int)(t / 3) - 1, ix = (int)x + (int)(t % 3) - 1;
    __global float *dst = col + colo + (ulong)p * 9 * c + t * c;
    if (iy >= 0 && iy < (int)h && ix >= 0 && ix < (int)w) {
        __global const float *src = in + ino + ((n * h + (uint)iy) * w + (uint)ix) * c;
        for (uint ch = 0; ch < c; ch++) dst[ch] = src[ch];
    } else {
        for (uint ch = 0; ch < c; ch++) dst[ch] = 0.0f;
    }
}

/* The conv weights as the right-hand GEMM operand [9*cin][cout] of the forward gather:
 * flip = 0 (forward): wt[t*C + ch][o] = w[o][t][ch], the transpose of OHWI;
 * flip = 1 (backward data): wt[t*K + o][ch] = w[o][8-t][ch], the flipped kernel that
 * maps dy back onto x. w: [K][9][C]; count = 9*K*C. */
__kernel void mn_conv_flip(__global const float *wsrc, ulong wo, __global float *wt,
                           ulong wto, uint k, uint c, int flip) {
    const uint i = (uint)get_global_id(0);
    if (i >= 9 * k * c) return;
    if (flip) {
        const uint ch = i % c, r = i / c, o = r % k, t = r / k;
        wt[wto + i] = wsrc[wo + (o * 9 + (8 - t)) * c + ch];
    } else {
        const uint o = i % k, q = i / k; /* q = t*C + ch */
        wt[wto + i] = wsrc[wo + o * 9 * c + q];
    }
}

/* y[r][j] += b[j] for r < rows, j < cols. */
__kernel void mn_bias_rows(__global float *y, ulong yo, __global const float *b, ulong bo,
                           uint cols, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    y[yo + i] = y[yo + i] + b[bo + i % cols];
}

/* dst[j] = sum over rows r of src[r][j]; one work-group per column j. */
__kernel void mn_colsum(__global const float *src, ulong so, uint rows, uint cols,
                        __global float *dst, ulong dso) {
    __local float buf[MN_RED_WG];
    const uint j = (uint)get_group_id(0);
    const uint lid = get_local_id(0);
    mn_kahan k = {0.0f, 0.0f};
    for (uint r = lid; r < rows; r += MN_RED_WG) kahan_add(&k, src[so + r * cols + j]);
    const float s = group_sum(buf, k.s - k.c);
    if (lid == 0) dst[dso + j] = s;
}

/* ---- 2x2 max pool ---- */

__kernel void mn_maxpool2_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                              uint h, uint w, uint c, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint ho = h / 2, wo = w / 2;
    const uint ch = i % c, r = i / c, j = r % wo, r2 = r / wo, oi = r2 % ho, n = r2 / ho;
    const uint a = xo + ((n * h + 2 * oi) * w + 2 * j) * c + ch;
    float best = x[a];
    if (x[a + c] > best) best = x[a + c];
    if (x[a + w * c] > best) best = x[a + w * c];
    if (x[a + w * c + c] > best) best = x[a + w * c + c];
    y[yo + i] = best;
}

/* One work-item per window (count = N*(H/2)*(W/2)*C) writes its four dx values: the pick
 * (the first value equal to the pooled one in row-major order, or the forward's choice
 * where none is) gets dy, the others 0. Rows and columns dropped by the floor are zeroed
 * by the host (a fill) before this runs. */
__kernel void mn_maxpool2_bwd(__global const float *x, ulong xo, __global const float *y,
                              ulong yo, __global const float *dy, ulong dyo,
                              __global float *dx, ulong dxo, uint h, uint w, uint c,
                              uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint ho = h / 2, wo = w / 2;
    const uint ch = i % c, r = i / c, oj = r % wo, r2 = r / wo, oi = r2 % ho, n = r2 / ho;
    const uint a = ((n * h + 2 * oi) * w + 2 * oj) * c + ch;
    const uint idx[4] = {a, a + c, a + w * c, a + w * c + c};
    float v[4];
    for (int t = 0; t < 4; t++) v[t] = x[xo + idx[t]];
    const float yv = y[yo + i];
    int pick = -1;
    for (int t = 0; t < 4 && pick < 0; t++)
        if (v[t] == yv) pick = t;
    if (pick < 0) {
        pick = 0;
        for (int t = 1; t < 4; t++)
            if (v[t] > v[pick]) pick = t;
    }
    const float g = dy[dyo + i];
    for (int t = 0; t < 4; t++) dx[dxo + idx[t]] = t == pick ? g : 0.0f;
}

/* ---- batch norm over x[m][c] ---- */

/* One work-group per channel j: batch mean and biased variance (two passes), saved
 * mean and 1/sqrt(var+eps), and the Keras running-statistics update. */
__kernel void mn_bn_stats(__global const float *x, ulong xo, uint m, uint c,
                          __global float *rmean, ulong rmo, __global float *rvar, ulong rvo,
                          float momentum, float eps, __global float *smean, ulong smo,
                          __global float *sinv, ulong sio) {
    __local float buf[MN_RED_WG];
    const uint j = (uint)get_group_id(0);
    const uint lid = get_local_id(0);
    mn_kahan k = {0.0f, 0.0f};
    for (uint r = lid; r < m; r += MN_RED_WG) kahan_add(&k, x[xo + r * c + j]);
    const float mean = group_sum(buf, k.s - k.c) / (float)m;
    mn_kahan k2 = {0.0f, 0.0f};
    for (uint r = lid; r < m; r += MN_RED_WG) {
        const float d = x[xo + r * c + j] - mean;
        kahan_add(&k2, d * d);
    }
    const float var = group_sum(buf, k2.s - k2.c) / (float)m;
    if (lid == 0) {
        const float unbias = m > 1 ? (float)m / (float)(m - 1) : 1.0f;
        smean[smo + j] = mean;
        sinv[sio + j] = 1.0f / sqrt(var + eps);
        rmean[rmo + j] = momentum * rmean[rmo + j] + (1.0f - momentum) * mean;
        rvar[rvo + j] = momentum * rvar[rvo + j] + (1.0f - momentum) * (var * unbias);
    }
}

/* y = (x - mean) * (invstd * gamma) + beta with the given per-channel mean and invstd. */
__kernel void mn_bn_apply(__global const float *x, ulong xo, __global float *y, ulong yo,
                          __global const float *mean, ulong mo, __global const float *inv,
                          ulong io, __global const float *gamma, ulong go,
                          __global const float *beta, ulong bo, uint c, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint j = i % c;
    y[yo + i] = (x[xo + i] - mean[mo + j]) * (inv[io + j] * gamma[go + j]) + beta[bo + j];
}

/* Inference: y = (x - running_mean) * gamma / sqrt(running_var + eps) + beta. */
__kernel void mn_bn_infer(__global const float *x, ulong xo, __global float *y, ulong yo,
                          __global const float *rmean, ulong rmo, __global const float *rvar,
                          ulong rvo, __global const float *gamma, ulong go,
                          __global const float *beta, ulong bo, float eps, uint c,
                          uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint j = i % c;
    const float scale = gamma[go + j] / sqrt(rvar[rvo + j] + eps);
    y[yo + i] = (x[xo + i] - rmean[rmo + j]) * scale + beta[bo + j];
}

/* One work-group per channel: dbeta = sum dy, dgamma = sum dy * xhat. */
__kernel void mn_bn_bwd_sums(__global const float *x, ulong xo, __global const float *dy,
                             ulong dyo, __global const float *mean, ulong mo,
                             __global const float *inv, ulong io, uint m, uint c,
                             __global float *dgamma, ulong dgo, __global float *dbeta,
                             ulong dbo) {
    __local float buf[MN_RED_WG];
    const uint j = (uint)get_group_id(0);
    const uint lid = get_local_id(0);
    const float mu = mean[mo + j], is = inv[io + j];
    mn_kahan a = {0.0f, 0.0f}, b = {0.0f, 0.0f};
    for (uint r = lid; r < m; r += MN_RED_WG) {
        const float g = dy[dyo + r * c + j];
        kahan_add(&a, g);
        kahan_add(&b, g * ((x[xo + r * c + j] - mu) * is));
    }
    const float sdy = group_sum(buf, a.s - a.c);
    const float sdyx = group_sum(buf, b.s - b.c);
    if (lid == 0) {
        dbeta[dbo + j] = sdy;
        dgamma[dgo + j] = sdyx;
    }
}

/* dx = gamma * invstd / m * (m dy - dbeta - xhat dgamma). */
__kernel void mn_bn_bwd_apply(__global const float *x, ulong xo, __global const float *dy,
                              ulong dyo, __global const float *gamma, ulong go,
                              __global const float *mean, ulong mo, __global const float *inv,
                              ulong io, __global const float *dgamma, ulong dgo,
                              __global const float *dbeta, ulong dbo, uint m, uint c,
                              __global float *dx, ulong dxo, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint j = i % c;
    const float fm = (float)m;
    const float xhat = (x[xo + i] - mean[mo + j]) * inv[io + j];
    const float k = gamma[go + j] * inv[io + j] / fm;
    dx[dxo + i] = k * ((fm * dy[dyo + i] - dbeta[dbo + j]) - xhat * dgamma[dgo + j]);
}

/* ---- elementwise ---- */

__kernel void mn_relu_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                          uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const float v = x[xo + i];
    y[yo + i] = v > 0.0f ? v : 0.0f;
}

__kernel void mn_relu_bwd(__global const float *y, ulong yo, __global const float *dy,
                          ulong dyo, __global float *dx, ulong dxo, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    dx[dxo + i] = y[yo + i] > 0.0f ? dy[dyo + i] : 0.0f;
}

/* y[n][ch] = mean of x[n][.][.][ch]; one work-item per (n, ch). */
__kernel void mn_gap_fwd(__global const float *x, ulong xo, __global float *y, ulong yo,
                         uint hw, uint c, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint n = i / c, ch = i - n * c;
    mn_kahan k = {0.0f, 0.0f};
    for (uint p = 0; p < hw; p++) kahan_add(&k, x[xo + (n * hw + p) * c + ch]);
    y[yo + i] = (k.s - k.c) / (float)hw;
}

__kernel void mn_gap_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo,
                         uint hw, uint c, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const uint ch = i % c, n = i / (hw * c);
    dx[dxo + i] = dy[dyo + n * c + ch] / (float)hw;
}

/* mn_dropout_keep of include/mcunas/backend.h: u = (z >> 11) * 2^-53 >= rate, written as
 * (z >> 11) >= thr with thr = ceil(rate * 2^53) (exact, so no double is needed). */
__kernel void mn_dropout_fwd(__global const float *x, ulong xo, __global float *mask,
                             ulong mko, __global float *y, ulong yo, ulong seed, ulong thr,
                             float keep_scale, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    ulong z = seed + 0x9E3779B97F4A7C15UL * ((ulong)i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    z ^= z >> 31;
    const float mv = (z >> 11) >= thr ? keep_scale : 0.0f;
    const float xv = x[xo + i];
    mask[mko + i] = mv;
    y[yo + i] = xv * mv;
}

__kernel void mn_dropout_bwd(__global const float *mask, ulong mko, __global const float *dy,
                             ulong dyo, __global float *dx, ulong dxo, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    dx[dxo + i] = dy[dyo + i] * mask[mko + i];
}

/* Keras's Adam with the bias corrections folded into lr_t by the host. */
__kernel void mn_adam(__global float *p, ulong po, __global const float *g, ulong go,
                      __global float *m, ulong mo, __global float *v, ulong vo, float lr_t,
                      float beta1, float beta2, float c1, float c2, float eps, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    const float gv = g[go + i];
    const float mv = beta1 * m[mo + i] + c1 * gv;
    const float vv = beta2 * v[vo + i] + c2 * gv * gv;
    m[mo + i] = mv;
    v[vo + i] = vv;
    p[po + i] = p[po + i] - lr_t * mv / (sqrt(vv) + eps);
}

__kernel void mn_scale_u8(__global const uchar *x, ulong xo, float scale, __global float *y,
                          ulong yo, uint count) {
    const uint i = (uint)get_global_id(0);
    if (i >= count) return;
    y[yo + i] = (float)x[xo + i] * scale;
}

/* One work-item per sample: probs = softmax(l), loss = log(sum exp(l - max)) -
 * (l[label] - max); dl = (probs - onehot) * scale when has_dl. */
__kernel void mn_softmax_xent(__global const float *l, ulong lo, __global const int *labels,
                              ulong lao, float scale, __global float *probs, ulong po,
                              __global float *loss, ulong lso, __global float *dl, ulong dlo,
                              int has_dl, uint classes, uint n) {
    const uint i = (uint)get_global_id(0);
    if (i >= n) return;
    const uint b = lo + i * classes;
    float mx = l[b];
    for (uint j = 1; j < classes; j++)
        if (l[b + j] > mx) mx = l[b + j];
    mn_kahan k = {0.0f, 0.0f};
    for (uint j = 0; j < classes; j++) kahan_add(&k, exp(l[b + j] - mx));
    const float sum = k.s - k.c;
    const int label = labels[lao + i];
    for (uint j = 0; j < classes; j++) {
        const float p = exp(l[b + j] - mx) / sum;
        probs[po + i * classes + j] = p;
        if (has_dl) dl[dlo + i * classes + j] = (p - (j == (uint)label ? 1.0f : 0.0f)) * scale;
    }
    loss[lso + i] = log(sum) - (l[b + label] - mx);
}
