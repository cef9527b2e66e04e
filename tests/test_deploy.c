/* int8 deployment: fixed-point arithmetic against double references, the int8 interpreter
 * against the float graph, the .tflite writer against our reader (round trip, layout rules,
 * corrupt files), the C array, and the export path (mcunas/export.h) that `mcunas export`
 * and a search's final phase share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/backend.h"
#include "mcunas/export.h"
#include "mcunas/net.h"
#include "mcunas/qgraph.h"
#include "mcunas/report.h"
#include "mcunas/samples.h"
#include "mcunas/target.h"
#include "mcunas/tflite.h"
#include "mcunas/weights.h"
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

/* Deterministic random parameters of `a` (malloc'd), BN kept well-conditioned. */
static void random_params(const mn_arch *a, float **trainable, float **state) {
    size_t P = mn_arch_trainable_params(a), S = mn_arch_state_params(a);
    float *tr = malloc(sizeof(float) * (P + 1)), *st = malloc(sizeof(float) * (S + 1));
    mn_test_fill_uniform(tr, P, 11, -0.5f, 0.5f);
    /* BN gammas near 1 so signals survive; state: means in [-0.2,0.2], variances in [0.5,1.5]. */
    size_t p = 0, s = 0;
    for (int i = 0; i < a->n_layers; i++) {
        const mn_layer *l = &a->layers[i];
        if (l->kind == MN_LAYER_BATCHNORM) {
            int C = l->in.c;
            for (int c = 0; c < C; c++) tr[p + c] = 0.8f + 0.4f * (float)((c * 37) % 11) / 11.0f;
            mn_test_fill_uniform(st + s, (size_t)C, 13 + (uint64_t)i, -0.2f, 0.2f);
            mn_test_fill_uniform(st + s + C, (size_t)C, 17 + (uint64_t)i, 0.5f, 1.5f);
        }
        p += l->n_trainable;
        s += l->n_state;
    }
    *trainable = tr;
    *state = st;
}

/* A graph with deterministic random parameters, quantized on random images. */
static mn_qgraph *random_graph(int k, int cells, mn_layout layout, mn_shape in, int classes, int io_int8,
                               uint8_t **images, int n_img) {
    mn_arch a;
    assert_int_equal(mn_arch_build(&a, k, cells, layout, in, classes), MN_OK);
    float *tr, *st;
    random_params(&a, &tr, &st);
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

/* A whole file in a malloc'd buffer (NUL-terminated); NULL when it cannot be read. */
static uint8_t *read_all(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void calibration_sample(void **state) {
    (void)state;
    uint32_t a[150], b[150], c[150];
    size_t na, nb, nc;
    assert_int_equal(mn_export_calibration_indices(1000, 150, 7, a, &na), MN_OK);
    assert_int_equal(mn_export_calibration_indices(1000, 150, 7, b, &nb), MN_OK);
    assert_int_equal(mn_export_calibration_indices(1000, 150, 8, c, &nc), MN_OK);
    assert_int_equal(na, 150);
    assert_memory_equal(a, b, sizeof a); /* the same seed: the same set */
    assert_memory_not_equal(a, c, sizeof a);
    for (size_t i = 1; i < na; i++) assert_true(a[i - 1] < a[i]); /* ascending, distinct */
    assert_true(a[na - 1] < 1000);
    /* a shuffle, not the first 150 images: some index lies beyond them */
    assert_true(a[na - 1] >= 150);
    /* a pool smaller than asked: every image once */
    assert_int_equal(mn_export_calibration_indices(40, 150, 7, a, &na), MN_OK);
    assert_int_equal(na, 40);
    for (size_t i = 0; i < na; i++) assert_int_equal(a[i], i);
    assert_int_equal(mn_export_calibration_indices(0, 150, 7, a, &na), MN_ERR_INVALID_ARG);
    /* argmax: first largest, int8 compared signed */
    const uint8_t u[4] = {3, 200, 200, 7}, s8[4] = {0x7f, 0x80, 0xff, 0x10};
    assert_int_equal(mn_export_argmax(u, 4, 0), 1);
    assert_int_equal(mn_export_argmax(s8, 4, 1), 0);
    assert_int_equal(mn_export_argmax(s8, 4, 0), 2);
}

/* mn_export_model against the same steps done by hand: the file is the graph quantized on
 * the documented calibration set, the C array carries the symbol asked for, the accuracy
 * and the dumps are the interpreter's on the same images. */
static void export_model_files(void **state) {
    (void)state;
    for (int io = 0; io < 2; io++) {
        mn_arch a;
        const mn_shape in = {12, 12, 3};
        assert_int_equal(mn_arch_build(&a, 3, 2, io ? MN_LAYOUT_CONVBN : MN_LAYOUT_NANONAS, in, 4), MN_OK);
        float *tr, *sp;
        random_params(&a, &tr, &sp);
        const size_t img = mn_shape_count(in), n_train = 300, n_test = 60;
        uint8_t *images = malloc(img * (n_train + n_test));
        int32_t labels[360];
        float *f = malloc(sizeof(float) * img * (n_train + n_test));
        mn_test_fill_uniform(f, img * (n_train + n_test), 29, 0.0f, 256.0f);
        for (size_t i = 0; i < img * (n_train + n_test); i++) images[i] = (uint8_t)f[i];
        for (size_t i = 0; i < n_train + n_test; i++) labels[i] = (int32_t)(i * 7 % 4);
        free(f);
        mn_samples train = {images, labels, n_train}, test = {images + img * n_train, labels + n_train, n_test};

        char *dir = mn_test_tmpdir("export"), *tpath = mn_test_path(dir, "m.tflite"),
             *cpath = mn_test_path(dir, "net.c"), *hpath = mn_test_path(dir, "net.h"),
             *opath = mn_test_path(dir, "out.bin"), *ipath = mn_test_path(dir, "in.bin");
        mn_export_options o;
        mn_export_options_default(&o);
        o.io_int8 = io;
        o.calib = 50;
        o.seed = 5;
        o.tflite_path = tpath;
        o.c_array_path = cpath;
        o.c_symbol = "kws_net";
        o.test_limit = 45;
        o.dump_outputs = opath;
        o.dump_inputs = ipath;
        mn_export_result r;
        assert_int_equal(mn_export_model(&o, &a, tr, sp, &train, &test, &r), MN_OK);
        assert_int_equal(r.calib_images, 50);
        assert_int_equal(r.test_images, 45);

        /* The same graph by hand, on the documented calibration set. */
        uint32_t idx[50];
        size_t n;
        assert_int_equal(mn_export_calibration_indices(n_train, 50, 5, idx, &n), MN_OK);
        uint8_t *cal = malloc(n * img);
        for (size_t i = 0; i < n; i++) memcpy(cal + i * img, images + idx[i] * img, img);
        mn_qgraph *g;
        assert_int_equal(mn_qgraph_build(&a, io, &g), MN_OK);
        assert_int_equal(mn_qgraph_set_params(g, tr, sp, o.bn_eps), MN_OK);
        assert_int_equal(mn_qgraph_quantize(g, cal, n), MN_OK);
        uint8_t *want;
        size_t want_n, got_n;
        assert_int_equal(mn_tflite_serialize(g, &want, &want_n), MN_OK);
        uint8_t *got = read_all(tpath, &got_n);
        assert_non_null(got);
        assert_int_equal(got_n, want_n);
        assert_int_equal(r.flash_bytes, got_n);
        assert_memory_equal(got, want, want_n);
        mn_tfl_model m;
        assert_int_equal(mn_tflite_read(got, got_n, &m), MN_OK);
        assert_int_equal(m.n_ops, g->n_ops);
        mn_tfl_model_free(&m);
        mn_arena arena;
        assert_int_equal(mn_arena_compute(g, MN_ABI_ARM32, &arena), MN_OK);
        assert_int_equal(r.arena_arm32.total, arena.total);

        /* The C array and its header name the symbol. */
        size_t cn, hn;
        char *csrc = (char *)read_all(cpath, &cn), *hsrc = (char *)read_all(hpath, &hn);
        assert_non_null(csrc);
        assert_non_null(hsrc);
        char decl[64];
        snprintf(decl, sizeof decl, "const unsigned char kws_net[%zu]", want_n);
        assert_non_null(strstr(csrc, decl));
        assert_non_null(strstr(csrc, "#include \"net.h\""));
        assert_non_null(strstr(hsrc, "extern const unsigned int kws_net_len;"));

        /* Accuracy and dumps: the interpreter on the first 45 test images. */
        mn_qinterp *it;
        assert_int_equal(mn_qinterp_create(g, &it), MN_OK);
        size_t on, inn, correct = 0;
        uint8_t *outs = read_all(opath, &on), *ins = read_all(ipath, &inn), y[4], x[432];
        assert_int_equal(on, 45 * 4);
        assert_int_equal(inn, 45 * img);
        for (size_t i = 0; i < 45; i++) {
            for (size_t b = 0; b < img; b++) x[b] = (uint8_t)(test.images[i * img + b] ^ (io ? 0x80 : 0));
            assert_memory_equal(ins + i * img, x, img);
            assert_int_equal(mn_qinterp_run(it, x, y), MN_OK);
            assert_memory_equal(outs + i * 4, y, 4);
            int best = 0;
            for (int k = 1; k < 4; k++)
                if ((io ? (int8_t)y[k] : y[k]) > (io ? (int8_t)y[best] : y[best])) best = k;
            correct += best == test.labels[i];
        }
        assert_true(r.int8_test_acc == (double)correct / 45.0);

        /* A symbol that is not a C identifier is refused before anything is written. */
        o.c_symbol = "9lives";
        assert_int_equal(mn_export_model(&o, &a, tr, sp, &train, &test, &r), MN_ERR_INVALID_ARG);
        assert_non_null(strstr(mn_error_message(), "9lives"));

        mn_qinterp_free(it);
        mn_qgraph_free(g);
        free(outs);
        free(ins);
        free(csrc);
        free(hsrc);
        free(got);
        free(want);
        free(cal);
        free(images);
        free(tr);
        free(sp);
        free(tpath);
        free(cpath);
        free(hpath);
        free(opath);
        free(ipath);
        free(dir);
    }
}

/* The search's final phase and `mcunas export` (the library call it makes) on the search's
 * weights.h5, seed and pool write the same model.tflite and C array, with the same accuracy. */
static void export_agrees_with_search(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("export_search"), *data_path = mn_test_path(dir, "data.h5");
    assert_true(mn_test_write_brightness_dataset(data_path, 12, 12, 400, 80, 9));
    mn_loaded_data data;
    assert_int_equal(mn_loaded_data_read(data_path, 300, &data), MN_OK); /* a search's --limit 300 */
    mn_target_list targets;
    assert_int_equal(mn_target_list_init(&targets), MN_OK);
    mn_search_config c;
    memset(&c, 0, sizeof c);
    c.layout = MN_LAYOUT_NANONAS;
    c.target = mn_target_find(&targets, "stm32f412");
    assert_non_null(c.target);
    c.io_int8 = 1;
    c.batch = 16;
    c.adam = (mn_adam){3e-3f, 0.9f, 0.999f, 1e-7f};
    c.val_split = 0.3;
    c.split_seed = 11;
    c.seed = 4;
    c.backend = "cpu";
    c.threads = 1;
    mn_final_result fin;
    assert_int_equal(mn_search_finalize(&c, &data, (mn_point){2, 1}, 1, 40, dir, &fin), MN_OK);

    /* mcunas export --weights DIR/weights.h5 --seed 4 --limit 300 --calib 40 --io int8 */
    char *wpath = mn_test_path(dir, "weights.h5"), *sub = mn_test_path(dir, "again");
    char mk[4200];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", sub);
    assert_int_equal(system(mk), 0);
    char *tpath = mn_test_path(sub, "model.tflite"), *cpath = mn_test_path(sub, "model_data.c");
    mn_arch arch;
    assert_int_equal(mn_weights_read_arch(wpath, &arch), MN_OK);
    mn_backend *be;
    mn_backend_options bo = {1, 0};
    assert_int_equal(mn_backend_create("cpu", &bo, &be), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_weights_load(wpath, net), MN_OK);
    float *tr = malloc(sizeof(float) * (mn_arch_trainable_params(&arch) + 1)),
          *sp = malloc(sizeof(float) * (mn_arch_state_params(&arch) + 1));
    assert_int_equal(mn_net_get_params(net, tr, sp), MN_OK);
    mn_export_options o;
    mn_export_options_default(&o);
    o.io_int8 = 1;
    o.calib = 40;
    o.seed = 4;
    o.tflite_path = tpath;
    o.c_array_path = cpath;
    mn_export_result r;
    assert_int_equal(mn_export_model(&o, &arch, tr, sp, &data.train, &data.test, &r), MN_OK);

    const char *names[] = {"model.tflite", "model_data.c", "model_data.h"};
    for (int i = 0; i < 3; i++) {
        char *p1 = mn_test_path(dir, names[i]), *p2 = mn_test_path(sub, names[i]);
        size_t n1, n2;
        uint8_t *b1 = read_all(p1, &n1), *b2 = read_all(p2, &n2);
        assert_non_null(b1);
        assert_non_null(b2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        free(b1);
        free(b2);
        free(p1);
        free(p2);
    }
    assert_int_equal(r.flash_bytes, fin.flash_bytes);
    assert_true(r.int8_test_acc == fin.int8_test_acc);
    assert_int_equal(r.test_images, data.test.count);

    mn_net_destroy(net);
    mn_backend_destroy(be);
    free(tr);
    free(sp);
    free(tpath);
    free(cpath);
    free(wpath);
    free(sub);
    mn_target_list_free(&targets);
    mn_loaded_data_free(&data);
    free(data_path);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multiplier_vs_double), cmocka_unit_test(rounding_primitives),
        cmocka_unit_test(interpreter_vs_float), cmocka_unit_test(quantization_rules),
        cmocka_unit_test(tflite_round_trip), cmocka_unit_test(calibration_sample),
        cmocka_unit_test(export_model_files), cmocka_unit_test(export_agrees_with_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
