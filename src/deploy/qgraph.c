/* The int8 graph of a candidate: build from mn_arch, float parameters, float forward,
 * calibration and post-training quantization (docs/cost-model.md). */
#include "mcunas/qgraph.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t mn_qtype_size(mn_qtype t) { return t == MN_QT_INT32 ? 4 : 1; }

const char *mn_qop_name(mn_qop_kind k) {
    switch (k) {
    case MN_QOP_QUANTIZE: return "QUANTIZE";
    case MN_QOP_DEPTHWISE1X1: return "DEPTHWISE_CONV_2D";
    case MN_QOP_CONV3X3: return "CONV_2D";
    case MN_QOP_MAXPOOL2: return "MAX_POOL_2D";
    case MN_QOP_AVGPOOL: return "AVERAGE_POOL_2D";
    case MN_QOP_FC: return "FULLY_CONNECTED";
    case MN_QOP_SOFTMAX: return "SOFTMAX";
    }
    return "?";
}

static size_t dims_count(const mn_qtensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= (size_t)t->dims[i];
    return n;
}

static int add_tensor(mn_qgraph *g, int cap, const char *name, mn_qtype type, int rank,
                      const int *dims, int is_const, int n_scales, int quant_dim) {
    if (g->n_tensors >= cap) return -1;
    mn_qtensor *t = &g->t[g->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof(int));
    t->is_const = is_const;
    t->n_scales = n_scales;
    t->quant_dim = quant_dim;
    t->scales = malloc((size_t)n_scales * sizeof(float));
    if (!t->scales) return -1;
    for (int i = 0; i < n_scales; i++) t->scales[i] = 1.0f;
    t->bytes = dims_count(t) * mn_qtype_size(type);
    if (is_const) {
        t->data = calloc(1, t->bytes ? t->bytes : 1);
        if (!t->data) {
            free(t->scales);
            return -1;
        }
    }
    t->fmin = FLT_MAX;
    t->fmax = -FLT_MAX;
    return g->n_tensors++;
}

void mn_qgraph_free(mn_qgraph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_tensors; i++) {
        free(g->t[i].scales);
        free(g->t[i].data);
    }
    for (int i = 0; i < g->n_ops; i++) {
        free(g->ops[i].fw);
        free(g->ops[i].fb);
    }
    free(g->t);
    free(g->ops);
    free(g);
}

static mn_qop *add_op(mn_qgraph *g, mn_qop_kind kind, int in, int w, int b, int out, int layer) {
    mn_qop *op = &g->ops[g->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->in[0] = in;
    op->in[1] = w;
    op->in[2] = b;
    op->n_in = b >= 0 ? 3 : (w >= 0 ? 2 : 1);
    op->out = out;
    op->layer = layer;
    op->bn_layer = -1;
    op->stride = 1;
    return op;
}

mn_status mn_qgraph_build(const mn_arch *arch, int io_int8, mn_qgraph **out) {
    *out = NULL;
    int cap_t = 4 * arch->n_layers + 8, cap_o = arch->n_layers + 4;
    mn_qgraph *g = calloc(1, sizeof *g);
    if (!g) return mn_error_set(MN_ERR_NOMEM, "out of memory building the int8 graph");
    g->t = calloc((size_t)cap_t, sizeof *g->t);
    g->ops = calloc((size_t)cap_o, sizeof *g->ops);
    if (!g->t || !g->ops) {
        mn_qgraph_free(g);
        return mn_error_set(MN_ERR_NOMEM, "out of memory building the int8 graph");
    }
    g->arch = *arch;
    g->io_int8 = io_int8;
    char name[40];
    mn_shape s = arch->input;
    int d4[4] = {1, s.h, s.w, s.c};
    int cur = add_tensor(g, cap_t, "input", io_int8 ? MN_QT_INT8 : MN_QT_UINT8, 4, d4, 0, 1, 0);
    if (cur < 0) goto nomem;
    g->input = cur;
    if (!io_int8) {
        int q = add_tensor(g, cap_t, "input_int8", MN_QT_INT8, 4, d4, 0, 1, 0);
        if (q < 0) goto nomem;
        add_op(g, MN_QOP_QUANTIZE, cur, -1, -1, q, -1);
        cur = q;
    }
    mn_qop *last = NULL;
    int n_conv = 0, n_bn = 0, n_fc = 0, n_pool = 0;
    for (int li = 0; li < arch->n_layers; li++) {
        const mn_layer *l = &arch->layers[li];
        int C = l->in.c;
        switch (l->kind) {
        case MN_LAYER_RESCALE:
        case MN_LAYER_DROPOUT: break; /* in the input's scale / gone at inference */
        case MN_LAYER_RELU:
            if (last && (last->kind == MN_QOP_CONV3X3 || last->kind == MN_QOP_FC)) last->relu = 1;
            break;
        case MN_LAYER_BATCHNORM:
            if (last && last->kind == MN_QOP_CONV3X3 && li > 0 &&
                arch->layers[li - 1].kind == MN_LAYER_CONV3X3) {
                last->bn_layer = li; /* conv -> BN: folds exactly */
                break;
            } else {
                int dw[4] = {1, 1, 1, C}, db[1] = {C}, da[4] = {1, l->out.h, l->out.w, C};
                n_bn++;
                snprintf(name, sizeof name, "bn%d/weights", n_bn);
                int w = add_tensor(g, cap_t, name, MN_QT_INT8, 4, dw, 1, C, 3);
                snprintf(name, sizeof name, "bn%d/bias", n_bn);
                int b = add_tensor(g, cap_t, name, MN_QT_INT32, 1, db, 1, C, 0);
                snprintf(name, sizeof name, "bn%d", n_bn);
                int o = add_tensor(g, cap_t, name, MN_QT_INT8, 4, da, 0, 1, 0);
                if (w < 0 || b < 0 || o < 0) goto nomem;
                last = add_op(g, MN_QOP_DEPTHWISE1X1, cur, w, b, o, li);
                cur = o;
            }
            break;
        case MN_LAYER_CONV3X3: {
            int K = l->out.c;
            int dw[4] = {K, 3, 3, C}, db[1] = {K}, da[4] = {1, l->out.h, l->out.w, K};
            n_conv++;
            snprintf(name, sizeof name, "conv%d/weights", n_conv);
            int w = add_tensor(g, cap_t, name, MN_QT_INT8, 4, dw, 1, K, 0);
            snprintf(name, sizeof name, "conv%d/bias", n_conv);
            int b = add_tensor(g, cap_t, name, MN_QT_INT32, 1, db, 1, K, 0);
            snprintf(name, sizeof name, "conv%d", n_conv);
            int o = add_tensor(g, cap_t, name, MN_QT_INT8, 4, da, 0, 1, 0);
            if (w < 0 || b < 0 || o < 0) goto nomem;
            last = add_op(g, MN_QOP_CONV3X3, cur, w, b, o, li);
            cur = o;
            break;
        }
        case MN_LAYER_MAXPOOL2: {
            int da[4] = {1, l->out.h, l->out.w, C};
            snprintf(name, sizeof name, "pool%d", ++n_pool);
            int o = add_tensor(g, cap_t, name, MN_QT_INT8, 4, da, 0, 1, 0);
            if (o < 0) goto nomem;
            last = add_op(g, MN_QOP_MAXPOOL2, cur, -1, -1, o, li);
            last->filter_h = last->filter_w = last->stride = 2;
            cur = o;
            break;
        }
        case MN_LAYER_GAP: {
            int da[4] = {1, 1, 1, C};
            int o = add_tensor(g, cap_t, "gap", MN_QT_INT8, 4, da, 0, 1, 0);
            if (o < 0) goto nomem;
            last = add_op(g, MN_QOP_AVGPOOL, cur, -1, -1, o, li);
            last->filter_h = l->in.h;
            last->filter_w = l->in.w;
            last->stride = 1;
            cur = o;
            break;
        }
        case MN_LAYER_DENSE: {
            int I = (int)mn_shape_count(l->in), O = l->out.c;
            int dw[2] = {O, I}, db[1] = {O}, da[2] = {1, O};
            n_fc++;
            snprintf(name, sizeof name, "dense%d/weights", n_fc);
            int w = add_tensor(g, cap_t, name, MN_QT_INT8, 2, dw, 1, 1, 0);
            snprintf(name, sizeof name, "dense%d/bias", n_fc);
            int b = add_tensor(g, cap_t, name, MN_QT_INT32, 1, db, 1, 1, 0);
            snprintf(name, sizeof name, "dense%d", n_fc);
            int o = add_tensor(g, cap_t, name, MN_QT_INT8, 2, da, 0, 1, 0);
            if (w < 0 || b < 0 || o < 0) goto nomem;
            last = add_op(g, MN_QOP_FC, cur, w, b, o, li);
            cur = o;
            break;
        }
        case MN_LAYER_SOFTMAX: {
            int da[2] = {1, l->out.c};
            int o = add_tensor(g, cap_t, io_int8 ? "output" : "softmax", MN_QT_INT8, 2, da, 0, 1, 0);
            if (o < 0) goto nomem;
            last = add_op(g, MN_QOP_SOFTMAX, cur, -1, -1, o, li);
            g->t[o].scales[0] = 1.0f / 256.0f;
            g->t[o].zero_point = -128;
            cur = o;
            break;
        }
        }
    }
    if (!io_int8) {
        int da[2] = {1, arch->classes};
        int o = add_tensor(g, cap_t, "output", MN_QT_UINT8, 2, da, 0, 1, 0);
        if (o < 0) goto nomem;
        add_op(g, MN_QOP_QUANTIZE, cur, -1, -1, o, -1);
        g->t[o].scales[0] = 1.0f / 256.0f;
        g->t[o].zero_point = 0;
        cur = o;
    }
    g->output = cur;
    /* Fixed quantization of the IO: real = q / 255 (the model's x/255). */
    g->t[g->input].scales[0] = 1.0f / 255.0f;
    g->t[g->input].zero_point = io_int8 ? -128 : 0;
    if (!io_int8) {
        g->t[1].scales[0] = 1.0f / 255.0f;
        g->t[1].zero_point = -128;
    }
    *out = g;
    return MN_OK;
nomem:
    mn_qgraph_free(g);
    return mn_error_set(MN_ERR_NOMEM, "out of memory building the int8 graph");
}

mn_status mn_qgraph_set_params(mn_qgraph *g, const float *trainable, const float *state,
                               float bn_eps) {
    const mn_arch *a = &g->arch;
    size_t poff[MN_ARCH_MAX_LAYERS], soff[MN_ARCH_MAX_LAYERS], p = 0, s = 0;
    for (int i = 0; i < a->n_layers; i++) {
        poff[i] = p;
        soff[i] = s;
        p += a->layers[i].n_trainable;
        s += a->layers[i].n_state;
    }
    for (int oi = 0; oi < g->n_ops; oi++) {
        mn_qop *op = &g->ops[oi];
        if (op->layer < 0) continue;
        const mn_layer *l = &a->layers[op->layer];
        const float *pp = trainable + poff[op->layer];
        free(op->fw);
        free(op->fb);
        op->fw = op->fb = NULL;
        if (op->kind == MN_QOP_CONV3X3 || op->kind == MN_QOP_FC) {
            size_t nw = g->t[op->in[1]].bytes, nb = (size_t)l->out.c;
            op->fw = malloc(nw * sizeof(float));
            op->fb = malloc(nb * sizeof(float));
            if (!op->fw || !op->fb) return mn_error_set(MN_ERR_NOMEM, "out of memory for weights");
            memcpy(op->fw, pp, nw * sizeof(float));
            memcpy(op->fb, pp + nw, nb * sizeof(float));
            if (op->bn_layer >= 0) {
                const float *gp = trainable + poff[op->bn_layer], *sp = state + soff[op->bn_layer];
                size_t per = nw / nb;
                for (size_t k = 0; k < nb; k++) {
                    double sc = (double)gp[k] / sqrt((double)sp[nb + k] + bn_eps);
                    for (size_t j = 0; j < per; j++) op->fw[k * per + j] = (float)(op->fw[k * per + j] * sc);
                    op->fb[k] = (float)(((double)op->fb[k] - sp[k]) * sc + gp[nb + k]);
                }
            }
        } else if (op->kind == MN_QOP_DEPTHWISE1X1) {
            size_t C = (size_t)l->in.c;
            const float *sp = state + soff[op->layer];
            op->fw = malloc(C * sizeof(float));
            op->fb = malloc(C * sizeof(float));
            if (!op->fw || !op->fb) return mn_error_set(MN_ERR_NOMEM, "out of memory for weights");
            for (size_t c = 0; c < C; c++) {
                double sc = (double)pp[c] / sqrt((double)sp[C + c] + bn_eps);
                op->fw[c] = (float)sc;
                op->fb[c] = (float)((double)pp[C + c] - sp[c] * sc);
            }
        }
    }
    return MN_OK;
}

static void range_update(mn_qtensor *t, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (v[i] < t->fmin) t->fmin = v[i];
        if (v[i] > t->fmax) t->fmax = v[i];
    }
}

mn_status mn_qgraph_forward_float(mn_qgraph *g, const uint8_t *image, float *probs,
                                  int update_ranges) {
    float **buf = calloc((size_t)g->n_tensors, sizeof *buf);
    if (!buf) return mn_error_set(MN_ERR_NOMEM, "out of memory in the float forward");
    mn_status st = MN_OK;
    for (int i = 0; i < g->n_tensors; i++)
        if (!g->t[i].is_const) {
            buf[i] = malloc(dims_count(&g->t[i]) * sizeof(float));
            if (!buf[i]) {
                st = mn_error_set(MN_ERR_NOMEM, "out of memory in the float forward");
                goto done;
            }
        }
    size_t n_in = dims_count(&g->t[g->input]);
    for (size_t i = 0; i < n_in; i++) buf[g->input][i] = image[i] / 255.0f;
    for (int oi = 0; oi < g->n_ops; oi++) {
        const mn_qop *op = &g->ops[oi];
        const mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        const float *x = buf[op->in[0]];
        float *y = buf[op->out];
        size_t n_out = dims_count(to);
        if ((op->kind == MN_QOP_CONV3X3 || op->kind == MN_QOP_FC || op->kind == MN_QOP_DEPTHWISE1X1) &&
            !op->fw) {
            st = mn_error_set(MN_ERR_INVALID_ARG, "int8 graph: parameters not set (op %d %s)", oi,
                              mn_qop_name(op->kind));
            goto done;
        }
        switch (op->kind) {
        case MN_QOP_QUANTIZE: memcpy(y, x, n_out * sizeof(float)); break;
        case MN_QOP_DEPTHWISE1X1: {
            int C = ti->dims[3];
            for (size_t i = 0; i < n_out; i++) y[i] = op->fw[i % C] * x[i] + op->fb[i % C];
            break;
        }
        case MN_QOP_CONV3X3: {
            int H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], K = to->dims[3];
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    for (int k = 0; k < K; k++) {
                        double acc = op->fb[k];
                        for (int dy = 0; dy < 3; dy++) {
                            int yy = h + dy - 1;
                            if (yy < 0 || yy >= H) continue;
                            for (int dx = 0; dx < 3; dx++) {
                                int xx = w + dx - 1;
                                if (xx < 0 || xx >= W) continue;
                                const float *xp = x + ((size_t)yy * W + xx) * C;
                                const float *wp = op->fw + (((size_t)k * 3 + dy) * 3 + dx) * C;
                                for (int c = 0; c < C; c++) acc += (double)wp[c] * xp[c];
                            }
                        }
                        float v = (float)acc;
                        if (op->relu && v < 0) v = 0;
                        y[((size_t)h * W + w) * K + k] = v;
                    }
            break;
        }
        case MN_QOP_MAXPOOL2: {
            int W = ti->dims[2], C = ti->dims[3], Ho = to->dims[1], Wo = to->dims[2];
            for (int h = 0; h < Ho; h++)
                for (int w = 0; w < Wo; w++)
                    for (int c = 0; c < C; c++) {
                        float m = -FLT_MAX;
                        for (int dy = 0; dy < 2; dy++)
                            for (int dx = 0; dx < 2; dx++) {
                                float v = x[((size_t)(2 * h + dy) * W + 2 * w + dx) * C + c];
                                if (v > m) m = v;
                            }
                        y[((size_t)h * Wo + w) * C + c] = m;
                    }
            break;
        }
        case MN_QOP_AVGPOOL: {
            int C = ti->dims[3];
            size_t HW = (size_t)ti->dims[1] * ti->dims[2];
            for (int c = 0; c < C; c++) {
                double acc = 0;
                for (size_t i = 0; i < HW; i++) acc += x[i * C + c];
                y[c] = (float)(acc / (double)HW);
            }
            break;
        }
        case MN_QOP_FC: {
            int O = g->t[op->in[1]].dims[0], I = g->t[op->in[1]].dims[1];
            for (int o = 0; o < O; o++) {
                double acc = op->fb[o];
                for (int i = 0; i < I; i++) acc += (double)op->fw[(size_t)o * I + i] * x[i];
                float v = (float)acc;
                if (op->relu && v < 0) v = 0;
                y[o] = v;
            }
            break;
        }
        case MN_QOP_SOFTMAX: {
            size_t n = n_out;
            float m = -FLT_MAX;
            for (size_t i = 0; i < n; i++) if (x[i] > m) m = x[i];
            double sum = 0;
            for (size_t i = 0; i < n; i++) sum += exp((double)x[i] - m);
            for (size_t i = 0; i < n; i++) y[i] = (float)(exp((double)x[i] - m) / sum);
            break;
        }
        }
    }
    if (update_ranges)
        for (int i = 0; i < g->n_tensors; i++)
            if (!g->t[i].is_const) range_update(&g->t[i], buf[i], dims_count(&g->t[i]));
    if (probs) memcpy(probs, buf[g->output], (size_t)g->arch.classes * sizeof(float));
done:
    for (int i = 0; i < g->n_tensors; i++) free(buf[i]);
    free(buf);
    return st;
}

/* Asymmetric int8 parameters of a calibrated range (TFLite's nudged zero point). */
static void choose_act_quant(mn_qtensor *t) {
    double lo = t->fmin < 0 ? t->fmin : 0, hi = t->fmax > 0 ? t->fmax : 0;
    if (!(hi - lo > 1e-8)) hi = lo + 1e-8;
    double scale = (hi - lo) / 255.0;
    double zp = -128.0 - lo / scale;
    long z = lround(zp);
    if (z < -128) z = -128;
    if (z > 127) z = 127;
    t->scales[0] = (float)scale;
    t->zero_point = (int32_t)z;
}

static void quant_weights(const float *w, size_t n, float *scale_out, int8_t *q) {
    float m = 0;
    for (size_t i = 0; i < n; i++) if (fabsf(w[i]) > m) m = fabsf(w[i]);
    float s = m > 0 ? m / 127.0f : 1.0f;
    for (size_t i = 0; i < n; i++) {
        long v = lround((double)w[i] / s);
        q[i] = (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
    }
    *scale_out = s;
}

static void quant_bias(const float *b, int n, float in_scale, const float *w_scales, int per_channel,
                       mn_qtensor *bt) {
    int32_t *q = bt->data;
    for (int c = 0; c < n; c++) {
        double s = (double)in_scale * (double)w_scales[per_channel ? c : 0];
        double v = s > 0 ? nearbyint((double)b[c] / s) : 0;
        if (v > 2147483647.0) v = 2147483647.0;
        if (v < -2147483647.0) v = -2147483647.0;
        q[c] = (int32_t)v;
        if (per_channel || c == 0) bt->scales[per_channel ? c : 0] = (float)s;
    }
}

mn_status mn_qgraph_quantize(mn_qgraph *g, const uint8_t *images, size_t n) {
    if (n == 0) return mn_error_set(MN_ERR_INVALID_ARG, "quantization needs at least one calibration image");
    for (int i = 0; i < g->n_tensors; i++) {
        g->t[i].fmin = FLT_MAX;
        g->t[i].fmax = -FLT_MAX;
    }
    size_t img = mn_shape_count(g->arch.input);
    for (size_t i = 0; i < n; i++) {
        mn_status st = mn_qgraph_forward_float(g, images + i * img, NULL, 1);
        if (st) return st;
    }
    for (int oi = 0; oi < g->n_ops; oi++) {
        mn_qop *op = &g->ops[oi];
        mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        switch (op->kind) {
        case MN_QOP_QUANTIZE: break; /* fixed at build */
        case MN_QOP_SOFTMAX: break;  /* 1/256, -128 */
        case MN_QOP_MAXPOOL2:
        case MN_QOP_AVGPOOL:
            to->scales[0] = ti->scales[0];
            to->zero_point = ti->zero_point;
            break;
        case MN_QOP_CONV3X3:
        case MN_QOP_DEPTHWISE1X1: {
            choose_act_quant(to);
            mn_qtensor *wt = &g->t[op->in[1]], *bt = &g->t[op->in[2]];
            int K = op->kind == MN_QOP_CONV3X3 ? wt->dims[0] : wt->dims[3];
            if (op->kind == MN_QOP_CONV3X3) {
                size_t per = wt->bytes / (size_t)K;
                for (int k = 0; k < K; k++)
                    quant_weights(op->fw + k * per, per, &wt->scales[k], (int8_t *)wt->data + k * per);
            } else {
                for (int k = 0; k < K; k++)
                    quant_weights(op->fw + k, 1, &wt->scales[k], (int8_t *)wt->data + k);
            }
            quant_bias(op->fb, K, ti->scales[0], wt->scales, 1, bt);
            break;
        }
        case MN_QOP_FC: {
            choose_act_quant(to);
            mn_qtensor *wt = &g->t[op->in[1]], *bt = &g->t[op->in[2]];
            quant_weights(op->fw, wt->bytes, &wt->scales[0], wt->data);
            quant_bias(op->fb, wt->dims[0], ti->scales[0], wt->scales, 0, bt);
            break;
        }
        }
    }
    g->quantized = 1;
    return MN_OK;
}
