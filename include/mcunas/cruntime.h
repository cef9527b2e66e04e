/* The standalone C runtime: a candidate's int8 graph as portable C99 (model.c + model.h),
 * no interpreter, no heap, weights in flash and one static arena (docs/cost-model.md,
 * "C runtime"). The plan below is the one schedule both the generator and the cost model
 * read: which graph ops become which runtime steps (a convolution runs with its pool fused
 * and, for the stem, with the elementwise ops before it streamed a row at a time), and
 * where every buffer lies in the arena. */
#ifndef MCUNAS_CRUNTIME_H
#define MCUNAS_CRUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/qgraph.h"
#include "mcunas/status.h"
#include "mcunas/target.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Step kinds and fused pools: the values of the runtime's MN_RT_* (src/deploy/cruntime_rt.c.in). */
typedef enum mn_cstep_kind {
    MN_CSTEP_QUANT = 0,
    MN_CSTEP_DW = 1,
    MN_CSTEP_CONV = 2,
    MN_CSTEP_FC = 3,
    MN_CSTEP_SOFTMAX = 4
} mn_cstep_kind;
typedef enum mn_cpool { MN_CPOOL_NONE = 0, MN_CPOOL_MAX2 = 1, MN_CPOOL_GAP = 2 } mn_cpool;

#define MN_CPLAN_INPUT ((size_t)-1)  /* the caller's input buffer */
#define MN_CPLAN_OUTPUT ((size_t)-2) /* the caller's output buffer */

typedef struct mn_cstep {
    mn_cstep_kind kind;
    int op;            /* the graph op it runs */
    int pool_op;       /* the fused pool op (MAX_POOL_2D / AVERAGE_POOL_2D), -1 none */
    mn_cpool pool;
    int stage;         /* elementwise: 1 = computed row by row inside the next conv */
    int pre;           /* conv: the number of row-stage steps right before it */
    size_t src, dst;   /* arena offsets or MN_CPLAN_INPUT / MN_CPLAN_OUTPUT; a row-stage
                          step after the first and a conv with pre > 0 have none (0) */
    size_t aux, aux_bytes; /* conv scratch: input row ring, one pixel's K outputs, GAP sums */
} mn_cstep;

typedef struct mn_cplan {
    int n_steps;
    mn_cstep *steps;
    size_t arena_bytes;            /* the planned arena (4-byte aligned buffers) */
    size_t input_bytes, output_bytes; /* the caller's buffers */
    size_t param_bytes;            /* the model's constant parameter struct */
} mn_cplan;

/* Schedules a graph built by mn_qgraph_build (quantized or not: only shapes are read). */
mn_status mn_cplan_build(const mn_qgraph *g, mn_cplan *out);
void mn_cplan_free(mn_cplan *p);

/* Bytes of one runtime step in flash on a 32-bit target (the runtime checks it). */
#define MN_CRT_STEP_BYTES 96

/* What the generated model takes on a 32-bit MCU, built with arm-none-eabi-gcc -Os
 * (docs/cost-model.md): flash = code + params + steps; RAM = arena + the caller's input
 * and output buffers + stack. */
typedef struct mn_cruntime_size {
    size_t code_bytes;   /* the fixed runtime and the invoke function (.text + its .rodata) */
    size_t param_bytes;
    size_t step_bytes;
    size_t flash_bytes;
    size_t arena_bytes;
    size_t io_bytes;
    size_t stack_bytes;  /* an upper bound of the stack one inference takes, caller included */
    size_t ram_bytes;
    double instructions; /* per inference (the emulated core's count; cycles are about
                            this times the core's CPI) */
} mn_cruntime_size;

mn_status mn_cruntime_size_compute(const mn_qgraph *g, mn_core core, mn_cruntime_size *out);

/* Writes DIR/model.c and DIR/model.h (each to a temporary name, then renamed) for a
 * quantized graph: `int mcunas_model_invoke(const uint8_t *input, uint8_t *output)` with
 * the graph's input and output types (uint8, or int8 bytes). */
mn_status mn_cruntime_generate(const mn_qgraph *g, const char *dir);

/* The fixed runtime source (embedded at build time). */
extern const char mn_cruntime_source[];
extern const size_t mn_cruntime_source_len;

#ifdef __cplusplus
}
#endif
#endif
