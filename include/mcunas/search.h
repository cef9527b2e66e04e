/* The search: a strategy asks for points, the evaluator checks each against the target MCU
 * (cost model) and against the memory of the machine running the search (training plan),
 * trains what passes, and the journal records every outcome as it happens. */
#ifndef MCUNAS_SEARCH_H
#define MCUNAS_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/cost.h"
#include "mcunas/journal.h"
#include "mcunas/samples.h"
#include "mcunas/strategy.h"
#include "mcunas/target.h"
#include "mcunas/train.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mn_rank_options;

typedef struct mn_search_config {
    mn_strategy_kind strategy;
    /* zeroshot / hybrid: the space is ranked first (mn_rank_space, include/mcunas/rank.h)
     * and the top 1 / top `top` (0: 5) points are trained in rank order. rank: proxy
     * settings and MONAS weights (NULL: mn_rank_options_default); its space, budget and
     * machine fields are ignored, the search's own apply. */
    int top;
    const struct mn_rank_options *rank;
    mn_layout layout;
    int k_max;                     /* upper bound on k for every strategy */
    const mn_target *target;
    const mn_latency_model *latency; /* NULL: the built-in constants */
    double max_latency_ms;         /* 0: no latency bound */
    int io_int8;                   /* model input/output int8 instead of uint8 */
    mn_runtime runtime;            /* what must fit the target; MN_RUNTIME_C also writes
                                      model.c / model.h next to the .tflite */
    /* training of each candidate */
    int epochs, batch;
    mn_adam adam;
    double val_split;
    uint64_t split_seed, seed;
    /* the machine running the search */
    const char *backend;
    int threads, device;
    size_t host_mem;               /* bytes the search may use on the host */
    size_t device_mem;             /* bytes on a device that does not share host memory */
    /* How many candidates run at once. 0: one at a time in this process (the library's
     * default). W >= 1: W worker processes forked from this one, each evaluating on its own
     * backend with `threads`; host_mem and device_mem are shared by the candidates running
     * at once (one starts only when its planned bytes fit beside the others'). With `mpi`,
     * every rank but 0 contributes W workers of its own and rank 0 coordinates. */
    int workers;
    int lookahead;                 /* points evaluated ahead of need at most (0: none) */
    int mpi;                       /* spread over the ranks of an MPI job (MN_HAVE_MPI): rank 0
                                    * coordinates, the others serve and return with no winner */
    const char *data_path;         /* the dataset's file, for messages (MPI: a rank's data differs) */
    const char *journal_path;
    int resume;
    const char *settings_json;     /* written as the journal's first line */
    /* reporting */
    void (*on_candidate)(void *user, const mn_journal_entry *e, int replayed);
    mn_train_progress_fn on_train_progress;
    void *user;
    volatile int *stop;
} mn_search_config;

typedef struct mn_search_result {
    int have_winner;
    mn_point winner;
    double winner_val_acc;
    size_t evaluated;    /* candidates in the journal, replayed ones included */
    size_t trained;      /* trained in this run */
    size_t replayed;     /* taken from the journal without training */
    double seconds;      /* wall time of this run's candidate phase */
    uint64_t peak_host_bytes; /* largest measured peak RSS of a candidate */
    /* the workers */
    int slots;                /* workers evaluating candidates (1 without workers) */
    int nodes;                /* machines (MPI ranks with workers; 1 without MPI) */
    double busy_seconds;      /* worker-seconds spent evaluating, speculation included */
    double utilisation;       /* busy_seconds / (slots x seconds of the candidate loop) */
    size_t speculative;       /* evaluated ahead of need and never asked by the rules */
    size_t speculative_used;  /* evaluated ahead of need, then asked */
    double speculative_seconds; /* worker-seconds the never-asked ones took (abandoned too) */
    size_t lost;              /* jobs whose worker died under them (each retried once) */
    uint64_t peak_search_host_bytes; /* largest sampled host memory of search and workers */
    uint64_t base_host_bytes; /* resident before any candidate: the search, its workers' own
                               * pages (the coordinator's node) */
    uint64_t max_joint_planned_bytes; /* largest plan of what ran at once on one node */
} mn_search_result;

/* This process's rank in an MPI job and the job's size (*size), starting MPI on the first
 * call; 0 and 1 in a build without MPI or outside an MPI launcher's job. */
int mn_search_mpi_rank(int *size);
/* Ends MPI if this process started it and no search did (a job of one rank). */
void mn_search_mpi_finish(void);

/* The training options a search gives every candidate (and, with other epochs, its winner). */
void mn_search_train_options(const mn_search_config *cfg, int epochs, mn_train_options *out);

/* Runs the candidate phase to the end of the strategy (or until *stop). */
mn_status mn_search_run(const mn_search_config *cfg, const mn_loaded_data *data,
                        mn_search_result *out);

/* zeroshot / hybrid: ranks the points of cfg->layout up to cfg->k_max that pass the
 * evaluator's check (mn_search_check_candidate, with cfg's target and budgets and
 * runtime_bytes from mn_search_runtime_bytes) by the MONAS objective and returns the best
 * min(n, feasible) in rank order (malloc'd; *count may be 0). */
mn_status mn_search_rank_points(const mn_search_config *cfg, const mn_loaded_data *data,
                                size_t runtime_bytes, int n, mn_point **out, int *count);

#ifdef __cplusplus
}
#endif
#endif
