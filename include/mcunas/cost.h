/* The MCU cost model of a candidate, from its mn_arch alone (docs/cost-model.md):
 * MACC, parameters, flash (the exact .tflite size export writes), RAM (TFLM's arena: a
 * faithful GreedyMemoryPlanner plan of the activations plus the persistent tail) and
 * latency (a per-op cycle model, calibratable). */
#ifndef MCUNAS_COST_H
#define MCUNAS_COST_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/qgraph.h"
#include "mcunas/status.h"
#include "mcunas/target.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- TFLM's GreedyMemoryPlanner ---- */
typedef struct mn_plan_buffer {
    size_t size;        /* bytes (already rounded as the caller wants) */
    int first, last;    /* op indices of first and last use, inclusive */
} mn_plan_buffer;

/* Places buffers as TFLM's GreedyMemoryPlanner does: sorted by size, largest first (ties:
 * later-added first), each at the lowest offset not overlapping an already placed buffer
 * whose lifetime overlaps its own. offsets[i] receives buffer i's offset; returns the head
 * (max offset + size). */
mn_status mn_greedy_plan(const mn_plan_buffer *bufs, int n, size_t *offsets, size_t *head);

/* The arena of a graph. */
/* MN_ABI_ARM32: a 32-bit Arm MCU with CMSIS-NN kernels (their scratch buffers planned);
 * MN_ABI_ARM32_REF: the same with TFLM's reference kernels (no scratch), what upstream
 * TFLM builds for cores without the DSP extension (Cortex-M0+, M3). */
typedef enum mn_abi { MN_ABI_ARM32 = 0, MN_ABI_X86_64 = 1, MN_ABI_ARM32_REF = 2 } mn_abi;

typedef struct mn_arena {
    size_t head;             /* planned: every non-constant tensor (16-byte rounded), plus on
                                MN_ABI_ARM32 the CMSIS-NN kernel scratch buffers */
    size_t activations;      /* the same plan without rounding or scratch: activations only */
    size_t tail;             /* persistent allocations (see docs/cost-model.md) */
    size_t total;            /* head + tail: what the arena must hold */
} mn_arena;

mn_status mn_arena_compute(const mn_qgraph *g, mn_abi abi, mn_arena *out);

/* ---- latency ---- */
typedef enum mn_kernel_lib { MN_KERNELS_CMSIS_NN = 0, MN_KERNELS_REFERENCE = 1 } mn_kernel_lib;

typedef struct mn_latency_model {
    mn_kernel_lib lib;
    double scale;            /* calibration factor (1 = the published constants) */
} mn_latency_model;

/* Cycles of one inference on `core`. */
double mn_latency_cycles(const mn_qgraph *g, mn_core core, const mn_latency_model *m);
/* Cycles per MAC for a core / kernel library (the constants table). */
double mn_cycles_per_mac(mn_core core, mn_kernel_lib lib);

/* Calibration file: one measurement per line,
 *   target k cells layout HxWxC classes latency_ms
 * ('#' comments). Fits `scale` by least squares (through the origin) over the lines. */
mn_status mn_latency_calibrate(const char *path, const mn_target_list *targets,
                               mn_latency_model *m, int *n_used);

/* ---- everything for one candidate on one target ---- */
/* The runtime the model is deployed with: TFLM (the .tflite file and its interpreter) or
 * mcunas's standalone C runtime (include/mcunas/cruntime.h). */
typedef enum mn_runtime { MN_RUNTIME_TFLM = 0, MN_RUNTIME_C = 1 } mn_runtime;
const char *mn_runtime_name(mn_runtime r);
mn_status mn_runtime_parse(const char *name, mn_runtime *out); /* "tflm" | "c" */

typedef struct mn_estimate {
    uint64_t macc;
    size_t params;           /* trainable + state, Keras's total */
    size_t int8_params;      /* parameters stored in the int8 model (BN folded / converted) */
    size_t flash_bytes;      /* the .tflite size */
    size_t ram_bytes;        /* arena on a 32-bit MCU: head + tail */
    size_t ram_head_bytes;
    size_t ram_activations_bytes;
    size_t ram_x86_64_bytes; /* arena as the desktop TFLM (x86-64, reference kernels) reports it */
    size_t ram_x86_64_head_bytes;
    double latency_ms;
    mn_runtime runtime;      /* what flash_bytes, ram_bytes and latency_ms describe: with
                                MN_RUNTIME_C, the C runtime's flash and RAM (ram_head_bytes:
                                its arena) and instructions at one cycle each */
    double instructions;     /* MN_RUNTIME_C: per inference; 0 for TFLM */
    size_t tflm_flash_bytes; /* the TFLM figures, whatever the runtime */
    size_t tflm_ram_bytes;
    int feasible;
    char reasons[512];       /* "; "-separated, empty when feasible */
} mn_estimate;

mn_status mn_estimate_compute(const mn_arch *arch, int io_int8, const mn_target *t,
                              const mn_latency_model *m, mn_estimate *out);
/* The same for a chosen runtime (mn_estimate_compute is MN_RUNTIME_TFLM). */
mn_status mn_estimate_compute_runtime(const mn_arch *arch, int io_int8, const mn_target *t,
                                      const mn_latency_model *m, mn_runtime rt, mn_estimate *out);

#ifdef __cplusplus
}
#endif
#endif
