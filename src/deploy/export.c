/* Trained parameters -> int8 graph -> .tflite (+ C array) -> int8 accuracy: the export
 * path shared by `mcunas export` and the search's final phase. */
#include "mcunas/export.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "mcunas/cruntime.h"
#include "mcunas/net.h"
#include "mcunas/qgraph.h"
#include "mcunas/rng.h"
#include "mcunas/tflite.h"

void mn_export_options_default(mn_export_options *o) {
    memset(o, 0, sizeof *o);
    o->calib = MN_EXPORT_CALIB_DEFAULT;
    o->seed = 1;
    mn_net_options no;
    mn_net_options_default(&no);
    o->bn_eps = no.bn_eps;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

mn_status mn_export_calibration_indices(size_t pool, size_t calib, uint64_t seed,
                                        uint32_t *idx, size_t *n) {
    if (pool == 0 || calib == 0)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "calibration needs at least one image (pool %zu, asked %zu)", pool,
                            calib);
    if (pool > UINT32_MAX)
        return mn_error_set(MN_ERR_INVALID_ARG, "calibration pool of %zu images is too large", pool);
    /* A seeded permutation of the whole pool, so the sample covers every class and part of
     * the file, not just the images that happen to come first. */
    uint32_t *perm = malloc(pool * sizeof *perm);
    if (!perm) return mn_error_set(MN_ERR_NOMEM, "no memory for %zu calibration indices", pool);
    for (size_t i = 0; i < pool; i++) perm[i] = (uint32_t)i;
    mn_rng r;
    mn_rng_seed(&r, mn_seed_mix(seed, MN_EXPORT_CALIB_STREAM));
    mn_rng_shuffle(&r, perm, pool);
    *n = calib < pool ? calib : pool;
    memcpy(idx, perm, *n * sizeof *idx);
    free(perm);
    qsort(idx, *n, sizeof *idx, cmp_u32);
    return MN_OK;
}

int mn_export_argmax(const uint8_t *out, int classes, int io_int8) {
    int best = 0;
    for (int j = 1; j < classes; j++) {
        int a = io_int8 ? (int)(int8_t)out[j] : out[j];
        int b = io_int8 ? (int)(int8_t)out[best] : out[best];
        if (a > b) best = j;
    }
    return best;
}

static int is_c_identifier(const char *s) {
    if (!s[0] || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_')) return 0;
    return strlen(s) < 100;
}

/* The calibrated and quantized graph of the parameters. */
static mn_status quantize(const mn_export_options *o, const mn_arch *arch, const float *trainable,
                          const float *state, const mn_samples *train, mn_qgraph **g,
                          size_t *n_calib) {
    const size_t image_bytes = mn_shape_count(arch->input);
    uint32_t *idx = malloc((o->calib ? o->calib : 1) * sizeof *idx);
    uint8_t *imgs = NULL;
    mn_status st = idx ? MN_OK : mn_error_set(MN_ERR_NOMEM, "no memory for calibration indices");
    if (!st) st = mn_export_calibration_indices(train->count, o->calib, o->seed, idx, n_calib);
    if (!st && !(imgs = malloc(*n_calib * image_bytes)))
        st = mn_error_set(MN_ERR_NOMEM, "no memory for %zu calibration images", *n_calib);
    for (size_t i = 0; !st && i < *n_calib; i++)
        memcpy(imgs + i * image_bytes, train->images + (size_t)idx[i] * image_bytes, image_bytes);
    if (!st) st = mn_qgraph_build(arch, o->io_int8, g);
    if (!st) st = mn_qgraph_set_params(*g, trainable, state, o->bn_eps);
    if (!st) st = mn_qgraph_quantize(*g, imgs, *n_calib);
    free(idx);
    free(imgs);
    return st;
}

static mn_status write_model(const mn_export_options *o, const mn_qgraph *g, size_t *flash) {
    mn_status st = o->tflite_path ? mn_tflite_write(g, o->tflite_path, flash) : mn_tflite_size(g, flash);
    if (!st && o->c_runtime_dir) st = mn_cruntime_generate(g, o->c_runtime_dir);
    if (st || !o->c_array_path) return st;
    uint8_t *bytes = NULL;
    size_t size = 0;
    st = mn_tflite_serialize(g, &bytes, &size);
    if (!st)
        st = mn_tflite_write_c_array(bytes, size, o->c_array_path,
                                     o->c_symbol ? o->c_symbol : MN_EXPORT_SYMBOL_DEFAULT);
    free(bytes);
    return st;
}

/* Runs the first n test images through the interpreter: accuracy, and the dumps asked for. */
static mn_status evaluate(const mn_export_options *o, const mn_qgraph *g, const mn_samples *test,
                          size_t n, double *acc) {
    const int classes = g->arch.classes;
    const size_t image_bytes = mn_shape_count(g->arch.input);
    mn_qinterp *it = NULL;
    mn_status st = mn_qinterp_create(g, &it);
    if (st) return st;
    mn_qinterp_set_rounding(it, o->rounding);
    /* Inputs are kept only when dumped; one image's worth otherwise. */
    uint8_t *in = malloc((o->dump_inputs ? n : 1) * image_bytes + 1);
    uint8_t *out = malloc((n ? n : 1) * (size_t)classes);
    if (!in || !out) st = mn_error_set(MN_ERR_NOMEM, "no memory for the int8 evaluation");
    size_t correct = 0;
    for (size_t i = 0; !st && i < n; i++) {
        if (o->stop && *o->stop) {
            st = mn_error_set(MN_ERR_INTERRUPTED, "export stopped after %zu of %zu test images", i, n);
            break;
        }
        const uint8_t *src = test->images + i * image_bytes;
        uint8_t *x = in + (o->dump_inputs ? i * image_bytes : 0);
        for (size_t b = 0; b < image_bytes; b++) x[b] = o->io_int8 ? (uint8_t)(src[b] ^ 0x80) : src[b];
        uint8_t *y = out + i * (size_t)classes;
        st = mn_qinterp_run(it, x, y);
        if (!st) correct += mn_export_argmax(y, classes, o->io_int8) == test->labels[i];
    }
    if (!st && o->dump_inputs) st = mn_file_write_atomic(o->dump_inputs, in, n * image_bytes);
    if (!st && o->dump_outputs) st = mn_file_write_atomic(o->dump_outputs, out, n * (size_t)classes);
    if (!st && o->dump_labels) st = mn_file_write_atomic(o->dump_labels, test->labels, n * sizeof(int32_t));
    free(in);
    free(out);
    mn_qinterp_free(it);
    if (!st) *acc = n ? (double)correct / (double)n : -1;
    return st;
}

mn_status mn_export_model(const mn_export_options *o, const mn_arch *arch,
                          const float *trainable, const float *state, const mn_samples *train,
                          const mn_samples *test, mn_export_result *out) {
    memset(out, 0, sizeof *out);
    out->int8_test_acc = -1;
    if (!o->tflite_path && !o->c_runtime_dir)
        return mn_error_set(MN_ERR_INVALID_ARG, "export: no .tflite path or C runtime folder given");
    if (o->c_symbol && !is_c_identifier(o->c_symbol))
        return mn_error_set(MN_ERR_INVALID_ARG, "the C array's symbol '%s' is not a C identifier",
                            o->c_symbol);
    if (o->rounding < 0 || o->rounding > 2)
        return mn_error_set(MN_ERR_INVALID_ARG, "rounding mode %d is not 0, 1 or 2", o->rounding);
    mn_qgraph *g = NULL;
    mn_status st = quantize(o, arch, trainable, state, train, &g, &out->calib_images);
    if (!st) st = mn_arena_compute(g, MN_ABI_ARM32, &out->arena_arm32);
    if (!st) st = mn_arena_compute(g, MN_ABI_X86_64, &out->arena_x86_64);
    if (!st) {
        out->test_images = o->test_limit && o->test_limit < test->count ? o->test_limit : test->count;
        st = evaluate(o, g, test, out->test_images, &out->int8_test_acc);
    }
    /* The model last: an export stopped or failed on the way leaves no .tflite behind. */
    if (!st) st = write_model(o, g, &out->flash_bytes);
    mn_qgraph_free(g);
    return st;
}
