/* Builds the resolved layer list of A(k, c) for the three layout variants. */
#include "mcunas/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *mn_layout_name(mn_layout layout) {
    switch (layout) {
    case MN_LAYOUT_NANONAS: return "nanonas";
    case MN_LAYOUT_COLABNAS: return "colabnas";
    case MN_LAYOUT_CONVBN: return "convbn";
    case MN_LAYOUT_COUNT: break;
    }
    return "unknown";
}

mn_status mn_layout_parse(const char *name, mn_layout *out) {
    for (int i = 0; i < MN_LAYOUT_COUNT; i++)
        if (name && strcmp(name, mn_layout_name((mn_layout)i)) == 0) {
            *out = (mn_layout)i;
            return MN_OK;
        }
    return mn_error_set(MN_ERR_INVALID_ARG,
                        "unknown layout '%s' (expected nanonas, colabnas or convbn)",
                        name ? name : "(null)");
}

const char *mn_layer_kind_name(mn_layer_kind kind) {
    switch (kind) {
    case MN_LAYER_RESCALE: return "rescale";
    case MN_LAYER_BATCHNORM: return "batchnorm";
    case MN_LAYER_CONV3X3: return "conv3x3";
    case MN_LAYER_RELU: return "relu";
    case MN_LAYER_MAXPOOL2: return "maxpool2";
    case MN_LAYER_GAP: return "gap";
    case MN_LAYER_DROPOUT: return "dropout";
    case MN_LAYER_DENSE: return "dense";
    case MN_LAYER_SOFTMAX: return "softmax";
    }
    return "unknown";
}

int mn_arch_cell_channels(int k, int cell) {
    /* Multipliers 2, 1.5, 1.25, ...: all exact binary fractions, so the products are
     * exact in double and ceil() never rounds a whole number up by accident. */
    double n = k, m = 2.0;
    for (int i = 1; i <= cell; i++) {
        n = ceil(n * m);
        m -= ldexp(1.0, -i);
    }
    return (int)n;
}

int mn_arch_max_cells(mn_shape input) {
    if (input.h < 1 || input.w < 1) return -1;
    int h = input.h, w = input.w, cells = 0;
    while (h > 1 && w > 1) { /* a cell needs an input at least 2 pixels on each side */
        h /= 2;
        w /= 2;
        cells++;
    }
    return cells;
}

typedef struct mn_arch_builder {
    mn_arch *arch;
    mn_shape cur;
    int cell;
} mn_arch_builder;

static mn_layer *push(mn_arch_builder *b, mn_layer_kind kind, mn_shape out) {
    mn_layer *l = &b->arch->layers[b->arch->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in = b->cur;
    l->out = out;
    l->cell = b->cell;
    b->cur = out;
    return l;
}

static void push_same(mn_arch_builder *b, mn_layer_kind kind) { push(b, kind, b->cur); }

static void push_bn(mn_arch_builder *b) {
    mn_layer *l = push(b, MN_LAYER_BATCHNORM, b->cur);
    l->n_trainable = 2 * (size_t)l->in.c;
    l->n_state = 2 * (size_t)l->in.c;
}

static void push_conv(mn_arch_builder *b, int k) {
    mn_shape out = {b->cur.h, b->cur.w, k};
    mn_layer *l = push(b, MN_LAYER_CONV3X3, out);
    l->n_trainable = (size_t)k * 9 * l->in.c + k;
    l->macc = (uint64_t)l->in.c * 9 * out.h * out.w * out.c;
}

static void push_dense(mn_arch_builder *b, int units) {
    mn_shape out = {1, 1, units};
    mn_layer *l = push(b, MN_LAYER_DENSE, out);
    l->n_trainable = (size_t)l->in.c * units + units;
    l->macc = (uint64_t)l->in.c * units;
}

mn_status mn_arch_build(mn_arch *arch, int k, int cells, mn_layout layout, mn_shape input,
                        int classes) {
    memset(arch, 0, sizeof *arch);
    if (k < 1) return mn_error_set(MN_ERR_INVALID_ARG, "k must be >= 1 (got %d)", k);
    if (cells < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "cells must be >= 0 (got %d)", cells);
    if (classes < 2)
        return mn_error_set(MN_ERR_INVALID_ARG, "classes must be >= 2 (got %d)", classes);
    if (input.h < 1 || input.w < 1 || input.c < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "input shape %dx%dx%d is empty", input.h,
                            input.w, input.c);
    if ((int)layout < 0 || layout >= MN_LAYOUT_COUNT)
        return mn_error_set(MN_ERR_INVALID_ARG, "unknown layout %d", (int)layout);
    if (cells > MN_ARCH_MAX_CELLS)
        return mn_error_set(MN_ERR_INFEASIBLE, "%d cells exceed the supported maximum of %d",
                            cells, MN_ARCH_MAX_CELLS);

    arch->k = k;
    arch->cells = cells;
    arch->layout = layout;
    arch->input = input;
    arch->classes = classes;

    mn_arch_builder b = {arch, input, 0};
    push_same(&b, MN_LAYER_RESCALE);
    push_bn(&b);
    push_conv(&b, k);
    push_same(&b, MN_LAYER_RELU);
    for (int i = 1; i <= cells; i++) {
        if (b.cur.h < 2 || b.cur.w < 2)
            return mn_error_set(MN_ERR_INFEASIBLE,
                                "A(%d,%d) on %dx%d: cell %d would pool a %dx%d input "
                                "(at most %d cells fit this input)",
                                k, cells, input.h, input.w, i, b.cur.h, b.cur.w,
                                mn_arch_max_cells(input));
        int ch = mn_arch_cell_channels(k, i);
        arch->cell_channels[i - 1] = ch;
        b.cell = i;
        mn_shape pooled = {b.cur.h / 2, b.cur.w / 2, b.cur.c};
        push(&b, MN_LAYER_MAXPOOL2, pooled);
        if (layout == MN_LAYOUT_NANONAS) push_bn(&b);
        push_conv(&b, ch);
        if (layout == MN_LAYOUT_CONVBN) push_bn(&b);
        push_same(&b, MN_LAYER_RELU);
    }
    b.cell = 0;
    int last = b.cur.c;
    push(&b, MN_LAYER_GAP, (mn_shape){1, 1, last});
    if (layout == MN_LAYOUT_COLABNAS) {
        push_dense(&b, last);
        push_same(&b, MN_LAYER_RELU);
    } else {
        mn_layer *d = push(&b, MN_LAYER_DROPOUT, b.cur);
        d->rate = 0.5f;
    }
    push_dense(&b, classes);
    push_same(&b, MN_LAYER_SOFTMAX);
    return MN_OK;
}

uint64_t mn_arch_macc(const mn_arch *arch) {
    uint64_t total = 0;
    for (int i = 0; i < arch->n_layers; i++) total += arch->layers[i].macc;
    return total;
}

size_t mn_arch_trainable_params(const mn_arch *arch) {
    size_t total = 0;
    for (int i = 0; i < arch->n_layers; i++) total += arch->layers[i].n_trainable;
    return total;
}

size_t mn_arch_state_params(const mn_arch *arch) {
    size_t total = 0;
    for (int i = 0; i < arch->n_layers; i++) total += arch->layers[i].n_state;
    return total;
}

size_t mn_arch_params(const mn_arch *arch) {
    return mn_arch_trainable_params(arch) + mn_arch_state_params(arch);
}

const char *mn_arch_describe(const mn_arch *arch, char *buf, size_t size) {
    snprintf(buf, size, "A(%d,%d) %s %dx%dx%d -> %d", arch->k, arch->cells,
             mn_layout_name(arch->layout), arch->input.h, arch->input.w, arch->input.c,
             arch->classes);
    return buf;
}
