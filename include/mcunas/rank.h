/* Ranking a space without training (the front of the zeroshot and hybrid strategies and of
 * `mcunas rank`): every point of A(k, c) that fits the target and the machine
 * (mn_search_check_candidate, the evaluator's own check) gets its zero-cost proxies
 * (include/mcunas/proxy.h), and the MONAS objective combines their ranks. */
#ifndef MCUNAS_RANK_H
#define MCUNAS_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/budget.h"
#include "mcunas/cost.h"
#include "mcunas/proxy.h"
#include "mcunas/samples.h"
#include "mcunas/status.h"
#include "mcunas/target.h"

#ifdef __cplusplus
extern "C" {
#endif

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
    size_t device_mem;               /* 0: no device filter (as mn_search_budget) */
    size_t runtime_bytes;            /* counted in the host filter as the evaluator counts it;
                                      * MN_RUNTIME_BYTES_UNMEASURED (default): measured here
                                      * (mn_search_runtime_bytes) when host_mem is set */
    int train_batch;                 /* batch of the training the filter plans (16) */
    const char *backend;             /* default "cpu" */
    int threads;                     /* threads of the filter's planning backend */
    int device;                      /* device of every backend ranking creates */
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
    size_t infeasible;       /* refused by the target (or depth) */
    size_t pruned;           /* refused by the host or device budget */
    double filter_seconds, proxy_seconds;
} mn_rank_result;

/* Filters the space by mn_search_check_candidate (the target, then the host and device
 * budgets), computes the proxies of every point that fits on a batch of the training split,
 * ranks them. */
mn_status mn_rank_space(const mn_rank_options *o, const mn_loaded_data *data,
                        mn_rank_result *out);
void mn_rank_result_free(mn_rank_result *r);

#ifdef __cplusplus
}
#endif
#endif
