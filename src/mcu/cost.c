/* Arena (planned head + persistent tail), latency and the whole estimate of a candidate.
 * Constants and their sources: docs/cost-model.md. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/cost.h"
#include "mcunas/cruntime.h"
#include "mcunas/tflite.h"

#define ALIGN16(x) (((x) + 15u) & ~(size_t)15u)

/* Kernel scratch on a 32-bit MCU with CMSIS-NN (6.x, cores with the DSP extension):
 * a 3x3 conv's im2col buffer, arm_convolve_s8_get_buffer_size = 2 columns x
 * align4(C_in x 3 x 3) int16 = 4 x align4(9 C_in) bytes; a 1x1 depthwise conv's
 * arm_depthwise_conv_s8_opt buffer, C x 1 x 1 int16 x 2 = 4 C bytes. The desktop TFLM's
 * reference kernels request none. */
static size_t kernel_scratch(const mn_qgraph *g, const mn_qop *op) {
    size_t c = (size_t)g->t[op->in[0]].dims[3];
    if (op->kind == MN_QOP_CONV3X3) return 4 * ((9 * c + 3) & ~(size_t)3);
    if (op->kind == MN_QOP_DEPTHWISE1X1) return 4 * c;
    return 0;
}

/* Lifetimes as TFLM's AllocationInfoBuilder assigns them: a graph input lives from op 0,
 * a graph output to the last op; any other tensor from the op writing it to the last op
 * reading it; a kernel's scratch buffer during its op only. */
static mn_status plan_graph(const mn_qgraph *g, int round16, int scratch, size_t *head) {
    int cap = g->n_tensors + g->n_ops;
    mn_plan_buffer *b = calloc((size_t)cap, sizeof *b);
    size_t *off = calloc((size_t)cap, sizeof *off);
    if (!b || !off) {
        free(b);
        free(off);
        return mn_error_set(MN_ERR_NOMEM, "out of memory planning the arena");
    }
    int n = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        if (g->t[i].is_const) continue;
        int first = -1, last = -1;
        if (i == g->input) first = 0;
        for (int o = 0; o < g->n_ops; o++) {
            const mn_qop *op = &g->ops[o];
            if (op->out == i && first < 0) first = o;
            for (int k = 0; k < op->n_in; k++)
                if (op->in[k] == i) last = o;
        }
        if (i == g->output) last = g->n_ops - 1;
        if (first < 0 || last < 0) continue;
        b[n].size = round16 ? ALIGN16(g->t[i].bytes) : g->t[i].bytes;
        b[n].first = first;
        b[n].last = last;
        n++;
    }
    /* TFLM adds scratch buffer requests after the tensors, in op order. */
    for (int o = 0; scratch && o < g->n_ops; o++) {
        size_t s = kernel_scratch(g, &g->ops[o]);
        if (!s) continue;
        b[n].size = ALIGN16(s);
        b[n].first = b[n].last = o;
        n++;
    }
    mn_status st = mn_greedy_plan(b, n, off, head);
    free(b);
    free(off);
    return st;
}

/* Persistent tail (docs/cost-model.md). x86-64: fitted to TFLM's RecordingMicroAllocator
 * report over 90 graphs (residual <= 20 B): TfLiteEvalTensor 24 B per tensor,
 * NodeAndRegistration 64 B per op, the two persistent TfLiteTensors + quantization of the
 * graph input and output 192 B, per conv/depthwise op two int32 per-channel arrays (each
 * 16-byte aligned), per-op kernel data (OpData + builtin params) by kind, and a fixed part
 * (subgraph and allocator bookkeeping). 32-bit Arm: the same items with 4-byte pointers
 * (estimates, documented). */
typedef struct tail_consts {
    size_t fixed;
    size_t per_tensor;
    size_t per_op;
    size_t io;
    size_t op_data[7]; /* by mn_qop_kind: QUANTIZE, DW, CONV, MAXPOOL, AVGPOOL, FC, SOFTMAX */
} tail_consts;

static const tail_consts tail_x86 = {464, 24, 64, 192, {32, 108, 184, 0, 72, 112, 72}};
/* 32-bit Arm: upstream TFLM (commit 90b983c, Makefile build for the Cortex-M3, reference
 * kernels) measured on QEMU's mps2-an385: TfLiteEvalTensor 12 B, NodeAndRegistration 32 B,
 * the two persistent TfLiteTensors with their quantization 104 B (RecordingMicroAllocator);
 * the CONV_2D OpData and the fixed part fitted so the four measured arenas (RESEARCH 6.1,
 * two graph sizes) come out exact. The measurements fix the sum of one cell's OpData
 * (MAX_POOL + DEPTHWISE + CONV = 252 B), not the split. */
static const tail_consts tail_arm = {84, 12, 32, 104, {32, 96, 156, 0, 64, 100, 64}};

static size_t tail_bytes(const mn_qgraph *g, mn_abi abi) {
    const tail_consts *c = abi == MN_ABI_X86_64 ? &tail_x86 : &tail_arm;
    size_t t = c->fixed + c->per_tensor * (size_t)g->n_tensors + c->per_op * (size_t)g->n_ops + c->io;
    for (int i = 0; i < g->n_ops; i++) {
        const mn_qop *op = &g->ops[i];
        t += c->op_data[op->kind];
        if (op->kind == MN_QOP_CONV3X3 || op->kind == MN_QOP_DEPTHWISE1X1)
            t += 2 * ALIGN16(4 * (size_t)g->t[op->out].dims[3]);
    }
    return t;
}

mn_status mn_arena_compute(const mn_qgraph *g, mn_abi abi, mn_arena *out) {
    memset(out, 0, sizeof *out);
    mn_status st = plan_graph(g, 1, abi == MN_ABI_ARM32, &out->head);
    if (!st) st = plan_graph(g, 0, 0, &out->activations);
    if (st) return st;
    out->tail = tail_bytes(g, abi);
    out->total = out->head + out->tail;
    return MN_OK;
}

/* ---- latency ---- */
/* Cycles per MAC of an int8 3x3 conv (docs/cost-model.md, RESEARCH.md 3.3):
 *   CMSIS-NN: M7 4.3 (measured range 3.8-4.8), M4 6.8 (MLPerf Tiny v0.5, ResNet-8 on
 *   STM32L4R5), M33 6.8 (same DSP extension as M4; estimate), M3 13 and M0+ 20 (no SIMD:
 *   CMSIS-NN's plain-C path; estimates).
 *   Reference kernels: M7 46 (measured 44-48), others scaled by the same CMSIS-NN ratio
 *   (estimates). */
static const double cpm_table[MN_CORE_COUNT][2] = {
    /* CMSIS-NN, reference */
    {20.0, 90.0},  /* cortex-m0plus */
    {13.0, 70.0},  /* cortex-m3 */
    {6.8, 55.0},   /* cortex-m4 */
    {4.3, 46.0},   /* cortex-m7 */
    {6.8, 55.0},   /* cortex-m33 */
};
#define OP_OVERHEAD_CYCLES 1500.0 /* TFLM Invoke dispatch + per-op setup, per op */
#define POOL_CYCLES_PER_IN 3.0    /* max/avg pool: load, compare/add, per input element */
#define ELEMWISE_CYCLES 4.0       /* quantize, per element */
#define SOFTMAX_CYCLES 250.0      /* per class: fixed-point exp + division */

double mn_cycles_per_mac(mn_core core, mn_kernel_lib lib) {
    if ((unsigned)core >= MN_CORE_COUNT) core = MN_CORE_M4;
    return cpm_table[core][lib == MN_KERNELS_REFERENCE];
}

double mn_latency_cycles(const mn_qgraph *g, mn_core core, const mn_latency_model *m) {
    double cpm = mn_cycles_per_mac(core, m ? m->lib : MN_KERNELS_CMSIS_NN);
    double cycles = 0;
    for (int i = 0; i < g->n_ops; i++) {
        const mn_qop *op = &g->ops[i];
        const mn_qtensor *ti = &g->t[op->in[0]], *to = &g->t[op->out];
        double nin = (double)ti->bytes, nout = (double)to->bytes;
        cycles += OP_OVERHEAD_CYCLES;
        switch (op->kind) {
        case MN_QOP_CONV3X3: cycles += cpm * nout * 9.0 * ti->dims[3]; break;
        case MN_QOP_DEPTHWISE1X1: cycles += cpm * nout; break;
        case MN_QOP_FC: cycles += cpm * (double)g->t[op->in[1]].bytes; break;
        case MN_QOP_MAXPOOL2:
        case MN_QOP_AVGPOOL: cycles += POOL_CYCLES_PER_IN * nin; break;
        case MN_QOP_QUANTIZE: cycles += ELEMWISE_CYCLES * nin; break;
        case MN_QOP_SOFTMAX: cycles += SOFTMAX_CYCLES * nin; break;
        }
    }
    return cycles * (m && m->scale > 0 ? m->scale : 1.0);
}

/* The largest figures a calibration line may give: far beyond any MCU's model, small
 * enough that building the line's graph cannot exhaust the host (a fuzzed line with 488
 * million classes asked for half a gigabyte). */
#define MN_CALIB_MAX_DIM 65536
#define MN_CALIB_MAX_BYTES ((size_t)64 << 20)

/* Whether the model of a calibration line is one an MCU could run: its int8 weights and
 * every activation under MN_CALIB_MAX_BYTES. */
static int mn_calib_model_fits(const mn_arch *a) {
    if (mn_arch_params(a) > MN_CALIB_MAX_BYTES) return 0;
    for (int i = 0; i < a->n_layers; i++)
        if (mn_shape_count(a->layers[i].out) > MN_CALIB_MAX_BYTES) return 0;
    return mn_shape_count(a->input) <= MN_CALIB_MAX_BYTES;
}

mn_status mn_latency_calibrate(const char *path, const mn_target_list *targets,
                               mn_latency_model *m, int *n_used) {
    FILE *f = fopen(path, "r");
    if (!f) return mn_error_set(MN_ERR_IO, "cannot open latency file %s: %s", path, strerror(errno));
    char line[512];
    int ln = 0, used = 0;
    double sxy = 0, sxx = 0;
    mn_latency_model base = *m;
    base.scale = 1.0;
    mn_status st = MN_OK;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        char tname[64], lay[32], shape[32];
        int k, cells, classes, H, W, C;
        double ms;
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p) continue;
        if (sscanf(p, "%63s %d %d %31s %31s %d %lf", tname, &k, &cells, lay, shape, &classes, &ms) != 7 ||
            sscanf(shape, "%dx%dx%d", &H, &W, &C) != 3 || !(ms > 0)) {
            st = mn_error_set(MN_ERR_FORMAT,
                              "%s:%d: expected 'target k cells layout HxWxC classes latency_ms'", path, ln);
            break;
        }
        if (k < 1 || k > MN_CALIB_MAX_DIM || classes < 2 || classes > MN_CALIB_MAX_DIM ||
            H < 1 || H > MN_CALIB_MAX_DIM || W < 1 || W > MN_CALIB_MAX_DIM || C < 1 ||
            C > MN_CALIB_MAX_DIM) {
            st = mn_error_set(MN_ERR_FORMAT,
                              "%s:%d: k, classes, H, W and C must lie in 1..%d (classes from 2)",
                              path, ln, MN_CALIB_MAX_DIM);
            break;
        }
        const mn_target *t = mn_target_find(targets, tname);
        if (!t) {
            st = mn_error_set(MN_ERR_FORMAT, "%s:%d: unknown target '%s'", path, ln, tname);
            break;
        }
        mn_layout layout;
        if ((st = mn_layout_parse(lay, &layout))) {
            mn_error_prefix(st, "%s:%d: ", path, ln);
            break;
        }
        mn_arch a;
        if ((st = mn_arch_build(&a, k, cells, layout, (mn_shape){H, W, C}, classes))) {
            mn_error_prefix(st, "%s:%d: ", path, ln);
            break;
        }
        if (!mn_calib_model_fits(&a)) {
            st = mn_error_set(MN_ERR_FORMAT,
                              "%s:%d: A(%d,%d) on %dx%dx%d with %d classes is larger than any "
                              "MCU model (weights or an activation over %zu MiB)",
                              path, ln, k, cells, H, W, C, classes, MN_CALIB_MAX_BYTES >> 20);
            break;
        }
        mn_qgraph *g;
        if ((st = mn_qgraph_build(&a, 0, &g))) break;
        double pred = mn_latency_cycles(g, t->core, &base) / (t->clock_mhz * 1e3);
        mn_qgraph_free(g);
        sxy += pred * ms;
        sxx += pred * pred;
        used++;
    }
    fclose(f);
    if (st) return st;
    if (!used) return mn_error_set(MN_ERR_FORMAT, "%s: no measurements", path);
    m->scale = sxy / sxx;
    if (n_used) *n_used = used;
    return MN_OK;
}

static void add_reason(mn_estimate *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_reason(mn_estimate *e, const char *fmt, ...) {
    size_t n = strlen(e->reasons);
    if (n && n + 2 < sizeof e->reasons) {
        strcat(e->reasons, "; ");
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reasons + n, sizeof e->reasons - n, fmt, ap);
    va_end(ap);
}

const char *mn_runtime_name(mn_runtime r) { return r == MN_RUNTIME_C ? "c" : "tflm"; }

mn_status mn_runtime_parse(const char *name, mn_runtime *out) {
    if (!strcmp(name, "tflm")) *out = MN_RUNTIME_TFLM;
    else if (!strcmp(name, "c")) *out = MN_RUNTIME_C;
    else return mn_error_set(MN_ERR_INVALID_ARG, "unknown runtime '%s' (tflm or c)", name);
    return MN_OK;
}

mn_status mn_estimate_compute(const mn_arch *arch, int io_int8, const mn_target *t,
                              const mn_latency_model *m, mn_estimate *e) {
    return mn_estimate_compute_runtime(arch, io_int8, t, m, MN_RUNTIME_TFLM, e);
}

mn_status mn_estimate_compute_runtime(const mn_arch *arch, int io_int8, const mn_target *t,
                                      const mn_latency_model *m, mn_runtime rt, mn_estimate *e) {
    memset(e, 0, sizeof *e);
    e->runtime = rt;
    mn_qgraph *g;
    mn_status st = mn_qgraph_build(arch, io_int8, &g);
    if (st) return st;
    e->macc = mn_arch_macc(arch);
    e->params = mn_arch_params(arch);
    for (int i = 0; i < g->n_tensors; i++)
        if (g->t[i].is_const) e->int8_params += g->t[i].bytes / mn_qtype_size(g->t[i].type);
    st = mn_tflite_size(g, &e->flash_bytes);
    mn_arena a32, a64;
    /* Cores without the DSP extension: upstream TFLM's reference kernels, no scratch. */
    mn_abi abi32 = t && (t->core == MN_CORE_M0PLUS || t->core == MN_CORE_M3) ? MN_ABI_ARM32_REF : MN_ABI_ARM32;
    if (!st) st = mn_arena_compute(g, abi32, &a32);
    if (!st) st = mn_arena_compute(g, MN_ABI_X86_64, &a64);
    if (!st) {
        e->ram_bytes = a32.total;
        e->ram_head_bytes = a32.head;
        e->ram_activations_bytes = a32.activations;
        e->ram_x86_64_bytes = a64.total;
        e->ram_x86_64_head_bytes = a64.head;
        if (t) e->latency_ms = mn_latency_cycles(g, t->core, m) / (t->clock_mhz * 1e3);
        e->tflm_flash_bytes = e->flash_bytes;
        e->tflm_ram_bytes = e->ram_bytes;
    }
    if (!st && rt == MN_RUNTIME_C) {
        mn_cruntime_size c;
        st = mn_cruntime_size_compute(g, t ? t->core : MN_CORE_M4, &c);
        if (!st) {
            e->flash_bytes = c.flash_bytes;
            e->ram_bytes = c.ram_bytes;
            e->ram_head_bytes = c.arena_bytes;
            e->instructions = c.instructions;
            if (t) e->latency_ms = c.instructions / (t->clock_mhz * 1e3);
        }
    }
    mn_qgraph_free(g);
    if (st) return st;
    e->feasible = 1;
    if (t) {
        if (e->macc > t->macc_bound)
            add_reason(e, "MACC %llu > bound %llu", (unsigned long long)e->macc,
                       (unsigned long long)t->macc_bound);
        if (e->ram_bytes > mn_target_ram_budget(t)) {
            if (t->ram_reserve_bytes)
                add_reason(e, "RAM %zu B > %zu B (%zu B less a reserve of %zu B)", e->ram_bytes,
                           mn_target_ram_budget(t), t->ram_bytes, t->ram_reserve_bytes);
            else
                add_reason(e, "RAM %zu B > %zu B", e->ram_bytes, t->ram_bytes);
        }
        if (e->flash_bytes > t->flash_bytes)
            add_reason(e, "flash %zu B > %zu B", e->flash_bytes, t->flash_bytes);
        e->feasible = e->reasons[0] == 0;
    }
    return MN_OK;
}
