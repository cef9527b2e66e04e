/* mn_arch against the published figures of the seed line (RESEARCH.md 1.1 and 1.4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mcunas/arch.h"

static const mn_shape VWW = {50, 50, 3};

static uint64_t macc_of(int k, int cells, mn_layout layout) {
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, k, cells, layout, VWW, 2), MN_OK);
    return mn_arch_macc(&a);
}

static void colabnas_published_macc(void **state) {
    (void)state;
    /* ColabNAS's published MACC for its three VWW models. */
    assert_int_equal(macc_of(2, 3, MN_LAYOUT_COLABNAS), 226736);
    assert_int_equal(macc_of(4, 5, MN_LAYOUT_COLABNAS), 656697);
    assert_int_equal(macc_of(8, 5, MN_LAYOUT_COLABNAS), 2086329);
}

static void nanonas_macc(void **state) {
    (void)state;
    assert_int_equal(macc_of(3, 3, MN_LAYOUT_NANONAS), 408750);
    assert_int_equal(macc_of(6, 4, MN_LAYOUT_NANONAS), 1272562);
    /* BN placement never changes MACC. */
    assert_int_equal(macc_of(6, 4, MN_LAYOUT_CONVBN), 1272562);
}

static void channel_rule_matches_released_models(void **state) {
    (void)state;
    static const int expect[][7] = {
        {2, 4, 6, 8, 0}, {4, 8, 12, 15, 17, 19, 0}, {6, 12, 18, 23, 26, 0},
        {8, 16, 24, 30, 34, 37, 0}, {10, 20, 30, 38, 43, 0}, {14, 28, 42, 53, 60, 0}};
    for (size_t r = 0; r < sizeof expect / sizeof expect[0]; r++) {
        int k = expect[r][0];
        for (int i = 1; expect[r][i]; i++)
            assert_int_equal(mn_arch_cell_channels(k, i), expect[r][i]);
    }
}

static void depth_limit(void **state) {
    (void)state;
    mn_arch a;
    assert_int_equal(mn_arch_max_cells(VWW), 5);
    assert_int_equal(mn_arch_max_cells((mn_shape){32, 32, 3}), 5);
    assert_int_equal(mn_arch_max_cells((mn_shape){28, 28, 1}), 4);
    assert_int_equal(mn_arch_build(&a, 4, 5, MN_LAYOUT_NANONAS, VWW, 2), MN_OK);
    assert_int_equal(mn_arch_build(&a, 4, 6, MN_LAYOUT_NANONAS, VWW, 2), MN_ERR_INFEASIBLE);
    assert_non_null(strstr(mn_error_message(), "cell 6"));
    assert_int_equal(mn_arch_build(&a, 4, 5, MN_LAYOUT_NANONAS, (mn_shape){28, 28, 1}, 10),
                     MN_ERR_INFEASIBLE);
}

static void shapes_resolved(void **state) {
    (void)state;
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, 8, 3, MN_LAYOUT_NANONAS, (mn_shape){28, 28, 1}, 10),
                     MN_OK);
    /* rescale bn conv relu | 3 x (pool bn conv relu) | gap dropout dense softmax */
    assert_int_equal(a.n_layers, 4 + 12 + 4);
    const mn_layer *last_conv = &a.layers[4 + 8 + 2];
    assert_int_equal(last_conv->kind, MN_LAYER_CONV3X3);
    assert_int_equal(last_conv->in.h, 3);
    assert_int_equal(last_conv->out.c, 30); /* k=8: 16, 24, 30 */
    assert_int_equal(a.layers[a.n_layers - 2].kind, MN_LAYER_DENSE);
    assert_int_equal(a.layers[a.n_layers - 2].out.c, 10);
    for (int i = 1; i < a.n_layers; i++) {
        assert_int_equal(a.layers[i].in.h, a.layers[i - 1].out.h);
        assert_int_equal(a.layers[i].in.c, a.layers[i - 1].out.c);
    }
    /* Keras's trainable count: BN(1), conv 1->8, per cell BN + conv, dense 30->10. */
    size_t trainable = 2 + 80 + (16 + 1168) + (32 + 3480) + (48 + 6510) + 310;
    assert_int_equal(mn_arch_trainable_params(&a), trainable);
    assert_int_equal(mn_arch_state_params(&a), 2 + 16 + 32 + 48);
    /* the layers by name, as messages and listings print them */
    static const char *const expect[] = {"rescale", "batchnorm", "conv3x3", "relu", "maxpool2",
                                         "batchnorm", "conv3x3", "relu"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_string_equal(mn_layer_kind_name(a.layers[i].kind), expect[i]);
    assert_string_equal(mn_layer_kind_name(a.layers[a.n_layers - 4].kind), "gap");
    assert_string_equal(mn_layer_kind_name(a.layers[a.n_layers - 3].kind), "dropout");
    assert_string_equal(mn_layer_kind_name(a.layers[a.n_layers - 2].kind), "dense");
    assert_string_equal(mn_layer_kind_name(a.layers[a.n_layers - 1].kind), "softmax");
    assert_string_equal(mn_layer_kind_name((mn_layer_kind)99), "unknown");
}

static void bad_arguments(void **state) {
    (void)state;
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, 0, 1, MN_LAYOUT_NANONAS, VWW, 2), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "k must be"));
    assert_int_equal(mn_arch_build(&a, 1, -1, MN_LAYOUT_NANONAS, VWW, 2), MN_ERR_INVALID_ARG);
    assert_int_equal(mn_arch_build(&a, 1, 1, MN_LAYOUT_NANONAS, VWW, 1), MN_ERR_INVALID_ARG);
    mn_layout l;
    assert_int_equal(mn_layout_parse("convbn", &l), MN_OK);
    assert_int_equal(l, MN_LAYOUT_CONVBN);
    assert_int_equal(mn_layout_parse("resnet", &l), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "resnet"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(colabnas_published_macc),
        cmocka_unit_test(nanonas_macc),
        cmocka_unit_test(channel_rule_matches_released_models),
        cmocka_unit_test(depth_limit),
        cmocka_unit_test(shapes_resolved),
        cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
