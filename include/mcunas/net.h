/* mn_net: the trainable network of an mn_arch on a backend, and its memory plan.
 *
 * Device memory is five allocations, all sized by mn_net_plan from the arch alone:
 *   train   [4 x P floats]  parameters | gradients | Adam m | Adam v  (P trainable)
 *   state   [S floats]      BN moving mean and variance
 *   acts    activations of every layer for one batch, BN saved statistics, dropout masks
 *   grads   two ping-pong activation-gradient buffers of the largest activation
 *   io      uint8 input batch | int32 labels | per-sample loss | probabilities
 *   work    the conv workspace (the largest any conv layer asks the backend for)
 * ReLU and dropout run in place on their input; nothing else is allocated per step. */
#ifndef MCUNAS_NET_H
#define MCUNAS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_net_plan {
    int batch;
    size_t trainable;       /* P: trainable floats */
    size_t state;           /* S: BN moving statistics */
    size_t train_bytes;     /* 4 P floats */
    size_t state_bytes;
    size_t act_bytes;
    size_t grad_bytes;
    size_t io_bytes;
    size_t workspace_bytes;
    size_t device_bytes;    /* the sum: every byte the net allocates on the backend */
    size_t host_bytes;      /* host staging the net itself uses (batch gather buffers) */
} mn_net_plan;

/* Plans a net for `batch` samples per step on `be` (workspace sizes are the backend's). */
mn_status mn_net_plan_compute(const mn_arch *arch, mn_backend *be, int batch,
                              mn_net_plan *out);

typedef struct mn_net_options {
    int batch;            /* samples per step (the largest n any call may pass) */
    float bn_momentum;    /* Keras: 0.99 */
    float bn_eps;         /* Keras: 1e-3 */
} mn_net_options;

void mn_net_options_default(mn_net_options *o);

typedef struct mn_adam {
    float lr, beta1, beta2, eps; /* Keras defaults: 1e-3, 0.9, 0.999, 1e-7 */
} mn_adam;

typedef struct mn_net mn_net;

mn_status mn_net_create(const mn_arch *arch, mn_backend *be, const mn_net_options *opts,
                        mn_net **out);
void mn_net_destroy(mn_net *net);
const mn_arch *mn_net_arch(const mn_net *net);
const mn_net_plan *mn_net_get_plan(const mn_net *net);

/* Keras's initialisation: Glorot-uniform kernels, zero biases, BN gamma 1, beta 0,
 * moving mean 0, moving variance 1; Adam state zeroed and its step reset. */
mn_status mn_net_init(mn_net *net, uint64_t seed);

/* One optimisation step on n <= batch samples (uint8 NHWC images, int32 labels): forward in
 * training mode (batch statistics, dropout from `dropout_seed`), softmax cross-entropy
 * averaged over n, backward, Adam. Outputs the summed loss and the number correct. */
mn_status mn_net_train_step(mn_net *net, const uint8_t *images, const int32_t *labels, int n,
                            const mn_adam *adam, uint64_t dropout_seed, double *loss_sum,
                            int *correct);

/* Inference mode (moving statistics, no dropout) on n <= batch samples. Any output pointer
 * may be NULL; probs receives n x classes floats. */
mn_status mn_net_evaluate(mn_net *net, const uint8_t *images, const int32_t *labels, int n,
                          double *loss_sum, int *correct, float *probs);

/* Parameters as host floats, per layer in arch order: conv w[K,3,3,C] then b[K]; BN gamma
 * then beta; dense w[O,I] then b[O]. State: per BN layer moving mean then variance. */
mn_status mn_net_get_params(mn_net *net, float *trainable, float *state);
mn_status mn_net_set_params(mn_net *net, const float *trainable, const float *state);

/* Offsets (in floats) of layer i's trainable parameters and state inside those arrays. */
size_t mn_net_param_offset(const mn_net *net, int layer);
size_t mn_net_state_offset(const mn_net *net, int layer);

/* Back-propagates through the whole net without the Adam step, leaving gradients readable
 * with mn_net_get_grads; used by gradient checks. Dropout uses `dropout_seed`. */
mn_status mn_net_forward_backward(mn_net *net, const uint8_t *images, const int32_t *labels,
                                  int n, uint64_t dropout_seed, double *loss_sum);
mn_status mn_net_get_grads(mn_net *net, float *grads);

/* ---- lower-level passes (zero-cost proxies, include/mcunas/proxy.h) ----
 * A forward pass keeps every activation; any number of backward passes may follow, each
 * from its own dlogits: ReLU and dropout backward touch only the gradient buffers. */
typedef enum mn_net_mode {
    MN_NET_MODE_TRAIN = 0, /* BN on batch statistics (and updates the moving ones), no dropout */
    MN_NET_MODE_INFER,     /* BN on moving statistics, no dropout (forward only) */
    MN_NET_MODE_NO_BN      /* BN layers are the identity (synflow), no dropout */
} mn_net_mode;

/* Uploads n <= batch images and runs every layer before the softmax in `mode`. */
mn_status mn_net_forward_mode(mn_net *net, const uint8_t *images, int n, mn_net_mode mode);
/* Back-propagates dlogits (n x classes host floats, n as in the last forward) through the
 * activations of the last forward (TRAIN or NO_BN); parameter gradients are then readable
 * with mn_net_get_grads (BN gradients are zero in NO_BN mode). */
mn_status mn_net_backward_from_logits(mn_net *net, const float *dlogits, int n);
/* Downloads layer `layer`'s output for the n samples of the last forward (n x out shape
 * floats, NHWC). ReLU outputs are the activations after the ReLU. */
mn_status mn_net_layer_output(mn_net *net, int layer, int n, float *host);

#ifdef __cplusplus
}
#endif
#endif
