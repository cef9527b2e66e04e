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
#include "pool.h"

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

void mn_eval_ctx_init(mn_eval_ctx *ctx, const mn_search_config *cfg, const mn_loaded_data *data) {
    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = cfg;
    ctx->data = data;
    mn_search_budget *bud = &ctx->budget;
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
}

mn_status mn_search_evaluate(mn_eval_ctx *ctx, mn_point p, mn_journal_entry *e) {
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


/* ---- the coordinator: ask, plan, dispatch to the pool's workers, journal, tell ---- */

/* A point whose outcome is known but that the rules have not asked (yet): evaluated ahead of
 * need in this run, or a speculative line of the journal being resumed. */
typedef struct known_pt {
    mn_journal_entry e;
    int from_journal, used;
} known_pt;

/* A point planned by the coordinator: whether it fits the target and its node's budget
 * alone, and what it adds there. */
typedef struct plan_pt {
    mn_point p;
    int fits;
    size_t own, dev;      /* host bytes its training adds; device bytes (own memory only) */
    mn_journal_entry e;   /* the outcome when it does not fit */
} plan_pt;

typedef struct flight {
    int busy, lost_once;
    uint32_t id;
    mn_point p;
    size_t own, dev, joint;
    double t0;
} flight;

typedef struct lost_pt {
    mn_point p;
    int count;
} lost_pt;

typedef struct coord {
    const mn_search_config *cfg;
    const mn_loaded_data *data;
    mn_eval_ctx ctx;        /* the coordinator's checks (host budget its own, below) */
    int planned;            /* the pool plans candidates (0: the inline pool) */
    mn_pool *pool;
    mn_strategy *strategy;
    mn_journal *journal;
    mn_search_result *out;
    flight *fl;
    known_pt *known;
    size_t n_known, cap_known;
    plan_pt *plans;
    size_t n_plans, cap_plans;
    lost_pt lost[64];
    int n_lost;
    int lookahead;
    uint32_t next_id;
    double t0;
    mn_point *batch;
} coord;

static int same(mn_point a, mn_point b) { return a.k == b.k && a.cells == b.cells; }

static known_pt *find_known(coord *c, mn_point p) {
    for (size_t i = 0; i < c->n_known; i++)
        if (same(c->known[i].e.point, p)) return &c->known[i];
    return NULL;
}

static mn_status add_known(coord *c, const mn_journal_entry *e, int from_journal) {
    if (find_known(c, e->point)) return MN_OK;
    if (c->n_known == c->cap_known) {
        size_t cap = c->cap_known ? 2 * c->cap_known : 16;
        known_pt *k = realloc(c->known, cap * sizeof *k);
        if (!k) return mn_error_set(MN_ERR_NOMEM, "no memory for %zu results", cap);
        c->known = k;
        c->cap_known = cap;
    }
    c->known[c->n_known++] = (known_pt){*e, from_journal, 0};
    return MN_OK;
}

static flight *in_flight(coord *c, mn_point p) {
    for (int i = 0; i < c->pool->n_slots; i++)
        if (c->fl[i].busy && same(c->fl[i].p, p)) return &c->fl[i];
    return NULL;
}

static lost_pt *lost_of(coord *c, mn_point p) {
    for (int i = 0; i < c->n_lost; i++)
        if (same(c->lost[i].p, p)) return &c->lost[i];
    if (c->n_lost == 64) return &c->lost[63];
    c->lost[c->n_lost] = (lost_pt){p, 0};
    return &c->lost[c->n_lost++];
}

static void fmt_mib(char *buf, size_t n, size_t bytes) {
    snprintf(buf, n, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

mn_status mn_search_plan(mn_eval_ctx *ctx, mn_backend **be, mn_point p, mn_pool_plan *out) {
    memset(out, 0, sizeof *out);
    mn_journal_entry *e = &out->e;
    mn_journal_entry_init(e, p);
    const mn_loaded_data *data = ctx->data;
    mn_arch arch;
    mn_status st = mn_arch_build(&arch, p.k, p.cells, ctx->cfg->layout, data->info.shape, data->info.classes);
    if (st == MN_ERR_INFEASIBLE) {
        e->outcome = MN_OUTCOME_INFEASIBLE;
        snprintf(e->reason, sizeof e->reason, "%s", mn_error_message());
        return MN_OK;
    }
    if (st) return st;
    e->macc = mn_arch_macc(&arch);
    e->params = mn_arch_params(&arch);
    mn_search_budget b = ctx->budget;
    b.host_mem = 0;
    mn_candidate_check chk;
    if ((st = mn_search_check_candidate(&b, &arch, data->train.count, be, &chk))) return st;
    mn_backend_mem mem;
    memset(&mem, 0, sizeof mem);
    mn_backend_mem_info(*be, &mem);
    e->flash_bytes = chk.est.flash_bytes;
    e->ram_bytes = chk.est.ram_bytes;
    e->latency_ms = chk.est.latency_ms;
    e->host_planned_bytes = chk.host_planned_bytes;
    e->device_planned_bytes = chk.device_planned_bytes;
    out->own = chk.host_planned_bytes - chk.host_resident_bytes;
    out->dev = mem.shares_host_memory ? 0 : chk.device_planned_bytes;
    if (chk.fit != MN_CANDIDATE_FITS) {
        e->outcome = chk.fit == MN_CANDIDATE_INFEASIBLE ? MN_OUTCOME_INFEASIBLE : MN_OUTCOME_PRUNED;
        snprintf(e->reason, sizeof e->reason, "%s", chk.reason);
    } else {
        out->fits = 1;
    }
    return MN_OK;
}

/* Marks e pruned: its training (own bytes beside the node's base) exceeds the host budget;
 * `where` ends the figure ("" or " beside the idle workers"). */
static void prune_host(const coord *c, const mn_pool_group *g, size_t own, const char *where,
                       mn_journal_entry *e);

/* Plans p once (the pool's planner), then applies its node's host budget to it running
 * alone (group 0's figures: every node runs the same backend and batch). */
static mn_status plan_of(coord *c, mn_point p, plan_pt **out) {
    for (size_t i = 0; i < c->n_plans; i++)
        if (same(c->plans[i].p, p)) {
            *out = &c->plans[i];
            return MN_OK;
        }
    if (c->n_plans == c->cap_plans) {
        size_t cap = c->cap_plans ? 2 * c->cap_plans : 32;
        plan_pt *n = realloc(c->plans, cap * sizeof *n);
        if (!n) return mn_error_set(MN_ERR_NOMEM, "no memory for %zu plans", cap);
        c->plans = n;
        c->cap_plans = cap;
    }
    plan_pt *pl = &c->plans[c->n_plans];
    memset(pl, 0, sizeof *pl);
    pl->p = p;
    mn_journal_entry_init(&pl->e, p);
    if (!c->planned) { /* inline: the evaluator checks everything itself */
        pl->fits = 1;
    } else {
        mn_pool_plan pp;
        mn_status st = c->pool->ops->plan(c->pool, p, &pp);
        if (st) return st;
        pl->e = pp.e;
        pl->own = pp.own;
        pl->dev = pp.dev;
        pl->fits = pp.fits;
        const mn_pool_group *g = &c->pool->groups[0];
        if (pl->fits && g->host_mem && g->base_bytes + pl->own > g->host_mem) {
            prune_host(c, g, pl->own, "", &pl->e);
            pl->fits = 0;
        }
    }
    c->n_plans++;
    *out = pl;
    return MN_OK;
}

/* A free slot whose node has room for pl beside what runs there, or -1; *joint: the node's
 * plan with it. */
static int admit(coord *c, const plan_pt *pl, size_t *joint) {
    for (int s = 0; s < c->pool->n_slots; s++) {
        if (c->fl[s].busy) continue;
        int g = c->pool->slot_group[s];
        const mn_pool_group *grp = &c->pool->groups[g];
        size_t host = grp->base_bytes + pl->own, dev = pl->dev;
        for (int o = 0; o < c->pool->n_slots; o++)
            if (c->fl[o].busy && c->pool->slot_group[o] == g) {
                host += c->fl[o].own;
                dev += c->fl[o].dev;
            }
        if (c->planned && grp->host_mem && host > grp->host_mem) continue;
        if (c->planned && grp->device_mem && dev > grp->device_mem) continue;
        *joint = c->planned ? host : 0;
        return s;
    }
    return -1;
}

static mn_status dispatch(coord *c, int slot, const plan_pt *pl, size_t joint) {
    flight *f = &c->fl[slot];
    f->busy = 1;
    f->id = ++c->next_id;
    f->p = pl->p;
    f->own = pl->own;
    f->dev = pl->dev;
    f->joint = joint;
    f->t0 = mn_time_now();
    if (joint > c->out->max_joint_planned_bytes) c->out->max_joint_planned_bytes = joint;
    mn_pool_job job = {f->id, pl->p};
    return c->pool->ops->submit(c->pool, slot, &job);
}

static int any_busy(const coord *c) {
    for (int s = 0; s < c->pool->n_slots; s++)
        if (c->fl[s].busy) return 1;
    return 0;
}

static void prune_host(const coord *c, const mn_pool_group *g, size_t own, const char *where,
                       mn_journal_entry *e) {
    char need[32], have[32];
    fmt_mib(need, sizeof need, g->base_bytes + own);
    fmt_mib(have, sizeof have, g->host_mem);
    e->outcome = MN_OUTCOME_PRUNED;
    snprintf(e->reason, sizeof e->reason,
             "training needs %s of host memory (batch %d)%s, the budget is %s", need,
             c->cfg->batch, where, have);
}

/* The journal entry of a planned point that no free slot can take even alone: pruned, with
 * the figures of the node it would have run on (the first: every node is idle). */
static void prune_now(const coord *c, const plan_pt *pl, mn_journal_entry *e) {
    const mn_pool_group *g = &c->pool->groups[0];
    *e = pl->e;
    if (g->host_mem && g->base_bytes + pl->own > g->host_mem) {
        prune_host(c, g, pl->own, " beside the idle workers", e);
        return;
    }
    e->outcome = MN_OUTCOME_PRUNED;
    snprintf(e->reason, sizeof e->reason,
             "training needs more device memory than the budget beside the idle workers");
}

/* Starts what may start: the point needed now first, then its look-ahead in order. The need
 * is resolved at once (*have, *e) when it does not fit at all. A point that fits alone but
 * not beside what runs waits; nothing after it is started meanwhile. */
static mn_status fill(coord *c, mn_point need, int *have, mn_journal_entry *e) {
    int n = mn_strategy_ask_batch(c->strategy, c->batch, 1 + c->lookahead);
    for (int i = 0; i < n; i++) {
        mn_point p = i == 0 ? need : c->batch[i];
        if (in_flight(c, p) || (i > 0 && find_known(c, p))) continue;
        plan_pt *pl = NULL;
        mn_status st = plan_of(c, p, &pl);
        if (st) return st;
        if (!pl->fits) {
            if (i == 0) {
                *e = pl->e;
                *have = 1;
                return MN_OK;
            }
            continue; /* a point that does not fit costs nothing to tell: no need to run ahead */
        }
        size_t joint = 0;
        int slot = admit(c, pl, &joint);
        if (slot < 0 && i == 0 && !any_busy(c)) {
            /* Nothing runs, yet it does not fit: the idle processes grew (what a worker keeps
             * between candidates counts) since it was planned. Waiting would never end. */
            prune_now(c, pl, e);
            *have = 1;
            return MN_OK;
        }
        if (slot < 0) return MN_OK;
        if ((st = dispatch(c, slot, pl, joint))) return st;
    }
    return MN_OK;
}

/* One finished (or lost) job; *have and *e when it is the point needed now. */
static mn_status handle(coord *c, const mn_pool_done *d, mn_point need, int *have, mn_journal_entry *e) {
    flight *f = &c->fl[d->slot];
    if (!f->busy || f->id != d->id) return MN_OK; /* a worker that died idle */
    double now = mn_time_now();
    f->busy = 0;
    c->out->busy_seconds += now - f->t0;
    mn_journal_entry r;
    if (d->lost) {
        c->out->lost++;
        lost_pt *l = lost_of(c, f->p);
        if (++l->count < 2) return MN_OK; /* retried once: fill starts it again where it fits */
        mn_journal_entry_init(&r, f->p);
        r.outcome = MN_OUTCOME_FAILED;
        snprintf(r.reason, sizeof r.reason, "%.200s, twice", d->msg);
    } else if (d->status == MN_ERR_INTERRUPTED) {
        return mn_error_set(MN_ERR_INTERRUPTED, "search stopped while A(%d,%d) trained", f->p.k, f->p.cells);
    } else if (d->status) {
        return mn_error_set((mn_status)d->status, "%s", d->msg);
    } else {
        r = d->e;
    }
    const mn_pool_group *g = &c->pool->groups[c->pool->slot_group[d->slot]];
    snprintf(r.node, sizeof r.node, "%s", g->node);
    r.rank = g->rank;
    r.worker = c->pool->slot_worker[d->slot];
    r.started = f->t0 - c->t0;
    r.joint_planned_bytes = r.outcome == MN_OUTCOME_SCORED ? f->joint : 0;
    r.host_added_bytes = r.outcome == MN_OUTCOME_SCORED ? f->own : 0;
    if (r.outcome == MN_OUTCOME_SCORED) c->out->trained++;
    if (r.host_measured_bytes > c->out->peak_host_bytes) c->out->peak_host_bytes = r.host_measured_bytes;
    if (!c->planned && r.host_measured_bytes > c->out->peak_search_host_bytes)
        c->out->peak_search_host_bytes = r.host_measured_bytes; /* inline: the process is the search */
    if (same(f->p, need)) {
        *e = r;
        *have = 1;
        return MN_OK;
    }
    r.speculative = 1; /* journaled now so that nothing trained is lost; asked later or never */
    mn_status st = mn_journal_append(c->journal, &r);
    if (!st) st = add_known(c, &r, 0);
    return st;
}

/* The next path entry of a resumed journal (speculative lines skipped), or NULL. */
static const mn_journal_entry *next_path(const mn_journal *j, size_t *cursor) {
    while (*cursor < mn_journal_count(j) && mn_journal_get(j, *cursor)->speculative) (*cursor)++;
    return *cursor < mn_journal_count(j) ? mn_journal_get(j, *cursor) : NULL;
}

static mn_status make_pool(coord *c) {
    const mn_search_config *cfg = c->cfg;
    mn_status st;
#ifdef MN_HAVE_MPI
    if (cfg->mpi) st = mn_pool_mpi_create(&c->ctx, cfg->workers > 0 ? cfg->workers : 1, &c->pool);
    else
#endif
    if (cfg->mpi)
        st = mn_error_set(MN_ERR_INVALID_ARG, "this build of mcunas has no MPI (rebuild with MPI found)");
    else if (cfg->workers > 0)
        st = mn_pool_local_create(&c->ctx, cfg->workers, &c->pool);
    else
        st = mn_pool_inline_create(&c->ctx, &c->pool);
    if (st) return st;
    c->ctx.budget.runtime_bytes = c->pool->groups[0].runtime_bytes;
    c->planned = c->pool->ops->plan != NULL;
    c->fl = calloc((size_t)c->pool->n_slots, sizeof *c->fl);
    c->lookahead = c->planned ? (cfg->lookahead > 0 ? cfg->lookahead : 0) : 0;
    c->batch = malloc((size_t)(c->lookahead + 1) * sizeof *c->batch);
    if (!c->fl || !c->batch) return mn_error_set(MN_ERR_NOMEM, "no memory for the search's workers");
    return MN_OK;
}

static void coord_free(coord *c) {
    if (c->pool) {
        /* speculation still running is abandoned: its time is waste */
        double now = mn_time_now();
        for (int i = 0; c->fl && i < c->pool->n_slots; i++)
            if (c->fl[i].busy) {
                c->out->busy_seconds += now - c->fl[i].t0;
                c->out->speculative_seconds += now - c->fl[i].t0;
            }
        c->pool->ops->destroy(c->pool);
    }
    free(c->fl);
    free(c->known);
    free(c->plans);
    free(c->batch);
}

/* The candidate loop: the rules ask one point at a time and are told in that order, so the
 * path and the answer are a sequential run's whatever ran ahead or where. */
static mn_status coordinate(coord *c) {
    const mn_search_config *cfg = c->cfg;
    mn_search_result *out = c->out;
    size_t cursor = 0;
    mn_status st = MN_OK;
    for (size_t i = 0; i < mn_journal_count(c->journal) && !st; i++)
        if (mn_journal_get(c->journal, i)->speculative) st = add_known(c, mn_journal_get(c->journal, i), 1);
    if (c->planned) out->peak_search_host_bytes = c->pool->ops->host_bytes_now(c->pool);
    mn_point need;
    while (!st && mn_strategy_ask(c->strategy, &need)) {
        if (cfg->stop && *cfg->stop) {
            st = mn_error_set(MN_ERR_INTERRUPTED, "search stopped before A(%d,%d)", need.k, need.cells);
            break;
        }
        const mn_journal_entry *prev = next_path(c->journal, &cursor);
        mn_journal_entry e;
        int replayed = 0, have = 0;
        if (prev && same(prev->point, need)) { /* resume: the path so far, as it was */
            e = *prev;
            cursor++;
            replayed = 1;
            out->replayed++;
        } else if (prev) {
            st = mn_error_set(MN_ERR_FORMAT,
                              "%s: entry %zu is A(%d,%d) but the strategy asks A(%d,%d); the "
                              "journal belongs to another search",
                              cfg->journal_path, cursor + 1, prev->point.k, prev->point.cells,
                              need.k, need.cells);
            break;
        } else {
            known_pt *k = find_known(c, need);
            if (k) { /* evaluated ahead: the rules reached it */
                e = k->e;
                k->used = 1;
                out->speculative_used++;
                if (k->from_journal) out->replayed++;
                replayed = k->from_journal;
                have = 1;
            }
            while (!have && !st) {
                st = fill(c, need, &have, &e);
                if (have || st) break;
                mn_pool_done d;
                int r = c->pool->ops->wait(c->pool, 50, &d);
                size_t now = c->pool->ops->host_bytes_now(c->pool);
                if (c->planned && now > out->peak_search_host_bytes) out->peak_search_host_bytes = now;
                if (r < 0) st = MN_ERR_IO;
                else if (r == 1) st = handle(c, &d, need, &have, &e);
                if (!st && cfg->stop && *cfg->stop)
                    st = mn_error_set(MN_ERR_INTERRUPTED, "search stopped while A(%d,%d) was evaluated",
                                      need.k, need.cells);
            }
            if (st) break;
            e.speculative = 0; /* the rules asked it: a path line */
            if ((st = mn_journal_append(c->journal, &e))) break;
            cursor = mn_journal_count(c->journal);
        }
        if (cfg->on_candidate) cfg->on_candidate(cfg->user, &e, replayed);
        st = mn_strategy_tell(c->strategy, need, e.outcome, e.val_acc);
        out->evaluated++;
    }
    /* what ran ahead and was never asked */
    for (size_t i = 0; i < c->n_known; i++)
        if (!c->known[i].used && !c->known[i].from_journal) {
            out->speculative++;
            out->speculative_seconds += c->known[i].e.seconds;
        }
    return st;
}

#ifndef MN_HAVE_MPI
int mn_search_mpi_rank(int *size) {
    *size = 1;
    return 0;
}

void mn_search_mpi_finish(void) {}
#endif

mn_status mn_search_run(const mn_search_config *cfg, const mn_loaded_data *data,
                        mn_search_result *out) {
    memset(out, 0, sizeof *out);
#ifdef MN_HAVE_MPI
    int size = 1;
    if (cfg->mpi && mn_search_mpi_rank(&size) != 0) { /* a worker rank */
        mn_eval_ctx ctx;
        mn_eval_ctx_init(&ctx, cfg, data);
        return mn_search_mpi_serve(&ctx, cfg->workers);
    }
#endif
    if (!cfg->target) return mn_error_set(MN_ERR_INVALID_ARG, "a search needs a target MCU");
    if (cfg->batch < 1 || cfg->epochs < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "batch and epochs must be >= 1");
    if (cfg->workers < 0 || cfg->lookahead < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "workers and lookahead must be >= 0");
    int max_cells = mn_arch_max_cells(data->info.shape);
    mn_strategy_options so = {cfg->strategy, max_cells < 0 ? 0 : max_cells, 1,
                              cfg->k_max > 0 ? cfg->k_max : 256};
    coord c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.data = data;
    c.out = out;
    mn_eval_ctx_init(&c.ctx, cfg, data);
    /* The workers first: forked before this process creates any backend (their warm-up
     * measures what a fresh backend's runtime adds; the inline pool warms up here). */
    mn_status st = make_pool(&c);
    double rank_seconds = mn_time_now();
    if (!st && (cfg->strategy == MN_STRATEGY_ZEROSHOT || cfg->strategy == MN_STRATEGY_HYBRID)) {
        /* rank the space first; the top points are the strategy's list */
        int n = cfg->strategy == MN_STRATEGY_ZEROSHOT ? 1 : (cfg->top > 0 ? cfg->top : 5), got = 0;
        mn_point *ranked = NULL;
        st = mn_search_rank_points(cfg, data, c.ctx.budget.runtime_bytes, n, &ranked, &got);
        if (!st) st = mn_strategy_create_list(cfg->strategy, ranked, got, &c.strategy);
        free(ranked);
    } else if (!st) {
        st = mn_strategy_create(&so, &c.strategy);
    }
    rank_seconds = mn_time_now() - rank_seconds; /* counted in the search's time */
    if (!st) st = mn_journal_open(cfg->journal_path, cfg->settings_json, cfg->resume, &c.journal);
    c.t0 = mn_time_now();
    if (!st) st = coordinate(&c);
    double loop_seconds = mn_time_now() - c.t0;
    if (c.pool) {
        out->base_host_bytes = c.pool->groups[0].base_bytes;
        out->slots = c.pool->n_slots;
        out->nodes = c.pool->n_groups;
    }
    out->have_winner = c.strategy && mn_strategy_best(c.strategy, &out->winner, &out->winner_val_acc);
    coord_free(&c);
    out->seconds = loop_seconds + rank_seconds;
    if (out->slots && loop_seconds > 0) out->utilisation = out->busy_seconds / (out->slots * loop_seconds);
    mn_journal_close(c.journal);
    mn_strategy_destroy(c.strategy);
    return st;
}
