/* mn_arch: one candidate network of the A(k, c) search space with every tensor shape
 * resolved. Every other view of a candidate (MACC, parameters, training plan, trainable
 * network, exported model) is derived from this value and from nothing else. */
#ifndef MCUNAS_ARCH_H
#define MCUNAS_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_ARCH_MAX_CELLS 16
#define MN_ARCH_MAX_LAYERS (6 + 4 * MN_ARCH_MAX_CELLS + 8)

typedef enum mn_layout {
    /* The published NanoNAS models: x/255 -> BN; conv3x3(k) -> ReLU;
     * cells maxpool -> BN -> conv3x3 -> ReLU; GAP -> dropout 0.5 -> dense -> softmax. */
    MN_LAYOUT_NANONAS = 0,
    /* ColabNAS: x/255 -> BN; conv3x3(k) -> ReLU; cells maxpool -> conv3x3 -> ReLU;
     * GAP -> dense(n, ReLU) -> dense -> softmax, n = channels of the last conv. */
    MN_LAYOUT_COLABNAS = 1,
    /* Folding-friendly: x/255 -> BN; conv3x3(k) -> ReLU; cells maxpool -> conv3x3 -> BN ->
     * ReLU; head as nanonas. */
    MN_LAYOUT_CONVBN = 2,
    MN_LAYOUT_COUNT /* how many there are (not a layout): loops, bit masks */
} mn_layout;

const char *mn_layout_name(mn_layout layout);
/* Parses "nanonas" | "colabnas" | "convbn". */
mn_status mn_layout_parse(const char *name, mn_layout *out);

typedef enum mn_layer_kind {
    MN_LAYER_RESCALE,   /* y = x / 255 (uint8 pixels to [0,1]) */
    MN_LAYER_BATCHNORM, /* per-channel; params gamma, beta; state mean, var */
    MN_LAYER_CONV3X3,   /* stride 1, 'same'; params w[K,3,3,C], b[K] */
    MN_LAYER_RELU,
    MN_LAYER_MAXPOOL2,  /* 2x2, stride 2, 'valid' (floor) */
    MN_LAYER_GAP,       /* global average pool to [C] */
    MN_LAYER_DROPOUT,
    MN_LAYER_DENSE,     /* params w[O,I], b[O] */
    MN_LAYER_SOFTMAX
} mn_layer_kind;

const char *mn_layer_kind_name(mn_layer_kind kind);

/* Per-sample shape; after GAP tensors are 1 x 1 x C. */
typedef struct mn_shape {
    int h, w, c;
} mn_shape;

static inline size_t mn_shape_count(mn_shape s) { return (size_t)s.h * s.w * s.c; }

typedef struct mn_layer {
    mn_layer_kind kind;
    mn_shape in, out;
    int cell;            /* 0: stem or head; i >= 1: part of cell i */
    float rate;          /* dropout rate (MN_LAYER_DROPOUT) */
    size_t n_trainable;  /* trainable parameters (weights, biases, gamma, beta) */
    size_t n_state;      /* non-trainable parameters (BN moving mean and variance) */
    uint64_t macc;       /* multiply-accumulates per sample (conv and dense only) */
} mn_layer;

typedef struct mn_arch {
    int k;               /* kernels of the first convolution */
    int cells;           /* number of cells stacked on it */
    mn_layout layout;
    mn_shape input;      /* H x W x C of the uint8 input image */
    int classes;
    int cell_channels[MN_ARCH_MAX_CELLS]; /* output channels of cell i at [i-1] */
    int n_layers;
    mn_layer layers[MN_ARCH_MAX_LAYERS];
} mn_arch;

/* Output channels of cell `i` (1-based) for first-layer width k: n = k, m = 2; per cell
 * n = ceil(n * m), m -= 2^-i. */
int mn_arch_cell_channels(int k, int cell);

/* Builds A(k, cells). Fails with MN_ERR_INFEASIBLE (and a message giving the cell and the
 * size it would see) when a cell's input is already 1 pixel high or wide, and with
 * MN_ERR_INVALID_ARG for k < 1, cells < 0, classes < 2 or an empty input. */
mn_status mn_arch_build(mn_arch *arch, int k, int cells, mn_layout layout, mn_shape input,
                        int classes);

/* The deepest feasible cell count for an input (-1 if even the stem is impossible). */
int mn_arch_max_cells(mn_shape input);

uint64_t mn_arch_macc(const mn_arch *arch);
size_t mn_arch_trainable_params(const mn_arch *arch);
size_t mn_arch_state_params(const mn_arch *arch);
/* trainable + state: Keras's "Total params". */
size_t mn_arch_params(const mn_arch *arch);

/* "A(8,3) nanonas 28x28x1 -> 10" into buf. */
const char *mn_arch_describe(const mn_arch *arch, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
