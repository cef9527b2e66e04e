/* The search strategies against scripted score tables: the exact sequence of points asked
 * and the answer, for each stopping rule of RESEARCH.md 1.2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "mcunas/strategy.h"

/* A scripted world: score[k][c] (< 0 means infeasible). */
typedef struct world {
    double score[40][6];
} world;

typedef struct trace {
    mn_point asked[128];
    int n;
} trace;

static void run(mn_strategy_kind kind, int max_cells, int k_max, const world *w, trace *t,
                mn_point *best, double *best_score) {
    mn_strategy_options o = {kind, max_cells, 1, k_max};
    mn_strategy *s;
    assert_int_equal(mn_strategy_create(&o, &s), MN_OK);
    mn_point p, batch[256];
    int n_batch = 0;
    t->n = 0;
    while (mn_strategy_ask(s, &p)) {
        assert_true(t->n < 128);
        /* batch ask: the point needed now first, and every point the rules go on to ask was
         * offered by the batch before it (look-ahead covers both ways the rules can go) */
        if (t->n > 0) {
            int offered = 0;
            for (int i = 1; i < n_batch; i++)
                offered |= batch[i].k == p.k && batch[i].cells == p.cells;
            if (!offered) fail_msg("A(%d,%d) was not in the look-ahead of the point before", p.k, p.cells);
        }
        n_batch = mn_strategy_ask_batch(s, batch, 256);
        assert_true(n_batch >= 1);
        assert_int_equal(batch[0].k, p.k);
        assert_int_equal(batch[0].cells, p.cells);
        t->asked[t->n++] = p;
        double sc = w->score[p.k][p.cells];
        if (sc < 0)
            assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_INFEASIBLE, 0), MN_OK);
        else
            assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_SCORED, sc), MN_OK);
    }
    assert_int_equal(mn_strategy_ask_batch(s, batch, 256), 0);
    best->k = best->cells = -1;
    *best_score = -1;
    mn_strategy_best(s, best, best_score);
    mn_strategy_destroy(s);
}

static void expect_trace(const trace *t, const int (*pts)[2], int n) {
    if (t->n != n) {
        char buf[1024] = "";
        for (int i = 0; i < t->n; i++) {
            char one[32];
            snprintf(one, sizeof one, "(%d,%d) ", t->asked[i].k, t->asked[i].cells);
            strncat(buf, one, sizeof buf - strlen(buf) - 1);
        }
        fail_msg("asked %d points, expected %d: %s", t->n, n, buf);
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(t->asked[i].k, pts[i][0]);
        assert_int_equal(t->asked[i].cells, pts[i][1]);
    }
}

static void nanonas_grows_while_strictly_better(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    /* k=1: 0.60 at c=1, c=2 only equal -> stop. */
    w.score[1][0] = 0.50, w.score[1][1] = 0.60, w.score[1][2] = 0.60;
    /* k=2: grows to c=2, c=3 worse. */
    w.score[2][0] = 0.55, w.score[2][1] = 0.65, w.score[2][2] = 0.70, w.score[2][3] = 0.69;
    /* k=3: grows to the depth limit (4 cells). */
    w.score[3][0] = 0.60, w.score[3][1] = 0.68, w.score[3][2] = 0.695, w.score[3][3] = 0.70,
    w.score[3][4] = 0.71;
    /* k=4: worse than best(3) -> the answer is best(3). */
    w.score[4][0] = 0.50, w.score[4][1] = 0.49;
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_NANONAS, 4, 64, &w, &t, &best, &score);
    static const int expect[][2] = {{1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}, {2, 3},
                                    {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}, {4, 0}, {4, 1}};
    expect_trace(&t, expect, 14);
    assert_int_equal(best.k, 3);
    assert_int_equal(best.cells, 4);
    assert_float_equal(score, 0.71, 1e-12);
}

static void scores_compare_at_three_decimals(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    w.score[1][0] = 0.7001, w.score[1][1] = 0.7004; /* both 0.700: no improvement */
    w.score[2][0] = 0.7004;                         /* best(2) == best(1): stop */
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_NANONAS, 4, 64, &w, &t, &best, &score);
    static const int expect[][2] = {{1, 0}, {1, 1}, {2, 0}, {2, 1}};
    (void)expect;
    /* k=2: c=0 0.700, c=1 0.000 -> ends; best(2) = 0.700, not > 0.700 -> answer A(1,0). */
    assert_int_equal(best.k, 1);
    assert_int_equal(best.cells, 0);
    expect_trace(&t, expect, 4);
}

static void infeasible_ends_inner_loop(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    w.score[1][0] = 0.5, w.score[1][1] = 0.6, w.score[1][2] = -1; /* RAM exceeded at c=2 */
    w.score[2][0] = -1;                                             /* k=2 infeasible at once */
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_NANONAS, 5, 64, &w, &t, &best, &score);
    static const int expect[][2] = {{1, 0}, {1, 1}, {1, 2}, {2, 0}};
    expect_trace(&t, expect, 4);
    assert_int_equal(best.k, 1);
    assert_int_equal(best.cells, 1);
}

static void nothing_feasible_has_no_answer(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    w.score[1][0] = -1;
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_NANONAS, 5, 64, &w, &t, &best, &score);
    assert_int_equal(t.n, 1);
    assert_int_equal(best.k, -1);
}

static void colabnas_doubles_with_margin(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    w.score[4][0] = 0.70, w.score[4][1] = 0.69;
    w.score[8][0] = 0.72, w.score[8][1] = 0.75, w.score[8][2] = 0.74;
    w.score[16][0] = 0.74, w.score[16][1] = 0.756, w.score[16][2] = 0.70; /* +0.006: accept */
    w.score[32][0] = 0.76, w.score[32][1] = 0.761, w.score[32][2] = 0.70; /* +0.005: not > */
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_COLABNAS, 5, 512, &w, &t, &best, &score);
    static const int expect[][2] = {{4, 0},  {4, 1},  {8, 0},  {8, 1},  {8, 2},
                                    {16, 0}, {16, 1}, {16, 2}, {32, 0}, {32, 1}, {32, 2}};
    expect_trace(&t, expect, 11);
    assert_int_equal(best.k, 16);
    assert_int_equal(best.cells, 1);
}

static void colabnas_halves_when_8_is_no_better(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    w.score[4][0] = 0.70, w.score[4][1] = 0.60;
    w.score[8][0] = 0.70, w.score[8][1] = 0.65;  /* best(8) == best(4): go down */
    w.score[2][0] = 0.70, w.score[2][1] = 0.65;  /* >= : the simpler k=2 is kept */
    w.score[1][0] = 0.66, w.score[1][1] = 0.699; /* < : stop, answer k=2 */
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_COLABNAS, 5, 512, &w, &t, &best, &score);
    static const int expect[][2] = {{4, 0}, {4, 1}, {8, 0}, {8, 1}, {2, 0}, {2, 1}, {1, 0}, {1, 1}, {1, 2}};
    expect_trace(&t, expect, 9);
    assert_int_equal(best.k, 2);
    assert_int_equal(best.cells, 0);
}

static void grid_visits_every_feasible_point(void **state) {
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    for (int k = 1; k <= 3; k++)
        for (int c = 0; c <= 2; c++) w.score[k][c] = 0.1 * k + 0.01 * c;
    w.score[3][1] = -1; /* infeasible: deeper points of k=3 are skipped */
    w.score[2][2] = 0.9;
    trace t;
    mn_point best;
    double score;
    run(MN_STRATEGY_GRID, 2, 3, &w, &t, &best, &score);
    static const int expect[][2] = {{1, 0}, {1, 1}, {1, 2}, {2, 0}, {2, 1}, {2, 2}, {3, 0}, {3, 1}};
    expect_trace(&t, expect, 8);
    assert_int_equal(best.k, 2);
    assert_int_equal(best.cells, 2);
}

static void expect_batch(mn_strategy *s, int max, const int (*pts)[2], int n) {
    mn_point b[64];
    int got = mn_strategy_ask_batch(s, b, max);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++) {
        if (b[i].k != pts[i][0] || b[i].cells != pts[i][1])
            fail_msg("batch[%d] is A(%d,%d), expected A(%d,%d)", i, b[i].k, b[i].cells, pts[i][0], pts[i][1]);
    }
}

/* What each strategy offers ahead: nanonas the rest of row k and the start of row k+1,
 * colabnas both branches after k = 8, grid every pending point, bounded by max. */
static void batch_ask_offers_the_points_the_rules_may_ask(void **state) {
    (void)state;
    mn_strategy_options o = {MN_STRATEGY_NANONAS, 2, 1, 64};
    mn_strategy *s;
    mn_point p;
    assert_int_equal(mn_strategy_create(&o, &s), MN_OK);
    static const int nano[][2] = {{1, 0}, {1, 1}, {2, 0}, {1, 2}, {2, 1}, {2, 2}};
    expect_batch(s, 64, nano, 6);
    expect_batch(s, 3, nano, 3); /* --lookahead bounds it */
    assert_true(mn_strategy_ask(s, &p));
    expect_batch(s, 64, nano, 6); /* asking changes nothing */
    mn_strategy_destroy(s);

    o.kind = MN_STRATEGY_COLABNAS;
    o.max_cells = 1;
    assert_int_equal(mn_strategy_create(&o, &s), MN_OK);
    double k4[] = {0.7, 0.6}, k8[] = {0.7};
    for (int c = 0; c < 2; c++) {
        assert_true(mn_strategy_ask(s, &p));
        assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_SCORED, k4[c]), MN_OK);
    }
    static const int at8[][2] = {{8, 0}, {8, 1}, {16, 0}, {2, 0}, {16, 1}, {2, 1}};
    expect_batch(s, 64, at8, 6);
    assert_true(mn_strategy_ask(s, &p));
    assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_SCORED, k8[0]), MN_OK);
    static const int both[][2] = {{8, 1}, {16, 0}, {2, 0}, {16, 1}, {2, 1}};
    expect_batch(s, 64, both, 5);
    mn_strategy_destroy(s);

    o.kind = MN_STRATEGY_GRID;
    o.k_max = 2;
    assert_int_equal(mn_strategy_create(&o, &s), MN_OK);
    static const int grid[][2] = {{1, 0}, {1, 1}, {2, 0}, {2, 1}};
    expect_batch(s, 64, grid, 4);
    mn_strategy_destroy(s);

    mn_point list[] = {{3, 1}, {1, 0}, {2, 2}};
    assert_int_equal(mn_strategy_create_list(MN_STRATEGY_HYBRID, list, 3, &s), MN_OK);
    assert_true(mn_strategy_ask(s, &p));
    assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_SCORED, 0.5), MN_OK);
    static const int rest[][2] = {{1, 0}, {2, 2}};
    expect_batch(s, 64, rest, 2);
    mn_strategy_destroy(s);
}

static void misuse_is_refused(void **state) {
    (void)state;
    mn_strategy_options o = {MN_STRATEGY_NANONAS, 3, 1, 64};
    mn_strategy *s;
    assert_int_equal(mn_strategy_create(&o, &s), MN_OK);
    mn_point p;
    assert_int_equal(mn_strategy_tell(s, (mn_point){1, 0}, MN_OUTCOME_SCORED, 0.5),
                     MN_ERR_INVALID_ARG); /* nothing asked yet */
    assert_true(mn_strategy_ask(s, &p));
    assert_int_equal(mn_strategy_tell(s, (mn_point){2, 0}, MN_OUTCOME_SCORED, 0.5),
                     MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "A(1,0)"));
    assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_SCORED, 1.5), MN_ERR_INVALID_ARG);
    mn_strategy_destroy(s);
    mn_strategy_kind kind;
    assert_int_equal(mn_strategy_kind_parse("evolution", &kind), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "evolution"));
    o.k_min = 0;
    assert_int_equal(mn_strategy_create(&o, &s), MN_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nanonas_grows_while_strictly_better),
        cmocka_unit_test(scores_compare_at_three_decimals),
        cmocka_unit_test(infeasible_ends_inner_loop),
        cmocka_unit_test(nothing_feasible_has_no_answer),
        cmocka_unit_test(colabnas_doubles_with_margin),
        cmocka_unit_test(colabnas_halves_when_8_is_no_better),
        cmocka_unit_test(grid_visits_every_feasible_point),
        cmocka_unit_test(batch_ask_offers_the_points_the_rules_may_ask),
        cmocka_unit_test(misuse_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
