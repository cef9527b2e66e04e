/* int8 deployment: fixed-point arithmetic against double references, the int8 interpreter
 * against the float graph, the .tflite writer against our reader (round trip, layout rules,
 * corrupt files), and the C array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/qgraph.h"
#include "mcunas/tflite.h"
#include "testutil.h"

static void multiplier_vs_double(void **state) {
    (void)state;
    float r[200];
    mn_test_fill_uniform(r, 200, 7, -20.0f, 2.0f);
    for (int i = 0; i < 200; i++) {
        double m = pow(2.0, r[i]);
        int32_t q;
        int shift;
        mn_quantize_multiplier(m, &q, &shift);
        assert_true(q >= (1 << 30) && q <= INT32_MAX);
        double back = (double)q * pow(2.0, shift - 31);
        assert_true(fabs(back - m) <= m * pow(2.0, -30));
        /* x * m, rounded. */
        for (int32_t x = -70000; x <= 70000; x += 997) {
            double exact = x * m;
            if (fabs(exact) > 1e9) continue;
            int32_t got = mn_multiply_by_quantized_multiplier(x, q, shift);
            /* Two roundings: within one unit; one rounding: to nearest, up to the multiplier's
             * own 2^-31 relative error. */
            assert_true(fabs(got - exact) <= 1.0);
            int32_t got1 = mn_multiply_by_quantized_multiplier_single(x, q, shift);
            assert_true(fabs(got1 - exact) <= 0.5 + 1e-6 + fabs(exact) * pow(2.0, -30));
        }
    }
    mn_quantize_multiplier(0.0, &(int32_t){0}, &(int){0});
}

static void rounding_primitives(void **state) {
    (void)state;
    /* RoundingDivideByPOT rounds half away from zero. */
    assert_int_equal(mn_rounding_divide_by_pot(5, 1), 3);
    assert_int_equal(mn_rounding_divide_by_pot(-5, 1), -3);
    assert_int_equal(mn_rounding_divide_by_pot(7, 2), 2);
    assert_int_equal(mn_rounding_divide_by_pot(-6, 2), -2);
    assert_int_equal(mn_rounding_divide_by_pot(-5, 2), -1);
    /* SaturatingRoundingDoublingHighMul: (a*b + 2^30) / 2^31, and the one overflow. */
    assert_int_equal(mn_srdhm(1 << 30, 1 << 30), 1 << 29);
    assert_int_equal(mn_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    assert_int_equal(mn_srdhm(-(1 << 30), 1 << 30), -(1 << 29));
    /* Double vs single rounding differ exactly when the first rounding crosses a half:
     * x * 0.5^5 with x = 591.8 * ... : pick M = 2^30 (0.5), shift -4: x/32. */
    int32_t q;
    int s;
    mn_quantize_multiplier(1.0 / 32.0, &q, &s);
    assert_int_equal(mn_multiply_by_quantized_multiplier(48, q, s), 2);        /* 1.5 -> 2 */
    assert_int_equal(mn_multiply_by_quantized_multiplier(-48, q, s), -2);      /* -1.5 -> -2 */
    assert_int_equal(mn_multiply_by_quantized_multiplier_single(-48, q, s), -1); /* half up */
}

/* A graph with deterministic random parameters, quantized on random images. */
static mn_qgraph *random_graph(int k, int cells, mn_layout layout, mn_shape in, int classes, int io_int8,
                               uint8_t **images, int n_img) {
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, k, cells, layout, in, classes), MN_OK);
    size_t P = mn_arch_trainable_params(&a), S = mn_arch_state_params(&a);
    float *tr = malloc(sizeof(float) * (P + 1)), *st = malloc(sizeof(float) * (S + 1));
    mn_test_fill_uniform(tr, P, 11, -0.5f, 0.5f);
    /* BN gammas near 1 so signals survive; state: means in [-0.2,0.2], variances in [0.5,1.5]. */
    size_t p = 0, s = 0;
    for (int i = 0; i < a.n_layers; i++) {
        const mn_layer *l = &a.layers[i];
        if (l->kind == MN_LAYER_BATCHNORM) {
            int C = l->in.c;
            for (int c = 0; c < C; c++) tr[p + c] = 0.8f + 0.4f * (float)((c * 37) % 11) / 11.0f;
            mn_test_fill_uniform(st + s, (size_t)C, 13 + (uint64_t)i, -0.2f, 0.2f);
            mn_test_fill_uniform(st + s + C, (size_t)C, 17 + (uint64_t)i, 0.5f, 1.5f);
        }
        p += l->n_trainable;
        s += l->n_state;
    }
    mn_qgraph *g;
    assert_int_equal(mn_qgraph_build(&a, io_int8, &g), MN_OK);
    assert_int_equal(mn_qgraph_set_params(g, tr, st, 1e-3f), MN_OK);
    size_t img = mn_shape_count(in);
    *images = malloc(img * (size_t)n_img);
    float *f = malloc(sizeof(float) * img * (size_t)n_img);
    mn_test_fill_uniform(f, img * (size_t)n_img, 23, 0.0f, 256.0f);
    for (size_t i = 0; i < img * (size_t)n_img; i++) (*images)[i] = (uint8_t)f[i];
    free(f);
    assert_int_equal(mn_qgraph_quantize(g, *images, (size_t)n_img), MN_OK);
    free(tr);
    free(st);
    return g;
}

static void interpreter_vs_float(void **state) {
    (void)state;
    static const struct { int k, c; mn_layout l; mn_shape in; int io; } cases[] = {
        {4, 2, MN_LAYOUT_NANONAS, {16, 16, 3}, 0},
        {3, 2, MN_LAYOUT_COLABNAS, {16, 16, 1}, 1},
        {4, 3, MN_LAYOUT_CONVBN, {20, 20, 3}, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        uint8_t *images;
        int n = 40, classes = 5;
        mn_qgraph *g = random_graph(cases[ci].k, cases[ci].c, cases[ci].l, cases[ci].in, classes, cases[ci].io, &images, n);
        mn_qinterp *it;
        assert_int_equal(mn_qinterp_create(g, &it), MN_OK);
        size_t img = mn_shape_count(cases[ci].in);
        double max_err = 0;
        int agree = 0;
        uint8_t *x = malloc(img);
        for (int i = 0; i < n; i++) {
            float probs[5];
            uint8_t out[5];
            assert_int_equal(mn_qgraph_forward_float(g, images + i * img, probs, 0), MN_OK);
            for (size_t k = 0; k < img; k++) x[k] = cases[ci].io ? images[i * img + k] ^ 0x80 : images[i * img + k];
            assert_int_equal(mn_qinterp_run(it, x, out), MN_OK);
            /* the activations stay readable: the input as given, the output as returned */
            assert_memory_equal(mn_qinterp_tensor(it, g->input), x, img);
            assert_memory_equal(mn_qinterp_tensor(it, g->output), out, (size_t)classes);
            int bf = 0, bq = 0;
            for (int k = 0; k < classes; k++) {
                double q = cases[ci].io ? ((int8_t)out[k] + 128) / 256.0 : out[k] / 256.0;
                double e = fabs(q - probs[k]);
                if (e > max_err) max_err = e;
                if (probs[k] > probs[bf]) bf = k;
                if (q > (cases[ci].io ? ((int8_t)out[bq] + 128) / 256.0 : out[bq] / 256.0)) bq = k;
            }
            agree += bf == bq;
        }
        /* Within quantization error: a few output LSB (1/256) after five int8 layers. */
        if (max_err > 0.06) fail_msg("case %zu: max |p_int8 - p_float| = %g", ci, max_err);
        assert_true(agree >= n * 8 / 10);
        /* Every intermediate stays in range, and input/output are as documented. */
        assert_int_equal(g->t[g->output].type, cases[ci].io ? MN_QT_INT8 : MN_QT_UINT8);
        free(x);
        free(images);
        mn_qinterp_free(it);
        mn_qgraph_free(g);
    }
}

static void quantization_rules(void **state) {
    (void)state;
    uint8_t *images;
    mn_qgraph *g = random_graph(4, 2, MN_LAYOUT_NANONAS, (mn_shape){16, 16, 3}, 5, 0, &images, 20);
    for (int oi = 0; oi < g->n_ops; oi++) {
        const mn_qop *op = &g->ops[oi];
        const mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        if (op->kind == MN_QOP_CONV3X3 || op->kind == MN_QOP_DEPTHWISE1X1 || op->kind == MN_QOP_FC) {
            const mn_qtensor *w = &g->t[op->in[1]], *b = &g->t[op->in[2]];
            int per_channel = op->kind != MN_QOP_FC;
            assert_int_equal(w->n_scales, per_channel ? to->dims[to->rank - 1] : 1);
            assert_int_equal(w->quant_dim, op->kind == MN_QOP_DEPTHWISE1X1 ? 3 : 0);
            assert_int_equal(w->zero_point, 0);
            const int8_t *q = w->data;
            int maxabs = 0;
            for (size_t i = 0; i < w->bytes; i++) {
                assert_true(q[i] >= -127 && q[i] <= 127);
                if (abs(q[i]) > maxabs) maxabs = abs(q[i]);
            }
            assert_int_equal(maxabs, 127); /* symmetric: the largest weight maps to +-127 */
            for (int c = 0; c < b->n_scales; c++)
                assert_true(fabs(b->scales[c] - (double)ti->scales[0] * w->scales[per_channel ? c : 0]) <=
                            1e-6 * b->scales[c]);
        }
        if (op->kind == MN_QOP_MAXPOOL2 || op->kind == MN_QOP_AVGPOOL) {
            assert_true(to->scales[0] == ti->scales[0]);
            assert_int_equal(to->zero_point, ti->zero_point);
        }
        if (op->kind == MN_QOP_SOFTMAX) {
            assert_true(to->scales[0] == 1.0f / 256.0f);
            assert_int_equal(to->zero_point, -128);
        }
        if (op->relu) assert_int_equal(to->zero_point, -128); /* ReLU ranges start at 0 */
    }
    assert_true(g->t[g->input].scales[0] == 1.0f / 255.0f);
    assert_int_equal(g->t[g->input].type, MN_QT_UINT8);
    free(images);
    mn_qgraph_free(g);
}

static void tflite_round_trip(void **state) {
    (void)state;
    uint8_t *images;
    mn_qgraph *g = random_graph(3, 2, MN_LAYOUT_NANONAS, (mn_shape){16, 16, 3}, 4, 0, &images, 10);
    free(images);
    uint8_t *buf;
    size_t n;
    assert_int_equal(mn_tflite_serialize(g, &buf, &n), MN_OK);
    assert_memory_equal(buf + 4, "TFL3", 4);
    /* Sizes do not depend on values: the unquantized graph serializes to the same size. */
    mn_qgraph *g0;
    assert_int_equal(mn_qgraph_build(&g->arch, 0, &g0), MN_OK);
    size_t n0;
    assert_int_equal(mn_tflite_size(g0, &n0), MN_OK);
    assert_int_equal(n0, n);
    mn_qgraph_free(g0);

    mn_tfl_model m;
    assert_int_equal(mn_tflite_read(buf, n, &m), MN_OK);
    assert_int_equal(m.version, 3);
    assert_int_equal(m.n_tensors, g->n_tensors);
    assert_int_equal(m.n_ops, g->n_ops);
    assert_int_equal(m.n_inputs, 1);
    assert_int_equal(m.inputs[0], g->input);
    assert_int_equal(m.outputs[0], g->output);
    for (int i = 0; i < g->n_tensors; i++) {
        const mn_qtensor *t = &g->t[i];
        const mn_tfl_tensor *r = &m.tensors[i];
        assert_string_equal(r->name, t->name);
        assert_int_equal(r->type, t->type == MN_QT_INT8 ? 9 : t->type == MN_QT_UINT8 ? 3 : 2);
        assert_int_equal(r->rank, t->rank);
        for (int d = 0; d < t->rank; d++) assert_int_equal(r->dims[d], t->dims[d]);
        assert_int_equal(r->n_scales, t->n_scales);
        assert_int_equal(r->n_zero_points, t->n_scales);
        for (int c = 0; c < t->n_scales; c++) {
            float f;
            memcpy(&f, r->scales + 4 * c, 4);
            assert_true(f == t->scales[c]);
            int64_t z;
            memcpy(&z, r->zero_points + 8 * c, 8);
            assert_int_equal(z, c == 0 ? t->zero_point : 0);
        }
        assert_int_equal(r->quant_dim, t->quant_dim);
        if (t->is_const) {
            assert_true(r->buffer > 0);
            assert_int_equal(r->data_size, t->bytes);
            assert_memory_equal(r->data, t->data, t->bytes);
            assert_int_equal((size_t)(r->data - buf) % 16, 0);
        } else {
            assert_int_equal(r->buffer, 0);
            assert_null(r->data);
        }
    }
    for (int i = 0; i < g->n_ops; i++) {
        const mn_qop *op = &g->ops[i];
        const mn_tfl_op *r = &m.ops[i];
        assert_int_equal(r->n_in, op->n_in);
        for (int k = 0; k < op->n_in; k++) assert_int_equal(r->in[k], op->in[k]);
        assert_int_equal(r->out[0], op->out);
        switch (op->kind) {
        case MN_QOP_CONV3X3:
            assert_int_equal(r->builtin, MN_TFL_CONV_2D);
            assert_int_equal(r->padding, 0); /* SAME */
            assert_int_equal(r->stride_w, 1);
            assert_int_equal(r->stride_h, 1);
            assert_int_equal(r->activation, op->relu);
            break;
        case MN_QOP_DEPTHWISE1X1:
            assert_int_equal(r->builtin, MN_TFL_DEPTHWISE_CONV_2D);
            assert_int_equal(r->padding, 1);
            assert_int_equal(r->depth_multiplier, 1);
            break;
        case MN_QOP_MAXPOOL2:
        case MN_QOP_AVGPOOL:
            assert_int_equal(r->builtin, op->kind == MN_QOP_MAXPOOL2 ? MN_TFL_MAX_POOL_2D : MN_TFL_AVERAGE_POOL_2D);
            assert_int_equal(r->filter_w, op->filter_w);
            assert_int_equal(r->filter_h, op->filter_h);
            assert_int_equal(r->stride_w, op->stride);
            assert_int_equal(r->padding, 1); /* VALID */
            break;
        case MN_QOP_FC: assert_int_equal(r->builtin, MN_TFL_FULLY_CONNECTED); break;
        case MN_QOP_SOFTMAX:
            assert_int_equal(r->builtin, MN_TFL_SOFTMAX);
            assert_true(r->beta == 1.0f);
            break;
        case MN_QOP_QUANTIZE: assert_int_equal(r->builtin, MN_TFL_QUANTIZE); break;
        }
    }
    mn_tfl_model_free(&m);

    /* Corrupt files are refused with a message, never read out of bounds. */
    uint8_t *bad = malloc(n);
    memcpy(bad, buf, n);
    bad[5] = 'X';
    assert_int_equal(mn_tflite_read(bad, n, &m), MN_ERR_FORMAT);
    assert_non_null(strstr(mn_error_message(), "TFL3"));
    for (size_t cut = 0; cut < n; cut += n / 97 + 1) assert_int_not_equal(mn_tflite_read(buf, cut, &m), MN_OK);
    memcpy(bad, buf, n);
    bad[0] = 0xff; bad[1] = 0xff; bad[2] = 0xff; bad[3] = 0x7f;
    assert_int_equal(mn_tflite_read(bad, n, &m), MN_ERR_FORMAT);
    free(bad);

    /* File + C array. */
    char *dir = mn_test_tmpdir("tflite"), *path = mn_test_path(dir, "m.tflite"), *cpath = mn_test_path(dir, "model_data.c"),
         *hpath = mn_test_path(dir, "model_data.h");
    size_t written;
    assert_int_equal(mn_tflite_write(g, path, &written), MN_OK);
    assert_int_equal(written, n);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *back = malloc(n + 1);
    assert_int_equal(fread(back, 1, n + 1, f), n);
    fclose(f);
    assert_memory_equal(back, buf, n);
    assert_int_equal(mn_tflite_write_c_array(buf, n, cpath, "model_data"), MN_OK);
    f = fopen(hpath, "r");
    assert_non_null(f);
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, f)) found |= strstr(line, "extern const unsigned int model_data_len;") != NULL;
    fclose(f);
    assert_true(found);
    assert_int_equal(mn_tflite_write(g, "/nonexistent/dir/m.tflite", NULL), MN_ERR_IO);
    free(back);
    free(path);
    free(cpath);
    free(hpath);
    free(dir);
    free(buf);
    mn_qgraph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multiplier_vs_double), cmocka_unit_test(rounding_primitives),
        cmocka_unit_test(interpreter_vs_float), cmocka_unit_test(quantization_rules),
        cmocka_unit_test(tflite_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
