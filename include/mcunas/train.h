/* Training a net: seeded train/validation split, epochs of Adam steps on shuffled batches,
 * validation after every epoch, test at the end. The score a search uses is the best
 * validation accuracy over the epochs. */
#ifndef MCUNAS_TRAIN_H
#define MCUNAS_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/net.h"
#include "mcunas/samples.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_TRAIN_MAX_EPOCHS 10000

typedef enum mn_train_phase { MN_PHASE_TRAIN, MN_PHASE_VALIDATE, MN_PHASE_TEST } mn_train_phase;

typedef struct mn_train_progress {
    mn_train_phase phase;
    int epoch, epochs;      /* 1-based epoch */
    size_t done, total;     /* samples of this phase done so far */
    double loss;            /* running mean loss of this phase */
    double accuracy;        /* running accuracy of this phase */
    double elapsed_s;       /* since the phase started */
    int finished;           /* 1 on the phase's last report */
} mn_train_progress;

typedef void (*mn_train_progress_fn)(void *user, const mn_train_progress *p);

typedef struct mn_train_options {
    int epochs;              /* NanoNAS search: 3 */
    mn_adam adam;            /* lr 1e-3, 0.9, 0.999, 1e-7 */
    double val_split;        /* fraction of the training set held out: 0.3 */
    uint64_t split_seed;     /* seed of the train/validation split: 11 (NanoNAS's) */
    uint64_t seed;           /* initialisation, shuffling and dropout */
    mn_train_progress_fn progress;
    void *progress_user;
    volatile int *stop;      /* when non-NULL and set, training stops with MN_ERR_INTERRUPTED */
    int augment;             /* MN_AUGMENT_* flags (mcunas/stream.h) on training batches: 0 */
} mn_train_options;

void mn_train_options_default(mn_train_options *o);

typedef struct mn_train_result {
    int epochs_run;
    double val_acc[64];      /* validation accuracy of the first 64 epochs */
    double best_val_acc;     /* the score */
    int best_epoch;          /* 1-based */
    double final_train_loss, final_train_acc;
    double test_acc, test_loss; /* -1 when no test set was given */
    size_t train_count, val_count, test_count;
    double train_seconds;    /* time in training steps only */
    double total_seconds;
    double images_per_second; /* training images per second of train_seconds */
} mn_train_result;

/* Trains `net` (which must have been initialised) on `train` split by val_split, evaluates
 * on `test` when it has samples. */
mn_status mn_train_run(mn_net *net, const mn_samples *train, const mn_samples *test,
                       const mn_train_options *opts, mn_train_result *out);

/* The same over a data stream (mcunas/stream.h): the stream's train split (with its limit)
 * is split by val_split, or, when the cache has a /val split, all of it trains and /val
 * validates (val_split and split_seed then do not apply); its test split is evaluated at
 * the end when it has images. The stream's batch must be the net's. */
typedef struct mn_stream mn_stream;
mn_status mn_train_run_stream(mn_net *net, mn_stream *data, const mn_train_options *opts,
                              mn_train_result *out);

/* Accuracy and mean loss of `net` in inference mode over the samples `idx` (all when NULL). */
mn_status mn_train_evaluate(mn_net *net, const mn_samples *data, const uint32_t *idx,
                            size_t count, mn_train_progress_fn progress, void *user,
                            mn_train_phase phase, double *accuracy, double *mean_loss);

#ifdef __cplusplus
}
#endif
#endif
