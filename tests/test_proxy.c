/* Zero-cost proxies and the MONAS ranking: each proxy against a case with a known answer
 * (finite differences, hand-made patterns, a double-precision reference), the net API
 * additions they use, the rank aggregation, the zeroshot/hybrid strategies and search, and
 * a smoke test of `mcunas rank`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/dataset.h"
#include "mcunas/net.h"
#include "mcunas/proxy.h"
#include "mcunas/rank.h"
#include "mcunas/rng.h"
#include "mcunas/search.h"
#include "mcunas/strategy.h"
#include "mcunas/target.h"
#include "testutil.h"

static mn_test_fixture fx; /* folder, dataset, targets */

/* 16x16x1 images, 4 classes of mean brightness under noise (as test_search). */
static int setup(void **state) {
    (void)state;
    assert_int_equal(mn_test_fixture_setup(&fx, "proxy", 400, 100), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return mn_test_fixture_teardown(&fx);
}

static mn_backend *cpu(void) {
    mn_backend_options bo = {2, 0};
    mn_backend *be = NULL;
    assert_int_equal(mn_backend_create("cpu", &bo, &be), MN_OK);
    return be;
}

static uint8_t *random_images(int n, size_t px, uint64_t seed) {
    uint8_t *x = malloc((size_t)n * px);
    mn_rng r;
    mn_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * px; i++) x[i] = (uint8_t)mn_rng_below(&r, 256);
    return x;
}

/* Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (independent of LAPACK). */
static void jacobi_eigen(double *a, int n, double *w) {
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
        if (off < 1e-30) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
    }
    for (int i = 0; i < n; i++) w[i] = a[i * n + i];
}

/* Sum of sample i's logits after a training-mode forward. */
static double logit_sum(mn_net *net, const uint8_t *x, int n, int i) {
    const mn_arch *a = mn_net_arch(net);
    float lg[64 * 8];
    assert_int_equal(mn_net_forward_mode(net, x, n, MN_NET_MODE_TRAIN), MN_OK);
    assert_int_equal(mn_net_layer_output(net, a->n_layers - 2, n, lg), MN_OK);
    double s = 0;
    for (int c = 0; c < a->classes; c++) s += lg[i * a->classes + c];
    return s;
}

/* J_i from mn_net_backward_from_logits against central differences of the logit sums
 * (training-mode BN couples the samples, so every J_i depends on the whole batch), and the
 * NTK condition number of mn_proxy_compute against Theta built from those differences. */
static void ntk_jacobian_matches_finite_differences(void **state) {
    (void)state;
    mn_backend *be = cpu();
    mn_arch arch;
    mn_shape in = {4, 4, 1};
    assert_int_equal(mn_arch_build(&arch, 2, 1, MN_LAYOUT_NANONAS, in, 3), MN_OK);
    const int n = 4;
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = n;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 9), MN_OK);
    const size_t p = mn_net_get_plan(net)->trainable;
    uint8_t *x = random_images(n, 16, 3);
    float *j = calloc((size_t)n * p, sizeof(float)), *theta0 = malloc(p * sizeof(float)),
          *th = malloc(p * sizeof(float));
    double *jfd = calloc((size_t)n * p, sizeof(double));
    /* backward from each sample's logits, several times after one forward */
    assert_int_equal(mn_net_forward_mode(net, x, n, MN_NET_MODE_TRAIN), MN_OK);
    float dl[4 * 3];
    for (int i = 0; i < n; i++) {
        memset(dl, 0, sizeof dl);
        for (int c = 0; c < 3; c++) dl[i * 3 + c] = 1.0f;
        assert_int_equal(mn_net_backward_from_logits(net, dl, n), MN_OK);
        assert_int_equal(mn_net_get_grads(net, j + (size_t)i * p), MN_OK);
    }
    /* a backward with a different n than the forward is refused */
    assert_int_equal(mn_net_backward_from_logits(net, dl, n - 1), MN_ERR_INVALID_ARG);
    assert_int_equal(mn_net_get_params(net, theta0, NULL), MN_OK);
    const double h = 1e-3; /* float logits: noise ~1e-7 / h; BN's curvature: ~h^2 */
    double jmax = 0, errmax = 0;
    for (size_t q = 0; q < p; q++) {
        double plus[4], minus[4];
        memcpy(th, theta0, p * sizeof(float));
        th[q] = (float)(theta0[q] + h);
        assert_int_equal(mn_net_set_params(net, th, NULL), MN_OK);
        for (int i = 0; i < n; i++) plus[i] = logit_sum(net, x, n, i);
        th[q] = (float)(theta0[q] - h);
        assert_int_equal(mn_net_set_params(net, th, NULL), MN_OK);
        for (int i = 0; i < n; i++) minus[i] = logit_sum(net, x, n, i);
        for (int i = 0; i < n; i++) {
            double fd = (plus[i] - minus[i]) / (2 * h);
            jfd[(size_t)i * p + q] = fd;
            double an = j[(size_t)i * p + q];
            if (fabs(an) > jmax) jmax = fabs(an);
            if (fabs(an - fd) > errmax) errmax = fabs(an - fd);
        }
    }
    assert_true(jmax > 0.1);
    if (errmax > 1e-2 * jmax) fail_msg("J vs finite differences: max error %g, max |J| %g", errmax, jmax);
    /* Theta from the finite-difference J, eigenvalues by Jacobi rotations */
    double t[16], w[4];
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (size_t q = 0; q < p; q++) s += jfd[(size_t)a * p + q] * jfd[(size_t)b * p + q];
            t[a * n + b] = s;
        }
    jacobi_eigen(t, n, w);
    double lo = w[0], hi = w[0];
    for (int i = 1; i < n; i++) {
        lo = w[i] < lo ? w[i] : lo;
        hi = w[i] > hi ? w[i] : hi;
    }
    assert_true(lo > 0);
    mn_net_destroy(net);
    mn_proxy_options o;
    mn_proxy_options_default(&o);
    o.which = MN_PROXY_NTK;
    o.batch = n;
    o.inits = 1;
    o.seed = 9;
    mn_proxy_scores s;
    assert_int_equal(mn_proxy_compute(&arch, be, x, NULL, n, &o, &s), MN_OK);
    double kappa = hi / lo;
    if (fabs(s.ntk_cond - kappa) > 0.05 * kappa)
        fail_msg("kappa %g, reference %g", s.ntk_cond, kappa);
    assert_true(isnan(s.regions) && isnan(s.synflow));
    /* LAPACK's eigenvalues agree with Jacobi's on the same matrix */
    double t2[16], w2[4], t3[16], w3[4];
    for (int i = 0; i < 16; i++) t2[i] = t3[i] = (i % 5 == 0 ? 4.0 : 1.0) + 0.1 * (i / 4 + i % 4);
    assert_int_equal(mn_proxy_sym_eigenvalues(t2, 4, w2), MN_OK);
    jacobi_eigen(t3, 4, w3);
    double sum2 = 0, sum3 = 0, min3 = w3[0];
    for (int i = 0; i < 4; i++) {
        sum2 += w2[i];
        sum3 += w3[i];
        min3 = w3[i] < min3 ? w3[i] : min3;
    }
    assert_float_equal(sum2, sum3, 1e-9);
    assert_float_equal(w2[0], min3, 1e-9);
    free(x);
    free(j);
    free(jfd);
    free(theta0);
    free(th);
    mn_backend_destroy(be);
}

/* n rows of `words` words: `distinct` different ones, repeated and interleaved. */
typedef struct count_job {
    uint64_t *codes;
    int n, distinct;
    size_t words;
    int wrong; /* counts that came out different from `distinct` */
} count_job;

static void *count_many_times(void *arg) {
    count_job *j = arg;
    for (int rep = 0; rep < 200; rep++)
        j->wrong += mn_proxy_count_distinct(j->codes, j->n, j->words) != (size_t)j->distinct;
    return NULL;
}

/* Ranking counts regions on several workers at once: two threads counting different row
 * sets at the same time each get their own answer (ThreadSanitizer sees any shared state). */
static void count_distinct_on_two_threads(void **state) {
    (void)state;
    count_job jobs[2] = {{NULL, 600, 37, 3, 0}, {NULL, 500, 211, 5, 0}};
    for (int t = 0; t < 2; t++) {
        count_job *j = &jobs[t];
        j->codes = malloc((size_t)j->n * j->words * sizeof(uint64_t));
        assert_non_null(j->codes);
        for (int i = 0; i < j->n; i++) {
            /* row i is pattern (i mod distinct), placed at a shuffled-looking position */
            int pat = i % j->distinct;
            size_t at = ((size_t)i * 7919u) % (size_t)j->n; /* n prime to 7919: a permutation */
            for (size_t w = 0; w < j->words; w++)
                j->codes[at * j->words + w] = (uint64_t)(pat + 1) * 0x9E3779B97F4A7C15ull ^ (w << 7);
        }
    }
    pthread_t th[2];
    for (int t = 0; t < 2; t++) assert_int_equal(pthread_create(&th[t], NULL, count_many_times, &jobs[t]), 0);
    for (int t = 0; t < 2; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(jobs[t].wrong, 0);
        free(jobs[t].codes);
    }
}

/* ReLU codes are the signs of the pre-activations; distinct rows and NASWOT's kernel on
 * hand-made patterns. */
static void relu_codes_regions_and_naswot(void **state) {
    (void)state;
    /* hand-made: 5 rows of 70 bits (2 words), rows 0 and 3 equal, row 4 = row 1 but bit 69 */
    uint64_t codes[10] = {0x1, 0x0, 0xF0, 0x20, 0xFF, 0x3, 0x1, 0x0, 0xF0, 0x0};
    assert_int_equal(mn_proxy_count_distinct(codes, 5, 2), 4);
    assert_int_equal(mn_proxy_count_distinct(codes, 1, 2), 1);
    /* NASWOT: codes 0000, 0011, 1111 over 4 units: K = [[4,2,0],[2,4,2],[0,2,4]], det 32 */
    uint64_t c3[3] = {0x0, 0x3, 0xF};
    double ld;
    assert_int_equal(mn_proxy_naswot_logdet(c3, 3, 1, 4, &ld), MN_OK);
    assert_float_equal(ld, log(32.0), 1e-9);

    mn_backend *be = cpu();
    mn_arch arch;
    mn_shape in = {4, 4, 1};
    assert_int_equal(mn_arch_build(&arch, 3, 1, MN_LAYOUT_COLABNAS, in, 2), MN_OK);
    const int n = 6;
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = n;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 4), MN_OK);
    uint8_t *x = random_images(n, 16, 8);
    assert_int_equal(mn_net_forward_mode(net, x, n, MN_NET_MODE_TRAIN), MN_OK);
    uint64_t *rc = NULL;
    size_t words = 0;
    assert_int_equal(mn_proxy_relu_codes(net, n, &rc, &words), MN_OK);
    size_t bit = 0;
    float buf[6 * 4 * 4 * 8];
    for (int i = 0; i < arch.n_layers; i++) {
        if (arch.layers[i].kind != MN_LAYER_RELU) continue;
        size_t cnt = mn_shape_count(arch.layers[i].out);
        /* the layer before the ReLU (conv or dense) holds the pre-activation... but the
         * ReLU runs in place, so read the ReLU's output: > 0 exactly where the input was */
        assert_int_equal(mn_net_layer_output(net, i, n, buf), MN_OK);
        for (int s = 0; s < n; s++)
            for (size_t u = 0; u < cnt; u++) {
                size_t b = bit + u;
                int on = (int)((rc[(size_t)s * words + (b >> 6)] >> (b & 63)) & 1);
                assert_int_equal(on, buf[(size_t)s * cnt + u] > 0.0f);
            }
        bit += cnt;
    }
    /* brute-force distinct count over the codes */
    size_t brute = 0;
    for (int a = 0; a < n; a++) {
        int seen = 0;
        for (int b = 0; b < a && !seen; b++)
            seen = memcmp(rc + (size_t)a * words, rc + (size_t)b * words, words * 8) == 0;
        brute += !seen;
    }
    assert_int_equal(mn_proxy_count_distinct(rc, n, words), brute);
    free(rc);
    assert_int_equal(mn_net_layer_output(net, arch.n_layers - 1, n, buf), MN_ERR_INVALID_ARG);
    mn_net_destroy(net);
    /* regions of the proxy: at least 1, at most R; deterministic */
    mn_proxy_options o;
    mn_proxy_options_default(&o);
    o.which = MN_PROXY_REGIONS;
    o.regions_inputs = 200;
    mn_proxy_scores s1, s2;
    assert_int_equal(mn_proxy_compute(&arch, be, x, NULL, n, &o, &s1), MN_OK);
    assert_int_equal(mn_proxy_compute(&arch, be, x, NULL, n, &o, &s2), MN_OK);
    assert_true(s1.regions >= 1 && s1.regions <= 200);
    assert_float_equal(s1.regions, s2.regions, 0);
    free(x);
    mn_backend_destroy(be);
}

/* grad_norm and snip against the net's own cross-entropy gradients (colabnas has no
 * dropout, so mn_net_forward_backward sees the same function). */
static void grad_norm_and_snip_match_the_net(void **state) {
    (void)state;
    mn_backend *be = cpu();
    mn_arch arch;
    assert_int_equal(mn_arch_build(&arch, 3, 2, MN_LAYOUT_COLABNAS, fx.data.info.shape, 4), MN_OK);
    const int n = 8;
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = n;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 21), MN_OK);
    const size_t p = mn_net_get_plan(net)->trainable;
    float *g = malloc(p * sizeof(float)), *th = malloc(p * sizeof(float));
    double loss;
    assert_int_equal(mn_net_forward_backward(net, fx.data.train.images, fx.data.train.labels, n, 1, &loss),
                     MN_OK);
    assert_int_equal(mn_net_get_grads(net, g), MN_OK);
    assert_int_equal(mn_net_get_params(net, th, NULL), MN_OK);
    double gn = 0, sn = 0;
    for (size_t i = 0; i < p; i++) {
        gn += (double)g[i] * g[i];
        sn += fabs((double)g[i] * th[i]);
    }
    gn = sqrt(gn);
    mn_net_destroy(net);
    mn_proxy_options o;
    mn_proxy_options_default(&o);
    o.which = MN_PROXY_GRAD_NORM | MN_PROXY_SNIP | MN_PROXY_NASWOT;
    o.batch = n;
    o.seed = 21;
    mn_proxy_scores s;
    assert_int_equal(mn_proxy_compute(&arch, be, fx.data.train.images, fx.data.train.labels, n, &o, &s),
                     MN_OK);
    assert_true(gn > 0 && sn > 0);
    if (fabs(s.grad_norm - gn) > 1e-4 * gn) fail_msg("grad_norm %g vs %g", s.grad_norm, gn);
    if (fabs(s.snip - sn) > 1e-4 * sn) fail_msg("snip %g vs %g", s.snip, sn);
    assert_true(isfinite(s.naswot));
    /* labels outside the classes are refused */
    int32_t bad[8] = {0, 1, 2, 3, 4, 0, 0, 0};
    assert_int_equal(mn_proxy_compute(&arch, be, fx.data.train.images, bad, n, &o, &s),
                     MN_ERR_INVALID_ARG);
    free(g);
    free(th);
    mn_backend_destroy(be);
}

/* ---- synflow: a double-precision forward of the same net with BN as identity ---- */

typedef struct dref {
    const mn_arch *a;
    const double *th;     /* |theta| */
    const size_t *off;    /* per layer parameter offsets */
} dref;

/* R = sum of the logits for an all-ones input. */
static double ref_forward(const dref *r) {
    const mn_arch *a = r->a;
    size_t cap = 4096;
    double *x = calloc(cap, sizeof(double)), *y = calloc(cap, sizeof(double));
    mn_shape s = a->input;
    for (size_t i = 0; i < mn_shape_count(s); i++) x[i] = 1.0;
    for (int li = 1; li < a->n_layers; li++) {
        const mn_layer *l = &a->layers[li];
        const double *w = r->th + r->off[li];
        int H = l->in.h, W = l->in.w, C = l->in.c, K = l->out.c;
        memset(y, 0, cap * sizeof(double));
        switch (l->kind) {
        case MN_LAYER_CONV3X3:
            for (int h = 0; h < H; h++)
                for (int ww = 0; ww < W; ww++)
                    for (int k = 0; k < K; k++) {
                        double acc = w[(size_t)K * 9 * C + k];
                        for (int dy = 0; dy < 3; dy++)
                            for (int dx = 0; dx < 3; dx++) {
                                int hh = h + dy - 1, wx = ww + dx - 1;
                                if (hh < 0 || hh >= H || wx < 0 || wx >= W) continue;
                                for (int c = 0; c < C; c++)
                                    acc += x[((size_t)hh * W + wx) * C + c] *
                                           w[(((size_t)k * 3 + dy) * 3 + dx) * C + c];
                            }
                        y[((size_t)h * W + ww) * K + k] = acc;
                    }
            break;
        case MN_LAYER_RELU:
            for (size_t i = 0; i < mn_shape_count(l->in); i++) y[i] = x[i] > 0 ? x[i] : 0;
            break;
        case MN_LAYER_MAXPOOL2:
            for (int h = 0; h < l->out.h; h++)
                for (int ww = 0; ww < l->out.w; ww++)
                    for (int c = 0; c < C; c++) {
                        double m = -INFINITY;
                        for (int dy = 0; dy < 2; dy++)
                            for (int dx = 0; dx < 2; dx++) {
                                double v = x[((size_t)(2 * h + dy) * W + 2 * ww + dx) * C + c];
                                m = v > m ? v : m;
                            }
                        y[((size_t)h * l->out.w + ww) * C + c] = m;
                    }
            break;
        case MN_LAYER_GAP:
            for (int c = 0; c < C; c++) {
                double acc = 0;
                for (int i = 0; i < H * W; i++) acc += x[(size_t)i * C + c];
                y[c] = acc / (H * W);
            }
            break;
        case MN_LAYER_DENSE:
            for (int o = 0; o < K; o++) {
                double acc = w[(size_t)K * C + o];
                for (int c = 0; c < C; c++) acc += w[(size_t)o * C + c] * x[c];
                y[o] = acc;
            }
            break;
        case MN_LAYER_BATCHNORM: /* the identity */
        case MN_LAYER_DROPOUT:
        case MN_LAYER_RESCALE:
            memcpy(y, x, mn_shape_count(l->in) * sizeof(double));
            break;
        case MN_LAYER_SOFTMAX: {
            double sum = 0;
            for (int c = 0; c < a->classes; c++) sum += x[c];
            free(x);
            free(y);
            return sum;
        }
        }
        double *t = x;
        x = y;
        y = t;
    }
    free(x);
    free(y);
    return NAN;
}

static void synflow_matches_a_double_reference(void **state) {
    (void)state;
    mn_backend *be = cpu();
    mn_arch arch;
    mn_shape in = {6, 6, 1};
    assert_int_equal(mn_arch_build(&arch, 2, 1, MN_LAYOUT_NANONAS, in, 3), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 2;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 5), MN_OK);
    const size_t p = mn_net_get_plan(net)->trainable;
    float *th = malloc(p * sizeof(float));
    assert_int_equal(mn_net_get_params(net, th, NULL), MN_OK);
    size_t off[MN_ARCH_MAX_LAYERS];
    for (int i = 0; i < arch.n_layers; i++) off[i] = mn_net_param_offset(net, i);
    mn_net_destroy(net);
    /* sum theta dR/dtheta = d/dt R((1 + t) |theta|) at t = 0 (Euler's identity for the
     * directional derivative along theta), by central differences in double */
    double *abs1 = malloc(p * sizeof(double)), *scaled = malloc(p * sizeof(double));
    for (size_t i = 0; i < p; i++) abs1[i] = fabs((double)th[i]);
    const double h = 1e-4;
    dref r = {&arch, scaled, off};
    for (size_t i = 0; i < p; i++) scaled[i] = abs1[i] * (1 + h);
    double rp = ref_forward(&r);
    for (size_t i = 0; i < p; i++) scaled[i] = abs1[i] * (1 - h);
    double rm = ref_forward(&r);
    double ref = (rp - rm) / (2 * h);
    mn_proxy_options o;
    mn_proxy_options_default(&o);
    o.which = MN_PROXY_SYNFLOW;
    o.seed = 5;
    o.batch = 2;
    mn_proxy_scores s;
    uint8_t dummy[72] = {0};
    assert_int_equal(mn_proxy_compute(&arch, be, dummy, NULL, 2, &o, &s), MN_OK);
    assert_true(ref > 0);
    if (fabs(s.synflow - ref) > 1e-4 * ref) fail_msg("synflow %.9g, reference %.9g", s.synflow, ref);
    free(th);
    free(abs1);
    free(scaled);
    mn_backend_destroy(be);
}

/* ---- ranking ---- */

static void ranks_and_monas_combination(void **state) {
    (void)state;
    double v[5] = {3, 1, 2, 2, NAN}, r[5];
    mn_rank_values(v, 5, 1, r);
    assert_float_equal(r[0], 4, 0);
    assert_float_equal(r[1], 1, 0);
    assert_float_equal(r[2], 2.5, 0);
    assert_float_equal(r[3], 2.5, 0);
    assert_float_equal(r[4], 5, 0);
    mn_rank_values(v, 5, 0, r);
    assert_float_equal(r[0], 1, 0);
    assert_float_equal(r[1], 4, 0);
    assert_float_equal(r[2], 2.5, 0);
    assert_float_equal(r[4], 5, 0);

    mn_rank_entry e[3];
    memset(e, 0, sizeof e);
    /* A: best NTK, worst FLOPs; B: best regions; C: cheapest */
    e[0].k = 1; e[0].s.ntk_cond = 1; e[0].s.regions = 10; e[0].s.flops = 300; e[0].latency_ms = 3;
    e[1].k = 2; e[1].s.ntk_cond = 5; e[1].s.regions = 50; e[1].s.flops = 200; e[1].latency_ms = 2;
    e[2].k = 3; e[2].s.ntk_cond = 9; e[2].s.regions = 20; e[2].s.flops = 100; e[2].latency_ms = 1;
    assert_int_equal(mn_rank_combine(e, 3, 0.1, 0.1), MN_OK);
    /* scores: A 0.4*1 + 0.4*3 + 0.1*3 + 0.1*3 = 2.2; B 0.4*2 + 0.4*1 + 0.2*2 = 1.6;
     * C 0.4*3 + 0.4*2 + 0.2*1 = 2.2 -> B, then the tie A/C broken by FLOPs: C */
    assert_int_equal(e[0].k, 2);
    assert_float_equal(e[0].score, 1.6, 1e-12);
    assert_int_equal(e[1].k, 3);
    assert_int_equal(e[2].k, 1);
    assert_int_equal(e[2].rank, 3);
    /* hardware only */
    assert_int_equal(mn_rank_combine(e, 3, 0.5, 0.5), MN_OK);
    assert_int_equal(e[0].k, 3);
    assert_int_equal(mn_rank_combine(e, 3, 0.7, 0.5), MN_ERR_INVALID_ARG);
}

static void list_strategies_ask_in_order(void **state) {
    (void)state;
    mn_point pts[3] = {{4, 1}, {2, 0}, {8, 2}};
    mn_strategy *s;
    assert_int_equal(mn_strategy_create_list(MN_STRATEGY_HYBRID, pts, 3, &s), MN_OK);
    mn_point p;
    double scores[3] = {0.8, 0.8, 0.7};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mn_strategy_ask(s, &p), 1);
        assert_int_equal(p.k, pts[i].k);
        assert_int_equal(p.cells, pts[i].cells);
        assert_int_equal(mn_strategy_tell(s, p, MN_OUTCOME_SCORED, scores[i]), MN_OK);
    }
    assert_int_equal(mn_strategy_ask(s, &p), 0);
    double best;
    assert_int_equal(mn_strategy_best(s, &p, &best), 1);
    assert_int_equal(p.k, 4); /* the tie goes to the better-ranked point */
    assert_float_equal(best, 0.8, 1e-9);
    mn_strategy_destroy(s);
    mn_strategy_kind kind;
    assert_int_equal(mn_strategy_kind_parse("zeroshot", &kind), MN_OK);
    assert_int_equal(kind, MN_STRATEGY_ZEROSHOT);
    assert_int_equal(mn_strategy_kind_parse("hybrid", &kind), MN_OK);
    assert_string_equal(mn_strategy_kind_name(MN_STRATEGY_HYBRID), "hybrid");
    /* an empty list: nothing to ask, no answer */
    assert_int_equal(mn_strategy_create_list(MN_STRATEGY_ZEROSHOT, NULL, 0, &s), MN_OK);
    assert_int_equal(mn_strategy_ask(s, &p), 0);
    assert_int_equal(mn_strategy_best(s, &p, &best), 0);
    mn_strategy_destroy(s);
    /* the list kinds are not made by mn_strategy_create, nor grid by the list maker */
    mn_strategy_options so = {MN_STRATEGY_HYBRID, 3, 1, 64};
    assert_int_equal(mn_strategy_create(&so, &s), MN_ERR_INVALID_ARG);
    assert_int_equal(mn_strategy_create_list(MN_STRATEGY_GRID, pts, 3, &s), MN_ERR_INVALID_ARG);
}

static void rank_space_filters_then_ranks(void **state) {
    (void)state;
    mn_rank_options ro;
    mn_rank_options_default(&ro);
    ro.k_max = 4;
    ro.target = mn_target_find(&fx.targets, "stm32l412kbu3");
    ro.proxy.batch = 4;
    ro.proxy.inits = 1;
    ro.proxy.regions_inputs = 100;
    ro.threads = 2;
    mn_rank_result r;
    assert_int_equal(mn_rank_space(&ro, &fx.data, &r), MN_OK);
    int max_cells = mn_arch_max_cells(fx.data.info.shape);
    assert_int_equal(r.considered, (size_t)3 * 4 * (max_cells + 1));
    assert_int_equal(r.count + r.infeasible + r.pruned, r.considered);
    assert_true(r.count >= 6);
    for (size_t i = 0; i < r.count; i++) {
        const mn_rank_entry *e = &r.entries[i];
        assert_int_equal(e->rank, (int)i + 1);
        if (i) assert_true(e->score >= r.entries[i - 1].score);
        assert_true(e->ram_bytes <= ro.target->ram_bytes);
        assert_true(isfinite(e->s.naswot) && e->s.regions >= 1 && e->s.synflow > 0);
        assert_true(e->s.ntk_cond >= 1);
    }
    /* One worker or more workers than cores (so that candidates overlap on the workers):
     * the same numbers, bit for bit. */
    for (int workers = 1; workers <= 4; workers += 3) {
        ro.workers = workers;
        mn_rank_result w;
        assert_int_equal(mn_rank_space(&ro, &fx.data, &w), MN_OK);
        assert_int_equal(w.count, r.count);
        for (size_t i = 0; i < r.count; i++) {
            const mn_rank_entry *a = &r.entries[i], *b = &w.entries[i];
            assert_int_equal(a->k, b->k);
            assert_int_equal(a->cells, b->cells);
            assert_int_equal(a->layout, b->layout);
            const double va[] = {a->s.ntk_cond, a->s.regions, a->s.naswot, a->s.synflow, a->s.grad_norm, a->s.snip};
            const double vb[] = {b->s.ntk_cond, b->s.regions, b->s.naswot, b->s.synflow, b->s.grad_norm, b->s.snip};
            assert_memory_equal(va, vb, sizeof va);
        }
        mn_rank_result_free(&w);
    }
    ro.workers = 0;
    mn_rank_result_free(&r);
    /* host budget already used up: everything pruned, nothing computed */
    ro.host_mem = 1;
    assert_int_equal(mn_rank_space(&ro, &fx.data, &r), MN_OK);
    assert_int_equal(r.count, 0);
    assert_true(r.pruned > 0);
    mn_rank_result_free(&r);
}

static void hybrid_search_trains_the_top_ranked(void **state) {
    (void)state;
    char *journal = mn_test_path(fx.tmpdir, "hybrid.jsonl");
    mn_rank_options ro;
    mn_rank_options_default(&ro);
    ro.proxy.batch = 4;
    ro.proxy.inits = 1;
    ro.proxy.regions_inputs = 100;
    mn_search_config c;
    memset(&c, 0, sizeof c);
    c.strategy = MN_STRATEGY_HYBRID;
    c.top = 2;
    c.rank = &ro;
    c.layout = MN_LAYOUT_NANONAS;
    c.k_max = 3;
    c.target = mn_target_find(&fx.targets, "stm32l412kbu3");
    c.epochs = 1;
    c.batch = 8;
    c.adam = (mn_adam){3e-3f, 0.9f, 0.999f, 1e-7f};
    c.val_split = 0.3;
    c.split_seed = 11;
    c.seed = 3;
    c.backend = "cpu";
    c.threads = 2;
    c.journal_path = journal;
    c.settings_json = "{\"event\":\"search\",\"test\":2}";
    mn_point top[2];
    int n = 0;
    mn_point *pts;
    /* no host budget in c: what the backend's runtime adds plays no part */
    assert_int_equal(mn_search_rank_points(&c, &fx.data, 0, 2, &pts, &n), MN_OK);
    assert_int_equal(n, 2);
    memcpy(top, pts, sizeof top);
    free(pts);
    mn_search_result res;
    assert_int_equal(mn_search_run(&c, &fx.data, &res), MN_OK);
    assert_int_equal(res.evaluated, 2);
    assert_int_equal(res.trained, 2);
    assert_true(res.have_winner);
    assert_true((res.winner.k == top[0].k && res.winner.cells == top[0].cells) ||
                (res.winner.k == top[1].k && res.winner.cells == top[1].cells));
    free(journal);
}

static void rank_cli_smoke(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *csv = mn_test_path(fx.tmpdir, "ranks.csv"), *log = mn_test_path(fx.tmpdir, "rank.out");
    const char *argv[] = {bin, "rank", "--data", fx.data_path, "--target", "stm32f412", "--layout", "all",
                          "--k-max", "3", "--batch", "4", "--inits", "1", "--regions-inputs", "100",
                          "--out", csv, "--json", NULL};
    assert_int_equal(mn_test_run(0, argv, log), 0);
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "rank,k,cells,layout,monas_score,ntk_cond,regions,naswot"));
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    assert_true(lines >= 9);
    assert_int_equal(mn_test_count_lines(log, "\"event\":\"candidate\""), lines);
    /* a bad option is a usage error */
    const char *bad[] = {bin, "rank", "--data", fx.data_path, "--target", "stm32f412", "--wf", "2", NULL};
    assert_int_equal(mn_test_run(2, bad, log), 2);
    free(csv);
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ntk_jacobian_matches_finite_differences),
        cmocka_unit_test(relu_codes_regions_and_naswot),
        cmocka_unit_test(count_distinct_on_two_threads),
        cmocka_unit_test(grad_norm_and_snip_match_the_net),
        cmocka_unit_test(synflow_matches_a_double_reference),
        cmocka_unit_test(ranks_and_monas_combination),
        cmocka_unit_test(list_strategies_ask_in_order),
        cmocka_unit_test(rank_space_filters_then_ranks),
        cmocka_unit_test(hybrid_search_trains_the_top_ranked),
        cmocka_unit_test(rank_cli_smoke),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
