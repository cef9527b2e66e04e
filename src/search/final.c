/* The final phase of a search: retrain the winner, quantize, export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/backend.h"
#include "mcunas/cruntime.h"
#include "mcunas/net.h"
#include "mcunas/qgraph.h"
#include "mcunas/report.h"
#include "mcunas/rng.h"
#include "mcunas/tflite.h"
#include "mcunas/weights.h"

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Argmax of a quantized output; int8 outputs compare as signed. */
static int argmax_q(const uint8_t *out, int classes, int io_int8) {
    int best = 0;
    for (int j = 1; j < classes; j++) {
        int a = io_int8 ? (int)(int8_t)out[j] : out[j];
        int b = io_int8 ? (int)(int8_t)out[best] : out[best];
        if (a > b) best = j;
    }
    return best;
}

/* Accuracy of the int8 model on the test split through our reference interpreter. */
static mn_status int8_accuracy(const mn_qgraph *g, const mn_samples *test, int io_int8,
                               double *acc) {
    mn_qinterp *it = NULL;
    mn_status st = mn_qinterp_create(g, &it);
    if (st) return st;
    const int classes = g->arch.classes;
    const size_t image_bytes = mn_shape_count(g->arch.input);
    uint8_t *img = malloc(image_bytes), *out = malloc((size_t)classes);
    if (!img || !out) st = mn_error_set(MN_ERR_NOMEM, "no memory for int8 evaluation");
    size_t correct = 0;
    for (size_t i = 0; !st && i < test->count; i++) {
        const uint8_t *src = test->images + i * image_bytes;
        if (io_int8)
            for (size_t b = 0; b < image_bytes; b++) img[b] = (uint8_t)(int8_t)((int)src[b] - 128);
        else
            memcpy(img, src, image_bytes);
        st = mn_qinterp_run(it, img, out);
        if (!st) correct += argmax_q(out, classes, io_int8) == test->labels[i];
    }
    free(img);
    free(out);
    mn_qinterp_free(it);
    if (!st) *acc = test->count ? (double)correct / (double)test->count : -1;
    return st;
}

/* `calib` training images chosen by a seeded permutation, copied contiguously. */
static uint8_t *calibration_images(const mn_samples *train, size_t image_bytes, int calib,
                                   uint64_t seed, size_t *n_out) {
    size_t n = (size_t)calib < train->count ? (size_t)calib : train->count;
    uint32_t *idx = malloc(train->count * sizeof *idx);
    uint8_t *imgs = malloc(n * image_bytes + 1);
    if (!idx || !imgs) {
        free(idx);
        free(imgs);
        return NULL;
    }
    for (size_t i = 0; i < train->count; i++) idx[i] = (uint32_t)i;
    mn_rng r;
    mn_rng_seed(&r, seed);
    mn_rng_shuffle(&r, idx, train->count);
    for (size_t i = 0; i < n; i++)
        memcpy(imgs + i * image_bytes, train->images + (size_t)idx[i] * image_bytes, image_bytes);
    free(idx);
    *n_out = n;
    return imgs;
}

mn_status mn_search_finalize(const mn_search_config *cfg, const mn_loaded_data *data,
                             mn_point winner, int final_epochs, int calib, const char *dir,
                             mn_final_result *out) {
    memset(out, 0, sizeof *out);
    mn_arch *arch = &out->arch;
    mn_status st = mn_arch_build(arch, winner.k, winner.cells, cfg->layout, data->info.shape,
                                 data->info.classes);
    if (!st) st = mn_estimate_compute_runtime(arch, cfg->io_int8, cfg->target, cfg->latency, cfg->runtime, &out->est);
    if (st) return st;

    /* Retrain from a fresh initialisation with the search's seed. */
    mn_backend_options bo = {cfg->threads, cfg->device};
    mn_backend *be = NULL;
    mn_net *net = NULL;
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = cfg->batch;
    if ((st = mn_backend_create(cfg->backend, &bo, &be))) return st;
    st = mn_net_create(arch, be, &no, &net);
    if (!st) st = mn_net_init(net, cfg->seed);
    mn_train_result res;
    if (!st) {
        mn_train_options to;
        mn_search_train_options(cfg, final_epochs, &to);
        st = mn_train_run(net, &data->train, &data->test, &to, &res);
    }
    const mn_net_plan *plan = net ? mn_net_get_plan(net) : NULL;
    float *trainable = NULL, *state = NULL;
    char *weights_path = join(dir, "weights.h5"), *tfl_path = join(dir, "model.tflite"),
         *c_path = join(dir, "model_data.c");
    if (!st && (!weights_path || !tfl_path || !c_path))
        st = mn_error_set(MN_ERR_NOMEM, "no memory for output paths");
    if (!st) {
        out->val_acc = res.best_val_acc;
        out->float_test_acc = res.test_acc;
        out->train_seconds = res.train_seconds;
        trainable = malloc((plan->trainable + 1) * sizeof(float));
        state = malloc((plan->state + 1) * sizeof(float));
        if (!trainable || !state) st = mn_error_set(MN_ERR_NOMEM, "no memory for parameters");
    }
    if (!st) st = mn_net_get_params(net, trainable, state);
    if (!st) st = mn_weights_save(weights_path, net);
    mn_net_destroy(net);
    mn_backend_destroy(be);

    /* Quantize and export. */
    mn_qgraph *g = NULL;
    uint8_t *calib_imgs = NULL, *bytes = NULL;
    size_t n_calib = 0, size = 0;
    if (!st) st = mn_qgraph_build(arch, cfg->io_int8, &g);
    if (!st) st = mn_qgraph_set_params(g, trainable, state, no.bn_eps);
    if (!st) {
        calib_imgs = calibration_images(&data->train, mn_shape_count(arch->input), calib,
                                        mn_seed_mix(cfg->seed, 0xCA11B), &n_calib);
        if (!calib_imgs) st = mn_error_set(MN_ERR_NOMEM, "no memory for calibration images");
    }
    if (!st) st = mn_qgraph_quantize(g, calib_imgs, n_calib);
    if (!st) st = mn_tflite_write(g, tfl_path, &out->flash_bytes);
    if (!st) st = mn_tflite_serialize(g, &bytes, &size);
    if (!st) st = mn_tflite_write_c_array(bytes, size, c_path, "mcunas_model");
    if (!st && cfg->runtime == MN_RUNTIME_C) st = mn_cruntime_generate(g, dir);
    out->int8_test_acc = -1;
    if (!st && data->test.count) st = int8_accuracy(g, &data->test, cfg->io_int8, &out->int8_test_acc);
    free(bytes);
    free(calib_imgs);
    mn_qgraph_free(g);
    free(trainable);
    free(state);
    free(weights_path);
    free(tfl_path);
    free(c_path);
    return st;
}
