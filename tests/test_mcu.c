/* The MCU cost model: TFLM's greedy planner (hand-checked cases and TFLM's own documented
 * example), the target table and target-file errors, the arena of a hand-planned graph,
 * flash = the serialized size, latency calibration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/cost.h"
#include "mcunas/qgraph.h"
#include "mcunas/target.h"
#include "mcunas/tflite.h"
#include "testutil.h"

static void planner_basics(void **state) {
    (void)state;
    /* Disjoint lifetimes share offset 0. */
    mn_plan_buffer b[2] = {{10, 0, 1}, {20, 2, 3}};
    size_t off[2], head;
    assert_int_equal(mn_greedy_plan(b, 2, off, &head), MN_OK);
    assert_int_equal(off[0], 0);
    assert_int_equal(off[1], 0);
    assert_int_equal(head, 20);
}

static void planner_tflm_medium(void **state) {
    (void)state;
    /* TFLM's greedy_memory_planner_test "TestGreedyMedium": five buffers, expected offsets
     * 50, 70, 40, 0, 0 and a 90-byte arena. */
    mn_plan_buffer b[5] = {{10, 0, 1}, {20, 1, 2}, {30, 2, 3}, {40, 3, 4}, {50, 0, 1}};
    size_t off[5], head;
    assert_int_equal(mn_greedy_plan(b, 5, off, &head), MN_OK);
    assert_int_equal(off[0], 50);
    assert_int_equal(off[1], 70);
    assert_int_equal(off[2], 40);
    assert_int_equal(off[3], 0);
    assert_int_equal(off[4], 0);
    assert_int_equal(head, 90);
}

static void planner_ties_and_gaps(void **state) {
    (void)state;
    /* Equal sizes: the later-added buffer is placed first (TFLM's list is built back to
     * front and bubble-sorted stably). */
    mn_plan_buffer b[2] = {{16, 0, 1}, {16, 0, 1}};
    size_t off[3], head;
    assert_int_equal(mn_greedy_plan(b, 2, off, &head), MN_OK);
    assert_int_equal(off[1], 0);
    assert_int_equal(off[0], 16);
    assert_int_equal(head, 32);
    /* A small buffer fills the gap between two placed ones when it fits. */
    mn_plan_buffer c[3] = {{64, 0, 2}, {64, 2, 4}, {32, 0, 0}};
    assert_int_equal(mn_greedy_plan(c, 3, off, &head), MN_OK);
    /* 64@[0,2] placed first? ties: c[1] first at 0, c[0] overlaps (t2) -> 64; c[2] overlaps
     * only c[0] (t0) -> gap [0,64) is free of overlapping buffers -> 0. */
    assert_int_equal(off[1], 0);
    assert_int_equal(off[0], 64);
    assert_int_equal(off[2], 0);
    assert_int_equal(head, 128);
}

static void arena_hand_planned(void **state) {
    (void)state;
    /* A(1,0) nanonas 28x28x1 -> 10, uint8 IO: QUANTIZE, DEPTHWISE (BN), CONV, AVERAGE_POOL,
     * FULLY_CONNECTED, SOFTMAX, QUANTIZE. Activations 784 (u8 input), 784 (int8 input),
     * 784 (BN), 784 (conv), 1, 10, 10, 10 bytes; at most two 784-byte maps live at once:
     * head = 2 x 784 = 1568 (TFLM reports 1568, tests/python/test_runtimes.py). */
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, 1, 0, MN_LAYOUT_NANONAS, (mn_shape){28, 28, 1}, 10), MN_OK);
    mn_qgraph *g;
    assert_int_equal(mn_qgraph_build(&a, 0, &g), MN_OK);
    assert_int_equal(g->n_ops, 7);
    mn_arena x86, arm;
    assert_int_equal(mn_arena_compute(g, MN_ABI_X86_64, &x86), MN_OK);
    assert_int_equal(x86.head, 1568);
    assert_int_equal(x86.activations, 1568);
    assert_true(x86.tail > 1500 && x86.tail < 3000);
    assert_int_equal(mn_arena_compute(g, MN_ABI_ARM32, &arm), MN_OK);
    /* CMSIS-NN's conv scratch (4 x align4(9) = 48 bytes) lives during the conv op only,
     * when the BN output and the conv output (2 x 784) are alive too; the depthwise
     * scratch (4 -> 16 bytes) during the depthwise op, beside 2 x 784 as well. */
    assert_int_equal(arm.head, 1568 + 48);
    assert_true(arm.tail < x86.tail);
    mn_qgraph_free(g);
}

static void flash_is_serialized_size(void **state) {
    (void)state;
    static const struct { int k, c; mn_layout l; mn_shape in; int cls; } cases[] = {
        {1, 0, MN_LAYOUT_NANONAS, {28, 28, 1}, 10},
        {8, 5, MN_LAYOUT_COLABNAS, {50, 50, 3}, 2},
        {4, 3, MN_LAYOUT_CONVBN, {32, 32, 3}, 10}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mn_arch a;
        assert_int_equal(mn_arch_build(&a, cases[i].k, cases[i].c, cases[i].l, cases[i].in, cases[i].cls), MN_OK);
        mn_estimate e;
        assert_int_equal(mn_estimate_compute(&a, 0, mn_target_builtin(2), NULL, &e), MN_OK);
        mn_qgraph *g;
        assert_int_equal(mn_qgraph_build(&a, 0, &g), MN_OK);
        uint8_t *buf;
        size_t n;
        assert_int_equal(mn_tflite_serialize(g, &buf, &n), MN_OK);
        assert_int_equal(e.flash_bytes, n);
        assert_int_equal(n % 16, 0);
        assert_int_equal(e.macc, mn_arch_macc(&a));
        free(buf);
        mn_qgraph_free(g);
    }
}

static void builtin_targets(void **state) {
    (void)state;
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    static const char *const names[] = {"stm32l010rbt6", "stm32l151ucy6", "stm32l412kbu3", "stm32f412",
                                        "stm32f446re", "stm32f746", "nrf52840", "rp2040", "samd21g18"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const mn_target *t = mn_target_find(&l, names[i]);
        assert_non_null(t);
        assert_int_equal(t->macc_bound, (uint64_t)(t->coremark * 1e4 + 0.5));
        assert_true(t->source[0] != 0);
    }
    const mn_target *t = mn_target_find(&l, "stm32l412kbu3");
    assert_int_equal(t->ram_bytes, 40 * 1024);
    assert_int_equal(t->flash_bytes, 128 * 1024);
    assert_int_equal(t->macc_bound, 2730000);
    t = mn_target_find(&l, "stm32f412");
    assert_int_equal(t->ram_bytes, 256 * 1024);
    assert_int_equal(t->flash_bytes, 1024 * 1024);
    assert_int_equal(t->core, MN_CORE_M4);
    /* the list starts as the built-in table, in its order */
    assert_int_equal(mn_target_builtin_count(), sizeof names / sizeof names[0]);
    assert_int_equal(l.count, mn_target_builtin_count());
    for (size_t i = 0; i < mn_target_builtin_count(); i++) {
        assert_string_equal(mn_target_builtin(i)->name, names[i]);
        assert_string_equal(l.items[i].name, names[i]);
        assert_int_equal(l.items[i].ram_bytes, mn_target_builtin(i)->ram_bytes);
    }
    assert_null(mn_target_builtin(mn_target_builtin_count()));
    mn_target_list_free(&l);
}

static void target_file_ok(void **state) {
    (void)state;
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    size_t n0 = l.count;
    const char *text = "# my boards\n[board-a]\ncore = cortex-m33\nclock_mhz=64\nram_kib = 64 # comment\n"
                       "flash_kib=512\ncoremark=250\n\n[stm32l412kbu3]\ncore=cortex-m4\nclock_mhz=80\n"
                       "ram_kib=40\nflash_kib=128\ncoremark=273\nmacc_bound=1000000\n";
    assert_int_equal(mn_target_list_parse(&l, text, "t.ini"), MN_OK);
    assert_int_equal(l.count, n0 + 1);
    const mn_target *t = mn_target_find(&l, "board-a");
    assert_non_null(t);
    assert_int_equal(t->core, MN_CORE_M33);
    assert_int_equal(t->ram_bytes, 64 * 1024);
    assert_int_equal(t->macc_bound, 2500000);
    assert_string_equal(t->source, "t.ini:2");
    assert_int_equal(mn_target_find(&l, "stm32l412kbu3")->macc_bound, 1000000);
    assert_int_equal(t->ram_reserve_bytes, 0);
    assert_int_equal(mn_target_ram_budget(t), 64 * 1024);
    mn_target_list_free(&l);
}

/* A RAM reserve (a vendor runtime's extra, the application's own buffers) shrinks what a
 * model may use: the estimate holds its RAM figure against the rest, and says so. */
static void ram_reserve(void **state) {
    (void)state;
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    assert_int_equal(mn_target_list_parse(&l, "[l412-st]\ncore=cortex-m4\nclock_mhz=80\nram_kib=40\n"
                                              "flash_kib=128\ncoremark=273\nram_reserve_kib=2.5\n",
                                          "t.ini"),
                     MN_OK);
    mn_target *t = (mn_target *)mn_target_find(&l, "l412-st");
    assert_non_null(t);
    assert_int_equal(t->ram_reserve_bytes, 2560);
    assert_int_equal(mn_target_ram_budget(t), 40 * 1024 - 2560);
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, 6, 4, MN_LAYOUT_NANONAS, (mn_shape){50, 50, 3}, 2), MN_OK);
    mn_latency_model m = {MN_KERNELS_CMSIS_NN, 1.0};
    mn_estimate e;
    assert_int_equal(mn_estimate_compute(&a, 0, t, &m, &e), MN_OK);
    assert_true(e.feasible); /* 26,756 B of 38,400 B */
    /* a reserve that leaves less than the arena makes it infeasible, with both numbers */
    const size_t reserve = 40 * 1024 - e.ram_bytes + 1;
    assert_int_equal(mn_target_set_ram_reserve(t, reserve), MN_OK);
    assert_int_equal(mn_estimate_compute(&a, 0, t, &m, &e), MN_OK);
    assert_false(e.feasible);
    char want[128];
    snprintf(want, sizeof want, "RAM %zu B > %zu B (40960 B less a reserve of %zu B)", e.ram_bytes,
             e.ram_bytes - 1, reserve);
    if (!strstr(e.reasons, want)) fail_msg("reasons '%s' lack '%s'", e.reasons, want);
    /* one byte less and it fits exactly */
    assert_int_equal(mn_target_set_ram_reserve(t, reserve - 1), MN_OK);
    assert_int_equal(mn_estimate_compute(&a, 0, t, &m, &e), MN_OK);
    assert_true(e.feasible);
    /* a reserve must leave some RAM */
    assert_int_equal(mn_target_set_ram_reserve(t, 40 * 1024), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "leaves nothing"));
    mn_target_list_free(&l);
}

static void expect_error(const char *text, const char *needle) {
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    assert_int_equal(mn_target_list_parse(&l, text, "bad.ini"), MN_ERR_FORMAT);
    if (!strstr(mn_error_message(), needle)) fail_msg("message '%s' lacks '%s'", mn_error_message(), needle);
    mn_target_list_free(&l);
}

static void target_file_errors(void **state) {
    (void)state;
    expect_error("core=cortex-m4\n", "bad.ini:1: 'core' outside");
    expect_error("[Big]\n", "bad.ini:1: bad target name 'Big'");
    expect_error("[a\n", "bad.ini:1: expected '[name]'");
    expect_error("[a]\ncore=cortex-m9\n", "bad.ini:2: unknown core 'cortex-m9'");
    expect_error("[a]\nclock_mhz=fast\n", "bad.ini:2: clock_mhz must be");
    expect_error("[a]\nram_kib=-4\n", "bad.ini:2: ram_kib must be");
    expect_error("[a]\ncolor=red\n", "bad.ini:2: unknown key 'color'");
    expect_error("[a]\njust words\n", "bad.ini:2: expected 'key = value'");
    expect_error("[a]\ncoremark=1\ncoremark=2\n", "bad.ini:3: 'coremark' given twice");
    expect_error("[a]\ncore=cortex-m4\nclock_mhz=1\nram_kib=1\nflash_kib=1\n", "bad.ini:1: target [a] lacks 'coremark'");
    expect_error("[a]\nmacc_bound=1.5\n", "bad.ini:2: macc_bound must be");
    expect_error("[a]\nram_reserve_kib=none\n", "bad.ini:2: ram_reserve_kib must be");
    expect_error("[a]\ncore=cortex-m4\nclock_mhz=1\nram_kib=1\nflash_kib=1\ncoremark=1\nram_reserve_kib=1\n",
                 "bad.ini:1: target [a]: ram_reserve_kib must be below ram_kib");
    /* A missing file names the file. */
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    assert_int_equal(mn_target_list_load(&l, "/nonexistent/t.ini"), MN_ERR_IO);
    assert_non_null(strstr(mn_error_message(), "/nonexistent/t.ini"));
    mn_target_list_free(&l);
}

static void estimate_feasibility(void **state) {
    (void)state;
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    mn_arch a;
    /* A(16,4) on 50x50x3 is far beyond the STM32L010's MACC bound and RAM. */
    assert_int_equal(mn_arch_build(&a, 16, 4, MN_LAYOUT_NANONAS, (mn_shape){50, 50, 3}, 2), MN_OK);
    mn_estimate e;
    mn_latency_model m = {MN_KERNELS_CMSIS_NN, 1.0};
    assert_int_equal(mn_estimate_compute(&a, 0, mn_target_find(&l, "stm32l010rbt6"), &m, &e), MN_OK);
    assert_false(e.feasible);
    assert_non_null(strstr(e.reasons, "MACC"));
    assert_non_null(strstr(e.reasons, "RAM"));
    assert_true(e.latency_ms > 0);
    assert_int_equal(mn_estimate_compute(&a, 0, mn_target_find(&l, "stm32f746"), &m, &e), MN_OK);
    assert_true(e.feasible);
    /* The activations-only figure is the head without rounding or scratch. */
    assert_true(e.ram_activations_bytes <= e.ram_head_bytes);
    assert_true(e.ram_head_bytes < e.ram_bytes);
    mn_target_list_free(&l);
}

/* Upstream TFLM on a Cortex-M3 (reference kernels; arena_used_bytes and the planned head,
 * measured on QEMU's mps2-an385 for mcunas's own exports, nanonas, uint8 IO): the estimate
 * for a Cortex-M3 target equals them. */
static void arena_cortex_m3_measured(void **state) {
    (void)state;
    static const struct { int k, cells, h, w, classes; size_t total, head; } m[] = {
        {6, 4, 28, 28, 10, 10020, 5888},
        {3, 3, 28, 28, 10, 6068, 3136},
        {4, 4, 28, 28, 10, 7604, 3920},
        {3, 4, 25, 25, 2, 6116, 2528},
    };
    mn_target_list list;
    assert_int_equal(mn_target_list_init(&list), MN_OK);
    const mn_target *t = mn_target_find(&list, "stm32l151ucy6");
    assert_non_null(t);
    assert_int_equal(t->core, MN_CORE_M3);
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        mn_arch a;
        assert_int_equal(mn_arch_build(&a, m[i].k, m[i].cells, MN_LAYOUT_NANONAS, (mn_shape){m[i].h, m[i].w, 1}, m[i].classes), MN_OK);
        mn_estimate e;
        assert_int_equal(mn_estimate_compute(&a, 0, t, NULL, &e), MN_OK);
        assert_int_equal(e.ram_head_bytes, m[i].head);
        assert_int_equal(e.ram_bytes, m[i].total);
    }
    mn_target_list_free(&list);
}

static void latency_calibration(void **state) {
    (void)state;
    mn_target_list l;
    assert_int_equal(mn_target_list_init(&l), MN_OK);
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, 4, 2, MN_LAYOUT_NANONAS, (mn_shape){32, 32, 3}, 10), MN_OK);
    mn_qgraph *g;
    assert_int_equal(mn_qgraph_build(&a, 0, &g), MN_OK);
    mn_latency_model m = {MN_KERNELS_CMSIS_NN, 1.0};
    double ms = mn_latency_cycles(g, MN_CORE_M4, &m) / (80 * 1e3);
    mn_qgraph_free(g);
    char *dir = mn_test_tmpdir("latency"), *path = mn_test_path(dir, "lat.txt");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* Measured twice as slow as predicted. */
    fprintf(f, "# target k cells layout input classes ms\nstm32l412kbu3 4 2 nanonas 32x32x3 10 %.6f\n", 2 * ms);
    fclose(f);
    int n = 0;
    assert_int_equal(mn_latency_calibrate(path, &l, &m, &n), MN_OK);
    assert_int_equal(n, 1);
    assert_true(m.scale > 1.999 && m.scale < 2.001);
    f = fopen(path, "w");
    fprintf(f, "stm32l412kbu3 4 two nanonas 32x32x3 10 1.0\n");
    fclose(f);
    assert_int_equal(mn_latency_calibrate(path, &l, &m, &n), MN_ERR_FORMAT);
    assert_non_null(strstr(mn_error_message(), "lat.txt:1"));
    free(path);
    free(dir);
    mn_target_list_free(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(planner_basics),      cmocka_unit_test(planner_tflm_medium),
        cmocka_unit_test(planner_ties_and_gaps), cmocka_unit_test(arena_hand_planned),
        cmocka_unit_test(flash_is_serialized_size), cmocka_unit_test(builtin_targets),
        cmocka_unit_test(ram_reserve),
        cmocka_unit_test(target_file_ok),      cmocka_unit_test(target_file_errors),
        cmocka_unit_test(estimate_feasibility), cmocka_unit_test(latency_calibration),
        cmocka_unit_test(arena_cortex_m3_measured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
