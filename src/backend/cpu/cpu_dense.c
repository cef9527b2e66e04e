/* Dense layer (OpenBLAS sgemm) and softmax cross-entropy on the CPU.
 * Each sgemm is split into fixed row blocks ("chunks", from the shape alone: at least
 * MN_CPU_DENSE_CHUNK_ROWS rows and MN_CPU_DENSE_CHUNK_WORK flops each), each run
 * single-threaded inside an OpenMP region of up to be->threads threads: the backend decides
 * its own thread count instead of OpenBLAS's program-wide one, every sgemm call is the same
 * whatever the thread count, and no block reduces across another's rows, so the result
 * depends on neither the thread count nor how the runtime schedules the blocks. */
#include "cpu_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Least work of one chunk, in flops, and least rows: every chunk packs the other operand. */
#define MN_CPU_DENSE_CHUNK_WORK ((size_t)1 << 18)
#define MN_CPU_DENSE_CHUNK_ROWS ((size_t)4)

static mn_status mn_cpu_dense_dims(const char *op, int n, int in, int out) {
    int dims[3] = {n, in, out};
    size_t t;
    return mn_backend_dims(op, "n, in, out", dims, 3, 0, &t);
}

/* Chunks of `rows` rows of `row_flops` flops each. */
static int mn_cpu_dense_chunks(size_t rows, size_t row_flops) {
    const int by_work = mn_cpu_chunks(rows, row_flops, MN_CPU_DENSE_CHUNK_WORK);
    const int by_rows = mn_cpu_chunks(rows, 1, MN_CPU_DENSE_CHUNK_ROWS);
    return by_work < by_rows ? by_work : by_rows;
}

/* y[r][o] = b[o] + sum_i x[r][i] w[o][i] for the rows r of each chunk.
 * x: [n][in], w: [out][in], b: [out] or NULL, y: [n][out]. */
static void mn_cpu_dense_rows(const mn_backend *be, int n, int in, int out, const float *x,
                              const float *w, const float *b, float *y) {
    const size_t row_flops = 2 * (size_t)in * (size_t)out;
    const int chunks = mn_cpu_dense_chunks((size_t)n, row_flops);
#pragma omp parallel for num_threads(mn_cpu_team(be, chunks, (size_t)n * row_flops)) \
    schedule(dynamic, 1)
    for (int q = 0; q < chunks; q++) {
        const size_t r0 = mn_cpu_slot_begin((size_t)n, chunks, q);
        const size_t r1 = mn_cpu_slot_begin((size_t)n, chunks, q + 1);
        float *yr = y + r0 * (size_t)out;
        mn_cpu_blas_serial();
        for (size_t r = 0; b && r < r1 - r0; r++)
            memcpy(yr + r * (size_t)out, b, (size_t)out * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), out, in, 1.0f,
                    x + r0 * (size_t)in, in, w, in, b ? 1.0f : 0.0f, yr, out);
    }
}

mn_status mn_cpu_dense_forward(mn_backend *be, int n, int in, int out, mn_view x,
                               mn_view w, mn_view b, mn_view y) {
    static const char op[] = "dense_forward";
    float *px, *pw, *pb, *py;
    MN_CPU_TRY(mn_cpu_dense_dims(op, n, in, out));
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, (size_t)n * (size_t)in, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "w", w, (size_t)out * (size_t)in, &pw));
    MN_CPU_TRY(mn_cpu_fview_opt(op, "b", b, (size_t)out, &pb));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, (size_t)n * (size_t)out, &py));
    mn_cpu_dense_rows(be, n, in, out, px, pw, pb, py);
    return MN_OK;
}

/* dx[r][i] = sum_o dy[r][o] w[o][i], rows split by chunk. dy: [n][out], w: [out][in]. */
static void mn_cpu_dense_dx(const mn_backend *be, int n, int in, int out, const float *dy,
                            const float *w, float *dx) {
    const size_t row_flops = 2 * (size_t)in * (size_t)out;
    const int chunks = mn_cpu_dense_chunks((size_t)n, row_flops);
#pragma omp parallel for num_threads(mn_cpu_team(be, chunks, (size_t)n * row_flops)) \
    schedule(dynamic, 1)
    for (int q = 0; q < chunks; q++) {
        const size_t r0 = mn_cpu_slot_begin((size_t)n, chunks, q);
        const size_t r1 = mn_cpu_slot_begin((size_t)n, chunks, q + 1);
        mn_cpu_blas_serial();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), in, out, 1.0f,
                    dy + r0 * (size_t)out, out, w, in, 0.0f, dx + r0 * (size_t)in, in);
    }
}

/* dw[o][i] = sum_r dy[r][o] x[r][i] and db[o] = sum_r dy[r][o] (double), output rows o
 * split by chunk so that every sum over the batch stays inside one sgemm call.
 * x: [n][in], dy: [n][out], dw: [out][in], db: [out] or NULL. */
static void mn_cpu_dense_dw(const mn_backend *be, int n, int in, int out, const float *x,
                            const float *dy, float *dw, float *db) {
    const size_t row_flops = 2 * (size_t)n * (size_t)in;
    const int chunks = mn_cpu_dense_chunks((size_t)out, row_flops);
#pragma omp parallel for num_threads(mn_cpu_team(be, chunks, (size_t)out * row_flops)) \
    schedule(dynamic, 1)
    for (int q = 0; q < chunks; q++) {
        const size_t o0 = mn_cpu_slot_begin((size_t)out, chunks, q);
        const size_t o1 = mn_cpu_slot_begin((size_t)out, chunks, q + 1);
        mn_cpu_blas_serial();
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(o1 - o0), in, n, 1.0f,
                    dy + o0, out, x, in, 0.0f, dw + o0 * (size_t)in, in);
        for (size_t o = o0; db && o < o1; o++) {
            double acc = 0.0;
            for (size_t r = 0; r < (size_t)n; r++) acc += dy[r * (size_t)out + o];
            db[o] = (float)acc;
        }
    }
}

mn_status mn_cpu_dense_backward(mn_backend *be, int n, int in, int out, mn_view x,
                                mn_view w, mn_view dy, mn_view dx, mn_view dw, mn_view db) {
    static const char op[] = "dense_backward";
    float *px, *pw, *pdy, *pdx, *pdw, *pdb;
    MN_CPU_TRY(mn_cpu_dense_dims(op, n, in, out));
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, (size_t)n * (size_t)in, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "w", w, (size_t)out * (size_t)in, &pw));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, (size_t)n * (size_t)out, &pdy));
    MN_CPU_TRY(mn_cpu_fview_opt(op, "dx", dx, (size_t)n * (size_t)in, &pdx));
    MN_CPU_TRY(mn_cpu_fview(op, "dw", dw, (size_t)out * (size_t)in, &pdw));
    MN_CPU_TRY(mn_cpu_fview_opt(op, "db", db, (size_t)out, &pdb));
    if (pdx) mn_cpu_dense_dx(be, n, in, out, pdy, pw, pdx);
    mn_cpu_dense_dw(be, n, in, out, px, pdy, pdw, pdb);
    return MN_OK;
}

/* ---- softmax cross-entropy ---- */

/* One row: probs = softmax(l), loss = log(sum exp(l - max)) - (l[label] - max), the
 * stable form of -log(probs[label]); dl = (probs - onehot) * scale when dl is given. */
static void mn_cpu_xent_row(int classes, const float *l, int label, float scale,
                            float *probs, float *loss, float *dl) {
    const size_t k = (size_t)classes;
    float mx = l[0];
    for (size_t j = 1; j < k; j++)
        if (l[j] > mx) mx = l[j];
    double sum = 0.0;
    for (size_t j = 0; j < k; j++) sum += exp((double)l[j] - (double)mx);
    for (size_t j = 0; j < k; j++) {
        const double p = exp((double)l[j] - (double)mx) / sum;
        probs[j] = (float)p;
        if (dl) dl[j] = (float)((p - (j == (size_t)label ? 1.0 : 0.0)) * (double)scale);
    }
    *loss = (float)(log(sum) - ((double)l[label] - (double)mx));
}

mn_status mn_cpu_softmax_xent(mn_backend *be, int n, int classes, mn_view logits,
                              mn_view labels, float grad_scale, mn_view probs,
                              mn_view loss, mn_view dlogits) {
    static const char op[] = "softmax_xent";
    float *pl, *pp, *ploss, *pdl;
    void *lab;
    int dims[2] = {n, classes};
    size_t nc;
    MN_CPU_TRY(mn_backend_dims(op, "n, classes", dims, 2, 0, &nc));
    MN_CPU_TRY(mn_cpu_fview(op, "logits", logits, nc, &pl));
    MN_CPU_TRY(mn_cpu_view(op, "labels", labels, (size_t)n * sizeof(int32_t),
                           sizeof(int32_t), &lab));
    MN_CPU_TRY(mn_cpu_fview(op, "probs", probs, nc, &pp));
    MN_CPU_TRY(mn_cpu_fview(op, "loss", loss, (size_t)n, &ploss));
    MN_CPU_TRY(mn_cpu_fview_opt(op, "dlogits", dlogits, nc, &pdl));
    const int32_t *pt = lab;
    /* Labels are checked before anything is written, so a bad batch leaves no half
     * result behind. */
    for (int i = 0; i < n; i++)
        if (pt[i] < 0 || pt[i] >= classes)
            return mn_error_set(MN_ERR_INVALID_ARG, "%s: labels[%d] = %d is outside [0, %d)",
                                op, i, (int)pt[i], classes);
    const size_t k = (size_t)classes;
#pragma omp parallel for num_threads(mn_cpu_slots(be, (size_t)n, 20 * k)) schedule(static)
    for (int i = 0; i < n; i++)
        mn_cpu_xent_row(classes, pl + (size_t)i * k, pt[i], grad_scale, pp + (size_t)i * k,
                        ploss + i, pdl ? pdl + (size_t)i * k : NULL);
    return MN_OK;
}
