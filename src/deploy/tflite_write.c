/* The .tflite writer: a minimal FlatBuffers builder (built back to front, as the reference
 * builder does, so every uoffset points forward) and the TFLite schema v3 tables we need. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/tflite.h"
#include "core/fileio.h"

typedef struct fbb {
    uint8_t *buf;
    size_t cap, size, minalign;
    int err;
    size_t field[16];
    int max_id;
    size_t table_start;
} fbb;

static void fb_grow(fbb *b, size_t need) {
    if (b->err || b->size + need <= b->cap) return;
    size_t nc = b->cap ? b->cap * 2 : 4096;
    while (nc < b->size + need) nc *= 2;
    uint8_t *n = malloc(nc);
    if (!n) {
        b->err = 1;
        return;
    }
    if (b->size) memcpy(n + nc - b->size, b->buf + b->cap - b->size, b->size);
    free(b->buf);
    b->buf = n;
    b->cap = nc;
}

static void fb_push(fbb *b, const void *p, size_t len) {
    fb_grow(b, len);
    if (b->err) return;
    memcpy(b->buf + b->cap - b->size - len, p, len);
    b->size += len;
}

static void fb_pad(fbb *b, size_t n) {
    static const uint8_t z[16] = {0};
    while (n) {
        size_t k = n < 16 ? n : 16;
        fb_push(b, z, k);
        n -= k;
    }
}

/* Pads so that after `len` more bytes the size is a multiple of `a`. */
static void fb_align(fbb *b, size_t len, size_t a) {
    if (a > b->minalign) b->minalign = a;
    size_t r = (b->size + len) % a;
    if (r) fb_pad(b, a - r);
}

static void put_le(uint8_t *p, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void fb_scalar(fbb *b, uint64_t v, size_t n) {
    uint8_t t[8];
    put_le(t, v, n);
    fb_align(b, n, n);
    fb_push(b, t, n);
}

static void fb_uoffset(fbb *b, size_t target) {
    fb_align(b, 4, 4);
    fb_scalar(b, (uint32_t)(b->size + 4 - target), 4);
}

static void tb_start(fbb *b) {
    memset(b->field, 0, sizeof b->field);
    b->max_id = -1;
    b->table_start = b->size;
}

static void tb_scalar(fbb *b, int id, uint64_t v, size_t n) {
    fb_scalar(b, v, n);
    b->field[id] = b->size;
    if (id > b->max_id) b->max_id = id;
}

static void tb_offset(fbb *b, int id, size_t target) {
    fb_uoffset(b, target);
    b->field[id] = b->size;
    if (id > b->max_id) b->max_id = id;
}

static size_t tb_end(fbb *b) {
    fb_scalar(b, 0, 4); /* soffset to the vtable, patched below */
    size_t table = b->size;
    int n = b->max_id + 1;
    uint16_t vt[2 + 16];
    vt[0] = (uint16_t)(4 + 2 * n);
    vt[1] = (uint16_t)(table - b->table_start);
    for (int i = 0; i < n; i++) vt[2 + i] = b->field[i] ? (uint16_t)(table - b->field[i]) : 0;
    for (int i = 1 + n; i >= 0; i--) fb_scalar(b, vt[i], 2);
    size_t vtable = b->size;
    if (!b->err) put_le(b->buf + b->cap - table, (uint32_t)(vtable - table), 4);
    return table;
}

/* A vector of raw little-endian elements. */
static size_t fb_vec_raw(fbb *b, const void *data, size_t count, size_t elem, size_t align) {
    fb_align(b, count * elem, align < 4 ? 4 : align);
    if (count) fb_push(b, data, count * elem);
    fb_scalar(b, (uint32_t)count, 4);
    return b->size;
}

static size_t fb_vec_i32(fbb *b, const int32_t *v, size_t n) {
    uint8_t tmp[64];
    if (n > 16) return fb_vec_raw(b, v, n, 4, 4); /* little-endian host assumed below */
    for (size_t i = 0; i < n; i++) put_le(tmp + 4 * i, (uint32_t)v[i], 4);
    return fb_vec_raw(b, tmp, n, 4, 4);
}

static size_t fb_vec_offsets(fbb *b, const size_t *t, size_t n) {
    fb_align(b, 4 * n, 4);
    for (size_t i = n; i-- > 0;) fb_uoffset(b, t[i]);
    fb_scalar(b, (uint32_t)n, 4);
    return b->size;
}

static size_t fb_string(fbb *b, const char *s) {
    size_t len = strlen(s);
    fb_align(b, len + 1, 4);
    fb_pad(b, 1);
    fb_push(b, s, len);
    fb_scalar(b, (uint32_t)len, 4);
    return b->size;
}

static int builtin_of(mn_qop_kind k) {
    switch (k) {
    case MN_QOP_QUANTIZE: return MN_TFL_QUANTIZE;
    case MN_QOP_DEPTHWISE1X1: return MN_TFL_DEPTHWISE_CONV_2D;
    case MN_QOP_CONV3X3: return MN_TFL_CONV_2D;
    case MN_QOP_MAXPOOL2: return MN_TFL_MAX_POOL_2D;
    case MN_QOP_AVGPOOL: return MN_TFL_AVERAGE_POOL_2D;
    case MN_QOP_FC: return MN_TFL_FULLY_CONNECTED;
    case MN_QOP_SOFTMAX: return MN_TFL_SOFTMAX;
    }
    return 0;
}

static int tfl_type(mn_qtype t) { return t == MN_QT_INT8 ? 9 : t == MN_QT_UINT8 ? 3 : 2; }

mn_status mn_tflite_serialize(const mn_qgraph *g, uint8_t **out, size_t *size) {
    *out = NULL;
    *size = 0;
    fbb b = {0};
    b.minalign = 16;
    size_t *offs = malloc(sizeof(size_t) * (size_t)(3 * g->n_tensors + 2 * g->n_ops + 16));
    int *bufidx = malloc(sizeof(int) * (size_t)g->n_tensors);
    if (!offs || !bufidx) {
        free(offs);
        free(bufidx);
        return mn_error_set(MN_ERR_NOMEM, "out of memory serializing the model");
    }
    /* Buffers: [0] the empty sentinel, then one per constant tensor, in tensor order. */
    size_t *buf_off = offs;
    int nb = 0;
    tb_start(&b);
    buf_off[nb++] = tb_end(&b);
    for (int i = 0; i < g->n_tensors; i++) {
        const mn_qtensor *t = &g->t[i];
        bufidx[i] = 0;
        if (!t->is_const) continue;
        size_t v;
        if (t->type == MN_QT_INT32) { /* little-endian bytes */
            uint8_t *tmp = malloc(t->bytes);
            if (!tmp) { b.err = 1; break; }
            for (size_t k = 0; k < t->bytes / 4; k++) put_le(tmp + 4 * k, (uint32_t)((const int32_t *)t->data)[k], 4);
            v = fb_vec_raw(&b, tmp, t->bytes, 1, 16);
            free(tmp);
        } else {
            v = fb_vec_raw(&b, t->data, t->bytes, 1, 16);
        }
        tb_start(&b);
        tb_offset(&b, 0, v);
        bufidx[i] = nb;
        buf_off[nb++] = tb_end(&b);
    }
    size_t buffers = fb_vec_offsets(&b, buf_off, (size_t)nb);

    /* Tensors. */
    size_t *ten_off = offs + nb;
    for (int i = 0; i < g->n_tensors; i++) {
        const mn_qtensor *t = &g->t[i];
        uint8_t sc[4 * 512], zp[8 * 512];
        size_t ns = (size_t)t->n_scales;
        uint8_t *scb = ns <= 512 ? sc : malloc(4 * ns), *zpb = ns <= 512 ? zp : malloc(8 * ns);
        if (!scb || !zpb) { b.err = 1; break; }
        for (size_t k = 0; k < ns; k++) {
            uint32_t u;
            memcpy(&u, &t->scales[k], 4);
            put_le(scb + 4 * k, u, 4);
            put_le(zpb + 8 * k, (uint64_t)(int64_t)(k == 0 || t->n_scales == 1 ? t->zero_point : 0), 8);
        }
        size_t vs = fb_vec_raw(&b, scb, ns, 4, 4);
        size_t vz = fb_vec_raw(&b, zpb, ns, 8, 8);
        if (scb != sc) free(scb);
        if (zpb != zp) free(zpb);
        tb_start(&b);
        tb_offset(&b, 2, vs);
        tb_offset(&b, 3, vz);
        tb_scalar(&b, 6, (uint32_t)t->quant_dim, 4);
        size_t q = tb_end(&b);
        size_t name = fb_string(&b, t->name);
        int32_t d[4];
        for (int k = 0; k < t->rank; k++) d[k] = t->dims[k];
        size_t shape = fb_vec_i32(&b, d, (size_t)t->rank);
        tb_start(&b);
        tb_offset(&b, 0, shape);
        tb_scalar(&b, 1, (uint8_t)tfl_type(t->type), 1);
        tb_scalar(&b, 2, (uint32_t)bufidx[i], 4);
        tb_offset(&b, 3, name);
        tb_offset(&b, 4, q);
        ten_off[i] = tb_end(&b);
    }
    size_t tensors = fb_vec_offsets(&b, ten_off, (size_t)g->n_tensors);

    /* Operator codes, in order of first use. */
    int codes[16], n_codes = 0, op_code[256];
    for (int i = 0; i < g->n_ops && i < 256; i++) {
        int c = builtin_of(g->ops[i].kind), k;
        for (k = 0; k < n_codes && codes[k] != c; k++) {}
        if (k == n_codes) codes[n_codes++] = c;
        op_code[i] = k;
    }
    /* Operators. */
    size_t *op_off = ten_off + g->n_tensors;
    for (int i = 0; i < g->n_ops; i++) {
        const mn_qop *op = &g->ops[i];
        int32_t ins[3] = {op->in[0], op->in[1], op->in[2]}, outs[1] = {op->out};
        size_t vin = fb_vec_i32(&b, ins, (size_t)op->n_in);
        size_t vout = fb_vec_i32(&b, outs, 1);
        int opt_type = 0;
        size_t opt = 0;
        tb_start(&b);
        switch (op->kind) {
        case MN_QOP_CONV3X3:
            opt_type = 1;
            tb_scalar(&b, 1, 1, 4);               /* stride_w */
            tb_scalar(&b, 2, 1, 4);               /* stride_h */
            tb_scalar(&b, 4, 1, 4);               /* dilation_w_factor */
            tb_scalar(&b, 5, 1, 4);               /* dilation_h_factor */
            tb_scalar(&b, 0, 0, 1);               /* padding SAME */
            tb_scalar(&b, 3, op->relu ? 1 : 0, 1); /* fused activation */
            break;
        case MN_QOP_DEPTHWISE1X1:
            opt_type = 2;
            tb_scalar(&b, 1, 1, 4);
            tb_scalar(&b, 2, 1, 4);
            tb_scalar(&b, 3, 1, 4);               /* depth_multiplier */
            tb_scalar(&b, 5, 1, 4);
            tb_scalar(&b, 6, 1, 4);
            tb_scalar(&b, 0, 1, 1);               /* padding VALID */
            tb_scalar(&b, 4, 0, 1);
            break;
        case MN_QOP_MAXPOOL2:
        case MN_QOP_AVGPOOL:
            opt_type = 5;
            tb_scalar(&b, 1, (uint32_t)op->stride, 4);
            tb_scalar(&b, 2, (uint32_t)op->stride, 4);
            tb_scalar(&b, 3, (uint32_t)op->filter_w, 4);
            tb_scalar(&b, 4, (uint32_t)op->filter_h, 4);
            tb_scalar(&b, 0, 1, 1);               /* padding VALID */
            tb_scalar(&b, 5, 0, 1);
            break;
        case MN_QOP_FC:
            opt_type = 8;
            tb_scalar(&b, 0, op->relu ? 1 : 0, 1);
            tb_scalar(&b, 1, 0, 1);               /* weights_format DEFAULT */
            tb_scalar(&b, 2, 0, 1);               /* keep_num_dims false */
            break;
        case MN_QOP_SOFTMAX: {
            opt_type = 9;
            float beta = 1.0f;
            uint32_t u;
            memcpy(&u, &beta, 4);
            tb_scalar(&b, 0, u, 4);
            break;
        }
        case MN_QOP_QUANTIZE: break;
        }
        if (opt_type) opt = tb_end(&b);
        tb_start(&b);
        tb_offset(&b, 1, vin);
        tb_offset(&b, 2, vout);
        if (opt_type) tb_offset(&b, 4, opt);
        tb_scalar(&b, 0, (uint32_t)op_code[i], 4);
        tb_scalar(&b, 3, (uint8_t)opt_type, 1);
        op_off[i] = tb_end(&b);
    }
    size_t operators = fb_vec_offsets(&b, op_off, (size_t)g->n_ops);
    int32_t gin[1] = {g->input}, gout[1] = {g->output};
    size_t sg_in = fb_vec_i32(&b, gin, 1), sg_out = fb_vec_i32(&b, gout, 1);
    size_t sg_name = fb_string(&b, "main");
    tb_start(&b);
    tb_offset(&b, 0, tensors);
    tb_offset(&b, 1, sg_in);
    tb_offset(&b, 2, sg_out);
    tb_offset(&b, 3, operators);
    tb_offset(&b, 4, sg_name);
    size_t sg = tb_end(&b);
    size_t subgraphs = fb_vec_offsets(&b, &sg, 1);

    size_t code_off[16];
    for (int k = 0; k < n_codes; k++) {
        tb_start(&b);
        tb_scalar(&b, 2, 1, 4);                  /* version */
        tb_scalar(&b, 3, (uint32_t)codes[k], 4); /* builtin_code */
        tb_scalar(&b, 0, (uint8_t)codes[k], 1);  /* deprecated_builtin_code */
        code_off[k] = tb_end(&b);
    }
    size_t opcodes = fb_vec_offsets(&b, code_off, (size_t)n_codes);
    char desc[128];
    char ad[80];
    snprintf(desc, sizeof desc, "mcunas %s", mn_arch_describe(&g->arch, ad, sizeof ad));
    size_t description = fb_string(&b, desc);
    tb_start(&b);
    tb_offset(&b, 1, opcodes);
    tb_offset(&b, 2, subgraphs);
    tb_offset(&b, 3, description);
    tb_offset(&b, 4, buffers);
    tb_scalar(&b, 0, 3, 4); /* version */
    size_t model = tb_end(&b);
    fb_align(&b, 8, b.minalign);
    fb_push(&b, "TFL3", 4);
    fb_uoffset(&b, model);
    free(offs);
    free(bufidx);
    if (b.err) {
        free(b.buf);
        return mn_error_set(MN_ERR_NOMEM, "out of memory serializing the model");
    }
    uint8_t *res = malloc(b.size);
    if (!res) {
        free(b.buf);
        return mn_error_set(MN_ERR_NOMEM, "out of memory serializing the model");
    }
    memcpy(res, b.buf + b.cap - b.size, b.size);
    *size = b.size;
    *out = res;
    free(b.buf);
    return MN_OK;
}

mn_status mn_tflite_size(const mn_qgraph *g, size_t *size) {
    uint8_t *buf;
    mn_status st = mn_tflite_serialize(g, &buf, size);
    free(buf);
    return st;
}

mn_status mn_tflite_write(const mn_qgraph *g, const char *path, size_t *size) {
    uint8_t *buf;
    size_t n;
    mn_status st = mn_tflite_serialize(g, &buf, &n);
    if (st) return st;
    st = mn_file_write_atomic(path, buf, n);
    free(buf);
    if (!st && size) *size = n;
    return st;
}

mn_status mn_tflite_write_c_array(const uint8_t *data, size_t size, const char *c_path,
                                  const char *symbol) {
    size_t cap = size * 8 + 4096; /* "0x00, " is 6 bytes, plus 3 per line of 12 */
    char *s = malloc(cap);
    if (!s) return mn_error_set(MN_ERR_NOMEM, "out of memory writing %s", c_path);
    char hdr[4096];
    const char *base = strrchr(c_path, '/');
    base = base ? base + 1 : c_path;
    char hname[1024];
    snprintf(hname, sizeof hname, "%s", base);
    char *dot = strrchr(hname, '.');
    if (dot) *dot = 0;
    size_t n = (size_t)snprintf(s, cap,
                                "/* Generated by mcunas export: the .tflite model as a C array. */\n"
                                "#include \"%s.h\"\n\n"
                                "alignas(16) const unsigned char %s[%zu] = {\n",
                                hname, symbol, size);
    for (size_t i = 0; i < size; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s0x%02x,%s", i % 12 == 0 ? "  " : "", data[i],
                              i % 12 == 11 || i + 1 == size ? "\n" : " ");
    n += (size_t)snprintf(s + n, cap - n, "};\nconst unsigned int %s_len = %zu;\n", symbol, size);
    char guard[128];
    size_t gl = 0;
    for (const char *p = symbol; *p && gl + 3 < sizeof guard; p++)
        guard[gl++] = (char)toupper((unsigned char)*p);
    guard[gl] = 0;
    snprintf(hdr, sizeof hdr,
             "/* Generated by mcunas export. */\n#ifndef %s_H\n#define %s_H\n\n"
             "#include <stdalign.h>\n\n"
             "extern alignas(16) const unsigned char %s[%zu];\nextern const unsigned int %s_len;\n\n#endif\n",
             guard, guard, symbol, size, symbol);
    mn_status st = mn_file_write_atomic(c_path, s, n);
    free(s);
    if (st) return st;
    char hpath[4096];
    snprintf(hpath, sizeof hpath, "%.*s.h", (int)(strrchr(c_path, '.') && strrchr(c_path, '.') > base
                                                     ? strrchr(c_path, '.') - c_path
                                                     : (long)strlen(c_path)),
             c_path);
    return mn_file_write_atomic(hpath, hdr, strlen(hdr));
}
