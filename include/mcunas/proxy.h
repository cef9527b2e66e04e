/* Zero-cost proxies: training-free indicators computed at initialisation on one batch.
 * Everything runs through the net API (include/mcunas/net.h) on any backend; ranking a
 * space by them is the search's (include/mcunas/rank.h). Definitions, defaults and their
 * justification: README "Zero-shot search".
 *
 *   ntk_cond   TE-NAS's NTK condition number: one forward of `batch` images in training
 *              mode (BN on batch statistics, no dropout), then per sample i the gradient
 *              J_i of the sum of sample i's logits w.r.t. every trainable parameter;
 *              Theta = J J^T (double accumulation), kappa = lambda_max / lambda_min (LAPACK
 *              dsyev), averaged over `inits` seeded initialisations. Lower is better;
 *              +inf when Theta is singular.
 *   regions    Linear regions: distinct ReLU on/off patterns (all ReLU layers together)
 *              of `regions_inputs` uniform random uint8 inputs through the thin copy:
 *              same layout and cells, k' = ceil(k / regions_div), input S x S x C with
 *              S = max(2, 2^cells) (the smallest input that still fits the cells), one
 *              forward in training mode. Higher is better.
 *   naswot     log |det K| with K_ij = number of ReLU units on which samples i and j of the
 *              batch agree (Hamming kernel of the binary codes), init `seed`, training mode.
 *   synflow    Parameters replaced by |theta|, BN layers the identity (no BN, as in the
 *              zero-cost-NAS code), no dropout, one all-ones input (pixels 255, so 1.0 after
 *              the model's x/255), R = sum of the logits, score = sum theta * dR/dtheta.
 *   grad_norm  ||dL/dtheta||_2 of the mean cross-entropy on the batch (training mode).
 *   snip       sum |theta * dL/dtheta| on the same gradient.
 *   flops      2 x MACC per sample; params: Keras's total. Baselines. */
#ifndef MCUNAS_PROXY_H
#define MCUNAS_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_PROXY_NTK 1u
#define MN_PROXY_REGIONS 2u
#define MN_PROXY_NASWOT 4u
#define MN_PROXY_SYNFLOW 8u
#define MN_PROXY_GRAD_NORM 16u
#define MN_PROXY_SNIP 32u
#define MN_PROXY_ALL 63u

typedef struct mn_proxy_options {
    unsigned which;      /* MN_PROXY_* bits; 0 means all */
    int batch;           /* N: images of the NTK / NASWOT / grad batch (default 8) */
    int inits;           /* NTK initialisations averaged (default 3) */
    int regions_inputs;  /* R random inputs for the linear regions (default 1000) */
    int regions_div;     /* thin copy width k' = ceil(k / regions_div) (default 8) */
    uint64_t seed;       /* initialisation i uses seed + i; regions' inputs seed ^ const */
} mn_proxy_options;

void mn_proxy_options_default(mn_proxy_options *o);

typedef struct mn_proxy_scores {
    double ntk_cond, regions, naswot, synflow, grad_norm, snip;
    double flops, params;
    double seconds;      /* wall time of this candidate's proxies */
} mn_proxy_scores;

/* The proxies of `arch` on `be`. images/labels: at least o->batch training samples (labels
 * in [0, classes)). Proxies not selected are NAN. */
mn_status mn_proxy_compute(const mn_arch *arch, mn_backend *be, const uint8_t *images,
                           const int32_t *labels, int n, const mn_proxy_options *o,
                           mn_proxy_scores *out);

/* Building blocks, exposed for tests. */
/* Packs the on/off bit of every ReLU unit of the last forward's n samples (all ReLU layers
 * in order) into n rows of `*words` uint64 words each (malloc'd, caller frees). */
struct mn_net;
mn_status mn_proxy_relu_codes(struct mn_net *net, int n, uint64_t **codes, size_t *words);
/* Distinct rows among n rows of `words` words (hashing, then exact comparison). */
size_t mn_proxy_count_distinct(const uint64_t *codes, int n, size_t words);
/* NASWOT's log|det K| of n codes of `bits` bits (`words` words per row, unused bits 0). */
mn_status mn_proxy_naswot_logdet(const uint64_t *codes, int n, size_t words, size_t bits,
                                 double *out);
/* Eigenvalues (ascending) of a symmetric n x n matrix (row-major, overwritten). */
mn_status mn_proxy_sym_eigenvalues(double *a, int n, double *w);

#ifdef __cplusplus
}
#endif
#endif
