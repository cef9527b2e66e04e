/* Batch normalisation over x[m][c] (m = N*H*W rows of NHWC activations) on the CPU.
 * Per-channel sums are accumulated in double, per chunk of contiguous rows, and the chunk
 * partials are added in chunk order. The chunks come from m and c alone (mn_cpu_chunks),
 * so results depend only on the inputs, not on the thread count. The scratch (partials
 * and per-channel coefficients, a few KB) is malloc'ed per call: these ops take no
 * workspace. */
#include "cpu_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Least elements of one chunk of a per-channel sum. */
#define MN_CPU_BN_CHUNK_ELEMS ((size_t)1 << 13)

/* How the m rows of a sum are split: `chunks` from the shape, `team` threads. */
typedef struct mn_cpu_bn_split {
    int chunks, team;
} mn_cpu_bn_split;

static mn_cpu_bn_split mn_cpu_bn_split_for(const mn_backend *be, size_t m, size_t c) {
    mn_cpu_bn_split sp;
    sp.chunks = mn_cpu_chunks(m, c, MN_CPU_BN_CHUNK_ELEMS);
    sp.team = mn_cpu_team(be, sp.chunks, 2 * m * c);
    return sp;
}

/* part[q][j] = sum over chunk q's rows r of x[r][j] (center NULL) or of
 * (x[r][j] - center[j])^2. x: [m][c]; part: [chunks][c]. */
static void mn_cpu_bn_sums(mn_cpu_bn_split sp, size_t m, size_t c, const float *x,
                           const double *center, double *part) {
#pragma omp parallel for num_threads(sp.team) schedule(dynamic, 1)
    for (int q = 0; q < sp.chunks; q++) {
        double *acc = part + (size_t)q * c;
        const size_t end = mn_cpu_slot_begin(m, sp.chunks, q + 1);
        memset(acc, 0, c * sizeof(double));
        for (size_t r = mn_cpu_slot_begin(m, sp.chunks, q); r < end; r++) {
            const float *row = x + r * c;
            if (!center) {
                for (size_t j = 0; j < c; j++) acc[j] += row[j];
            } else {
                for (size_t j = 0; j < c; j++) {
                    double d = (double)row[j] - center[j];
                    acc[j] += d * d;
                }
            }
        }
    }
}

/* out[j] = sum over chunks, in chunk order, of part[q][j]. part: [chunks][c]. */
static void mn_cpu_bn_reduce(int chunks, size_t c, const double *part, double *out) {
    for (size_t j = 0; j < c; j++) {
        double acc = 0.0;
        for (int q = 0; q < chunks; q++) acc += part[(size_t)q * c + j];
        out[j] = acc;
    }
}

/* y[r][j] = (x[r][j] - shift[j]) * scale[j] + beta[j]. x, y: [m][c]. */
static void mn_cpu_bn_apply(int slots, size_t m, size_t c, const float *x,
                            const double *shift, const double *scale, const float *beta,
                            float *y) {
#pragma omp parallel for num_threads(slots) schedule(static)
    for (size_t r = 0; r < m; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        for (size_t j = 0; j < c; j++)
            yr[j] = (float)(((double)xr[j] - shift[j]) * scale[j] + (double)beta[j]);
    }
}

/* m, c >= 1; *mc = m*c. */
static mn_status mn_cpu_bn_dims(const char *op, int m, int c, size_t *mc) {
    int dims[2] = {m, c};
    return mn_backend_dims(op, "m, c", dims, 2, 0, mc);
}

static mn_status mn_cpu_bn_scratch(const char *op, size_t doubles, double **out) {
    *out = malloc(doubles * sizeof(double));
    if (!*out)
        return mn_error_set(MN_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch", op,
                            doubles * sizeof(double));
    return MN_OK;
}

/* Batch statistics: mean[j] and biased var[j] over the m rows (two passes, so no
 * cancellation). part: [chunks][c] scratch. */
static void mn_cpu_bn_moments(mn_cpu_bn_split sp, size_t m, size_t c, const float *x,
                              double *part, double *mean, double *var) {
    mn_cpu_bn_sums(sp, m, c, x, NULL, part);
    mn_cpu_bn_reduce(sp.chunks, c, part, mean);
    for (size_t j = 0; j < c; j++) mean[j] /= (double)m;
    mn_cpu_bn_sums(sp, m, c, x, mean, part);
    mn_cpu_bn_reduce(sp.chunks, c, part, var);
    for (size_t j = 0; j < c; j++) var[j] /= (double)m;
}

mn_status mn_cpu_batchnorm_train(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float momentum, float eps, mn_view y, mn_view save_mean,
                                 mn_view save_invstd) {
    static const char op[] = "batchnorm_train";
    float *px, *pg, *pb, *prm, *prv, *py, *psm, *psi;
    size_t mc;
    double *scratch;
    MN_CPU_TRY(mn_cpu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c, mz = (size_t)m;
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, mc, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "gamma", gamma, cz, &pg));
    MN_CPU_TRY(mn_cpu_fview(op, "beta", beta, cz, &pb));
    MN_CPU_TRY(mn_cpu_fview(op, "running_mean", running_mean, cz, &prm));
    MN_CPU_TRY(mn_cpu_fview(op, "running_var", running_var, cz, &prv));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, mc, &py));
    MN_CPU_TRY(mn_cpu_fview(op, "save_mean", save_mean, cz, &psm));
    MN_CPU_TRY(mn_cpu_fview(op, "save_invstd", save_invstd, cz, &psi));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    const mn_cpu_bn_split sp = mn_cpu_bn_split_for(be, mz, cz);
    MN_CPU_TRY(mn_cpu_bn_scratch(op, ((size_t)sp.chunks + 3) * cz, &scratch));
    double *mean = scratch, *var = mean + cz, *scale = var + cz, *part = scale + cz;
    mn_cpu_bn_moments(sp, mz, cz, px, part, mean, var);
    /* The running variance is the unbiased estimate; one row has none, so it then takes
     * the (zero) batch variance. */
    const double unbias = mz > 1 ? (double)mz / (double)(mz - 1) : 1.0;
    const double mom = momentum;
    for (size_t j = 0; j < cz; j++) {
        const double invstd = 1.0 / sqrt(var[j] + (double)eps);
        psm[j] = (float)mean[j];
        psi[j] = (float)invstd;
        scale[j] = invstd * (double)pg[j];
        prm[j] = (float)(mom * prm[j] + (1.0 - mom) * mean[j]);
        prv[j] = (float)(mom * prv[j] + (1.0 - mom) * var[j] * unbias);
    }
    mn_cpu_bn_apply(mn_cpu_slots(be, mz, cz), mz, cz, px, mean, scale, pb, py);
    free(scratch);
    return MN_OK;
}

mn_status mn_cpu_batchnorm_infer(mn_backend *be, int m, int c, mn_view x, mn_view gamma,
                                 mn_view beta, mn_view running_mean, mn_view running_var,
                                 float eps, mn_view y) {
    static const char op[] = "batchnorm_infer";
    float *px, *pg, *pb, *prm, *prv, *py;
    size_t mc;
    double *scratch;
    MN_CPU_TRY(mn_cpu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c;
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, mc, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "gamma", gamma, cz, &pg));
    MN_CPU_TRY(mn_cpu_fview(op, "beta", beta, cz, &pb));
    MN_CPU_TRY(mn_cpu_fview(op, "running_mean", running_mean, cz, &prm));
    MN_CPU_TRY(mn_cpu_fview(op, "running_var", running_var, cz, &prv));
    MN_CPU_TRY(mn_cpu_fview(op, "y", y, mc, &py));
    if (!(eps >= 0.0f))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: eps must be >= 0 (got %g)", op, eps);
    MN_CPU_TRY(mn_cpu_bn_scratch(op, 2 * cz, &scratch));
    double *shift = scratch, *scale = scratch + cz;
    for (size_t j = 0; j < cz; j++) {
        shift[j] = prm[j];
        scale[j] = (double)pg[j] / sqrt((double)prv[j] + (double)eps);
    }
    mn_cpu_bn_apply(mn_cpu_slots(be, (size_t)m, cz), (size_t)m, cz, px, shift, scale, pb, py);
    free(scratch);
    return MN_OK;
}

/* part[q][0][j] = sum dy, part[q][1][j] = sum dy * xhat over chunk q's rows, with
 * xhat = (x - mean) * invstd. x, dy: [m][c]; part: [chunks][2][c]. */
static void mn_cpu_bn_grad_sums(mn_cpu_bn_split sp, size_t m, size_t c, const float *x,
                                const float *dy, const float *mean, const float *invstd,
                                double *part) {
#pragma omp parallel for num_threads(sp.team) schedule(dynamic, 1)
    for (int q = 0; q < sp.chunks; q++) {
        double *sdy = part + (size_t)q * 2 * c, *sdyx = sdy + c;
        const size_t end = mn_cpu_slot_begin(m, sp.chunks, q + 1);
        memset(sdy, 0, 2 * c * sizeof(double));
        for (size_t r = mn_cpu_slot_begin(m, sp.chunks, q); r < end; r++) {
            const float *xr = x + r * c, *gr = dy + r * c;
            for (size_t j = 0; j < c; j++) {
                double xhat = ((double)xr[j] - mean[j]) * (double)invstd[j];
                sdy[j] += gr[j];
                sdyx[j] += (double)gr[j] * xhat;
            }
        }
    }
}

/* dx = gamma * invstd / m * (m dy - dbeta - xhat dgamma), x, dy, dx: [m][c]; coef holds
 * per channel [0..c) gamma*invstd/m, [c..2c) dbeta, [2c..3c) dgamma. */
static void mn_cpu_bn_grad_apply(int slots, size_t m, size_t c, const float *x,
                                 const float *dy, const float *mean, const float *invstd,
                                 const double *coef, float *dx) {
    const double *k = coef, *dbeta = coef + c, *dgamma = coef + 2 * c;
#pragma omp parallel for num_threads(slots) schedule(static)
    for (size_t r = 0; r < m; r++) {
        const float *xr = x + r * c, *gr = dy + r * c;
        float *dr = dx + r * c;
        for (size_t j = 0; j < c; j++) {
            double xhat = ((double)xr[j] - mean[j]) * (double)invstd[j];
            dr[j] = (float)(k[j] * ((double)m * gr[j] - dbeta[j] - xhat * dgamma[j]));
        }
    }
}

mn_status mn_cpu_batchnorm_backward(mn_backend *be, int m, int c, mn_view x, mn_view dy,
                                    mn_view gamma, mn_view save_mean, mn_view save_invstd,
                                    mn_view dx, mn_view dgamma, mn_view dbeta) {
    static const char op[] = "batchnorm_backward";
    float *px, *pdy, *pg, *psm, *psi, *pdx, *pdg, *pdb;
    size_t mc;
    double *scratch;
    MN_CPU_TRY(mn_cpu_bn_dims(op, m, c, &mc));
    const size_t cz = (size_t)c, mz = (size_t)m;
    MN_CPU_TRY(mn_cpu_fview(op, "x", x, mc, &px));
    MN_CPU_TRY(mn_cpu_fview(op, "dy", dy, mc, &pdy));
    MN_CPU_TRY(mn_cpu_fview(op, "gamma", gamma, cz, &pg));
    MN_CPU_TRY(mn_cpu_fview(op, "save_mean", save_mean, cz, &psm));
    MN_CPU_TRY(mn_cpu_fview(op, "save_invstd", save_invstd, cz, &psi));
    MN_CPU_TRY(mn_cpu_fview(op, "dx", dx, mc, &pdx));
    MN_CPU_TRY(mn_cpu_fview(op, "dgamma", dgamma, cz, &pdg));
    MN_CPU_TRY(mn_cpu_fview(op, "dbeta", dbeta, cz, &pdb));
    const mn_cpu_bn_split sp = mn_cpu_bn_split_for(be, mz, 2 * cz);
    MN_CPU_TRY(mn_cpu_bn_scratch(op, (2 * (size_t)sp.chunks + 3) * cz, &scratch));
    double *coef = scratch, *part = scratch + 3 * cz;
    mn_cpu_bn_grad_sums(sp, mz, cz, px, pdy, psm, psi, part);
    for (size_t j = 0; j < cz; j++) {
        double sdy = 0.0, sdyx = 0.0;
        for (int q = 0; q < sp.chunks; q++) {
            sdy += part[(size_t)q * 2 * cz + j];
            sdyx += part[(size_t)q * 2 * cz + cz + j];
        }
        coef[j] = (double)pg[j] * (double)psi[j] / (double)mz;
        coef[cz + j] = sdy;
        coef[2 * cz + j] = sdyx;
        pdb[j] = (float)sdy;
        pdg[j] = (float)sdyx;
    }
    mn_cpu_bn_grad_apply(mn_cpu_slots(be, mz, 2 * cz), mz, cz, px, pdy, psm, psi, coef, pdx);
    free(scratch);
    return MN_OK;
}
