/* The final phase of a search: retrain the winner, then export it as `mcunas export` does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/backend.h"
#include "mcunas/net.h"
#include "mcunas/export.h"
#include "mcunas/report.h"
#include "mcunas/weights.h"

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
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

    /* Quantize and export through the one export path (mcunas/export.h). */
    if (!st) {
        mn_export_options eo;
        mn_export_options_default(&eo);
        eo.io_int8 = cfg->io_int8;
        eo.calib = (size_t)calib;
        eo.seed = cfg->seed;
        eo.bn_eps = no.bn_eps;
        eo.tflite_path = tfl_path;
        eo.c_array_path = c_path;
        if (cfg->runtime == MN_RUNTIME_C) eo.c_runtime_dir = dir; /* model.c, model.h */
        mn_export_result er;
        st = mn_export_model(&eo, arch, trainable, state, &data->train, &data->test, &er);
        out->flash_bytes = er.flash_bytes;
        out->int8_test_acc = er.int8_test_acc;
    }
    free(trainable);
    free(state);
    free(weights_path);
    free(tfl_path);
    free(c_path);
    return st;
}
