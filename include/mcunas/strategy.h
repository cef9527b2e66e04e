/* Search strategies as ask/tell state machines: a strategy proposes the next point A(k, c)
 * and learns its outcome. Resuming a search is replaying its journal into tell; a new
 * strategy is a new state machine, nothing else changes. */
#ifndef MCUNAS_STRATEGY_H
#define MCUNAS_STRATEGY_H

#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_point {
    int k, cells;
} mn_point;

typedef enum mn_outcome {
    MN_OUTCOME_SCORED = 0,  /* trained; score is the validation accuracy */
    MN_OUTCOME_INFEASIBLE,  /* violates the target (RAM, flash, MACC, latency, depth) */
    MN_OUTCOME_PRUNED,      /* would not fit the memory of the machine running the search */
    MN_OUTCOME_FAILED,      /* training failed; treated like an infeasible point */
    MN_OUTCOME_COUNT        /* how many there are (not an outcome) */
} mn_outcome;

const char *mn_outcome_name(mn_outcome outcome);
mn_status mn_outcome_parse(const char *name, mn_outcome *out);

typedef enum mn_strategy_kind {
    MN_STRATEGY_NANONAS = 0, /* k = 1, 2, 3, ... while best(k) > best(k-1) */
    MN_STRATEGY_COLABNAS,    /* k = 4, 8, then doubling (+0.005) or halving */
    MN_STRATEGY_GRID,        /* every point of [k_min, k_max] x [0, max_cells] */
    /* The list strategies: the given points in order (the search ranks the space by
     * zero-cost proxies first, include/mcunas/rank.h); the answer is the best score, the
     * earlier point on ties. zeroshot trains the top-ranked point only, hybrid the top N. */
    MN_STRATEGY_ZEROSHOT,
    MN_STRATEGY_HYBRID
} mn_strategy_kind;

const char *mn_strategy_kind_name(mn_strategy_kind kind);
mn_status mn_strategy_kind_parse(const char *name, mn_strategy_kind *out);

typedef struct mn_strategy_options {
    mn_strategy_kind kind;
    int max_cells;     /* deepest cell count the input allows (mn_arch_max_cells) */
    int k_min, k_max;  /* grid bounds; nanonas/colabnas stop by their rules or at k_max */
} mn_strategy_options;

typedef struct mn_strategy mn_strategy;

/* nanonas, colabnas, grid. */
mn_status mn_strategy_create(const mn_strategy_options *opts, mn_strategy **out);
/* zeroshot / hybrid: asks `points` (copied) in order; n may be 0 (nothing to ask). */
mn_status mn_strategy_create_list(mn_strategy_kind kind, const mn_point *points, int n,
                                  mn_strategy **out);
void mn_strategy_destroy(mn_strategy *s);

/* The next point to evaluate; returns 0 when the search is over (then *out is untouched). */
int mn_strategy_ask(mn_strategy *s, mn_point *out);

/* Batch ask: up to `max` points the rules may ask from here on, the point mn_strategy_ask
 * returns first (the one needed now), then the points that may follow, nearest first, to be
 * evaluated ahead of need. Changes no state; returns how many (0 when the search is over).
 * grid and the list strategies: every pending point (the grid's rest of row k, then the rows
 * after it); nanonas: the rest of row k and the start of row k+1, interleaved; colabnas: the
 * rest of row k and the start of every row its outer rule may go to next (both branches after
 * k = 8). Which of the look-ahead points the rules reach depends on outcomes not known yet;
 * evaluating them never changes the answer, since tell still takes the points in ask order. */
int mn_strategy_ask_batch(const mn_strategy *s, mn_point *out, int max);

/* The outcome of the point last asked. Scores are compared as the seeds compare them:
 * rounded to 3 decimals. Telling a point other than the one asked is an error. */
mn_status mn_strategy_tell(mn_strategy *s, mn_point p, mn_outcome outcome, double score);

/* The answer so far: the simplest architecture the rules keep. Returns 0 when no point has
 * been scored. */
int mn_strategy_best(const mn_strategy *s, mn_point *out, double *score);

#ifdef __cplusplus
}
#endif
#endif
