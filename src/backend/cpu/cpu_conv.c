/* 3x3 stride-1 'same' convolution on the CPU: im2col + OpenBLAS sgemm, or direct kernels
 * (cpu_conv_direct.c) where one side has at most 4 channels and the other a multiple of 4
 * (the first layers: there im2col and skinny sgemms cost more than the arithmetic). The
 * direct kernels use the same chunks; they need no im2col matrices.
 *
 * Rows. The N*H output rows of a batch form one flattened range, g = n*H + y. It is split
 * into `chunks` contiguous blocks whose sizes differ by at most one row; the chunk count
 * comes from the shape alone (mn_cpu_chunks: at least MN_CPU_CONV_CHUNK_WORK flops and
 * MN_CPU_CONV_CHUNK_PIX pixels a chunk, at most MN_CPU_CHUNKS_MAX chunks), never from the
 * thread count, so every sgemm call and every partial sum is the same on 1 or 64 threads.
 * A team of min(threads, chunks) threads takes the chunks one at a time; each thread has
 * one im2col matrix and walks its chunk in pieces of `rows` rows. A piece's im2col matrix
 * has rows*W pixel rows and 9*C columns, column (ky*3+kx)*C + c, the OHWI order of one
 * weight row, so the weights [K][9C] are the GEMM's other operand as they are. `rows` is
 * chosen so that the matrix is about MN_CPU_COL_BYTES: im2col writes it and sgemm packs
 * it while it is still in cache. Pieces may straddle images; each pixel pads against its
 * own image.
 *
 * forward:          y[piece] = col(x) * W^T (+ b)            (sgemm N,T)
 * backward_weights: dW_chunk += dy[piece]^T * col(x)        (sgemm T,N), then dW = sum of
 *                   the chunk partials in chunk order (double); db likewise from double
 *                   column sums. One chunk writes dW directly.
 * backward_data:    dx is the 'same' convolution of dy with the transposed, flipped kernel
 *                   wt[c][ky][kx][k] = w[k][2-ky][2-kx][c], run with the forward's gather.
 *                   That is dcol = dy*W followed by col2im, summed in another order; as a
 *                   gather no two threads ever write one dx element whatever the chunking
 *                   (chunks need not own whole images, so N=1 still uses every thread),
 *                   and dx needs no zeroing pass.
 * Each sgemm runs inside an OpenMP region and so single-threaded (mn_cpu_blas_serial).
 *
 * Workspace, in bytes; Q = chunks, T = team = min(threads, Q) (1 for tiny convs);
 * r64(x) rounds x up to 64; rows(cc) = min(ceil(N*H/Q), max(1, MN_CPU_COL_BYTES /
 * (W*9*cc*4))); col(cc) = r64(rows(cc) * W * 9*cc * 4), or 0 where the op runs a direct
 * kernel:
 *   forward          = T * col(C)
 *   backward_data    = T * col(K) + r64(9*K*C*4)                       (flipped kernel)
 *   backward_weights = T * col(C) + Q * r64(K*8) + (Q > 1 ? Q * r64(9*K*C*4) : 0)
 *                                                                (db and dW partials)
 * Each op needs exactly its own size for its shape. A smaller batch can need more (fewer
 * chunks of more rows), so conv3x3_workspace_bytes reports the largest of the three over
 * every batch size up to N: a workspace planned for the full batch serves every partial
 * one, as backend.h requires.
 * Sub-buffers sit at multiples of 64 bytes from the workspace's start; the workspace view
 * must be 8-byte aligned (the db partials are doubles). */
#include "cpu_internal.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <string.h>

/* Target size of one im2col matrix: about half a typical per-core L2. (On a 2-core EPYC,
 * 256 KiB to 4 MiB timed the same within noise for c=8, k=16.) */
#ifndef MN_CPU_COL_BYTES
#define MN_CPU_COL_BYTES ((size_t)1 << 20)
#endif

/* Least work of one chunk, in flops: a chunk costs an sgemm call, a packing of the weights
 * and a partial to add. */
#define MN_CPU_CONV_CHUNK_WORK ((size_t)1 << 18)
/* Least pixels of one chunk: keeps the dW partials' sum (9*K*C adds a chunk) below 1/256
 * of the GEMM's 9*K*C multiply-adds a pixel, whatever K and C. */
#define MN_CPU_CONV_CHUNK_PIX ((size_t)256)

/* Elements of dW summed together by the partials' reduction (their double sums stay in
 * L1). */
#define MN_CPU_CONV_REDUCE_BLOCK ((size_t)512)

static size_t mn_cpu_r64(size_t bytes) { return (bytes + 63) / 64 * 64; }

/* How one conv op splits the batch (see the header comment). */
typedef struct mn_cpu_conv_plan {
    size_t total;     /* N*H flattened output rows */
    int chunks;       /* fixed row blocks, from the shape alone */
    int team;         /* threads sharing the chunks, one im2col matrix each */
    size_t rows;      /* rows per im2col matrix */
    size_t cols;      /* 9 * channels of the gathered tensor */
    size_t col_bytes; /* one im2col matrix, rounded to 64 */
} mn_cpu_conv_plan;

static size_t mn_cpu_ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* The shape's chunk count: at least MN_CPU_CONV_CHUNK_WORK flops and MN_CPU_CONV_CHUNK_PIX
 * pixels a chunk. Depends on N, H, W, C and K only (the same for all three ops) and never
 * decreases as N grows. */
static int mn_cpu_conv_chunks(const mn_conv_shape *s) {
    const size_t total = (size_t)s->n * (size_t)s->h, wz = (size_t)s->w;
    const size_t px_flops = 18 * (size_t)s->k * (size_t)s->c;
    const int by_work = mn_cpu_chunks(total, wz * px_flops, MN_CPU_CONV_CHUNK_WORK);
    const int by_pix = mn_cpu_chunks(total, wz, MN_CPU_CONV_CHUNK_PIX);
    return by_work < by_pix ? by_work : by_pix;
}

/* Which kernel a gather of cin input channels into cout outputs uses: the direct ones
 * where one side is narrow (see cpu_conv_direct.c), im2col + sgemm otherwise. */
enum { MN_CPU_CONV_GEMM = 0, MN_CPU_CONV_WIDE, MN_CPU_CONV_DOT };
static int mn_cpu_conv_direct(const mn_backend *be, int cin, int cout) {
    if (((const mn_cpu *)be->impl)->kernels < MN_CPU_KERNELS_DIRECT) return MN_CPU_CONV_GEMM;
    if (cin <= MN_CPU_DIRECT_NARROW_MAX && cout <= MN_CPU_DIRECT_WIDE_MAX && cout % 4 == 0)
        return MN_CPU_CONV_WIDE;
    if (cout <= MN_CPU_DIRECT_NARROW_MAX && cin <= MN_CPU_DIRECT_WIDE_MAX && cin % 4 == 0)
        return MN_CPU_CONV_DOT;
    return MN_CPU_CONV_GEMM;
}

/* Whether each op of a shape runs a direct kernel: forward gathers C into K, backward_data
 * K into C, backward_weights has a direct kernel for a narrow input only. */
#define MN_CPU_DIRECT_FWD(be, s) (mn_cpu_conv_direct(be, (s)->c, (s)->k) != MN_CPU_CONV_GEMM)
#define MN_CPU_DIRECT_DATA(be, s) (mn_cpu_conv_direct(be, (s)->k, (s)->c) != MN_CPU_CONV_GEMM)
#define MN_CPU_DIRECT_WEIGHTS(be, s)                                                      \
    (mn_cpu_conv_direct(be, (s)->c, (s)->k) == MN_CPU_CONV_WIDE)

/* Plan for gathering a tensor of `cc` channels; the shape has been checked. The team
 * depends on be->threads too. A direct kernel (`direct`) needs no im2col matrices. */
static mn_cpu_conv_plan mn_cpu_conv_plan_for(const mn_backend *be, const mn_conv_shape *s,
                                             int cc, int direct) {
    mn_cpu_conv_plan p;
    const size_t wz = (size_t)s->w;
    p.total = (size_t)s->n * (size_t)s->h;
    p.chunks = mn_cpu_conv_chunks(s);
    p.team = mn_cpu_team(be, p.chunks, p.total * wz * 18 * (size_t)s->k * (size_t)s->c);
    p.cols = 9 * (size_t)cc;
    const size_t per_chunk = mn_cpu_ceil_div(p.total, (size_t)p.chunks);
    const size_t row_bytes = wz * p.cols * sizeof(float);
    size_t fit = MN_CPU_COL_BYTES / row_bytes;
    if (fit < 1) fit = 1;
    p.rows = per_chunk < fit ? per_chunk : fit;
    p.col_bytes = direct ? 0 : mn_cpu_r64(p.rows * row_bytes);
    return p;
}

/* Checks a conv shape: every dimension >= 1, and every size this file computes from it
 * (tensors, im2col rows, GEMM dimensions, matrices for every thread, partials for every
 * chunk) fits its type. */
static mn_status mn_cpu_conv_check(const char *op, const mn_backend *be,
                                   const mn_conv_shape *s) {
    if (!s) return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument 's' is absent", op);
    int dims[5] = {s->n, s->h, s->w, s->c, s->k};
    size_t pix, ck, t, cols, parts;
    MN_CPU_TRY(mn_backend_dims(op, "n, h, w", dims, 3, 0, &pix));
    MN_CPU_TRY(mn_backend_dims(op, "c, k", dims + 3, 2, 0, &ck));
    const size_t cmax = (size_t)(s->c > s->k ? s->c : s->k);
    const size_t team_max =
        be->threads < MN_CPU_CHUNKS_MAX ? (size_t)be->threads : MN_CPU_CHUNKS_MAX;
    /* 9*max(c,k) is a GEMM dimension; N*H*W*9*max(c,k)*4 bounds every tensor (and
     * N*H*W*18*k*c the flops); team*(W*9*max(c,k)*4 + MN_CPU_COL_BYTES + 64) bounds the
     * im2col matrices and 9*c*k*8*(MN_CPU_CHUNKS_MAX+1) the kernel and the partials. */
    if (cmax > INT_MAX / 9 || __builtin_mul_overflow(pix, cmax, &t) ||
        __builtin_mul_overflow(t, (size_t)36, &t) ||
        __builtin_mul_overflow(pix, ck, &t) || __builtin_mul_overflow(t, (size_t)18, &t) ||
        __builtin_mul_overflow((size_t)s->w, cmax * 36, &cols) ||
        __builtin_add_overflow(cols, MN_CPU_COL_BYTES + 64, &cols) ||
        __builtin_mul_overflow(cols, team_max, &cols) ||
        __builtin_mul_overflow(ck, (size_t)72, &parts) ||
        __builtin_mul_overflow(parts, (size_t)MN_CPU_CHUNKS_MAX + 1, &parts) ||
        __builtin_add_overflow(cols, parts, &t))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: shape n=%d h=%d w=%d c=%d k=%d is too large", op, s->n, s->h,
                            s->w, s->c, s->k);
    return MN_OK;
}

/* Whether oneDNN runs an op: only where it would otherwise be im2col + sgemm, and oneDNN
 * has a primitive for it (*bytes: its workspace). */
static int mn_cpu_conv_dnnl(mn_backend *be, const mn_conv_shape *s, mn_cpu_dnnl_op op,
                            size_t *bytes) {
    const int direct =
        op == MN_CPU_DNNL_FORWARD ? MN_CPU_DIRECT_FWD(be, s) : MN_CPU_DIRECT_DATA(be, s);
    return !direct && mn_cpu_dnnl_workspace(be, s, op, bytes);
}

static size_t mn_cpu_conv_ws_forward(mn_backend *be, const mn_conv_shape *s) {
    size_t bytes;
    if (mn_cpu_conv_dnnl(be, s, MN_CPU_DNNL_FORWARD, &bytes)) return bytes;
    mn_cpu_conv_plan p = mn_cpu_conv_plan_for(be, s, s->c, MN_CPU_DIRECT_FWD(be, s));
    return (size_t)p.team * p.col_bytes;
}

static size_t mn_cpu_conv_kernel_bytes(const mn_conv_shape *s) {
    return mn_cpu_r64(9 * (size_t)s->k * (size_t)s->c * sizeof(float));
}

static size_t mn_cpu_conv_ws_data(mn_backend *be, const mn_conv_shape *s) {
    size_t bytes;
    if (mn_cpu_conv_dnnl(be, s, MN_CPU_DNNL_DATA, &bytes)) return bytes;
    mn_cpu_conv_plan p = mn_cpu_conv_plan_for(be, s, s->k, MN_CPU_DIRECT_DATA(be, s));
    return (size_t)p.team * p.col_bytes + mn_cpu_conv_kernel_bytes(s);
}

static size_t mn_cpu_conv_db_bytes(const mn_conv_shape *s) {
    return mn_cpu_r64((size_t)s->k * sizeof(double));
}

/* Bytes of dW partials: none when one chunk writes dW directly. */
static size_t mn_cpu_conv_part_bytes(const mn_cpu_conv_plan *p, const mn_conv_shape *s) {
    return p->chunks > 1 ? (size_t)p->chunks * mn_cpu_conv_kernel_bytes(s) : 0;
}

static size_t mn_cpu_conv_ws_weights(const mn_backend *be, const mn_conv_shape *s) {
    mn_cpu_conv_plan p = mn_cpu_conv_plan_for(be, s, s->c, MN_CPU_DIRECT_WEIGHTS(be, s));
    return (size_t)p.team * p.col_bytes + (size_t)p.chunks * mn_cpu_conv_db_bytes(s) +
           mn_cpu_conv_part_bytes(&p, s);
}

static size_t mn_cpu_conv_ws_any(mn_backend *be, const mn_conv_shape *s) {
    size_t a = mn_cpu_conv_ws_forward(be, s), b = mn_cpu_conv_ws_data(be, s);
    size_t c = mn_cpu_conv_ws_weights(be, s);
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* The most any batch of 1 to s->n images needs. While the chunk count stays the same, the
 * need grows with the batch (longer chunks, maybe a larger team); it drops only where the
 * chunk count steps up. So the most is the need at s->n or at the last batch before one
 * of those steps (a dozen at most, each found by bisection). */
size_t mn_cpu_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s) {
    if (mn_cpu_conv_check("conv3x3_workspace_bytes", be, s) != MN_OK) return 0;
    size_t most = mn_cpu_conv_ws_any(be, s);
    const int last = mn_cpu_conv_chunks(s);
    mn_conv_shape at = *s;
    at.n = 1;
    for (int q = mn_cpu_conv_chunks(&at); q < last;) {
        int lo = at.n, hi = s->n; /* chunks(lo) == q < chunks(hi) */
        while (hi - lo > 1) {
            at.n = lo + (hi - lo) / 2;
            if (mn_cpu_conv_chunks(&at) > q) hi = at.n;
            else lo = at.n;
        }
        at.n = lo;
        const size_t need = mn_cpu_conv_ws_any(be, &at);
        if (need > most) most = need;
        at.n = hi;
        q = mn_cpu_conv_chunks(&at);
    }
    return most;
}

/* Resolves the workspace an op needs (`bytes` of it, 8-byte aligned). */
static mn_status mn_cpu_conv_ws(const char *op, mn_view ws, size_t bytes, char **out) {
    void *p;
    *out = NULL;
    MN_CPU_TRY(mn_cpu_view(op, "workspace", ws, bytes, sizeof(double), &p));
    *out = p;
    return MN_OK;
}

/* ---- im2col ---- */

/* d[0..n) = s[0..n) for the short runs of im2col (3C floats), where a libc memcpy call
 * costs more than the copy: fixed-size memcpys compile to vector moves. */
static inline void mn_cpu_copy(float *restrict d, const float *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) memcpy(d + i, s + i, 8 * sizeof(float));
    if (i + 4 <= n) {
        memcpy(d + i, s + i, 4 * sizeof(float));
        i += 4;
    }
    if (i < n) d[i] = s[i]; /* at most three left, e.g. C = 1 */
    if (i + 1 < n) d[i + 1] = s[i + 1];
    if (i + 2 < n) d[i + 2] = s[i + 2];
}

/* d[0..n) = 0, the zero-padding counterpart of mn_cpu_copy. */
static inline void mn_cpu_zero(float *d, size_t n) {
    static const float zeros[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) memcpy(d + i, zeros, sizeof zeros);
    for (; i < n; i++) d[i] = 0.0f;
}

/* One source image row src[W][C] into the ky band of W pixel rows of the im2col matrix:
 * dst[x*stride + kx*C + c] = src[x+kx-1][c], zero past either edge. The three taps of a
 * pixel are contiguous in NHWC, hence one 3C copy away from the edges. */
static void mn_cpu_im2col_row(const float *src, int w, size_t c, float *dst, size_t stride) {
    const size_t c3 = 3 * c, wz = (size_t)w;
    if (w == 1) { /* both neighbours are padding */
        mn_cpu_zero(dst, c);
        mn_cpu_copy(dst + c, src, c);
        mn_cpu_zero(dst + 2 * c, c);
        return;
    }
    mn_cpu_zero(dst, c); /* x = 0: the left tap is padding */
    mn_cpu_copy(dst + c, src, 2 * c);
    for (size_t x = 1; x + 1 < wz; x++) mn_cpu_copy(dst + x * stride, src + (x - 1) * c, c3);
    float *last = dst + (wz - 1) * stride; /* x = W-1: the right tap is padding */
    mn_cpu_copy(last, src + (wz - 2) * c, 2 * c);
    mn_cpu_zero(last + 2 * c, c);
}

/* col[(g-g0)*W + x][(ky*3+kx)*C + c] = in[n][y+ky-1][x+kx-1][c] (0 outside the image) for
 * the flattened rows g = n*H + y in [g0, g1). in: [N][H][W][C]; col: [(g1-g0)*W][9C]. */
static void mn_cpu_im2col(const float *in, int h, int w, int c, size_t g0, size_t g1,
                          float *col) {
    const size_t cz = (size_t)c, wz = (size_t)w, c3 = 3 * cz, cols = 9 * cz;
    for (size_t g = g0; g < g1; g++) {
        const float *img = in + g / (size_t)h * (size_t)h * wz * cz;
        const int y = (int)(g % (size_t)h);
        float *dst = col + (g - g0) * wz * cols;
        for (int ky = 0; ky < 3; ky++) {
            int iy = y + ky - 1;
            if (iy >= 0 && iy < h) {
                mn_cpu_im2col_row(img + (size_t)iy * wz * cz, w, cz, dst + ky * c3, cols);
                continue;
            }
            for (size_t x = 0; x < wz; x++) mn_cpu_zero(dst + x * cols + ky * c3, c3);
        }
    }
}

/* ---- forward gather (forward and backward_data) ---- */

/* out[r][0..cout) = bias for r in [0, m). */
static void mn_cpu_rows_fill(float *out, int m, int cout, const float *bias) {
    for (size_t r = 0; r < (size_t)m; r++)
        memcpy(out + r * (size_t)cout, bias, (size_t)cout * sizeof(float));
}

/* Rows [g0, g1) of chunk q of the plan. */
static void mn_cpu_conv_chunk(const mn_cpu_conv_plan *p, int q, size_t *g0, size_t *g1) {
    *g0 = mn_cpu_slot_begin(p->total, p->chunks, q);
    *g1 = mn_cpu_slot_begin(p->total, p->chunks, q + 1);
}

/* out[n][y][x][o] = bias[o] + sum_{ky,kx,i} in[n][y+ky-1][x+kx-1][i] * wmat[o][t*cin + i]
 * with t = ky*3 + kx. in: [N][H][W][cin], wmat: [cout][9 cin], bias: [cout] or NULL,
 * out: [N][H][W][cout]; ws holds p->team im2col matrices of p->col_bytes. */
static void mn_cpu_conv_gather(const mn_backend *be, const mn_cpu_conv_plan *p, int h, int w,
                               int cin, int cout, const float *in, const float *wmat,
                               const float *bias, float *out, char *ws) {
    const int kdim = (int)p->cols;
    const int direct = mn_cpu_conv_direct(be, cin, cout);
    if (direct) {
        float wt[9 * MN_CPU_DIRECT_NARROW_MAX * MN_CPU_DIRECT_WIDE_MAX];
        if (direct == MN_CPU_CONV_WIDE) /* wt[t][i][o] = wmat[o][t*cin + i] */
            for (size_t o = 0; o < (size_t)cout; o++)
                for (size_t ti = 0; ti < (size_t)kdim; ti++)
                    wt[ti * (size_t)cout + o] = wmat[o * (size_t)kdim + ti];
#pragma omp parallel for num_threads(p->team) schedule(dynamic, 1)
        for (int q = 0; q < p->chunks; q++) {
            size_t begin, end;
            mn_cpu_conv_chunk(p, q, &begin, &end);
            if (direct == MN_CPU_CONV_WIDE)
                mn_cpu_direct_wide(in, h, w, cin, cout, wt, bias, begin, end, out);
            else
                mn_cpu_direct_dot(in, h, w, cin, cout, wmat, bias, begin, end, out);
        }
        return;
    }
#pragma omp parallel num_threads(p->team)
    {
        mn_cpu_blas_serial();
        float *col = (float *)(ws + (size_t)omp_get_thread_num() * p->col_bytes);
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < p->chunks; q++) {
            size_t begin, end;
            mn_cpu_conv_chunk(p, q, &begin, &end);
            for (size_t g0 = begin; g0 < end; g0 += p->rows) {
                const size_t g1 = g0 + p->rows < end ? g0 + p->rows : end;
                const int m = (int)((g1 - g0) * (size_t)w);
                float *o = out + g0 * (size_t)w * (size_t)cout;
                mn_cpu_im2col(in, h, w, cin, g0, g1, col);
                if (bias) mn_cpu_rows_fill(o, m, cout, bias);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, cout, kdim, 1.0f, col,
                            kdim, wmat, kdim, bias ? 1.0f : 0.0f, o, cout);
            }
        }
    }
}

mn_status mn_cpu_conv3x3_forward(mn_backend *be, const mn_conv_shape *s, mn_view x,
                                 mn_view w, mn_view b, mn_view y, mn_view workspace) {
    static const char op[] = "conv3x3_forward";
    float *px, *pw, *pb, *py;
    char *ws;
    MN_CPU_TRY(mn_cpu_conv_check(op, be, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, pix * (size_t)s->c, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "w", w, 9 * (size_t)s->k * (size_t)s->c, &pw));
    MN_CPU_TRY(mn_cpu_fview_opt(op, "b", b, (size_t)s->k, &pb));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, pix * (size_t)s->k, &py));
    MN_CPU_TRY(mn_cpu_conv_ws(op, workspace, mn_cpu_conv_ws_forward(be, s), &ws));
    size_t dnnl_bytes;
    if (mn_cpu_conv_dnnl(be, s, MN_CPU_DNNL_FORWARD, &dnnl_bytes))
        return mn_cpu_dnnl_conv(be, s, MN_CPU_DNNL_FORWARD, px, pw, pb, py, ws);
    mn_cpu_conv_plan p = mn_cpu_conv_plan_for(be, s, s->c, MN_CPU_DIRECT_FWD(be, s));
    mn_cpu_conv_gather(be, &p, s->h, s->w, s->c, s->k, px, pw, pb, py, ws);
    return MN_OK;
}

/* ---- backward_data ---- */

/* wt[c][ky][kx][k] = w[k][2-ky][2-kx][c]: the kernel that maps dy back onto x.
 * w: [K][3][3][C] (OHWI), wt: [C][3][3][K]. */
static void mn_cpu_conv_flip(int k, int c, const float *w, float *wt) {
    const size_t kz = (size_t)k, cz = (size_t)c;
    for (size_t o = 0; o < kz; o++)
        for (size_t t = 0; t < 9; t++) {
            const float *src = w + (o * 9 + (8 - t)) * cz; /* (2-ky)*3 + (2-kx) = 8 - t */
            for (size_t i = 0; i < cz; i++) wt[(i * 9 + t) * kz + o] = src[i];
        }
}

mn_status mn_cpu_conv3x3_backward_data(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                       mn_view w, mn_view dx, mn_view workspace) {
    static const char op[] = "conv3x3_backward_data";
    float *pdy, *pw, *pdx;
    char *ws;
    MN_CPU_TRY(mn_cpu_conv_check(op, be, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, pix * (size_t)s->k, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "w", w, 9 * (size_t)s->k * (size_t)s->c, &pw));
    MN_CPU_TRY(mn_cpu_fview(op, "dx", dx, pix * (size_t)s->c, &pdx));
    MN_CPU_TRY(mn_cpu_conv_ws(op, workspace, mn_cpu_conv_ws_data(be, s), &ws));
    size_t dnnl_bytes;
    if (mn_cpu_conv_dnnl(be, s, MN_CPU_DNNL_DATA, &dnnl_bytes))
        return mn_cpu_dnnl_conv(be, s, MN_CPU_DNNL_DATA, pdy, pw, NULL, pdx, ws);
    mn_cpu_conv_plan p = mn_cpu_conv_plan_for(be, s, s->k, MN_CPU_DIRECT_DATA(be, s));
    float *wt = (float *)(ws + (size_t)p.team * p.col_bytes);
    mn_cpu_conv_flip(s->k, s->c, pw, wt);
    mn_cpu_conv_gather(be, &p, s->h, s->w, s->k, s->c, pdy, wt, NULL, pdx, ws);
    return MN_OK;
}

/* ---- backward_weights ---- */

/* acc[j] += sum_{r < m} dy[r][j], j < k. dy: [m][k]. */
static void mn_cpu_colsum(const float *dy, size_t m, size_t k, double *acc) {
    for (size_t r = 0; r < m; r++)
        for (size_t j = 0; j < k; j++) acc[j] += dy[r * k + j];
}

/* Per-chunk partials over the chunk's rows: part[k][9C] = sum dy^T col(x) (dW itself when
 * there is one chunk), dbp[k] = sum dy. x: [N][H][W][C], dy: [N][H][W][K];
 * ws = [team x col][chunks x dbp][chunks x part, when chunks > 1]. */
static void mn_cpu_conv_dw_partials(const mn_backend *be, const mn_cpu_conv_plan *p,
                                    const mn_conv_shape *s,
                                    const float *x, const float *dy, char *ws, float *dw,
                                    int want_db) {
    const size_t part_bytes = mn_cpu_conv_kernel_bytes(s), db_bytes = mn_cpu_conv_db_bytes(s);
    char *dbs = ws + (size_t)p->team * p->col_bytes;
    char *parts = dbs + (size_t)p->chunks * db_bytes;
    const int kdim = (int)p->cols, k = s->k;
    if (mn_cpu_conv_direct(be, s->c, k) == MN_CPU_CONV_WIDE) {
#pragma omp parallel for num_threads(p->team) schedule(dynamic, 1)
        for (int q = 0; q < p->chunks; q++) {
            float *part = p->chunks > 1 ? (float *)(parts + (size_t)q * part_bytes) : dw;
            double *dbp = (double *)(dbs + (size_t)q * db_bytes);
            size_t begin, end;
            mn_cpu_conv_chunk(p, q, &begin, &end);
            mn_cpu_direct_dw(x, dy, s->h, s->w, s->c, k, begin, end, part);
            memset(dbp, 0, (size_t)k * sizeof(double));
            if (want_db)
                mn_cpu_colsum(dy + begin * (size_t)s->w * (size_t)k,
                              (end - begin) * (size_t)s->w, (size_t)k, dbp);
        }
        return;
    }
#pragma omp parallel num_threads(p->team)
    {
        mn_cpu_blas_serial();
        float *col = (float *)(ws + (size_t)omp_get_thread_num() * p->col_bytes);
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < p->chunks; q++) {
            float *part = p->chunks > 1 ? (float *)(parts + (size_t)q * part_bytes) : dw;
            double *dbp = (double *)(dbs + (size_t)q * db_bytes);
            size_t begin, end;
            mn_cpu_conv_chunk(p, q, &begin, &end);
            float beta = 0.0f; /* the first piece overwrites the partial */
            memset(dbp, 0, (size_t)k * sizeof(double));
            for (size_t g0 = begin; g0 < end; g0 += p->rows) {
                const size_t g1 = g0 + p->rows < end ? g0 + p->rows : end;
                const int m = (int)((g1 - g0) * (size_t)s->w);
                const float *dyc = dy + g0 * (size_t)s->w * (size_t)k;
                mn_cpu_im2col(x, s->h, s->w, s->c, g0, g1, col);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, kdim, m, 1.0f, dyc, k,
                            col, kdim, beta, part, kdim);
                if (want_db) mn_cpu_colsum(dyc, (size_t)m, (size_t)k, dbp);
                beta = 1.0f;
            }
        }
    }
}

/* dw[i] = sum over chunks, in chunk order, of part_chunk[i] (double sum; nothing to do for
 * one chunk), db likewise. */
static void mn_cpu_conv_dw_reduce(const mn_backend *be, const mn_cpu_conv_plan *p,
                                  const mn_conv_shape *s, const char *ws, float *dw,
                                  float *db) {
    const size_t part_bytes = mn_cpu_conv_kernel_bytes(s), db_bytes = mn_cpu_conv_db_bytes(s);
    const char *dbs = ws + (size_t)p->team * p->col_bytes;
    const char *parts = dbs + (size_t)p->chunks * db_bytes;
    const size_t count = 9 * (size_t)s->k * (size_t)s->c;
    if (p->chunks > 1) {
        /* Blocks of dW, each summed over the partials with a vector loop per partial (a
         * loop over the partials per element would not vectorise and strides between
         * them): the same additions in the same order, several times faster. */
        const size_t blocks = mn_cpu_ceil_div(count, MN_CPU_CONV_REDUCE_BLOCK);
        const int threads = mn_cpu_slots(be, blocks, MN_CPU_CONV_REDUCE_BLOCK * p->chunks);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t bl = 0; bl < blocks; bl++) {
            double acc[MN_CPU_CONV_REDUCE_BLOCK] = {0};
            const size_t i0 = bl * MN_CPU_CONV_REDUCE_BLOCK;
            const size_t len = count - i0 < MN_CPU_CONV_REDUCE_BLOCK ? count - i0
                                                                     : MN_CPU_CONV_REDUCE_BLOCK;
            for (int q = 0; q < p->chunks; q++) {
                const float *part = (const float *)(parts + (size_t)q * part_bytes) + i0;
                for (size_t j = 0; j < len; j++) acc[j] += part[j];
            }
            for (size_t j = 0; j < len; j++) dw[i0 + j] = (float)acc[j];
        }
    }
    for (size_t j = 0; db && j < (size_t)s->k; j++) {
        double acc = 0.0;
        for (int q = 0; q < p->chunks; q++)
            acc += ((const double *)(dbs + (size_t)q * db_bytes))[j];
        db[j] = (float)acc;
    }
}

mn_status mn_cpu_conv3x3_backward_weights(mn_backend *be, const mn_conv_shape *s,
                                          mn_view x, mn_view dy, mn_view dw, mn_view db,
                                          mn_view workspace) {
    static const char op[] = "conv3x3_backward_weights";
    float *px, *pdy, *pdw, *pdb;
    char *ws;
    MN_CPU_TRY(mn_cpu_conv_check(op, be, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, pix * (size_t)s->c, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, pix * (size_t)s->k, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "dw", dw, 9 * (size_t)s->k * (size_t)s->c, &pdw));
    MN_CPU_TRY(mn_cpu_fview_opt(op, "db", db, (size_t)s->k, &pdb));
    MN_CPU_TRY(mn_cpu_conv_ws(op, workspace, mn_cpu_conv_ws_weights(be, s), &ws));
    mn_cpu_conv_plan p = mn_cpu_conv_plan_for(be, s, s->c, MN_CPU_DIRECT_WEIGHTS(be, s));
    mn_cpu_conv_dw_partials(be, &p, s, px, pdy, ws, pdw, pdb != NULL);
    mn_cpu_conv_dw_reduce(be, &p, s, ws, pdw, pdb);
    return MN_OK;
}
