/* The "Occam's razor" strategies of the NanoNAS/ColabNAS line and a grid, as state machines.
 *
 * Inner loop (both): for a fixed k, c = 0, 1, 2, ... while score(k, c) > score(k, c-1); an
 * infeasible, pruned or failed point ends it. best(k) is the last improving point.
 * NanoNAS outer loop: k = 1, 2, 3, ... while best(k) > best(k-1); the answer is best(k-1).
 * ColabNAS outer loop: k = 4, then 8; if best(8) > best(4), keep doubling while
 * best(2k) > best(k) + 0.005; otherwise halve (2, 1) while best(k) >= best(2k).
 * Scores are compared in thousandths (the seeds round accuracy to 3 decimals). */
#include "mcunas/strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NO_SCORE (-1) /* milli-score of a k whose every point was infeasible */

typedef struct mn_inner {
    int k;
    int next_c;       /* the cell count to ask next */
    int prev_milli;   /* score of (k, next_c - 1) */
    int best_milli;   /* best(k) so far: NO_SCORE when none */
    mn_point best;
    int done;
} mn_inner;

struct mn_strategy {
    mn_strategy_options o;
    mn_inner in;
    int finished;
    int asked;        /* a point has been asked and not told */
    mn_point pending;
    /* the accepted answer */
    int have_answer;
    mn_point answer;
    int answer_milli;
    /* outer-loop state */
    int colab_phase;  /* 0: k=4, 1: k=8, 2: doubling, 3: halving */
    int colab_k4_milli;
    mn_point colab_k4_best;
    int grid_k;       /* grid: current k */
    mn_point *list;   /* zeroshot/hybrid: the points in order */
    int n_list, next_list;
};

static const char *const outcome_names[] = {"scored", "infeasible", "pruned", "failed"};
_Static_assert(sizeof outcome_names / sizeof outcome_names[0] == MN_OUTCOME_COUNT,
               "one name per outcome");

const char *mn_outcome_name(mn_outcome outcome) {
    return (outcome >= 0 && outcome < MN_OUTCOME_COUNT) ? outcome_names[outcome] : "unknown";
}

mn_status mn_outcome_parse(const char *name, mn_outcome *out) {
    for (int i = 0; i < MN_OUTCOME_COUNT; i++)
        if (name && strcmp(name, outcome_names[i]) == 0) {
            *out = (mn_outcome)i;
            return MN_OK;
        }
    return mn_error_set(MN_ERR_FORMAT, "unknown outcome '%s'", name ? name : "(null)");
}

static const char *const kind_names[] = {"nanonas", "colabnas", "grid", "zeroshot", "hybrid"};

const char *mn_strategy_kind_name(mn_strategy_kind kind) {
    return (kind >= 0 && kind <= MN_STRATEGY_HYBRID) ? kind_names[kind] : "unknown";
}

mn_status mn_strategy_kind_parse(const char *name, mn_strategy_kind *out) {
    for (int i = 0; i <= MN_STRATEGY_HYBRID; i++)
        if (name && strcmp(name, kind_names[i]) == 0) {
            *out = (mn_strategy_kind)i;
            return MN_OK;
        }
    return mn_error_set(MN_ERR_INVALID_ARG,
                        "unknown strategy '%s' (expected nanonas, colabnas, grid, zeroshot or "
                        "hybrid)",
                        name ? name : "(null)");
}

static void inner_start(mn_strategy *s, int k) {
    memset(&s->in, 0, sizeof s->in);
    s->in.k = k;
    s->in.best_milli = NO_SCORE;
    s->in.prev_milli = NO_SCORE;
    if (k < 1 || k > s->o.k_max) s->finished = 1;
}

mn_status mn_strategy_create(const mn_strategy_options *opts, mn_strategy **out) {
    *out = NULL;
    if (opts->kind < MN_STRATEGY_NANONAS || opts->kind > MN_STRATEGY_HYBRID)
        return mn_error_set(MN_ERR_INVALID_ARG, "unknown strategy kind %d", (int)opts->kind);
    if (opts->max_cells < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "max_cells must be >= 0 (got %d)", opts->max_cells);
    if (opts->k_min < 1 || opts->k_max < opts->k_min)
        return mn_error_set(MN_ERR_INVALID_ARG, "k range [%d, %d] is empty or below 1",
                            opts->k_min, opts->k_max);
    mn_strategy *s = calloc(1, sizeof *s);
    if (!s) return mn_error_set(MN_ERR_NOMEM, "no memory for a strategy");
    s->o = *opts;
    if (opts->kind == MN_STRATEGY_ZEROSHOT || opts->kind == MN_STRATEGY_HYBRID) {
        free(s);
        return mn_error_set(MN_ERR_INVALID_ARG, "the %s strategy is made from its ranked points "
                            "(mn_strategy_create_list)", kind_names[opts->kind]);
    }
    switch (opts->kind) {
    case MN_STRATEGY_NANONAS: inner_start(s, 1 > opts->k_min ? 1 : opts->k_min); break;
    case MN_STRATEGY_COLABNAS: inner_start(s, 4); break;
    case MN_STRATEGY_GRID:
        s->grid_k = opts->k_min;
        inner_start(s, opts->k_min);
        break;
    case MN_STRATEGY_ZEROSHOT:
    case MN_STRATEGY_HYBRID:
        break; /* handled above */
    }
    *out = s;
    return MN_OK;
}

mn_status mn_strategy_create_list(mn_strategy_kind kind, const mn_point *points, int n,
                                  mn_strategy **out) {
    *out = NULL;
    if (kind != MN_STRATEGY_ZEROSHOT && kind != MN_STRATEGY_HYBRID)
        return mn_error_set(MN_ERR_INVALID_ARG, "strategy %s does not take a list of points",
                            mn_strategy_kind_name(kind));
    if (n < 0 || (n > 0 && !points))
        return mn_error_set(MN_ERR_INVALID_ARG, "a %s strategy needs its list of points (n %d)",
                            kind_names[kind], n);
    mn_strategy *s = calloc(1, sizeof *s);
    if (!s) return mn_error_set(MN_ERR_NOMEM, "no memory for a strategy");
    s->list = malloc((size_t)(n > 0 ? n : 1) * sizeof(mn_point));
    if (!s->list) {
        free(s);
        return mn_error_set(MN_ERR_NOMEM, "no memory for %d points", n);
    }
    if (n > 0) memcpy(s->list, points, (size_t)n * sizeof(mn_point));
    s->o.kind = kind;
    s->n_list = n;
    s->finished = n == 0;
    *out = s;
    return MN_OK;
}

void mn_strategy_destroy(mn_strategy *s) {
    if (s) free(s->list);
    free(s);
}

static void accept(mn_strategy *s, mn_point p, int milli) {
    s->have_answer = 1;
    s->answer = p;
    s->answer_milli = milli;
}

/* The inner loop of s->in.k is over: the outer loop decides what comes next. */
static void outer_step(mn_strategy *s) {
    const mn_inner *in = &s->in;
    const int best = in->best_milli;
    switch (s->o.kind) {
    case MN_STRATEGY_NANONAS:
        if (best != NO_SCORE && (!s->have_answer || best > s->answer_milli)) {
            accept(s, in->best, best);
            inner_start(s, in->k + 1);
        } else {
            s->finished = 1;
        }
        return;
    case MN_STRATEGY_COLABNAS:
        if (s->colab_phase == 0) { /* k = 4 done: always try 8 */
            s->colab_k4_milli = best;
            s->colab_k4_best = in->best;
            if (best != NO_SCORE) accept(s, in->best, best);
            s->colab_phase = 1;
            inner_start(s, 8);
        } else if (s->colab_phase == 1) { /* k = 8 done: up or down */
            if (best != NO_SCORE && best > s->colab_k4_milli) {
                accept(s, in->best, best);
                s->colab_phase = 2;
                inner_start(s, 16);
            } else {
                s->colab_phase = 3;
                inner_start(s, 2);
            }
        } else if (s->colab_phase == 2) { /* doubling: needs +0.005 */
            if (best != NO_SCORE && best > s->answer_milli + 5) {
                accept(s, in->best, best);
                inner_start(s, in->k * 2);
            } else {
                s->finished = 1;
            }
        } else { /* halving: the simpler k wins ties */
            if (best != NO_SCORE && (!s->have_answer || best >= s->answer_milli)) {
                accept(s, in->best, best);
                if (in->k > 1) inner_start(s, in->k / 2);
                else s->finished = 1;
            } else {
                s->finished = 1;
            }
        }
        return;
    case MN_STRATEGY_GRID:
        if (best != NO_SCORE && (!s->have_answer || best > s->answer_milli))
            accept(s, in->best, best);
        inner_start(s, in->k + 1);
        return;
    case MN_STRATEGY_ZEROSHOT:
    case MN_STRATEGY_HYBRID:
        return; /* never reached: the list strategies have no inner loop */
    }
}

int mn_strategy_ask(mn_strategy *s, mn_point *out) {
    if (s->finished) return 0;
    if (s->list) {
        s->pending = s->list[s->next_list];
        s->asked = 1;
        *out = s->pending;
        return 1;
    }
    s->pending.k = s->in.k;
    s->pending.cells = s->in.next_c;
    s->asked = 1;
    *out = s->pending;
    return 1;
}

/* Appends row k from cell c on, interleaved with the other rows already queued: rows[i] is
 * the next cell of row i. */
typedef struct row_cursor {
    int k, c;
} row_cursor;

static int add_rows(const mn_strategy *s, row_cursor *rows, int n_rows, mn_point *out, int n,
                    int max) {
    for (int live = 1; live && n < max;) {
        live = 0;
        for (int i = 0; i < n_rows && n < max; i++) {
            if (rows[i].k < 1 || rows[i].k > s->o.k_max || rows[i].c > s->o.max_cells) continue;
            out[n++] = (mn_point){rows[i].k, rows[i].c++};
            live = 1;
        }
    }
    return n;
}

int mn_strategy_ask_batch(const mn_strategy *s, mn_point *out, int max) {
    if (s->finished || max < 1) return 0;
    if (s->list) {
        int n = 0;
        for (int i = s->next_list; i < s->n_list && n < max; i++) out[n++] = s->list[i];
        return n;
    }
    const int k = s->in.k;
    row_cursor rows[3] = {{k, s->in.next_c}, {0, 0}, {0, 0}};
    int n_rows = 1;
    switch (s->o.kind) {
    case MN_STRATEGY_GRID: { /* every pending point, row by row */
        int n = 0;
        for (int kk = k; kk <= s->o.k_max && n < max; kk++) {
            row_cursor r = {kk, kk == k ? s->in.next_c : 0};
            n = add_rows(s, &r, 1, out, n, max);
        }
        return n;
    }
    case MN_STRATEGY_NANONAS: rows[n_rows++] = (row_cursor){k + 1, 0}; break;
    case MN_STRATEGY_COLABNAS:
        if (s->colab_phase == 0) rows[n_rows++] = (row_cursor){8, 0};
        else if (s->colab_phase == 1) {
            rows[n_rows++] = (row_cursor){16, 0};
            rows[n_rows++] = (row_cursor){2, 0};
        } else if (s->colab_phase == 2) rows[n_rows++] = (row_cursor){2 * k, 0};
        else if (k > 1) rows[n_rows++] = (row_cursor){k / 2, 0};
        break;
    case MN_STRATEGY_ZEROSHOT:
    case MN_STRATEGY_HYBRID:
        break; /* list strategies: handled above */
    }
    /* the point needed now first, then the rows interleaved */
    out[0] = (mn_point){k, s->in.next_c};
    rows[0].c++;
    return add_rows(s, rows, n_rows, out, 1, max);
}

mn_status mn_strategy_tell(mn_strategy *s, mn_point p, mn_outcome outcome, double score) {
    if (!s->asked || p.k != s->pending.k || p.cells != s->pending.cells)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "told the outcome of A(%d,%d) but the strategy asked %s A(%d,%d)",
                            p.k, p.cells, s->asked ? "for" : "nothing since", s->pending.k,
                            s->pending.cells);
    if (outcome < MN_OUTCOME_SCORED || outcome > MN_OUTCOME_FAILED)
        return mn_error_set(MN_ERR_INVALID_ARG, "unknown outcome %d", (int)outcome);
    if (outcome == MN_OUTCOME_SCORED && !(score >= 0.0 && score <= 1.0))
        return mn_error_set(MN_ERR_INVALID_ARG, "score %g of A(%d,%d) is not in [0, 1]", score,
                            p.k, p.cells);
    s->asked = 0;
    if (s->list) { /* in order; the earlier (better-ranked) point wins ties */
        if (outcome == MN_OUTCOME_SCORED) {
            int milli = (int)lround(score * 1000.0);
            if (!s->have_answer || milli > s->answer_milli) accept(s, p, milli);
        }
        if (++s->next_list >= s->n_list) s->finished = 1;
        return MN_OK;
    }
    mn_inner *in = &s->in;
    int ends = 1;
    if (outcome == MN_OUTCOME_SCORED) {
        if (!(score >= 0.0 && score <= 1.0))
            return mn_error_set(MN_ERR_INVALID_ARG, "score %g of A(%d,%d) is not in [0, 1]",
                                score, p.k, p.cells);
        int milli = (int)lround(score * 1000.0);
        if (s->o.kind == MN_STRATEGY_GRID) {
            if (milli > in->best_milli) {
                in->best_milli = milli;
                in->best = p;
            }
            ends = 0;
        } else if (p.cells == 0 || milli > in->prev_milli) {
            in->best_milli = milli;
            in->best = p;
            in->prev_milli = milli;
            ends = 0;
        }
    } else if (s->o.kind == MN_STRATEGY_GRID) {
        /* A deeper point of the same k is only more expensive: the grid moves on. */
        ends = 1;
    }
    if (!ends) {
        in->next_c++;
        if (in->next_c > s->o.max_cells) ends = 1;
    }
    if (ends) outer_step(s);
    return MN_OK;
}

int mn_strategy_best(const mn_strategy *s, mn_point *out, double *score) {
    if (!s->have_answer) return 0;
    if (out) *out = s->answer;
    if (score) *score = s->answer_milli / 1000.0;
    return 1;
}
