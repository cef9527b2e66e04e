/* The training loop: split, shuffle, gather batches, step, validate, test. */
#include "mcunas/train.h"

#include <stdlib.h>
#include <string.h>

#include "mcunas/clock.h"
#include "mcunas/rng.h"
#include "mcunas/stream.h"

void mn_train_options_default(mn_train_options *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 3;
    o->adam.lr = 1e-3f;
    o->adam.beta1 = 0.9f;
    o->adam.beta2 = 0.999f;
    o->adam.eps = 1e-7f;
    o->val_split = 0.3;
    o->split_seed = 11;
    o->seed = 1;
}

/* Copies samples idx[0..n) (or base..base+n when idx is NULL) into batch buffers. */
static void gather(const mn_samples *data, const uint32_t *idx, size_t base, size_t n,
                   size_t image_bytes, uint8_t *images, int32_t *labels) {
    for (size_t i = 0; i < n; i++) {
        size_t j = idx ? idx[base + i] : base + i;
        memcpy(images + i * image_bytes, data->images + j * image_bytes, image_bytes);
        labels[i] = data->labels[j];
    }
}

static void report(mn_train_progress_fn fn, void *user, mn_train_phase phase, int epoch,
                   int epochs, size_t done, size_t total, double loss_sum, size_t correct,
                   double t0, int finished) {
    if (!fn) return;
    mn_train_progress p = {phase, epoch, epochs, done, total,
                           done ? loss_sum / (double)done : 0.0,
                           done ? (double)correct / (double)done : 0.0,
                           mn_time_now() - t0, finished};
    fn(user, &p);
}

mn_status mn_train_evaluate(mn_net *net, const mn_samples *data, const uint32_t *idx,
                            size_t count, mn_train_progress_fn progress, void *user,
                            mn_train_phase phase, double *accuracy, double *mean_loss) {
    const mn_arch *arch = mn_net_arch(net);
    const int batch = mn_net_get_plan(net)->batch;
    const size_t image_bytes = mn_shape_count(arch->input);
    uint8_t *images = malloc((size_t)batch * image_bytes);
    int32_t *labels = malloc((size_t)batch * sizeof(int32_t));
    if (!images || !labels) {
        free(images);
        free(labels);
        return mn_error_set(MN_ERR_NOMEM, "no memory for an evaluation batch");
    }
    double loss_total = 0, t0 = mn_time_now();
    size_t correct_total = 0;
    mn_status st = MN_OK;
    for (size_t start = 0; start < count && !st; start += (size_t)batch) {
        size_t n = count - start < (size_t)batch ? count - start : (size_t)batch;
        gather(data, idx, start, n, image_bytes, images, labels);
        double loss = 0;
        int correct = 0;
        st = mn_net_evaluate(net, images, labels, (int)n, &loss, &correct, NULL);
        loss_total += loss;
        correct_total += (size_t)correct;
        if (!st)
            report(progress, user, phase, 0, 0, start + n, count, loss_total, correct_total, t0,
                   start + n == count);
    }
    free(images);
    free(labels);
    if (st) return st;
    *accuracy = count ? (double)correct_total / (double)count : 0.0;
    if (mean_loss) *mean_loss = count ? loss_total / (double)count : 0.0;
    return MN_OK;
}

/* One pass of the stream in inference mode: accuracy and mean loss. */
static mn_status evaluate_stream(mn_net *net, mn_stream *data, mn_split split,
                                 const uint32_t *idx, size_t count, const mn_train_options *opts,
                                 mn_train_phase phase, double *accuracy, double *mean_loss) {
    double loss_total = 0, t0 = mn_time_now();
    size_t correct_total = 0, done = 0;
    mn_status st = mn_stream_begin(data, split, idx, count, 0, 0, 0);
    while (!st) {
        mn_batch b;
        if ((st = mn_stream_next(data, &b)) || !b.count) break;
        double loss = 0;
        int correct = 0;
        st = mn_net_evaluate(net, b.images, b.labels, (int)b.count, &loss, &correct, NULL);
        loss_total += loss;
        correct_total += (size_t)correct;
        done += b.count;
        if (!st)
            report(opts->progress, opts->progress_user, phase, 0, 0, done, count, loss_total,
                   correct_total, t0, done == count);
    }
    if (st) return st;
    *accuracy = count ? (double)correct_total / (double)count : 0.0;
    if (mean_loss) *mean_loss = count ? loss_total / (double)count : 0.0;
    return MN_OK;
}

mn_status mn_train_run_stream(mn_net *net, mn_stream *data, const mn_train_options *opts,
                              mn_train_result *out) {
    memset(out, 0, sizeof *out);
    out->test_acc = out->test_loss = -1;
    if (opts->epochs < 1 || opts->epochs > MN_TRAIN_MAX_EPOCHS)
        return mn_error_set(MN_ERR_INVALID_ARG, "epochs must be in [1, %d] (got %d)",
                            MN_TRAIN_MAX_EPOCHS, opts->epochs);
    if (!(opts->val_split >= 0.0 && opts->val_split < 1.0))
        return mn_error_set(MN_ERR_INVALID_ARG, "validation split must be in [0, 1) (got %g)",
                            opts->val_split);
    const mn_dataset_info *info = mn_stream_info(data);
    const mn_arch *arch = mn_net_arch(net);
    const int batch = mn_net_get_plan(net)->batch;
    if (mn_stream_batch(data) != batch)
        return mn_error_set(MN_ERR_INVALID_ARG, "the stream delivers batches of %d, the net trains on %d",
                            mn_stream_batch(data), batch);
    if (info->shape.h != arch->input.h || info->shape.w != arch->input.w ||
        info->shape.c != arch->input.c)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "the data's images are %dx%dx%d but the net takes %dx%dx%d",
                            info->shape.h, info->shape.w, info->shape.c, arch->input.h,
                            arch->input.w, arch->input.c);
    const size_t n_all = info->count[MN_SPLIT_TRAIN];
    if (n_all > UINT32_MAX)
        return mn_error_set(MN_ERR_INVALID_ARG, "%zu training images exceed 2^32", n_all);

    const double t_start = mn_time_now();
    /* A cache with a /val split validates on it; otherwise val_split of /train is held out. */
    const int val_group = info->count[MN_SPLIT_VAL] > 0;
    const size_t n_val = val_group ? info->count[MN_SPLIT_VAL]
                                   : (size_t)((double)n_all * opts->val_split + 0.5);
    const size_t n_train = val_group ? n_all : n_all - n_val;
    if (n_train < 1)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "no training images left: %zu images with validation split %g",
                            n_all, opts->val_split);
    uint32_t *perm = malloc((n_all ? n_all : 1) * sizeof *perm);
    if (!perm) return mn_error_set(MN_ERR_NOMEM, "no memory for %zu training indices", n_all);
    /* The split is a seeded permutation: first n_train train, the rest validation; the
     * split seed is separate so every candidate of a search sees the same split. */
    for (size_t i = 0; i < n_all; i++) perm[i] = (uint32_t)i;
    mn_rng rng;
    mn_rng_seed(&rng, opts->split_seed);
    if (!val_group) mn_rng_shuffle(&rng, perm, n_all);
    uint32_t *train_idx = perm, *val_idx = val_group ? NULL : perm + n_train;
    out->train_count = n_train;
    out->val_count = n_val;
    out->best_val_acc = -1;

    mn_status st = MN_OK;
    uint64_t step = 0;
    for (int epoch = 1; epoch <= opts->epochs && !st; epoch++) {
        double loss_sum = 0, t0 = mn_time_now();
        size_t correct_sum = 0, done = 0;
        double last_report = t0;
        st = mn_stream_begin(data, MN_SPLIT_TRAIN, train_idx, n_train, 1,
                             mn_seed_mix(opts->seed, (uint64_t)epoch), opts->augment);
        while (!st) {
            if (opts->stop && *opts->stop) {
                st = mn_error_set(MN_ERR_INTERRUPTED, "training stopped in epoch %d", epoch);
                break;
            }
            mn_batch b;
            if ((st = mn_stream_next(data, &b)) || !b.count) break;
            double loss = 0;
            int correct = 0;
            st = mn_net_train_step(net, b.images, b.labels, (int)b.count, &opts->adam,
                                   mn_seed_mix(opts->seed ^ 0xD0u, ++step), &loss, &correct);
            loss_sum += loss;
            correct_sum += (size_t)correct;
            done += b.count;
            double now = mn_time_now();
            int last = done == n_train;
            if (!st && (last || now - last_report > 0.1)) {
                report(opts->progress, opts->progress_user, MN_PHASE_TRAIN, epoch, opts->epochs,
                       done, n_train, loss_sum, correct_sum, t0, last);
                last_report = now;
            }
        }
        out->train_seconds += mn_time_now() - t0;
        if (st) break;
        out->final_train_loss = loss_sum / (double)n_train;
        out->final_train_acc = (double)correct_sum / (double)n_train;
        double val_acc = 0;
        if (n_val) {
            st = evaluate_stream(net, data, val_group ? MN_SPLIT_VAL : MN_SPLIT_TRAIN, val_idx,
                                 n_val, opts, MN_PHASE_VALIDATE, &val_acc, NULL);
            if (st) break;
        }
        if (epoch <= 64) out->val_acc[epoch - 1] = val_acc;
        out->epochs_run = epoch;
        if (val_acc > out->best_val_acc) {
            out->best_val_acc = val_acc;
            out->best_epoch = epoch;
        }
    }
    const size_t n_test = info->count[MN_SPLIT_TEST];
    if (!st && n_test) {
        out->test_count = n_test;
        st = evaluate_stream(net, data, MN_SPLIT_TEST, NULL, n_test, opts, MN_PHASE_TEST,
                             &out->test_acc, &out->test_loss);
    }
    out->images_per_second =
        out->train_seconds > 0 ? (double)n_train * out->epochs_run / out->train_seconds : 0;
    out->total_seconds = mn_time_now() - t_start;
    free(perm);
    return st;
}

mn_status mn_train_run(mn_net *net, const mn_samples *train, const mn_samples *test,
                       const mn_train_options *opts, mn_train_result *out) {
    memset(out, 0, sizeof *out);
    out->test_acc = out->test_loss = -1;
    const mn_arch *arch = mn_net_arch(net);
    mn_stream_options so;
    mn_stream_options_default(&so);
    so.batch = mn_net_get_plan(net)->batch;
    so.memory_budget = SIZE_MAX; /* the images are the caller's; the stream adds a batch */
    mn_stream *s = NULL;
    mn_status st = mn_stream_open_memory(arch->input, arch->classes, train, test, &so, &s);
    if (st) return st;
    st = mn_train_run_stream(net, s, opts, out);
    mn_stream_close(s);
    return st;
}
