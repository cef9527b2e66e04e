/* The int8 reference interpreter: the arithmetic of TFLM's reference kernels
 * (tensorflow/lite/kernels/internal/reference/integer_ops/, common.h, gemmlowp's fixedpoint.h),
 * written from their documented behaviour. It is the oracle the tests compare LiteRT and
 * TFLM with, bit for bit. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/qgraph.h"

/* QuantizeMultiplier: m = q * 2^shift with q in [0.5, 1) as a Q31 value; std::round. */
void mn_quantize_multiplier(double m, int32_t *qm, int *shift) {
    if (m == 0.0) {
        *qm = 0;
        *shift = 0;
        return;
    }
    int e;
    double q = frexp(m, &e);
    int64_t qf = (int64_t)round(q * (double)(1LL << 31));
    if (qf == (1LL << 31)) {
        qf /= 2;
        e++;
    }
    if (e < -31) {
        e = 0;
        qf = 0;
    }
    *qm = (int32_t)qf;
    *shift = e;
}

int32_t mn_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

int32_t mn_rounding_divide_by_pot(int32_t x, int e) {
    int32_t mask = (int32_t)((1LL << e) - 1);
    int32_t rem = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > threshold ? 1 : 0);
}

int32_t mn_multiply_by_quantized_multiplier(int32_t x, int32_t qm, int shift) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return mn_rounding_divide_by_pot(mn_srdhm((int32_t)((uint32_t)x << left), qm), right);
}

/* TFLITE_SINGLE_ROUNDING's variant: one rounding (half up) of x * qm / 2^(31 - shift). */
int32_t mn_multiply_by_quantized_multiplier_single(int32_t x, int32_t qm, int shift) {
    int total = 31 - shift;
    int64_t r = (int64_t)x * (int64_t)qm + ((int64_t)1 << (total - 1));
    return (int32_t)(r >> total);
}

/* ---- gemmlowp fixed point, int32 raw values ---- */
static int32_t sat_shl(int32_t x, int e) { /* SaturatingRoundingMultiplyByPOT<e>, e > 0 */
    int32_t threshold = (int32_t)((1LL << (31 - e)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

/* exp on [-1/4, 0): Taylor around -1/8; Q0.31 in and out. */
static int32_t exp_quarter(int32_t a) {
    const int32_t constant_term = 1895147668, one_third = 715827883;
    int32_t x = a + (1 << 28);
    int32_t x2 = mn_srdhm(x, x), x3 = mn_srdhm(x2, x), x4 = mn_srdhm(x2, x2);
    int32_t x4_over_4 = mn_rounding_divide_by_pot(x4, 2);
    int32_t poly = mn_rounding_divide_by_pot(mn_srdhm(x4_over_4 + x3, one_third) + x2, 1);
    return constant_term + mn_srdhm(constant_term, x + poly);
}

/* exp_on_negative_values for a FixedPoint<int32, 5> input, Q0.31 result. */
static int32_t exp_neg_5(int32_t a) {
    const int frac = 26;
    const int32_t one_quarter = 1 << (frac - 2);
    const int32_t mask = one_quarter - 1;
    int32_t a_mod = (a & mask) - one_quarter;
    int32_t result = exp_quarter(sat_shl(a_mod, 5));
    int32_t remainder = a_mod - a;
    static const int32_t mult[7] = {1672461947, 1302514674, 790015084, 290630308,
                                    39332535,   720401,     242};
    for (int i = 0; i < 7; i++) { /* exponents -2 .. +4, all < 5 integer bits */
        int shift = frac + (i - 2);
        if (remainder & (1 << shift)) result = mn_srdhm(result, mult[i]);
    }
    if (a == 0) result = INT32_MAX;
    return result;
}

static int32_t rounding_half_sum(int32_t a, int32_t b) {
    int64_t sum = (int64_t)a + b;
    int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out (Newton-Raphson, 3 steps). */
static int32_t one_over_one_plus_x(int32_t a) {
    int32_t half_den = rounding_half_sum(a, INT32_MAX);          /* F0 */
    const int32_t c48_17 = 1515870810, cn32_17 = -1010580540;    /* F2 */
    int32_t x = c48_17 + mn_srdhm(half_den, cn32_17);            /* F2 */
    const int32_t one_f2 = 1 << 29;
    for (int i = 0; i < 3; i++) {
        int32_t hdx = mn_srdhm(half_den, x);                     /* F2 */
        int32_t one_minus = one_f2 - hdx;                        /* F2 */
        x = x + sat_shl(mn_srdhm(x, one_minus), 2);              /* F4 -> F2 */
    }
    return sat_shl(x, 1); /* ExactMulByPot<-1> (F2 -> F1, same raw), Rescale<0> */
}

static int clz32(uint32_t x) { return x ? __builtin_clz(x) : 32; }

static int32_t get_reciprocal(int32_t x, int int_digits, int *bits_over_unit) {
    int headroom_plus_one = clz32((uint32_t)x);
    *bits_over_unit = int_digits - headroom_plus_one;
    int32_t shifted_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    return one_over_one_plus_x(shifted_minus_one);
}

/* ---- the interpreter ---- */
typedef struct op_q {
    int32_t *mult;
    int *shift;
    int32_t act_min, act_max;
    int32_t in_mult;  /* softmax */
    int in_shift, diff_min;
} op_q;

struct mn_qinterp {
    const mn_qgraph *g;
    mn_rounding rounding;
    void **act;
    op_q *q;
};

static int32_t act_quant(const mn_qtensor *t, float f) {
    return t->zero_point + (int32_t)round((double)(f / t->scales[0]));
}

mn_status mn_qinterp_create(const mn_qgraph *g, mn_qinterp **out) {
    *out = NULL;
    if (!g->quantized) return mn_error_set(MN_ERR_INVALID_ARG, "int8 interpreter: the graph is not quantized");
    mn_qinterp *it = calloc(1, sizeof *it);
    if (!it) return mn_error_set(MN_ERR_NOMEM, "out of memory for the int8 interpreter");
    it->g = g;
    it->act = calloc((size_t)g->n_tensors, sizeof *it->act);
    it->q = calloc((size_t)g->n_ops, sizeof *it->q);
    if (!it->act || !it->q) goto nomem;
    for (int i = 0; i < g->n_tensors; i++)
        if (!g->t[i].is_const && !(it->act[i] = calloc(1, g->t[i].bytes))) goto nomem;
    for (int oi = 0; oi < g->n_ops; oi++) {
        const mn_qop *op = &g->ops[oi];
        const mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        op_q *q = &it->q[oi];
        q->act_min = to->type == MN_QT_UINT8 ? 0 : -128;
        q->act_max = to->type == MN_QT_UINT8 ? 255 : 127;
        if (op->relu) {
            int32_t z = act_quant(to, 0.0f);
            if (z > q->act_min) q->act_min = z;
        }
        int nm = 0;
        if (op->kind == MN_QOP_CONV3X3 || op->kind == MN_QOP_DEPTHWISE1X1 || op->kind == MN_QOP_FC)
            nm = g->t[op->in[1]].n_scales;
        else if (op->kind == MN_QOP_QUANTIZE)
            nm = 1;
        if (nm) {
            q->mult = malloc((size_t)nm * sizeof *q->mult);
            q->shift = malloc((size_t)nm * sizeof *q->shift);
            if (!q->mult || !q->shift) goto nomem;
            for (int c = 0; c < nm; c++) {
                double eff;
                if (op->kind == MN_QOP_QUANTIZE)
                    eff = (double)ti->scales[0] / (double)to->scales[0];
                else
                    eff = (double)ti->scales[0] * (double)g->t[op->in[1]].scales[c] / (double)to->scales[0];
                mn_quantize_multiplier(eff, &q->mult[c], &q->shift[c]);
            }
        }
        if (op->kind == MN_QOP_SOFTMAX) {
            /* PreprocessSoftmaxScaling(beta = 1, input scale, 5 integer bits) */
            double real = 1.0 * (double)ti->scales[0] * (double)(1 << (31 - 5));
            double maxm = (double)((1LL << 31) - 1);
            if (real > maxm) real = maxm;
            mn_quantize_multiplier(real, &q->in_mult, &q->in_shift);
            /* CalculateInputRadius(5, shift) */
            double radius = 1.0 * ((1 << 5) - 1) * (double)(1LL << (31 - 5)) / (double)(1LL << q->in_shift);
            q->diff_min = -(int)floor(radius);
        }
    }
    *out = it;
    return MN_OK;
nomem:
    mn_qinterp_free(it);
    return mn_error_set(MN_ERR_NOMEM, "out of memory for the int8 interpreter");
}

void mn_qinterp_free(mn_qinterp *it) {
    if (!it) return;
    if (it->act)
        for (int i = 0; i < it->g->n_tensors; i++) free(it->act[i]);
    if (it->q)
        for (int i = 0; i < it->g->n_ops; i++) {
            free(it->q[i].mult);
            free(it->q[i].shift);
        }
    free(it->act);
    free(it->q);
    free(it);
}

void mn_qinterp_set_rounding(mn_qinterp *it, mn_rounding rounding) { it->rounding = rounding; }

const void *mn_qinterp_tensor(const mn_qinterp *it, int i) { return it->act[i]; }

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

#define MBQM(x, m, s)                                                                      \
    (single ? mn_multiply_by_quantized_multiplier_single((x), (m), (s))                     \
            : mn_multiply_by_quantized_multiplier((x), (m), (s)))

mn_status mn_qinterp_run(mn_qinterp *it, const uint8_t *image, uint8_t *out) {
    const mn_qgraph *g = it->g;
    const int single = it->rounding == MN_ROUNDING_SINGLE;
    const int fc_single = it->rounding == MN_ROUNDING_LITERT_REF; /* FULLY_CONNECTED only */
    memcpy(it->act[g->input], image, g->t[g->input].bytes);
    for (int oi = 0; oi < g->n_ops; oi++) {
        const mn_qop *op = &g->ops[oi];
        const op_q *q = &it->q[oi];
        const mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        const void *xin = it->act[op->in[0]];
        void *yout = it->act[op->out];
        int32_t in_off = -ti->zero_point, out_off = to->zero_point;
        switch (op->kind) {
        case MN_QOP_QUANTIZE: {
            size_t n = to->bytes;
            for (size_t i = 0; i < n; i++) {
                int32_t v = ti->type == MN_QT_UINT8 ? ((const uint8_t *)xin)[i] : ((const int8_t *)xin)[i];
                int32_t r = MBQM(v + in_off, q->mult[0], q->shift[0]) + out_off;
                r = clamp32(r, q->act_min, q->act_max);
                if (to->type == MN_QT_UINT8) ((uint8_t *)yout)[i] = (uint8_t)r;
                else ((int8_t *)yout)[i] = (int8_t)r;
            }
            break;
        }
        case MN_QOP_DEPTHWISE1X1: {
            const int8_t *x = xin, *w = g->t[op->in[1]].data;
            const int32_t *b = g->t[op->in[2]].data;
            int8_t *y = yout;
            int C = ti->dims[3];
            size_t n = to->bytes;
            for (size_t i = 0; i < n; i++) {
                int c = (int)(i % (size_t)C);
                int32_t acc = (int32_t)w[c] * (x[i] + in_off) + b[c];
                acc = MBQM(acc, q->mult[c], q->shift[c]) + out_off;
                y[i] = (int8_t)clamp32(acc, q->act_min, q->act_max);
            }
            break;
        }
        case MN_QOP_CONV3X3: {
            const int8_t *x = xin, *w = g->t[op->in[1]].data;
            const int32_t *b = g->t[op->in[2]].data;
            int8_t *y = yout;
            int H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], K = to->dims[3];
            for (int h = 0; h < H; h++)
                for (int xw = 0; xw < W; xw++)
                    for (int k = 0; k < K; k++) {
                        int32_t acc = 0;
                        for (int dy = 0; dy < 3; dy++) {
                            int yy = h + dy - 1;
                            if (yy < 0 || yy >= H) continue;
                            for (int dx = 0; dx < 3; dx++) {
                                int xx = xw + dx - 1;
                                if (xx < 0 || xx >= W) continue;
                                const int8_t *xp = x + ((size_t)yy * W + xx) * C;
                                const int8_t *wp = w + (((size_t)k * 3 + dy) * 3 + dx) * C;
                                for (int c = 0; c < C; c++) acc += (int32_t)wp[c] * (xp[c] + in_off);
                            }
                        }
                        acc += b[k];
                        acc = MBQM(acc, q->mult[k], q->shift[k]) + out_off;
                        y[((size_t)h * W + xw) * K + k] = (int8_t)clamp32(acc, q->act_min, q->act_max);
                    }
            break;
        }
        case MN_QOP_MAXPOOL2: {
            const int8_t *x = xin;
            int8_t *y = yout;
            int W = ti->dims[2], C = ti->dims[3], Ho = to->dims[1], Wo = to->dims[2];
            for (int h = 0; h < Ho; h++)
                for (int xw = 0; xw < Wo; xw++)
                    for (int c = 0; c < C; c++) {
                        int32_t m = -128;
                        for (int dy = 0; dy < 2; dy++)
                            for (int dx = 0; dx < 2; dx++) {
                                int32_t v = x[((size_t)(2 * h + dy) * W + 2 * xw + dx) * C + c];
                                if (v > m) m = v;
                            }
                        y[((size_t)h * Wo + xw) * C + c] = (int8_t)clamp32(m, q->act_min, q->act_max);
                    }
            break;
        }
        case MN_QOP_AVGPOOL: {
            const int8_t *x = xin;
            int8_t *y = yout;
            int C = ti->dims[3];
            int32_t count = ti->dims[1] * ti->dims[2];
            for (int c = 0; c < C; c++) {
                int32_t acc = 0;
                for (int32_t i = 0; i < count; i++) acc += x[(size_t)i * C + c];
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                y[c] = (int8_t)clamp32(acc, q->act_min, q->act_max);
            }
            break;
        }
        case MN_QOP_FC: {
            const int8_t *x = xin, *w = g->t[op->in[1]].data;
            const int32_t *b = g->t[op->in[2]].data;
            int8_t *y = yout;
            int O = g->t[op->in[1]].dims[0], I = g->t[op->in[1]].dims[1];
            for (int o = 0; o < O; o++) {
                int32_t acc = 0;
                for (int i = 0; i < I; i++) acc += (int32_t)w[(size_t)o * I + i] * (x[i] + in_off);
                acc += b[o];
                acc = (single || fc_single ? mn_multiply_by_quantized_multiplier_single(acc, q->mult[0], q->shift[0])
                                           : mn_multiply_by_quantized_multiplier(acc, q->mult[0], q->shift[0])) +
                      out_off;
                y[o] = (int8_t)clamp32(acc, q->act_min, q->act_max);
            }
            break;
        }
        case MN_QOP_SOFTMAX: {
            const int8_t *x = xin;
            int8_t *y = yout;
            int n = (int)to->bytes;
            int32_t mx = -128;
            for (int i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
            int32_t sum = 0; /* FixedPoint<int32, 12> */
            for (int i = 0; i < n; i++) {
                int32_t diff = x[i] - mx;
                if (diff >= q->diff_min) {
                    int32_t r = mn_srdhm((int32_t)((uint32_t)diff << q->in_shift), q->in_mult);
                    sum += mn_rounding_divide_by_pot(exp_neg_5(r), 12);
                }
            }
            int bits_over_unit;
            int32_t shifted_scale = get_reciprocal(sum, 12, &bits_over_unit);
            for (int i = 0; i < n; i++) {
                int32_t diff = x[i] - mx;
                if (diff >= q->diff_min) {
                    int32_t r = mn_srdhm((int32_t)((uint32_t)diff << q->in_shift), q->in_mult);
                    int32_t e = exp_neg_5(r);
                    int32_t u = mn_rounding_divide_by_pot(mn_srdhm(shifted_scale, e), bits_over_unit + 31 - 8);
                    y[i] = (int8_t)clamp32(u - 128, -128, 127);
                } else {
                    y[i] = -128;
                }
            }
            break;
        }
        }
    }
    memcpy(out, it->act[g->output], g->t[g->output].bytes);
    return MN_OK;
}
