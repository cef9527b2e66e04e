/* mcunas CUDA kernels: what cuDNN and cuBLAS do not do for the cuda backend
 * (src/backend/cuda/). Compiled by nvcc to PTX (plus optional SASS) and embedded in the
 * binary; the driver JITs the PTX for the device it runs on. Plain C++ with `extern "C"`
 * names, so the host finds each kernel by name with cuModuleGetFunction.
 * Conventions:
 *  - pointers arrive already offset to the view; sizes and indices are unsigned int (the
 *    host refuses tensors of 2^32 elements or more);
 *  - one thread per output element unless said otherwise; the host rounds the grid up,
 *    so every kernel returns early past its count;
 *  - no atomics and no reductions across blocks: each sum has one fixed order (a
 *    Kahan-compensated loop per thread, then a fixed binary tree in shared memory), so
 *    the same inputs give the same bits on the same device. nvcc is run with
 *    -fmad=false, so no multiply-add is contracted behind the code's back (as the
 *    OpenCL kernels' FP_CONTRACT OFF).
 * MN_CU_RED (a power of two) is the block size of the reduction kernels; the host uses
 * the same value (cu_internal.h). */
#include <stdint.h>

#define MN_CU_RED 128

#define MN_CU_INDEX() (blockIdx.x * blockDim.x + threadIdx.x)

struct mn_kahan {
    float s, c;
};

__device__ static inline void kahan_add(mn_kahan *k, float v) {
    float y = v - k->c;
    float t = k->s + y;
    k->c = (t - k->s) - y;
    k->s = t;
}

/* Sums `v` over the block (MN_CU_RED threads) in a fixed tree; every thread gets it. */
__device__ static inline float block_sum(float *buf, float v) {
    const unsigned lid = threadIdx.x;
    buf[lid] = v;
    __syncthreads();
    for (unsigned step = MN_CU_RED / 2; step > 0; step >>= 1) {
        if (lid < step) buf[lid] = buf[lid] + buf[lid + step];
        __syncthreads();
    }
    const float r = buf[0];
    __syncthreads();
    return r;
}

extern "C" {

/* y[r][j] += b[j]. */
__global__ void mn_bias_rows(float *y, const float *b, unsigned cols, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    y[i] = y[i] + b[i % cols];
}

/* dst[j] = sum over rows r of src[r][j]; one block per column j. */
__global__ void mn_colsum(const float *src, unsigned rows, unsigned cols, float *dst) {
    __shared__ float buf[MN_CU_RED];
    const unsigned j = blockIdx.x, lid = threadIdx.x;
    mn_kahan k = {0.0f, 0.0f};
    for (unsigned r = lid; r < rows; r += MN_CU_RED) kahan_add(&k, src[(size_t)r * cols + j]);
    const float s = block_sum(buf, k.s - k.c);
    if (lid == 0) dst[j] = s;
}

/* ---- direct 3x3 'same' convolution: the fallback where cuDNN offers no deterministic
 * algorithm (or MN_CUDA_CONV=direct asks for it). x: [N][H][W][C], w: [K][3][3][C]
 * (OHWI), y: [N][H][W][K]. Each output is one thread's sum in a fixed order. ---- */

/* y[n][i][j][k] = sum_{ky,kx,c} x[n][i+ky-1][j+kx-1][c] w[k][ky][kx][c]; count = N*H*W*K. */
__global__ void mn_conv_fwd_direct(const float *x, const float *w, float *y, unsigned h,
                                   unsigned wd, unsigned c, unsigned k, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned o = i % k, p = i / k, col = p % wd, r = p / wd, row = r % h, n = r / h;
    float acc = 0.0f;
    for (int ky = 0; ky < 3; ky++) {
        const int iy = (int)row + ky - 1;
        if (iy < 0 || iy >= (int)h) continue;
        for (int kx = 0; kx < 3; kx++) {
            const int ix = (int)col + kx - 1;
            if (ix < 0 || ix >= (int)wd) continue;
            const float *xp = x + (((size_t)n * h + iy) * wd + ix) * c;
            const float *wp = w + ((size_t)o * 9 + ky * 3 + kx) * c;
            for (unsigned ch = 0; ch < c; ch++) acc += xp[ch] * wp[ch];
        }
    }
    y[i] = acc;
}

/* dx[n][i][j][c] = sum_{ky,kx,k} dy[n][i-ky+1][j-kx+1][k] w[k][ky][kx][c];
 * count = N*H*W*C. */
__global__ void mn_conv_bwd_data_direct(const float *dy, const float *w, float *dx, unsigned h,
                                        unsigned wd, unsigned c, unsigned k, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned ch = i % c, p = i / c, col = p % wd, r = p / wd, row = r % h, n = r / h;
    float acc = 0.0f;
    for (int ky = 0; ky < 3; ky++) {
        const int oy = (int)row - ky + 1;
        if (oy < 0 || oy >= (int)h) continue;
        for (int kx = 0; kx < 3; kx++) {
            const int ox = (int)col - kx + 1;
            if (ox < 0 || ox >= (int)wd) continue;
            const float *gp = dy + (((size_t)n * h + oy) * wd + ox) * k;
            for (unsigned o = 0; o < k; o++)
                acc += gp[o] * w[((size_t)o * 9 + ky * 3 + kx) * c + ch];
        }
    }
    dx[i] = acc;
}

/* One block per weight (k, ky, kx, c): dw = sum over all output pixels of
 * dy[.][k] * x[shifted][c], Kahan per thread then the fixed tree. */
__global__ void mn_conv_bwd_filter_direct(const float *x, const float *dy, float *dw,
                                          unsigned n, unsigned h, unsigned wd, unsigned c,
                                          unsigned k) {
    __shared__ float buf[MN_CU_RED];
    const unsigned e = blockIdx.x, lid = threadIdx.x;
    const unsigned ch = e % c, t = (e / c) % 9, o = e / (9 * c);
    const int ky = (int)(t / 3), kx = (int)(t % 3);
    const unsigned pix = n * h * wd;
    mn_kahan acc = {0.0f, 0.0f};
    for (unsigned p = lid; p < pix; p += MN_CU_RED) {
        const unsigned col = p % wd, r = p / wd, row = r % h, img = r / h;
        const int iy = (int)row + ky - 1, ix = (int)col + kx - 1;
        if (iy < 0 || iy >= (int)h || ix < 0 || ix >= (int)wd) continue;
        kahan_add(&acc, dy[(size_t)p * k + o] * x[(((size_t)img * h + iy) * wd + ix) * c + ch]);
    }
    const float s = block_sum(buf, acc.s - acc.c);
    if (lid == 0) dw[e] = s;
}

/* ---- 2x2 max pool ---- */

__global__ void mn_maxpool2_fwd(const float *x, float *y, unsigned h, unsigned w, unsigned c,
                                unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned ho = h / 2, wo = w / 2;
    const unsigned ch = i % c, r = i / c, j = r % wo, r2 = r / wo, oi = r2 % ho, n = r2 / ho;
    const unsigned a = ((n * h + 2 * oi) * w + 2 * j) * c + ch;
    float best = x[a];
    if (x[a + c] > best) best = x[a + c];
    if (x[a + w * c] > best) best = x[a + w * c];
    if (x[a + w * c + c] > best) best = x[a + w * c + c];
    y[i] = best;
}

/* One thread per window writes its four dx values: the pick (the first value equal to
 * the pooled one in row-major order, or the forward's choice where none is: NaN) gets
 * dy, the others 0. Rows and columns dropped by the floor are zeroed by the host. */
__global__ void mn_maxpool2_bwd(const float *x, const float *y, const float *dy, float *dx,
                                unsigned h, unsigned w, unsigned c, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned ho = h / 2, wo = w / 2;
    const unsigned ch = i % c, r = i / c, oj = r % wo, r2 = r / wo, oi = r2 % ho, n = r2 / ho;
    const unsigned a = ((n * h + 2 * oi) * w + 2 * oj) * c + ch;
    const unsigned idx[4] = {a, a + c, a + w * c, a + w * c + c};
    float v[4];
    for (int t = 0; t < 4; t++) v[t] = x[idx[t]];
    const float yv = y[i];
    int pick = -1;
    for (int t = 0; t < 4 && pick < 0; t++)
        if (v[t] == yv) pick = t;
    if (pick < 0) {
        pick = 0;
        for (int t = 1; t < 4; t++)
            if (v[t] > v[pick]) pick = t;
    }
    const float g = dy[i];
    for (int t = 0; t < 4; t++) dx[idx[t]] = t == pick ? g : 0.0f;
}

/* ---- batch norm over x[m][c] ---- */

/* One block per channel j: batch mean and biased variance (two passes), saved mean and
 * 1/sqrt(var+eps), and the Keras running-statistics update with the unbiased variance
 * (m/(m-1); one row has none and keeps the zero batch variance), as the CPU backend. */
__global__ void mn_bn_stats(const float *x, unsigned m, unsigned c, float *rmean, float *rvar,
                            float momentum, float eps, float *smean, float *sinv) {
    __shared__ float buf[MN_CU_RED];
    const unsigned j = blockIdx.x, lid = threadIdx.x;
    mn_kahan k = {0.0f, 0.0f};
    for (unsigned r = lid; r < m; r += MN_CU_RED) kahan_add(&k, x[(size_t)r * c + j]);
    const float mean = block_sum(buf, k.s - k.c) / (float)m;
    mn_kahan k2 = {0.0f, 0.0f};
    for (unsigned r = lid; r < m; r += MN_CU_RED) {
        const float d = x[(size_t)r * c + j] - mean;
        kahan_add(&k2, d * d);
    }
    const float var = block_sum(buf, k2.s - k2.c) / (float)m;
    if (lid == 0) {
        const float unbias = m > 1 ? (float)m / (float)(m - 1) : 1.0f;
        smean[j] = mean;
        sinv[j] = 1.0f / sqrtf(var + eps);
        rmean[j] = momentum * rmean[j] + (1.0f - momentum) * mean;
        rvar[j] = momentum * rvar[j] + (1.0f - momentum) * (var * unbias);
    }
}

/* y = (x - mean) * (invstd * gamma) + beta with the given per-channel mean and invstd. */
__global__ void mn_bn_apply(const float *x, float *y, const float *mean, const float *inv,
                            const float *gamma, const float *beta, unsigned c,
                            unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned j = i % c;
    y[i] = (x[i] - mean[j]) * (inv[j] * gamma[j]) + beta[j];
}

/* Inference: y = (x - running_mean) * gamma / sqrt(running_var + eps) + beta. */
__global__ void mn_bn_infer(const float *x, float *y, const float *rmean, const float *rvar,
                            const float *gamma, const float *beta, float eps, unsigned c,
                            unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned j = i % c;
    const float scale = gamma[j] / sqrtf(rvar[j] + eps);
    y[i] = (x[i] - rmean[j]) * scale + beta[j];
}

/* One block per channel: dbeta = sum dy, dgamma = sum dy * xhat. */
__global__ void mn_bn_bwd_sums(const float *x, const float *dy, const float *mean,
                               const float *inv, unsigned m, unsigned c, float *dgamma,
                               float *dbeta) {
    __shared__ float buf[MN_CU_RED];
    const unsigned j = blockIdx.x, lid = threadIdx.x;
    const float mu = mean[j], is = inv[j];
    mn_kahan a = {0.0f, 0.0f}, b = {0.0f, 0.0f};
    for (unsigned r = lid; r < m; r += MN_CU_RED) {
        const size_t e = (size_t)r * c + j;
        const float g = dy[e];
        kahan_add(&a, g);
        kahan_add(&b, g * ((x[e] - mu) * is));
    }
    const float sdy = block_sum(buf, a.s - a.c);
    const float sdyx = block_sum(buf, b.s - b.c);
    if (lid == 0) {
        dbeta[j] = sdy;
        dgamma[j] = sdyx;
    }
}

/* dx = gamma * invstd / m * (m dy - dbeta - xhat dgamma). */
__global__ void mn_bn_bwd_apply(const float *x, const float *dy, const float *gamma,
                                const float *mean, const float *inv, const float *dgamma,
                                const float *dbeta, unsigned m, unsigned c, float *dx,
                                unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned j = i % c;
    const float fm = (float)m;
    const float xhat = (x[i] - mean[j]) * inv[j];
    const float k = gamma[j] * inv[j] / fm;
    dx[i] = k * ((fm * dy[i] - dbeta[j]) - xhat * dgamma[j]);
}

/* ---- elementwise ---- */

__global__ void mn_relu_fwd(const float *x, float *y, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const float v = x[i];
    y[i] = v > 0.0f ? v : 0.0f;
}

__global__ void mn_relu_bwd(const float *y, const float *dy, float *dx, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* y[n][ch] = mean of x[n][.][.][ch]; one thread per (n, ch). */
__global__ void mn_gap_fwd(const float *x, float *y, unsigned hw, unsigned c, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned n = i / c, ch = i - n * c;
    mn_kahan k = {0.0f, 0.0f};
    for (unsigned p = 0; p < hw; p++) kahan_add(&k, x[((size_t)n * hw + p) * c + ch]);
    y[i] = (k.s - k.c) / (float)hw;
}

__global__ void mn_gap_bwd(const float *dy, float *dx, unsigned hw, unsigned c, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const unsigned ch = i % c, n = i / (hw * c);
    dx[i] = dy[n * c + ch] / (float)hw;
}

/* mn_dropout_keep of include/mcunas/backend.h: u = (z >> 11) * 2^-53 >= rate, written as
 * (z >> 11) >= thr with thr = ceil(rate * 2^53) computed by the host (exact, so the mask
 * is bit-for-bit the CPU's without doubles on the device). */
__global__ void mn_dropout_fwd(const float *x, float *mask, float *y, uint64_t seed,
                               uint64_t thr, float keep_scale, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * ((uint64_t)i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float mv = (z >> 11) >= thr ? keep_scale : 0.0f;
    const float xv = x[i];
    mask[i] = mv;
    y[i] = xv * mv;
}

__global__ void mn_dropout_bwd(const float *mask, const float *dy, float *dx, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    dx[i] = dy[i] * mask[i];
}

/* Keras's Adam with the bias corrections folded into lr_t by the host. */
__global__ void mn_adam(float *p, const float *g, float *m, float *v, float lr_t, float beta1,
                        float beta2, float c1, float c2, float eps, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    const float gv = g[i];
    const float mv = beta1 * m[i] + c1 * gv;
    const float vv = beta2 * v[i] + c2 * gv * gv;
    m[i] = mv;
    v[i] = vv;
    p[i] = p[i] - lr_t * mv / (sqrtf(vv) + eps);
}

__global__ void mn_scale_u8(const unsigned char *x, float scale, float *y, unsigned count) {
    const unsigned i = MN_CU_INDEX();
    if (i >= count) return;
    y[i] = (float)x[i] * scale;
}

/* One thread per sample: probs = softmax(l), loss = log(sum exp(l - max)) -
 * (l[label] - max); dl = (probs - onehot) * scale when has_dl (dl is then a valid
 * pointer; otherwise it is any pointer and unused), as mcunas.cl's. */
__global__ void mn_softmax_xent(const float *l, const int *labels, float scale, float *probs,
                                float *loss, float *dl, int has_dl, unsigned classes,
                                unsigned n) {
    const unsigned i = MN_CU_INDEX();
    if (i >= n) return;
    const float *li = l + (size_t)i * classes;
    float mx = li[0];
    for (unsigned j = 1; j < classes; j++)
        if (li[j] > mx) mx = li[j];
    mn_kahan k = {0.0f, 0.0f};
    for (unsigned j = 0; j < classes; j++) kahan_add(&k, expf(li[j] - mx));
    const float sum = k.s - k.c;
    const int label = labels[i];
    for (unsigned j = 0; j < classes; j++) {
        const float p = expf(li[j] - mx) / sum;
        probs[(size_t)i * classes + j] = p;
        if (has_dl)
            dl[(size_t)i * classes + j] = (p - (j == (unsigned)label ? 1.0f : 0.0f)) * scale;
    }
    loss[i] = logf(sum) - (li[label] - mx);
}

} /* extern "C" */
