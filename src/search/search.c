/* The candidate phase of a search: ask, evaluate (target, then host/device memory, then
 * training), journal, tell. */
#include "mcunas/search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/backend.h"
#include "mcunas/bench.h"
#include "mcunas/net.h"

/* ---- host memory from /proc ---- */

static size_t proc_kib(const char *file, const char *key) {
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[256];
    size_t klen = strlen(key), v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0) {
            unsigned long long kib = 0;
            if (sscanf(line + klen, " %llu", &kib) == 1) v = (size_t)kib * 1024;
            break;
        }
    fclose(f);
    return v;
}

size_t mn_host_available_bytes(void) { return proc_kib("/proc/meminfo", "MemAvailable:"); }
size_t mn_host_rss_bytes(void) { return proc_kib("/proc/self/status", "VmRSS:"); }
size_t mn_host_peak_bytes(void) { return proc_kib("/proc/self/status", "VmHWM:"); }

int mn_host_peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0; /* 5: reset the peak resident set size */
    ok = fclose(f) == 0 && ok;
    return ok;
}

/* ---- evaluation ---- */

void mn_search_train_options(const mn_search_config *cfg, int epochs, mn_train_options *to) {
    mn_train_options_default(to);
    to->epochs = epochs;
    to->adam = cfg->adam;
    to->val_split = cfg->val_split;
    to->split_seed = cfg->split_seed;
    to->seed = cfg->seed;
    to->progress = cfg->on_train_progress;
    to->progress_user = cfg->user;
    to->stop = cfg->stop;
}

typedef struct mn_eval_ctx {
    const mn_search_config *cfg;
    const mn_loaded_data *data;
    size_t runtime_bytes; /* what the backend's runtime adds per training (warm-up, measured) */
} mn_eval_ctx;

static void fmt_mib(char *buf, size_t n, size_t bytes) {
    snprintf(buf, n, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* What the process's resident set may grow by while a candidate trains besides the buffers
 * counted below: allocator metadata, worker-thread stack pages, page rounding. Measured
 * overshoots without it were a few pages; 2 MiB keeps the plan an upper bound. */
#define MN_HOST_SLACK_BYTES ((size_t)2 << 20)

/* Host bytes a candidate's training adds to what the process holds now: the net's own
 * staging, the trainer's index and batch buffers, and the device buffers when the device is
 * the host's memory, plus MN_HOST_SLACK_BYTES. */
static size_t training_host_bytes(const mn_net_plan *plan, const mn_arch *arch, size_t n_train,
                                  int shares_host) {
    size_t image = mn_shape_count(arch->input);
    size_t trainer = n_train * sizeof(uint32_t) + 2 * (size_t)plan->batch * (image + sizeof(int32_t));
    return plan->host_bytes + trainer + (shares_host ? plan->device_bytes : 0) + MN_HOST_SLACK_BYTES;
}

static mn_status evaluate(mn_eval_ctx *ctx, mn_point p, mn_journal_entry *e) {
    const mn_search_config *cfg = ctx->cfg;
    const mn_loaded_data *data = ctx->data;
    double t0 = mn_time_now();
    mn_journal_entry_init(e, p);
    mn_arch arch;
    mn_status st = mn_arch_build(&arch, p.k, p.cells, cfg->layout, data->info.shape, data->info.classes);
    if (st == MN_ERR_INFEASIBLE) {
        e->outcome = MN_OUTCOME_INFEASIBLE;
        snprintf(e->reason, sizeof e->reason, "%s", mn_error_message());
        e->seconds = mn_time_now() - t0;
        return MN_OK;
    }
    if (st) return st;
    e->macc = mn_arch_macc(&arch);
    e->params = mn_arch_params(&arch);

    /* 1. The target MCU, from the cost model: never trained when it does not fit. */
    mn_estimate est;
    st = mn_estimate_compute(&arch, cfg->io_int8, cfg->target, cfg->latency, &est);
    if (st) return st;
    e->flash_bytes = est.flash_bytes;
    e->ram_bytes = est.ram_bytes;
    e->latency_ms = est.latency_ms;
    if (!est.feasible || (cfg->max_latency_ms > 0 && est.latency_ms > cfg->max_latency_ms)) {
        e->outcome = MN_OUTCOME_INFEASIBLE;
        if (!est.feasible)
            snprintf(e->reason, sizeof e->reason, "%.255s", est.reasons);
        else
            snprintf(e->reason, sizeof e->reason, "latency %.2f ms > %.2f ms", est.latency_ms,
                     cfg->max_latency_ms);
        e->seconds = mn_time_now() - t0;
        return MN_OK;
    }

    /* 2. The machine running the search: the training plan against the budgets. */
    mn_backend_options bo = {cfg->threads, cfg->device};
    mn_backend *be = NULL;
    if ((st = mn_backend_create(cfg->backend, &bo, &be))) return st;
    mn_backend_mem mem;
    mn_backend_mem_info(be, &mem);
    mn_net_plan plan;
    if ((st = mn_net_plan_compute(&arch, be, cfg->batch, &plan))) {
        mn_backend_destroy(be);
        return st;
    }
    const size_t n_train = data->train.count;
    mn_host_peak_reset();
    const size_t rss_before = mn_host_rss_bytes();
    e->host_planned_bytes = rss_before + ctx->runtime_bytes +
                            training_host_bytes(&plan, &arch, n_train, mem.shares_host_memory);
    e->device_planned_bytes = plan.device_bytes;
    char need[32], have[32];
    if (cfg->host_mem && e->host_planned_bytes > cfg->host_mem) {
        fmt_mib(need, sizeof need, e->host_planned_bytes);
        fmt_mib(have, sizeof have, cfg->host_mem);
        e->outcome = MN_OUTCOME_PRUNED;
        snprintf(e->reason, sizeof e->reason,
                 "training needs %s of host memory (batch %d), the budget is %s", need,
                 cfg->batch, have);
    } else if (!mem.shares_host_memory && cfg->device_mem && plan.device_bytes > cfg->device_mem) {
        fmt_mib(need, sizeof need, plan.device_bytes);
        fmt_mib(have, sizeof have, cfg->device_mem);
        e->outcome = MN_OUTCOME_PRUNED;
        snprintf(e->reason, sizeof e->reason,
                 "training needs %s of device memory (batch %d), the budget is %s", need,
                 cfg->batch, have);
    }
    if (e->outcome == MN_OUTCOME_PRUNED) {
        mn_backend_destroy(be);
        e->seconds = mn_time_now() - t0;
        return MN_OK;
    }

    /* 3. Train and score. */
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = cfg->batch;
    mn_net *net = NULL;
    st = mn_net_create(&arch, be, &no, &net);
    if (!st) st = mn_net_init(net, cfg->seed);
    mn_train_result res;
    if (!st) {
        mn_train_options to;
        mn_search_train_options(cfg, cfg->epochs, &to);
        st = mn_train_run(net, &data->train, NULL, &to, &res);
    }
    mn_backend_mem_info(be, &mem);
    e->device_measured_bytes = mem.peak_allocated_bytes;
    e->host_measured_bytes = mn_host_peak_bytes();
    mn_net_destroy(net);
    mn_backend_destroy(be);
    e->seconds = mn_time_now() - t0;
    if (st == MN_ERR_INTERRUPTED) return st;
    if (st == MN_ERR_BUDGET || st == MN_ERR_NOMEM || st == MN_ERR_BACKEND) {
        /* The seed's behaviour when a candidate dies: it scores nothing; the search goes on. */
        e->outcome = MN_OUTCOME_FAILED;
        snprintf(e->reason, sizeof e->reason, "%s", mn_error_message());
        return MN_OK;
    }
    if (st) return st;
    e->outcome = MN_OUTCOME_SCORED;
    e->val_acc = res.best_val_acc;
    return MN_OK;
}

/* A journal entry for point p, if the journal holds one (resume). */
static const mn_journal_entry *journaled(const mn_journal *j, size_t *cursor, mn_point p) {
    if (*cursor >= mn_journal_count(j)) return NULL;
    const mn_journal_entry *e = mn_journal_get(j, *cursor);
    if (e->point.k != p.k || e->point.cells != p.cells) return NULL;
    (*cursor)++;
    return e;
}

mn_status mn_search_run(const mn_search_config *cfg, const mn_loaded_data *data,
                        mn_search_result *out) {
    memset(out, 0, sizeof *out);
    if (!cfg->target) return mn_error_set(MN_ERR_INVALID_ARG, "a search needs a target MCU");
    if (cfg->batch < 1 || cfg->epochs < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "batch and epochs must be >= 1");
    int max_cells = mn_arch_max_cells(data->info.shape);
    mn_strategy_options so = {cfg->strategy, max_cells < 0 ? 0 : max_cells, 1,
                              cfg->k_max > 0 ? cfg->k_max : 256};
    mn_strategy *strategy = NULL;
    mn_journal *journal = NULL;
    mn_status st;
    double rank_seconds = mn_time_now();
    if (cfg->strategy == MN_STRATEGY_ZEROSHOT || cfg->strategy == MN_STRATEGY_HYBRID) {
        /* rank the space first; the top points are the strategy's list */
        int n = cfg->strategy == MN_STRATEGY_ZEROSHOT ? 1 : (cfg->top > 0 ? cfg->top : 5), got = 0;
        mn_point *ranked = NULL;
        st = mn_search_rank_points(cfg, data, n, &ranked, &got);
        if (!st) st = mn_strategy_create_list(cfg->strategy, ranked, got, &strategy);
        free(ranked);
    } else {
        st = mn_strategy_create(&so, &strategy);
    }
    rank_seconds = mn_time_now() - rank_seconds; /* counted in the search's time */
    if (!st) st = mn_journal_open(cfg->journal_path, cfg->settings_json, cfg->resume, &journal);
    if (st) {
        mn_strategy_destroy(strategy);
        return st;
    }
    /* Warm up once so that what the first candidate measures is its own: OpenMP's thread
     * pool, BLAS buffers and the allocator's arenas are created here, not inside it. The
     * warm-up also measures what a fresh backend's runtime adds to the resident set while it
     * trains, beyond the net's own buffers (an OpenCL context loading its programs and
     * CLBlast's kernels: tens of KiB to MiB; the CPU backend: about nothing); every
     * candidate's plan counts it, since each candidate gets a fresh backend. */
    size_t runtime_bytes = 0;
    {
        mn_backend_options bo = {cfg->threads, cfg->device};
        mn_backend *be = NULL;
        mn_arch tiny;
        mn_bench_result br;
        mn_net_plan plan;
        for (int pass = 0; pass < 2; pass++) { /* the first pass creates the process-wide pools */
            mn_host_peak_reset();
            size_t rss0 = mn_host_rss_bytes();
            if (!mn_backend_create(cfg->backend, &bo, &be) &&
                !mn_arch_build(&tiny, 1, 0, cfg->layout, data->info.shape, data->info.classes) &&
                !mn_net_plan_compute(&tiny, be, cfg->batch, &plan) &&
                !mn_bench_train(&tiny, be, cfg->batch, 0.0, 1, &br)) {
                mn_backend_mem mem;
                mn_backend_mem_info(be, &mem);
                size_t own = plan.host_bytes + (mem.shares_host_memory ? plan.device_bytes : 0);
                size_t peak = mn_host_peak_bytes();
                runtime_bytes = peak > rss0 + own ? peak - rss0 - own : 0;
            }
            mn_backend_destroy(be);
            be = NULL;
        }
        mn_error_clear();
    }
    mn_eval_ctx ctx = {cfg, data, runtime_bytes};
    size_t cursor = 0;
    double t0 = mn_time_now();
    mn_point p;
    while (!st && mn_strategy_ask(strategy, &p)) {
        if (cfg->stop && *cfg->stop) {
            st = mn_error_set(MN_ERR_INTERRUPTED, "search stopped before A(%d,%d)", p.k, p.cells);
            break;
        }
        const mn_journal_entry *prev = journaled(journal, &cursor, p);
        mn_journal_entry e;
        if (prev) {
            e = *prev;
            out->replayed++;
        } else {
            if (cursor < mn_journal_count(journal)) {
                const mn_journal_entry *x = mn_journal_get(journal, cursor);
                st = mn_error_set(MN_ERR_FORMAT,
                                  "%s: entry %zu is A(%d,%d) but the strategy asks A(%d,%d); the "
                                  "journal belongs to another search",
                                  cfg->journal_path, cursor + 1, x->point.k, x->point.cells, p.k,
                                  p.cells);
                break;
            }
            st = evaluate(&ctx, p, &e);
            if (st) break;
            st = mn_journal_append(journal, &e);
            if (st) break;
            cursor++; /* the entry just appended is consumed too */
            if (e.outcome == MN_OUTCOME_SCORED) out->trained++;
            if (e.host_measured_bytes > out->peak_host_bytes) out->peak_host_bytes = e.host_measured_bytes;
        }
        if (cfg->on_candidate) cfg->on_candidate(cfg->user, &e, prev != NULL);
        st = mn_strategy_tell(strategy, p, e.outcome, e.val_acc);
        out->evaluated++;
    }
    out->seconds = mn_time_now() - t0 + rank_seconds;
    out->have_winner = mn_strategy_best(strategy, &out->winner, &out->winner_val_acc);
    mn_journal_close(journal);
    mn_strategy_destroy(strategy);
    return st;
}
