/* Zero-cost proxies (training-free indicators computed at initialisation on one batch) and
 * the MONAS rank aggregation. Everything runs through the net API (include/mcunas/net.h)
 * on any backend. Definitions, defaults and their justification: README "Zero-shot search".
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
#include "mcunas/cost.h"
#include "mcunas/samples.h"
#include "mcunas/status.h"
#include "mcunas/target.h"

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

/* ---- MONAS ranking ---- */

/* Ranks (1 = best, ties share the mean rank) of n values; lower_is_better selects the
 * direction. NAN is worst. */
void mn_rank_values(const double *v, int n, int lower_is_better, double *rank);

typedef struct mn_rank_entry {
    int k, cells;
    mn_layout layout;
    mn_proxy_scores s;
    double latency_ms;
    size_t ram_bytes, flash_bytes;
    /* ranks of each indicator among the feasible entries (1 = best) */
    double r_ntk, r_regions, r_flops, r_latency;
    double score;        /* MONAS: sum of weight x rank; lower is better */
    int rank;            /* 1 = the best candidate */
} mn_rank_entry;

/* Combines the indicators of n entries: weights ((1-wf-wl)/2, (1-wf-wl)/2, wf, wl) on the
 * ranks of (NTK ascending, regions descending, FLOPs ascending, latency ascending); fills
 * r_*, score and rank (ties: fewer FLOPs, then smaller k, then fewer cells, then layout). */
mn_status mn_rank_combine(mn_rank_entry *e, int n, double wf, double wl);

typedef struct mn_rank_options {
    mn_proxy_options proxy;
    double wf, wl;                   /* MONAS weights (default 0.1, 0.1) */
    int k_min, k_max;                /* default 1 .. 64 */
    unsigned layouts;                /* bit (1 << mn_layout); 0: all three */
    const mn_target *target;         /* required */
    const mn_latency_model *latency; /* NULL: built-in */
    int io_int8;
    double max_latency_ms;           /* 0: none */
    size_t host_mem;                 /* 0: no host filter; else the training plan must fit */
    int train_batch;                 /* batch of the training the host filter plans (16) */
    const char *backend;             /* default "cpu" */
    int threads;                     /* threads of the filter's planning backend */
    int workers;                     /* candidates computed at once, each on its own
                                      * single-threaded backend (0: all cores) */
    uint64_t sample_seed;            /* which training images form the batch */
    void (*progress)(void *user, size_t done, size_t total);
    void *user;
    volatile int *stop;
} mn_rank_options;

void mn_rank_options_default(mn_rank_options *o);

typedef struct mn_rank_result {
    mn_rank_entry *entries;  /* feasible candidates, sorted by rank (malloc'd) */
    size_t count;
    size_t considered;       /* points of the space (per layout) */
    size_t infeasible;       /* refused by the cost model (or depth) */
    size_t pruned;           /* refused by the host budget */
    double filter_seconds, proxy_seconds;
} mn_rank_result;

/* Filters the space by the target (mn_estimate_compute) and host budget, computes the
 * proxies of every feasible point on a batch of the training split, ranks them. */
mn_status mn_rank_space(const mn_rank_options *o, const mn_loaded_data *data,
                        mn_rank_result *out);
void mn_rank_result_free(mn_rank_result *r);

#ifdef __cplusplus
}
#endif
#endif
