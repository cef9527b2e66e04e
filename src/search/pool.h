/* The workers of a search behind one interface: the search's own process (no workers),
 * worker processes forked on this machine (pool_local.c) and, built with MPI, the ranks of
 * an MPI job (pool_mpi.c). The coordinator (search.c) decides what runs where and when;
 * a pool only carries jobs to slots and results back. Internal to src/search/. */
#ifndef MN_SEARCH_POOL_H
#define MN_SEARCH_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/budget.h"
#include "mcunas/journal.h"
#include "mcunas/search.h"

/* What evaluating a candidate needs; every worker holds its own. */
typedef struct mn_eval_ctx {
    const mn_search_config *cfg;
    const mn_loaded_data *data;
    mn_search_budget budget; /* the target and the machine, from cfg */
} mn_eval_ctx;

void mn_eval_ctx_init(mn_eval_ctx *ctx, const mn_search_config *cfg, const mn_loaded_data *data);

/* The whole evaluation of one candidate in the calling process: the target, the host and
 * device budgets (mn_search_check_candidate on a fresh backend), then training. */
mn_status mn_search_evaluate(mn_eval_ctx *ctx, mn_point p, mn_journal_entry *e);

/* A candidate planned before it is started: the target, then what its training adds to the
 * resident set of the process that trains it (own: the backend's runtime, the net's staging
 * and device buffers where they are host memory, the trainer, the slack) and to a device with
 * memory of its own (dev). */
typedef struct mn_pool_plan {
    int fits;            /* 0: the target or the device budget refuses it (e: the outcome) */
    uint64_t own, dev;
    mn_journal_entry e;  /* the cost model's figures; the outcome when it does not fit */
} mn_pool_plan;

/* Plans p on *be (created from ctx on first use, kept by the caller); ctx's host budget is
 * not applied (the coordinator applies it to what runs at once). */
mn_status mn_search_plan(mn_eval_ctx *ctx, mn_backend **be, mn_point p, mn_pool_plan *out);

typedef struct mn_pool_job {
    uint32_t id;
    mn_point p;
} mn_pool_job;

typedef struct mn_pool_done {
    uint32_t id;
    int slot;
    int status;   /* mn_status of the evaluation; MN_OK: e holds the outcome */
    int lost;     /* the worker died with the job: msg says how (the job may be retried) */
    uint64_t idle_bytes; /* the worker's proportional set size once the job was done */
    char msg[256];
    mn_journal_entry e;
} mn_pool_done;

/* One machine's share of the budget: the workers there run beside each other. */
typedef struct mn_pool_group {
    char node[64];
    int rank;
    size_t host_mem, device_mem; /* that node's budgets (0: unchecked) */
    size_t base_bytes;           /* resident there before any candidate: the coordinator or
                                  * rank process with its data, and each worker's own pages */
    size_t runtime_bytes;        /* what a fresh backend adds there (mn_search_runtime_bytes) */
} mn_pool_group;

typedef struct mn_pool mn_pool;

typedef struct mn_pool_ops {
    /* Plans a point (mn_search_plan) where the pool keeps a backend for that; NULL: the
     * pool's one slot checks each candidate itself (inline). */
    mn_status (*plan)(mn_pool *pool, mn_point p, mn_pool_plan *out);
    mn_status (*submit)(mn_pool *pool, int slot, const mn_pool_job *job);
    /* Waits up to timeout_ms for a finished (or lost) job: 1 with *out filled, 0 on timeout,
     * -1 on a pool error (message set). */
    int (*wait)(mn_pool *pool, int timeout_ms, mn_pool_done *out);
    /* The host memory the search holds on this machine now (proportional set sizes, so
     * pages the workers share are counted once); 0 when unknown. */
    size_t (*host_bytes_now)(mn_pool *pool);
    void (*destroy)(mn_pool *pool);
} mn_pool_ops;

struct mn_pool {
    const mn_pool_ops *ops;
    int n_slots;
    int *slot_group;   /* the group of each slot */
    int *slot_worker;  /* the worker index of each slot within its group */
    int n_groups;
    mn_pool_group *groups;
    void *impl;
};

/* The search's own process: one slot, evaluated when waited for. */
mn_status mn_pool_inline_create(mn_eval_ctx *ctx, mn_pool **out);
/* `workers` processes forked from this one, each evaluating on its own backend. */
mn_status mn_pool_local_create(mn_eval_ctx *ctx, int workers, mn_pool **out);
#ifdef MN_HAVE_MPI
/* Rank 0 coordinates; every other rank's workers are slots (pool_mpi.c). */
mn_status mn_pool_mpi_create(mn_eval_ctx *ctx, int workers, mn_pool **out);
/* A rank other than 0: serves rank 0's jobs on `workers` local worker processes until rank 0
 * ends the search, then ends MPI. */
mn_status mn_search_mpi_serve(mn_eval_ctx *ctx, int workers);
#endif

/* Shared by the pools: allocation of the slot and group tables, and teardown. */
mn_status mn_pool_alloc(int n_slots, int n_groups, mn_pool **out);
void mn_pool_free(mn_pool *pool);

/* Reads/writes exactly n bytes on a stream socket (EINTR retried; a dead peer raises no
 * SIGPIPE): 1 done, 0 end of file or error. */
int mn_pool_read_all(int fd, void *buf, size_t n);
int mn_pool_write_all(int fd, const void *buf, size_t n);
/* mn_pool_read_all within `timeout_ms` milliseconds (no limit when negative): 1 done, 0 end
 * of file or error, -1 the time ran out (the peer is alive but silent; what was read of the
 * message is lost). */
int mn_pool_read_within(int fd, void *buf, size_t n, int timeout_ms);

#endif
