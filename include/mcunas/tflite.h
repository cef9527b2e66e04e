/* The .tflite writer (a small FlatBuffers builder of our own, schema v3), its reader/verifier
 * and the C-array writer. Sizes never depend on parameter values, so the flash size of an
 * unquantized graph (placeholder parameters) equals the exported file's size. */
#ifndef MCUNAS_TFLITE_H
#define MCUNAS_TFLITE_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/qgraph.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* BuiltinOperator codes (schema.fbs). */
enum {
    MN_TFL_AVERAGE_POOL_2D = 1,
    MN_TFL_CONV_2D = 3,
    MN_TFL_DEPTHWISE_CONV_2D = 4,
    MN_TFL_FULLY_CONNECTED = 9,
    MN_TFL_MAX_POOL_2D = 17,
    MN_TFL_SOFTMAX = 25,
    MN_TFL_QUANTIZE = 114
};

/* Serializes the graph to a malloc'ed buffer (caller frees). */
mn_status mn_tflite_serialize(const mn_qgraph *g, uint8_t **out, size_t *size);
/* Size in bytes of the serialized graph (the model's flash footprint). */
mn_status mn_tflite_size(const mn_qgraph *g, size_t *size);
/* Writes "<path>.tmp" and renames it to path. */
mn_status mn_tflite_write(const mn_qgraph *g, const char *path, size_t *size);
/* model_data.c (16-byte aligned const array + length) and model_data.h next to it. */
mn_status mn_tflite_write_c_array(const uint8_t *data, size_t size, const char *c_path,
                                  const char *symbol);

/* What the reader recovers from a .tflite (enough to compare with the graph we wrote). */
typedef struct mn_tfl_tensor {
    int type, rank, dims[4];
    uint32_t buffer;
    const uint8_t *data;   /* into the model bytes, NULL when none */
    size_t data_size;
    int n_scales;
    const uint8_t *scales; /* little-endian float32 x n_scales */
    int n_zero_points;
    const uint8_t *zero_points; /* int64 x n */
    int quant_dim;
    char name[64];
} mn_tfl_tensor;

typedef struct mn_tfl_op {
    int builtin;           /* from the operator code */
    int n_in, in[4];
    int n_out, out[2];
    int options_type;
    int padding, stride_w, stride_h, filter_w, filter_h, activation, depth_multiplier;
    float beta;
} mn_tfl_op;

typedef struct mn_tfl_model {
    uint32_t version;
    int n_tensors, n_ops, n_buffers, n_inputs, n_outputs;
    int inputs[4], outputs[4];
    mn_tfl_tensor *tensors;
    mn_tfl_op *ops;
} mn_tfl_model;

/* Verifies bounds and alignment of everything it reads (identifier TFL3, version 3, one
 * subgraph, buffers[0] empty, 16-byte aligned buffer data) and decodes the model. */
mn_status mn_tflite_read(const uint8_t *buf, size_t size, mn_tfl_model *out);
void mn_tfl_model_free(mn_tfl_model *m);

#ifdef __cplusplus
}
#endif
#endif
