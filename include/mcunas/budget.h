/* Whether a candidate fits: first the target MCU (the cost model), then the machine that
 * would train it (the training plan against the host and device budgets). The search's
 * evaluator and the ranking filter ask this one check, so ranking never keeps a candidate
 * that the evaluator would prune. */
#ifndef MCUNAS_BUDGET_H
#define MCUNAS_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/cost.h"
#include "mcunas/status.h"
#include "mcunas/target.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the process's resident set may grow by while a candidate trains besides the buffers
 * the plan counts: allocator metadata, worker-thread stack pages, page rounding. Measured
 * overshoots without it were a few pages; 2 MiB keeps the plan an upper bound. */
#define MN_HOST_SLACK_BYTES ((size_t)2 << 20)

/* runtime_bytes not measured yet (mn_rank_options: ranking measures it itself). */
#define MN_RUNTIME_BYTES_UNMEASURED ((size_t)-1)

typedef struct mn_search_budget {
    /* the target MCU */
    const mn_target *target;         /* required */
    const mn_latency_model *latency; /* NULL: the built-in constants */
    int io_int8;                     /* model input/output int8 instead of uint8 */
    mn_runtime mcu_runtime;          /* what must fit the target (TFLM unless set) */
    double max_latency_ms;           /* 0: no latency bound */
    /* the machine that trains the candidate */
    const char *backend;             /* NULL: "cpu" */
    int threads, device;             /* of the backend the check creates */
    int batch;                       /* the training batch the plan is for */
    size_t host_mem;                 /* 0: no host check */
    size_t device_mem;               /* 0: no device check; only a device with memory of its
                                      * own is checked (else the host check counts it) */
    size_t runtime_bytes;            /* what a fresh backend's runtime adds to the resident
                                      * set while it trains (mn_search_runtime_bytes) */
} mn_search_budget;

typedef enum mn_candidate_fit {
    MN_CANDIDATE_FITS = 0,
    MN_CANDIDATE_INFEASIBLE, /* the target refuses it (cost model or latency bound) */
    MN_CANDIDATE_PRUNED      /* the host or device budget refuses its training */
} mn_candidate_fit;

typedef struct mn_candidate_check {
    mn_candidate_fit fit;
    mn_estimate est;             /* the cost model's figures */
    /* set once the target passes (0 before): */
    size_t host_planned_bytes;   /* resident set now + runtime_bytes + what training adds
                                  * (the net's staging, the trainer's index and batches, the
                                  * device buffers when they are host memory, the slack) */
    size_t host_resident_bytes;  /* the "resident set now" of host_planned_bytes: read after
                                  * the plan, so what planning itself loads into this process
                                  * (a library's first use) is not counted as the candidate's */
    size_t device_planned_bytes; /* every byte the net allocates on the backend */
    char reason[256];            /* why it does not fit; "" when it does */
} mn_candidate_check;

/* Checks `arch`, trained on n_train samples, against `b`. The plan is computed on *be; when
 * *be is NULL, a backend is created from b only once the target passes (a candidate the
 * target refuses costs no backend) and handed back in *be, which the caller destroys in any
 * case. A candidate that does not fit is MN_OK with out->fit and out->reason set. */
mn_status mn_search_check_candidate(const mn_search_budget *b, const mn_arch *arch,
                                    size_t n_train, mn_backend **be, mn_candidate_check *out);

/* Trains a tiny candidate (A(1,0) of `layout`) for one step on a fresh backend of b, twice:
 * the first pass creates the process-wide pools (OpenMP threads, BLAS buffers, allocator
 * arenas), so that later measurements are the candidates' own; the second measures what the
 * backend's runtime adds to the resident set beyond the net's own buffers (an OpenCL context
 * loading its programs and CLBlast's kernels: tens of KiB to MiB; the CPU backend: about
 * nothing). Resets the kernel's peak resident set. 0 when it cannot be measured. */
size_t mn_search_runtime_bytes(const mn_search_budget *b, mn_layout layout, mn_shape input,
                               int classes);

#ifdef __cplusplus
}
#endif
#endif
