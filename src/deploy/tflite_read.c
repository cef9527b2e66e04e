/* A .tflite reader/verifier: every offset, vtable and vector it follows is bounds- and
 * alignment-checked; it decodes what the tests compare with the graph we wrote. */
#include <stdlib.h>
#include <string.h>

#include "mcunas/tflite.h"

typedef struct rd {
    const uint8_t *b;
    size_t n;
} rd;

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

#define FAIL(...) return mn_error_set(MN_ERR_FORMAT, __VA_ARGS__)

static int in_bounds(const rd *r, size_t pos, size_t len) { return pos <= r->n && len <= r->n - pos; }

/* Position of field `id` of the table at `t` (0 when absent), with its size checked. */
static mn_status field(const rd *r, size_t t, int id, size_t size, size_t *pos) {
    *pos = 0;
    if (!in_bounds(r, t, 4) || t % 4) FAIL("tflite: table at %zu out of bounds or misaligned", t);
    int64_t vt = (int64_t)t - (int32_t)le32(r->b + t);
    if (vt < 0 || !in_bounds(r, (size_t)vt, 4) || vt % 2) FAIL("tflite: vtable of table %zu out of bounds", t);
    uint16_t vsize = le16(r->b + vt), tsize = le16(r->b + vt + 2);
    if (vsize < 4 || vsize % 2 || !in_bounds(r, (size_t)vt, vsize) || !in_bounds(r, t, tsize))
        FAIL("tflite: bad vtable at %lld", (long long)vt);
    if (4 + 2 * (size_t)id + 2 > vsize) return MN_OK;
    uint16_t off = le16(r->b + vt + 4 + 2 * id);
    if (!off) return MN_OK;
    if ((size_t)off + size > tsize) FAIL("tflite: field %d of table %zu outside the table", id, t);
    if (size > 1 && (t + off) % size) FAIL("tflite: field %d of table %zu misaligned", id, t);
    *pos = t + off;
    return MN_OK;
}

static mn_status deref(const rd *r, size_t pos, size_t *target) {
    *target = 0;
    if (!in_bounds(r, pos, 4)) FAIL("tflite: offset at %zu out of bounds", pos);
    size_t t = pos + le32(r->b + pos);
    if (t >= r->n) FAIL("tflite: offset at %zu points outside the file", pos);
    *target = t;
    return MN_OK;
}

/* Vector of `elem`-byte elements referenced by field id (count 0 / data NULL when absent). */
static mn_status vec(const rd *r, size_t t, int id, size_t elem, size_t *count, size_t *data) {
    size_t pos;
    *count = 0;
    *data = 0;
    mn_status st = field(r, t, id, 4, &pos);
    if (st || !pos) return st;
    size_t v = 0;
    if ((st = deref(r, pos, &v))) return st;
    if (v % 4 || !in_bounds(r, v, 4)) FAIL("tflite: vector at %zu out of bounds", v);
    size_t n = le32(r->b + v);
    if (n > (r->n - v - 4) / (elem ? elem : 1)) FAIL("tflite: vector at %zu overruns the file", v);
    if (elem > 1 && (v + 4) % (elem > 8 ? 8 : elem)) FAIL("tflite: vector at %zu misaligned", v);
    *count = n;
    *data = v + 4;
    return MN_OK;
}

static mn_status table_at(const rd *r, size_t t, int id, size_t *out) {
    size_t pos;
    mn_status st = field(r, t, id, 4, &pos);
    *out = 0;
    if (st || !pos) return st;
    return deref(r, pos, out);
}

static uint64_t scalar(const rd *r, size_t pos, size_t n, uint64_t def) {
    if (!pos) return def;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)r->b[pos + i] << (8 * i);
    return v;
}

#define TRY(x) do { mn_status _s = (x); if (_s) { mn_tfl_model_free(m); return _s; } } while (0)
/* The message first: its arguments may point into the model that is freed next. */
#define BAD(...) do { mn_status _s = mn_error_set(MN_ERR_FORMAT, __VA_ARGS__); mn_tfl_model_free(m); return _s; } while (0)

mn_status mn_tflite_read(const uint8_t *buf, size_t size, mn_tfl_model *m) {
    memset(m, 0, sizeof *m);
    rd r = {buf, size};
    if (size < 8) FAIL("tflite: file of %zu bytes is too small", size);
    if (memcmp(buf + 4, "TFL3", 4)) FAIL("tflite: file identifier is not TFL3");
    size_t model, pos, n, d;
    TRY(deref(&r, 0, &model));
    TRY(field(&r, model, 0, 4, &pos));
    m->version = (uint32_t)scalar(&r, pos, 4, 0);
    if (m->version != 3) BAD("tflite: schema version %u, expected 3", m->version);
    /* buffers */
    size_t nbuf, bufs;
    TRY(vec(&r, model, 4, 4, &nbuf, &bufs));
    if (nbuf < 1) BAD("tflite: no buffers (buffers[0] must be the empty sentinel)");
    m->n_buffers = (int)nbuf;
    size_t b0;
    TRY(deref(&r, bufs, &b0));
    TRY(vec(&r, b0, 0, 1, &n, &d));
    if (n) BAD("tflite: buffers[0] is not empty");
    /* operator codes */
    size_t ncodes, codes;
    TRY(vec(&r, model, 1, 4, &ncodes, &codes));
    /* the one subgraph */
    size_t nsg, sgs, sg;
    TRY(vec(&r, model, 2, 4, &nsg, &sgs));
    if (nsg != 1) BAD("tflite: %zu subgraphs, expected 1", nsg);
    TRY(deref(&r, sgs, &sg));
    size_t nt, ts;
    TRY(vec(&r, sg, 0, 4, &nt, &ts));
    m->n_tensors = (int)nt;
    m->tensors = calloc(nt ? nt : 1, sizeof *m->tensors);
    if (!m->tensors) return mn_error_set(MN_ERR_NOMEM, "tflite: out of memory for %zu tensors", nt);
    for (size_t i = 0; i < nt; i++) {
        mn_tfl_tensor *t = &m->tensors[i];
        size_t tt;
        TRY(deref(&r, ts + 4 * i, &tt));
        size_t rank, sd;
        TRY(vec(&r, tt, 0, 4, &rank, &sd));
        if (rank > 4) BAD("tflite: tensor %zu has rank %zu", i, rank);
        t->rank = (int)rank;
        for (size_t k = 0; k < rank; k++) t->dims[k] = (int32_t)le32(buf + sd + 4 * k);
        TRY(field(&r, tt, 1, 1, &pos));
        t->type = (int)scalar(&r, pos, 1, 0);
        TRY(field(&r, tt, 2, 4, &pos));
        t->buffer = (uint32_t)scalar(&r, pos, 4, 0);
        if (t->buffer >= nbuf) BAD("tflite: tensor %zu names buffer %u of %zu", i, t->buffer, nbuf);
        size_t bt;
        TRY(deref(&r, bufs + 4 * t->buffer, &bt));
        TRY(vec(&r, bt, 0, 1, &n, &d));
        if (n) {
            if (d % 16) BAD("tflite: data of buffer %u not 16-byte aligned", t->buffer);
            t->data = buf + d;
            t->data_size = n;
        }
        size_t nm, nd;
        TRY(vec(&r, tt, 3, 1, &nm, &nd));
        size_t cp = nm < sizeof t->name - 1 ? nm : sizeof t->name - 1;
        memcpy(t->name, buf + nd, cp);
        t->name[cp] = 0;
        size_t q;
        TRY(table_at(&r, tt, 4, &q));
        if (q) {
            TRY(vec(&r, q, 2, 4, &n, &d));
            t->n_scales = (int)n;
            t->scales = n ? buf + d : NULL;
            TRY(vec(&r, q, 3, 8, &n, &d));
            t->n_zero_points = (int)n;
            t->zero_points = n ? buf + d : NULL;
            TRY(field(&r, q, 6, 4, &pos));
            t->quant_dim = (int)scalar(&r, pos, 4, 0);
        }
    }
    size_t ni, is, no, os;
    TRY(vec(&r, sg, 1, 4, &ni, &is));
    TRY(vec(&r, sg, 2, 4, &no, &os));
    if (ni > 4 || no > 4) BAD("tflite: too many subgraph inputs/outputs");
    m->n_inputs = (int)ni;
    m->n_outputs = (int)no;
    for (size_t k = 0; k < ni; k++) m->inputs[k] = (int32_t)le32(buf + is + 4 * k);
    for (size_t k = 0; k < no; k++) m->outputs[k] = (int32_t)le32(buf + os + 4 * k);
    size_t nops, ops;
    TRY(vec(&r, sg, 3, 4, &nops, &ops));
    m->n_ops = (int)nops;
    m->ops = calloc(nops ? nops : 1, sizeof *m->ops);
    if (!m->ops) { mn_tfl_model_free(m); return mn_error_set(MN_ERR_NOMEM, "tflite: out of memory for %zu operators", nops); }
    for (size_t i = 0; i < nops; i++) {
        mn_tfl_op *op = &m->ops[i];
        size_t ot;
        TRY(deref(&r, ops + 4 * i, &ot));
        TRY(field(&r, ot, 0, 4, &pos));
        uint32_t ci = (uint32_t)scalar(&r, pos, 4, 0);
        if (ci >= ncodes) BAD("tflite: operator %zu uses code %u of %zu", i, ci, ncodes);
        size_t ct;
        TRY(deref(&r, codes + 4 * ci, &ct));
        TRY(field(&r, ct, 3, 4, &pos));
        op->builtin = (int)scalar(&r, pos, 4, 0);
        TRY(field(&r, ct, 0, 1, &pos));
        int dep = (int)(int8_t)scalar(&r, pos, 1, 0);
        if (dep != (op->builtin < 127 ? op->builtin : 127))
            BAD("tflite: operator code %u: deprecated_builtin_code %d != builtin_code %d", ci, dep, op->builtin);
        TRY(vec(&r, ot, 1, 4, &n, &d));
        if (n > 4) BAD("tflite: operator %zu has %zu inputs", i, n);
        op->n_in = (int)n;
        for (size_t k = 0; k < n; k++) op->in[k] = (int32_t)le32(buf + d + 4 * k);
        TRY(vec(&r, ot, 2, 4, &n, &d));
        if (n > 2) BAD("tflite: operator %zu has %zu outputs", i, n);
        op->n_out = (int)n;
        for (size_t k = 0; k < n; k++) op->out[k] = (int32_t)le32(buf + d + 4 * k);
        for (int k = 0; k < op->n_in; k++)
            if (op->in[k] < -1 || op->in[k] >= (int)nt) BAD("tflite: operator %zu input %d out of range", i, k);
        for (int k = 0; k < op->n_out; k++)
            if (op->out[k] < 0 || op->out[k] >= (int)nt) BAD("tflite: operator %zu output %d out of range", i, k);
        TRY(field(&r, ot, 3, 1, &pos));
        op->options_type = (int)scalar(&r, pos, 1, 0);
        size_t o;
        TRY(table_at(&r, ot, 4, &o));
        if (o) {
            size_t p[7];
            for (int k = 0; k < 7; k++) {
                size_t sz = 4;
                int is_byte = (op->options_type == 1 && (k == 0 || k == 3)) ||
                              (op->options_type == 2 && (k == 0 || k == 4)) ||
                              (op->options_type == 5 && (k == 0 || k == 5)) ||
                              (op->options_type == 8 && k <= 3);
                if (is_byte) sz = 1;
                TRY(field(&r, o, k, sz, &p[k]));
            }
            switch (op->options_type) {
            case 1:
                op->padding = (int)scalar(&r, p[0], 1, 0);
                op->stride_w = (int)scalar(&r, p[1], 4, 0);
                op->stride_h = (int)scalar(&r, p[2], 4, 0);
                op->activation = (int)scalar(&r, p[3], 1, 0);
                break;
            case 2:
                op->padding = (int)scalar(&r, p[0], 1, 0);
                op->stride_w = (int)scalar(&r, p[1], 4, 0);
                op->stride_h = (int)scalar(&r, p[2], 4, 0);
                op->depth_multiplier = (int)scalar(&r, p[3], 4, 0);
                op->activation = (int)scalar(&r, p[4], 1, 0);
                break;
            case 5:
                op->padding = (int)scalar(&r, p[0], 1, 0);
                op->stride_w = (int)scalar(&r, p[1], 4, 0);
                op->stride_h = (int)scalar(&r, p[2], 4, 0);
                op->filter_w = (int)scalar(&r, p[3], 4, 0);
                op->filter_h = (int)scalar(&r, p[4], 4, 0);
                op->activation = (int)scalar(&r, p[5], 1, 0);
                break;
            case 8: op->activation = (int)scalar(&r, p[0], 1, 0); break;
            case 9: {
                uint32_t u = (uint32_t)scalar(&r, p[0], 4, 0);
                memcpy(&op->beta, &u, 4);
                break;
            }
            default: break;
            }
        }
    }
    return MN_OK;
}

void mn_tfl_model_free(mn_tfl_model *m) {
    free(m->tensors);
    free(m->ops);
    m->tensors = NULL;
    m->ops = NULL;
}
