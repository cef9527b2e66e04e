/* The one fit check of a candidate: the target, then the training plan against the host and
 * device budgets (definitions in include/mcunas/budget.h). */
#include "mcunas/budget.h"

#include <stdio.h>
#include <string.h>

#include "mcunas/bench.h"
#include "mcunas/host.h"
#include "mcunas/net.h"

static void fmt_mib(char *buf, size_t n, size_t bytes) {
    snprintf(buf, n, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* Host bytes a candidate's training adds to what the process holds now: the net's own
 * staging, the trainer's index and batch buffers, and the device buffers when the device is
 * the host's memory, plus MN_HOST_SLACK_BYTES. */
static size_t training_host_bytes(const mn_net_plan *plan, const mn_arch *arch, size_t n_train,
                                  int shares_host) {
    size_t image = mn_shape_count(arch->input);
    size_t trainer = n_train * sizeof(uint32_t) + 2 * (size_t)plan->batch * (image + sizeof(int32_t));
    return plan->host_bytes + trainer + (shares_host ? plan->device_bytes : 0) + MN_HOST_SLACK_BYTES;
}

mn_status mn_search_check_candidate(const mn_search_budget *b, const mn_arch *arch,
                                    size_t n_train, mn_backend **be, mn_candidate_check *out) {
    memset(out, 0, sizeof *out);
    if (!b->target) return mn_error_set(MN_ERR_INVALID_ARG, "the candidate check needs a target MCU");

    /* 1. The target MCU, from the cost model. */
    mn_status st = mn_estimate_compute_runtime(arch, b->io_int8, b->target, b->latency, b->mcu_runtime, &out->est);
    if (st) return st;
    if (!out->est.feasible) {
        out->fit = MN_CANDIDATE_INFEASIBLE;
        snprintf(out->reason, sizeof out->reason, "%.255s", out->est.reasons);
        return MN_OK;
    }
    if (b->max_latency_ms > 0 && out->est.latency_ms > b->max_latency_ms) {
        out->fit = MN_CANDIDATE_INFEASIBLE;
        snprintf(out->reason, sizeof out->reason, "latency %.2f ms > %.2f ms", out->est.latency_ms,
                 b->max_latency_ms);
        return MN_OK;
    }

    /* 2. The machine: the training plan against the budgets. */
    if (!*be) {
        mn_backend_options bo = {b->threads, b->device};
        if ((st = mn_backend_create(b->backend ? b->backend : "cpu", &bo, be))) return st;
    }
    mn_backend_mem mem;
    memset(&mem, 0, sizeof mem);
    mn_backend_mem_info(*be, &mem);
    mn_net_plan plan;
    if ((st = mn_net_plan_compute(arch, *be, b->batch, &plan))) return st;
    out->host_resident_bytes = mn_host_rss_bytes();
    out->host_planned_bytes = out->host_resident_bytes + b->runtime_bytes +
                              training_host_bytes(&plan, arch, n_train, mem.shares_host_memory);
    out->device_planned_bytes = plan.device_bytes;
    char need[32], have[32];
    if (b->host_mem && out->host_planned_bytes > b->host_mem) {
        fmt_mib(need, sizeof need, out->host_planned_bytes);
        fmt_mib(have, sizeof have, b->host_mem);
        out->fit = MN_CANDIDATE_PRUNED;
        snprintf(out->reason, sizeof out->reason,
                 "training needs %s of host memory (batch %d), the budget is %s", need, b->batch,
                 have);
    } else if (!mem.shares_host_memory && b->device_mem && plan.device_bytes > b->device_mem) {
        fmt_mib(need, sizeof need, plan.device_bytes);
        fmt_mib(have, sizeof have, b->device_mem);
        out->fit = MN_CANDIDATE_PRUNED;
        snprintf(out->reason, sizeof out->reason,
                 "training needs %s of device memory (batch %d), the budget is %s", need,
                 b->batch, have);
    }
    return MN_OK;
}

size_t mn_search_runtime_bytes(const mn_search_budget *b, mn_layout layout, mn_shape input,
                               int classes) {
    mn_backend_options bo = {b->threads, b->device};
    size_t runtime_bytes = 0;
    for (int pass = 0; pass < 2; pass++) { /* the first pass creates the process-wide pools */
        mn_backend *be = NULL;
        mn_arch tiny;
        mn_bench_result br;
        mn_net_plan plan;
        mn_host_peak_reset();
        size_t rss0 = mn_host_rss_bytes();
        if (!mn_backend_create(b->backend ? b->backend : "cpu", &bo, &be) &&
            !mn_arch_build(&tiny, 1, 0, layout, input, classes) &&
            !mn_net_plan_compute(&tiny, be, b->batch, &plan) &&
            !mn_bench_train(&tiny, be, b->batch, 0.0, 1, NULL, &br)) {
            mn_backend_mem mem;
            mn_backend_mem_info(be, &mem);
            size_t own = plan.host_bytes + (mem.shares_host_memory ? plan.device_bytes : 0);
            size_t peak = mn_host_peak_bytes();
            runtime_bytes = peak > rss0 + own ? peak - rss0 - own : 0;
        }
        mn_backend_destroy(be);
    }
    mn_error_clear(); /* a failure here shows again, with its message, on the first candidate */
    return runtime_bytes;
}
