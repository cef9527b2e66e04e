/* Export of trained parameters as a deployable int8 model: the one path that `mcunas export`
 * and the search's final phase share (docs/cost-model.md, "Export"). It builds the int8
 * graph, calibrates it on a seeded sample of the training images, quantizes it, measures
 * the int8 accuracy on the test split with the int8 reference interpreter, and writes the
 * .tflite (and optionally a C array) last. */
#ifndef MCUNAS_EXPORT_H
#define MCUNAS_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/cost.h"
#include "mcunas/qgraph.h"
#include "mcunas/status.h"
#include "mcunas/train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_EXPORT_CALIB_DEFAULT 150
/* The C array's symbol unless the caller names one. */
#define MN_EXPORT_SYMBOL_DEFAULT "mcunas_model"
/* The calibration images are the first N of a permutation of the training pool drawn from
 * mn_seed_mix(seed, MN_EXPORT_CALIB_STREAM): the same seed and pool give the same set. */
#define MN_EXPORT_CALIB_STREAM 0xCA11Bu

typedef struct mn_export_options {
    int io_int8;              /* model input/output int8 (pixel - 128) instead of uint8 */
    size_t calib;             /* calibration images (fewer when the pool is smaller) */
    uint64_t seed;            /* of the calibration sample (a search passes its --seed) */
    float bn_eps;             /* the trained net's batch-norm epsilon */
    const char *tflite_path;  /* written to a temporary name and renamed; may be NULL
                               * only with c_runtime_dir (flash_bytes is then its size) */
    const char *c_runtime_dir; /* optional: DIR/model.c and model.h, the standalone C
                                * runtime (mcunas/cruntime.h) */
    const char *c_array_path; /* optional: PATH.c and PATH.h next to it */
    const char *c_symbol;     /* the C array's name (NULL: MN_EXPORT_SYMBOL_DEFAULT) */
    mn_rounding rounding;     /* the interpreter's requantization rounding for the accuracy
                               * and the dumps (mn_qinterp_set_rounding); never the file */
    size_t test_limit;        /* evaluate only the first N test images (0: all) */
    /* Optional raw files for runtime comparisons, over the evaluated test images: the
     * model's input bytes, the interpreter's output bytes, the labels (int32 LE). */
    const char *dump_inputs, *dump_outputs, *dump_labels;
    volatile int *stop;       /* when non-NULL and set, the export stops with
                               * MN_ERR_INTERRUPTED; the files are written last, so a stopped
                               * export leaves none */
} mn_export_options;

/* Defaults: uint8 IO, MN_EXPORT_CALIB_DEFAULT images, seed 1, the net's default bn_eps,
 * TFLM's rounding, the whole test split, no C array, no dumps. */
void mn_export_options_default(mn_export_options *o);

typedef struct mn_export_result {
    size_t flash_bytes;        /* bytes of the .tflite as written */
    size_t calib_images;       /* images the ranges were calibrated on */
    size_t test_images;        /* images the int8 accuracy is measured on */
    double int8_test_acc;      /* -1 when there are no test images */
    mn_arena arena_arm32;      /* TFLM's arena on a 32-bit MCU */
    mn_arena arena_x86_64;     /* and as desktop TFLM allocates it */
} mn_export_result;

/* The indices of the n = min(calib, pool) calibration images of a pool of `pool` training
 * images, ascending (calibration takes ranges, so only the set matters). */
mn_status mn_export_calibration_indices(size_t pool, size_t calib, uint64_t seed,
                                        uint32_t *idx, size_t *n);

/* The predicted class of one output of the int8 model: the first largest byte, compared
 * as int8 when io_int8, else as uint8. */
int mn_export_argmax(const uint8_t *out, int classes, int io_int8);

/* Exports `arch` with the float parameters `trainable` and `state` (mn_net_get_params
 * order): calibration images from `train`, accuracy on `test` (count 0: none). */
mn_status mn_export_model(const mn_export_options *o, const mn_arch *arch,
                          const float *trainable, const float *state, const mn_samples *train,
                          const mn_samples *test, mn_export_result *out);

#ifdef __cplusplus
}
#endif
#endif
