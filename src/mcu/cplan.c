/* The C runtime's schedule and arena plan (include/mcunas/cruntime.h, docs/cost-model.md
 * "C runtime"). Graph ops become runtime steps:
 *   - QUANTIZE / DEPTHWISE 1x1 ops fed (through each other) by the graph input become
 *     row-stage steps: the conv that reads them computes their rows on demand into a ring
 *     of input rows, so the int8 copy of the input never exists whole;
 *   - a CONV_2D followed by the MAX_POOL_2D or AVERAGE_POOL_2D that reads it runs fused:
 *     only the pooled map is stored;
 *   - a DEPTHWISE 1x1 (BN) on a map nothing else reads runs in place;
 *   - the graph's output is written straight to the caller's buffer.
 * Buffers (4-byte aligned) are placed by the same greedy planner the TFLM arena estimate
 * uses, with lifetimes over steps. */
#include <stdlib.h>
#include <string.h>

#include "mcunas/cost.h"
#include "mcunas/cruntime.h"

#define ALIGN4(x) (((x) + 3u) & ~(size_t)3u)

typedef struct builder {
    const mn_qgraph *g;
    mn_cplan *p;
    mn_plan_buffer *bufs;
    int n_bufs;
    int *tbuf;     /* tensor -> buffer index; -1 none */
    int *tvirt;    /* tensor computed row by row (row-stage chain length), 0 otherwise */
    int *tbufstep; /* step -> aux buffer index, -1 none */
    int *sdst, *ssrc; /* step -> dst / src buffer index (-1: caller's / none) */
} builder;

static int consumers(const mn_qgraph *g, int t) {
    int n = 0;
    for (int o = 0; o < g->n_ops; o++)
        for (int k = 0; k < g->ops[o].n_in; k++) n += g->ops[o].in[k] == t;
    return n;
}

static int new_buf(builder *b, size_t bytes, int step) {
    mn_plan_buffer *pb = &b->bufs[b->n_bufs];
    pb->size = ALIGN4(bytes);
    pb->first = pb->last = step;
    return b->n_bufs++;
}

/* The source buffer of a step reading tensor t at step s (-1: the caller's input). */
static int use(builder *b, int t, int s) {
    int id = b->tbuf[t];
    if (id >= 0 && b->bufs[id].last < s) b->bufs[id].last = s;
    return id;
}

static mn_cstep *add_step(builder *b, mn_cstep_kind kind, int op) {
    mn_cstep *s = &b->p->steps[b->p->n_steps];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->op = op;
    s->pool_op = -1;
    b->tbufstep[b->p->n_steps] = -1;
    b->sdst[b->p->n_steps] = b->ssrc[b->p->n_steps] = -1;
    b->p->n_steps++;
    return s;
}

/* The buffer a step writes tensor t to: the caller's output, or a new one. */
static int out_buf(builder *b, int t, int s) {
    if (t == b->g->output) return -1;
    int id = new_buf(b, b->g->t[t].bytes, s);
    b->tbuf[t] = id;
    return id;
}

static mn_status unsupported(const mn_qgraph *g, int o, const char *why) {
    return mn_error_set(MN_ERR_UNSUPPORTED, "C runtime: op %d (%s): %s", o, mn_qop_name(g->ops[o].kind), why);
}

mn_status mn_cplan_build(const mn_qgraph *g, mn_cplan *p) {
    memset(p, 0, sizeof *p);
    builder b = {.g = g, .p = p};
    int cap = 2 * (g->n_tensors + g->n_ops) + 4;
    p->steps = calloc((size_t)g->n_ops + 1, sizeof *p->steps);
    b.bufs = calloc((size_t)cap, sizeof *b.bufs);
    b.tbuf = malloc(sizeof(int) * (size_t)g->n_tensors);
    b.tvirt = calloc((size_t)g->n_tensors, sizeof(int));
    b.tbufstep = malloc(sizeof(int) * ((size_t)g->n_ops + 1));
    b.sdst = malloc(sizeof(int) * ((size_t)g->n_ops + 1));
    b.ssrc = malloc(sizeof(int) * ((size_t)g->n_ops + 1));
    size_t *off = calloc((size_t)cap, sizeof *off);
    mn_status st = MN_OK;
    if (!p->steps || !b.bufs || !b.tbuf || !b.tvirt || !b.tbufstep || !b.sdst || !b.ssrc || !off) {
        st = mn_error_set(MN_ERR_NOMEM, "out of memory planning the C runtime");
        goto done;
    }
    for (int i = 0; i < g->n_tensors; i++) b.tbuf[i] = -1;
    p->input_bytes = g->t[g->input].bytes;
    p->output_bytes = g->t[g->output].bytes;

    for (int o = 0; o < g->n_ops; o++) {
        const mn_qop *op = &g->ops[o];
        int in = op->in[0], si = p->n_steps;
        const mn_qtensor *to = &g->t[op->out];
        switch (op->kind) {
        case MN_QOP_QUANTIZE:
        case MN_QOP_DEPTHWISE1X1: {
            mn_cstep *s = add_step(&b, op->kind == MN_QOP_QUANTIZE ? MN_CSTEP_QUANT : MN_CSTEP_DW, o);
            int chain = in == g->input ? 0 : b.tvirt[in];
            if ((in == g->input || chain > 0) && op->out != g->output && to->type == MN_QT_INT8) {
                /* Row stage: the next conv computes it row by row. */
                s->stage = 1;
                s->src = chain == 0 ? MN_CPLAN_INPUT : 0;
                b.tvirt[op->out] = chain + 1;
                break;
            }
            if (b.tvirt[in]) { st = unsupported(g, o, "reads a row-streamed map"); goto done; }
            int src = use(&b, in, si);
            b.ssrc[si] = src;
            if (src >= 0 && consumers(g, in) == 1 && op->out != g->output) {
                b.tbuf[op->out] = src; /* in place */
                b.sdst[si] = src;
            } else {
                b.sdst[si] = out_buf(&b, op->out, si);
            }
            break;
        }
        case MN_QOP_CONV3X3: {
            mn_cstep *s = add_step(&b, MN_CSTEP_CONV, o);
            int C = g->t[in].dims[3], W = g->t[in].dims[2], K = to->dims[3], out_t = op->out;
            if (o + 1 < g->n_ops && g->ops[o + 1].in[0] == op->out && consumers(g, op->out) == 1) {
                const mn_qop *nx = &g->ops[o + 1];
                if (nx->kind == MN_QOP_MAXPOOL2 && nx->filter_h == 2 && nx->stride == 2) s->pool = MN_CPOOL_MAX2;
                if (nx->kind == MN_QOP_AVGPOOL && nx->filter_h == to->dims[1] && nx->filter_w == to->dims[2])
                    s->pool = MN_CPOOL_GAP;
                if (s->pool != MN_CPOOL_NONE) {
                    s->pool_op = o + 1;
                    out_t = nx->out;
                }
            }
            if (b.tvirt[in]) {
                s->pre = b.tvirt[in];
                for (int j = 1; j <= s->pre; j++)
                    if (si - j < 0 || !p->steps[si - j].stage) { st = unsupported(g, o, "its row stage is not right before it"); goto done; }
                if (p->steps[si - s->pre].src != MN_CPLAN_INPUT) { st = unsupported(g, o, "its row stage does not start at the input"); goto done; }
            } else {
                b.ssrc[si] = use(&b, in, si);
            }
            size_t aux = 0;
            if (s->pre) aux += ALIGN4((size_t)(s->pool == MN_CPOOL_MAX2 ? 4 : 3) * (size_t)W * (size_t)C);
            if (s->pool != MN_CPOOL_NONE) aux += ALIGN4((size_t)K);
            if (s->pool == MN_CPOOL_GAP) aux += 4 * (size_t)K;
            if (aux) {
                b.tbufstep[si] = new_buf(&b, aux, si);
                s->aux_bytes = aux;
            }
            b.sdst[si] = out_buf(&b, out_t, si);
            if (s->pool != MN_CPOOL_NONE) o++;
            break;
        }
        case MN_QOP_FC:
        case MN_QOP_SOFTMAX: {
            add_step(&b, op->kind == MN_QOP_FC ? MN_CSTEP_FC : MN_CSTEP_SOFTMAX, o);
            if (b.tvirt[in]) { st = unsupported(g, o, "reads a row-streamed map"); goto done; }
            b.ssrc[si] = use(&b, in, si);
            b.sdst[si] = out_buf(&b, op->out, si);
            break;
        }
        case MN_QOP_MAXPOOL2:
        case MN_QOP_AVGPOOL: { st = unsupported(g, o, "a pool runs only fused with the conv before it"); goto done; }
        }
    }
    if (p->n_steps && p->steps[p->n_steps - 1].stage)
        { st = unsupported(g, g->n_ops - 1, "the graph ends in a row stage"); goto done; }
    size_t head;
    if ((st = mn_greedy_plan(b.bufs, b.n_bufs, off, &head))) goto done;
    p->arena_bytes = head;
    for (int i = 0; i < p->n_steps; i++) {
        mn_cstep *s = &p->steps[i];
        if (!s->stage && !(s->kind == MN_CSTEP_CONV && s->pre))
            s->src = b.ssrc[i] >= 0 ? off[b.ssrc[i]] : MN_CPLAN_INPUT;
        if (!s->stage) s->dst = b.sdst[i] >= 0 ? off[b.sdst[i]] : MN_CPLAN_OUTPUT;
        if (b.tbufstep[i] >= 0) s->aux = off[b.tbufstep[i]];
    }
    /* The parameter struct: every int32 array (bias, multipliers, shifts), then every int8
     * weight array, then one int32 end marker; a C struct of them has no padding but
     * before that marker (4-byte alignment). */
    size_t n32 = 0, n8 = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const mn_qop *op = &g->ops[p->steps[i].op];
        switch (op->kind) {
        case MN_QOP_QUANTIZE: n32 += 2; break;
        case MN_QOP_FC:
            n32 += (size_t)g->t[op->in[2]].dims[0] + 2;
            n8 += g->t[op->in[1]].bytes;
            break;
        case MN_QOP_CONV3X3:
        case MN_QOP_DEPTHWISE1X1:
            n32 += 3 * (size_t)g->t[op->in[2]].dims[0];
            n8 += g->t[op->in[1]].bytes;
            break;
        default: break;
        }
    }
    p->param_bytes = ALIGN4(4 * n32 + n8) + 4;
done:
    free(b.bufs);
    free(b.tbuf);
    free(b.tvirt);
    free(b.tbufstep);
    free(b.sdst);
    free(b.ssrc);
    free(off);
    if (st) mn_cplan_free(p);
    return st;
}

void mn_cplan_free(mn_cplan *p) {
    if (!p) return;
    free(p->steps);
    memset(p, 0, sizeof *p);
}

/* The fixed parts, measured on the linked firmware (tests/firmware/, arm-none-eabi-gcc 12.2
 * -Os -mthumb, docs/cost-model.md): the runtime's code and constants with the invoke
 * function, and the stack of one inference with a caller's frame (an upper bound: the
 * deepest kernel call chain). Indexed by mn_core; the cores without a measurement take the
 * Cortex-M3's figures (no DSP instructions are used). */
static const size_t crt_code[MN_CORE_COUNT] = {1964, 1964, 1964, 1964, 1964};
static const size_t crt_stack[MN_CORE_COUNT] = {360, 360, 360, 360, 360};

/* Instructions of one inference (Thumb-2, -Os), fitted by least squares on ten models run
 * on the emulated Cortex-M4 (tests/firmware/, QEMU -icount), residuals within 0.4%; the
 * Cortex-M3 executes about 1% more. Per conv MAC (the inner loop), per valid 3x3 tap of an
 * output channel, per conv output computed, per elementwise element (QUANTIZE, 1x1
 * depthwise), per fully-connected MAC, and a fixed part. */
#define CRT_INSN_MAC 15.65
#define CRT_INSN_TAP 22.57
#define CRT_INSN_OUT 135.82
#define CRT_INSN_ELEM 62.02
#define CRT_INSN_FC_MAC 8.9
#define CRT_INSN_FIXED 7844.0

/* Valid taps of a 3x3 SAME window summed over positions 0..n-1 of a length-L axis. */
static double axis_taps(int n, int L) {
    double t = 0;
    for (int i = 0; i < n; i++) t += (i > 0) + 1 + (i + 1 < L);
    return t;
}

static double instructions(const mn_qgraph *g, const mn_cplan *p) {
    double insn = CRT_INSN_FIXED;
    for (int i = 0; i < p->n_steps; i++) {
        const mn_cstep *s = &p->steps[i];
        const mn_qop *op = &g->ops[s->op];
        const mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        switch (s->kind) {
        case MN_CSTEP_QUANT:
        case MN_CSTEP_DW: insn += CRT_INSN_ELEM * (double)to->bytes; break;
        case MN_CSTEP_CONV: {
            int H = ti->dims[1], W = ti->dims[2], C = ti->dims[3], K = to->dims[3];
            int hc = s->pool == MN_CPOOL_MAX2 ? H / 2 * 2 : H, wc = s->pool == MN_CPOOL_MAX2 ? W / 2 * 2 : W;
            double taps = axis_taps(hc, H) * axis_taps(wc, W) * K;
            insn += CRT_INSN_MAC * taps * C + CRT_INSN_TAP * taps + CRT_INSN_OUT * (double)hc * wc * K;
            break;
        }
        case MN_CSTEP_FC: insn += CRT_INSN_FC_MAC * (double)g->t[op->in[1]].bytes; break;
        case MN_CSTEP_SOFTMAX: break; /* in the fixed part */
        }
    }
    return insn;
}

mn_status mn_cruntime_size_compute(const mn_qgraph *g, mn_core core, mn_cruntime_size *out) {
    memset(out, 0, sizeof *out);
    if ((unsigned)core >= MN_CORE_COUNT) return mn_error_set(MN_ERR_INVALID_ARG, "unknown core %d", (int)core);
    mn_cplan p;
    mn_status st = mn_cplan_build(g, &p);
    if (st) return st;
    out->code_bytes = crt_code[core];
    out->param_bytes = p.param_bytes;
    out->step_bytes = (size_t)p.n_steps * MN_CRT_STEP_BYTES;
    out->flash_bytes = out->code_bytes + out->param_bytes + out->step_bytes;
    out->arena_bytes = p.arena_bytes;
    out->io_bytes = ALIGN4(p.input_bytes) + ALIGN4(p.output_bytes); /* the caller's static buffers */
    out->stack_bytes = crt_stack[core];
    out->ram_bytes = out->arena_bytes + out->io_bytes + out->stack_bytes;
    out->instructions = instructions(g, &p);
    mn_cplan_free(&p);
    return MN_OK;
}
