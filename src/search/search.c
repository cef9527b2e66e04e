/* The candidate phase of a search: ask, evaluate (target, then host/device memory, then
 * training), journal, tell. */
#include "mcunas/search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/backend.h"
#include "mcunas/budget.h"
#include "mcunas/clock.h"
#include "mcunas/host.h"
#include "mcunas/net.h"

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
    mn_search_budget budget; /* the target and the machine, from cfg */
} mn_eval_ctx;

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

    /* 1. The target MCU, then the machine running the search: never trained when it does
     * not fit. The peak resident set restarts here, so what the candidate measures is its
     * own, backend included. */
    mn_host_peak_reset();
    mn_backend *be = NULL;
    mn_candidate_check chk;
    st = mn_search_check_candidate(&ctx->budget, &arch, data->train.count, &be, &chk);
    if (st) {
        mn_backend_destroy(be);
        return st;
    }
    e->flash_bytes = chk.est.flash_bytes;
    e->ram_bytes = chk.est.ram_bytes;
    e->latency_ms = chk.est.latency_ms;
    e->host_planned_bytes = chk.host_planned_bytes;
    e->device_planned_bytes = chk.device_planned_bytes;
    if (chk.fit != MN_CANDIDATE_FITS) {
        e->outcome = chk.fit == MN_CANDIDATE_INFEASIBLE ? MN_OUTCOME_INFEASIBLE : MN_OUTCOME_PRUNED;
        snprintf(e->reason, sizeof e->reason, "%s", chk.reason);
        mn_backend_destroy(be);
        e->seconds = mn_time_now() - t0;
        return MN_OK;
    }

    /* 2. Train and score. */
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
    mn_backend_mem mem;
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
    mn_eval_ctx ctx = {cfg, data, {0}};
    mn_search_budget *bud = &ctx.budget;
    bud->target = cfg->target;
    bud->latency = cfg->latency;
    bud->io_int8 = cfg->io_int8;
    bud->mcu_runtime = cfg->runtime;
    bud->max_latency_ms = cfg->max_latency_ms;
    bud->backend = cfg->backend;
    bud->threads = cfg->threads;
    bud->device = cfg->device;
    bud->batch = cfg->batch;
    bud->host_mem = cfg->host_mem;
    bud->device_mem = cfg->device_mem;
    /* Warm up once so that what the first candidate measures is its own, and measure what
     * a fresh backend's runtime adds: every candidate's plan counts it (each candidate gets a
     * fresh backend), and so does the ranking of zeroshot and hybrid. */
    bud->runtime_bytes = mn_search_runtime_bytes(bud, cfg->layout, data->info.shape,
                                                 data->info.classes);
    mn_status st;
    double rank_seconds = mn_time_now();
    if (cfg->strategy == MN_STRATEGY_ZEROSHOT || cfg->strategy == MN_STRATEGY_HYBRID) {
        /* rank the space first; the top points are the strategy's list */
        int n = cfg->strategy == MN_STRATEGY_ZEROSHOT ? 1 : (cfg->top > 0 ? cfg->top : 5), got = 0;
        mn_point *ranked = NULL;
        st = mn_search_rank_points(cfg, data, bud->runtime_bytes, n, &ranked, &got);
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
