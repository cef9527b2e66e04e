/* The int8 graph of a candidate: the one description of the deployed model. Built from an
 * mn_arch alone (shapes, types, constness, placeholder quantization) for the cost model, and
 * filled with quantized parameters by mn_qgraph_quantize for export. The memory planner, the
 * .tflite writer (and so the flash size) and the int8 interpreter all walk this graph.
 *
 * Ops, in order (docs/cost-model.md):
 *   [QUANTIZE uint8->int8]            when the model's IO is uint8 (the default)
 *   DEPTHWISE_CONV_2D 1x1             x/255 -> BN, an exact per-channel affine
 *   CONV_2D 3x3 SAME + ReLU           stem
 *   per cell: MAX_POOL_2D 2x2 VALID; [DEPTHWISE_CONV_2D 1x1: BN] (nanonas);
 *             CONV_2D 3x3 SAME + ReLU (convbn: the BN folded into it)
 *   AVERAGE_POOL_2D over the whole map (global average pool)
 *   [FULLY_CONNECTED + ReLU]          colabnas
 *   FULLY_CONNECTED; SOFTMAX (output scale 1/256, zero point -128)
 *   [QUANTIZE int8->uint8]            uint8 IO
 * Dropout disappears at inference. */
#ifndef MCUNAS_QGRAPH_H
#define MCUNAS_QGRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mn_qtype { MN_QT_INT8 = 0, MN_QT_UINT8, MN_QT_INT32 } mn_qtype;
size_t mn_qtype_size(mn_qtype t);

typedef enum mn_qop_kind {
    MN_QOP_QUANTIZE = 0,
    MN_QOP_DEPTHWISE1X1,
    MN_QOP_CONV3X3,
    MN_QOP_MAXPOOL2,
    MN_QOP_AVGPOOL,
    MN_QOP_FC,
    MN_QOP_SOFTMAX
} mn_qop_kind;
const char *mn_qop_name(mn_qop_kind k);

typedef struct mn_qtensor {
    char name[40];
    mn_qtype type;
    int rank;
    int dims[4];
    int is_const;     /* parameters (stored in flash), not planned */
    int n_scales;     /* 1 per tensor, or one per channel along quant_dim */
    float *scales;
    int32_t zero_point;
    int quant_dim;
    void *data;       /* const tensors: the quantized values (zeros until quantized) */
    size_t bytes;
    float fmin, fmax; /* calibrated float range (activations) */
} mn_qtensor;

typedef struct mn_qop {
    mn_qop_kind kind;
    int n_in;
    int in[3];        /* input, weights, bias (tensor indices; -1 none) */
    int out;
    int relu;         /* fused ReLU */
    int filter_h, filter_w, stride; /* pools */
    int layer;        /* the arch layer it implements (conv/dense/bn/...), -1 none */
    int bn_layer;     /* convbn: the BN folded into this conv, else -1 */
    float *fw, *fb;   /* float weights / bias (BN folded) once parameters are set */
} mn_qop;

typedef struct mn_qgraph {
    mn_arch arch;
    int io_int8;      /* 0: uint8 model input/output (default); 1: int8 */
    int n_tensors, n_ops;
    mn_qtensor *t;
    mn_qop *ops;
    int input, output;
    int quantized;    /* parameters and scales are real */
} mn_qgraph;

/* Builds the graph of `arch` (placeholder parameters: zeros, scale 1). */
mn_status mn_qgraph_build(const mn_arch *arch, int io_int8, mn_qgraph **out);
void mn_qgraph_free(mn_qgraph *g);

/* Sets the float parameters (mn_net_get_params order, docs/weights-format.md) and folds
 * BN where exact (convbn conv->BN), turning other BNs into per-channel affines. */
mn_status mn_qgraph_set_params(mn_qgraph *g, const float *trainable, const float *state,
                               float bn_eps);

/* Float forward of one uint8 image through the graph (the float model the int8 one
 * approximates); probs receives `classes` floats. With update_ranges, every activation's
 * calibrated range (fmin, fmax) grows to include this image's values. */
mn_status mn_qgraph_forward_float(mn_qgraph *g, const uint8_t *image, float *probs,
                                  int update_ranges);

/* Calibration over n images (ranges of every activation), then quantization: per-channel
 * symmetric int8 conv weights, per-tensor symmetric FC weights, int32 biases, asymmetric
 * per-tensor activations. */
mn_status mn_qgraph_quantize(mn_qgraph *g, const uint8_t *images, size_t n);

/* --- fixed-point arithmetic exactly as TFLite / TFLM (kernels/internal/common.h) --- */
void mn_quantize_multiplier(double m, int32_t *qm, int *shift);
int32_t mn_srdhm(int32_t a, int32_t b);               /* SaturatingRoundingDoublingHighMul */
int32_t mn_rounding_divide_by_pot(int32_t x, int e);  /* RoundingDivideByPOT */
int32_t mn_multiply_by_quantized_multiplier(int32_t x, int32_t qm, int shift);
/* The TFLITE_SINGLE_ROUNDING build's variant (one rounding, half up). */
int32_t mn_multiply_by_quantized_multiplier_single(int32_t x, int32_t qm, int shift);

/* --- the int8 reference interpreter (TFLM reference kernels' arithmetic) --- */
typedef struct mn_qinterp mn_qinterp;
mn_status mn_qinterp_create(const mn_qgraph *g, mn_qinterp **out);
void mn_qinterp_free(mn_qinterp *it);
/* Runs one image (uint8, or int8 = pixel - 128 when io_int8); the output tensor's raw
 * bytes (classes, uint8 or int8) go to `out`. */
mn_status mn_qinterp_run(mn_qinterp *it, const uint8_t *image, uint8_t *out);
/* Rounding of MultiplyByQuantizedMultiplier. All three were checked bit-exact against the
 * runtimes (tests/python/test_runtimes.py). */
typedef enum mn_rounding {
    MN_ROUNDING_DOUBLE = 0, /* the default: TFLM's, two roundings (SaturatingRoundingDoublingHighMul
                               to Q31, then RoundingDivideByPOT) */
    MN_ROUNDING_SINGLE,     /* one rounding (TFLITE_SINGLE_ROUNDING), what LiteRT's default
                               kernels (ai-edge-litert 2.3.0, XNNPACK included) compute */
    MN_ROUNDING_LITERT_REF  /* LiteRT's reference kernels (BUILTIN_REF): single rounding in
                               FULLY_CONNECTED, double elsewhere */
} mn_rounding;
void mn_qinterp_set_rounding(mn_qinterp *it, mn_rounding rounding);
/* Raw bytes of tensor i after the last run (activations only). */
const void *mn_qinterp_tensor(const mn_qinterp *it, int i);

#ifdef __cplusplus
}
#endif
#endif
