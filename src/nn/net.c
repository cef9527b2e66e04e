/* The trainable network: lays an mn_arch out over backend buffers (mn_net_plan) and runs
 * forward, backward and Adam through the backend's op table. */
#include "mcunas/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/rng.h"

#define MN_ALIGN 256 /* every region starts on a 256-byte boundary (OpenCL-friendly) */

static size_t align_up(size_t x) { return (x + MN_ALIGN - 1) / MN_ALIGN * MN_ALIGN; }

/* Where one layer's tensors live. Offsets are bytes into the named buffer. */
typedef struct mn_net_layer {
    size_t param_off;  /* floats into the trainable parameters */
    size_t state_off;  /* floats into the BN state */
    size_t in_off;     /* acts: this layer's input */
    size_t out_off;    /* acts: this layer's output (== in_off for in-place layers) */
    size_t save_off;   /* acts: BN saved mean | invstd, or the dropout mask */
} mn_net_layer;

typedef struct mn_net_layout {
    mn_net_layer layers[MN_ARCH_MAX_LAYERS];
    size_t max_act_floats; /* largest activation of one batch */
    size_t logits_off;     /* acts offset of the last dense output */
    size_t io_u8_off, io_labels_off, io_loss_off, io_probs_off;
} mn_net_layout;

/* net->last_mode when the activations are not for mn_net_backward_from_logits. */
enum { LAST_MODE_NONE = -1 };

struct mn_net {
    mn_arch arch;
    mn_backend *be;
    mn_net_options opts;
    mn_net_plan plan;
    mn_net_layout lay;
    mn_buf *train, *state, *acts, *grads, *io, *work;
    int adam_step;
    int last_mode, last_n; /* of the last mn_net_forward_mode; LAST_MODE_NONE: none */
    float *host_loss, *host_probs; /* downloads of one batch */
};

static int layer_in_place(mn_layer_kind kind) {
    return kind == MN_LAYER_RELU || kind == MN_LAYER_DROPOUT || kind == MN_LAYER_SOFTMAX;
}

static mn_conv_shape conv_shape(const mn_layer *l, int n) {
    mn_conv_shape s = {n, l->in.h, l->in.w, l->in.c, l->out.c};
    return s;
}

/* Assigns every offset; fills plan sizes. Pure function of (arch, batch, backend sizes). */
static void layout_compute(const mn_arch *arch, mn_backend *be, int batch, mn_net_layout *lay,
                           mn_net_plan *plan) {
    memset(lay, 0, sizeof *lay);
    memset(plan, 0, sizeof *plan);
    size_t pcount = 0, scount = 0, act = 0, work = 0;
    size_t max_act = 0;
    size_t prev_out = 0;
    for (int i = 0; i < arch->n_layers; i++) {
        const mn_layer *l = &arch->layers[i];
        mn_net_layer *nl = &lay->layers[i];
        size_t out_floats = (size_t)batch * mn_shape_count(l->out);
        if (out_floats > max_act) max_act = out_floats;
        nl->param_off = pcount;
        nl->state_off = scount;
        pcount += l->n_trainable;
        scount += l->n_state;
        nl->in_off = prev_out;
        if (layer_in_place(l->kind) && i > 0) {
            nl->out_off = nl->in_off;
        } else {
            nl->out_off = act;
            act = align_up(act + out_floats * sizeof(float));
        }
        if (l->kind == MN_LAYER_BATCHNORM) {
            nl->save_off = act;
            act = align_up(act + 2 * (size_t)l->in.c * sizeof(float));
        } else if (l->kind == MN_LAYER_DROPOUT) {
            nl->save_off = act;
            act = align_up(act + out_floats * sizeof(float));
        } else if (l->kind == MN_LAYER_CONV3X3) {
            mn_conv_shape s = conv_shape(l, batch);
            size_t w = mn_backend_conv3x3_workspace_bytes(be, &s);
            if (w > work) work = w;
        } else if (l->kind == MN_LAYER_DENSE) {
            lay->logits_off = nl->out_off;
        }
        prev_out = nl->out_off;
    }
    lay->max_act_floats = max_act;
    const int classes = arch->classes;
    size_t io = 0;
    lay->io_u8_off = io;
    io = align_up(io + (size_t)batch * mn_shape_count(arch->input));
    lay->io_labels_off = io;
    io = align_up(io + (size_t)batch * sizeof(int32_t));
    lay->io_loss_off = io;
    io = align_up(io + (size_t)batch * sizeof(float));
    lay->io_probs_off = io;
    io = align_up(io + (size_t)batch * classes * sizeof(float));

    plan->batch = batch;
    plan->trainable = pcount;
    plan->state = scount;
    plan->train_bytes = 4 * pcount * sizeof(float);
    plan->state_bytes = (scount ? scount : 1) * sizeof(float);
    plan->act_bytes = act;
    plan->grad_bytes = 2 * align_up(max_act * sizeof(float));
    plan->io_bytes = io;
    plan->workspace_bytes = work ? work : 1;
    plan->device_bytes = plan->train_bytes + plan->state_bytes + plan->act_bytes +
                         plan->grad_bytes + plan->io_bytes + plan->workspace_bytes;
    plan->host_bytes = (size_t)batch * (sizeof(float) + classes * sizeof(float));
}

mn_status mn_net_plan_compute(const mn_arch *arch, mn_backend *be, int batch,
                              mn_net_plan *out) {
    if (batch < 1) return mn_error_set(MN_ERR_INVALID_ARG, "batch must be >= 1 (got %d)", batch);
    mn_net_layout *lay = malloc(sizeof *lay);
    if (!lay) return mn_error_set(MN_ERR_NOMEM, "no memory for a net layout");
    layout_compute(arch, be, batch, lay, out);
    free(lay);
    return MN_OK;
}

void mn_net_options_default(mn_net_options *o) {
    o->batch = 16;
    o->bn_momentum = 0.99f;
    o->bn_eps = 1e-3f;
}

const mn_arch *mn_net_arch(const mn_net *net) { return &net->arch; }
const mn_net_plan *mn_net_get_plan(const mn_net *net) { return &net->plan; }
size_t mn_net_param_offset(const mn_net *net, int layer) {
    return net->lay.layers[layer].param_off;
}
size_t mn_net_state_offset(const mn_net *net, int layer) {
    return net->lay.layers[layer].state_off;
}

void mn_net_destroy(mn_net *net) {
    if (!net) return;
    mn_buf *bufs[] = {net->train, net->state, net->acts, net->grads, net->io, net->work};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) mn_buf_free(net->be, bufs[i]);
    free(net->host_loss);
    free(net->host_probs);
    free(net);
}

/* Refuses a plan the device cannot hold, before anything is allocated: its total beyond
 * the device's free memory (capacity less what the backend has allocated), or its largest
 * buffer beyond the device's largest allocation (each check only where the backend knows
 * the number). */
static mn_status budget_check(const mn_arch *arch, mn_backend *be, const mn_net_plan *p) {
    mn_backend_mem mem;
    mn_backend_mem_info(be, &mem);
    const double mib = 1024.0 * 1024.0;
    if (mem.device_total_bytes) {
        size_t used = mem.allocated_bytes;
        size_t avail = mem.device_total_bytes > used ? mem.device_total_bytes - used : 0;
        if (p->device_bytes > avail)
            return mn_error_set(MN_ERR_BUDGET,
                                "A(%d,%d) needs %.1f MiB of device memory for batch %d but the "
                                "device of backend '%s' has %.1f MiB (%.1f MiB in use)",
                                arch->k, arch->cells, (double)p->device_bytes / mib, p->batch,
                                mn_backend_name(be), (double)mem.device_total_bytes / mib,
                                (double)used / mib);
    }
    if (mem.max_alloc_bytes) {
        const size_t parts[] = {p->train_bytes, p->state_bytes, p->act_bytes,
                                p->grad_bytes,  p->io_bytes,    p->workspace_bytes};
        size_t largest = 0;
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            if (parts[i] > largest) largest = parts[i];
        if (largest > mem.max_alloc_bytes)
            return mn_error_set(MN_ERR_BUDGET,
                                "A(%d,%d) needs a single buffer of %.1f MiB for batch %d but the "
                                "device of backend '%s' allocates at most %.1f MiB at once",
                                arch->k, arch->cells, (double)largest / mib, p->batch,
                                mn_backend_name(be), (double)mem.max_alloc_bytes / mib);
    }
    return MN_OK;
}

mn_status mn_net_create(const mn_arch *arch, mn_backend *be, const mn_net_options *opts,
                        mn_net **out) {
    *out = NULL;
    mn_net_options defaults;
    mn_net_options_default(&defaults);
    if (!opts) opts = &defaults;
    if (opts->batch < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "batch must be >= 1 (got %d)", opts->batch);
    for (int op = 0; op < MN_OP_COUNT; op++)
        if (!mn_backend_supports(be, (mn_op)op)) return mn_backend_unsupported(be, (mn_op)op);
    mn_net *net = calloc(1, sizeof *net);
    if (!net) return mn_error_set(MN_ERR_NOMEM, "no memory for a net");
    net->arch = *arch;
    net->be = be;
    net->opts = *opts;
    net->last_mode = LAST_MODE_NONE;
    layout_compute(arch, be, opts->batch, &net->lay, &net->plan);
    const mn_net_plan *p = &net->plan;
    mn_status st;
    if ((st = budget_check(arch, be, p)) != MN_OK) {
        free(net);
        return st;
    }
    if ((st = mn_buf_alloc(be, p->train_bytes, &net->train)) ||
        (st = mn_buf_alloc(be, p->state_bytes, &net->state)) ||
        (st = mn_buf_alloc(be, p->act_bytes, &net->acts)) ||
        (st = mn_buf_alloc(be, p->grad_bytes, &net->grads)) ||
        (st = mn_buf_alloc(be, p->io_bytes, &net->io)) ||
        (st = mn_buf_alloc(be, p->workspace_bytes, &net->work))) {
        mn_net_destroy(net);
        return st;
    }
    net->host_loss = malloc((size_t)opts->batch * sizeof(float));
    net->host_probs = malloc((size_t)opts->batch * arch->classes * sizeof(float));
    if (!net->host_loss || !net->host_probs) {
        mn_net_destroy(net);
        return mn_error_set(MN_ERR_NOMEM, "no memory for batch outputs");
    }
    *out = net;
    return MN_OK;
}

/* ---- parameters ---- */

static mn_view param_view(mn_net *net, size_t region, size_t float_off) {
    /* region 0 params, 1 grads, 2 Adam m, 3 Adam v */
    return mn_view_at(net->train, (region * net->plan.trainable + float_off) * sizeof(float));
}

mn_status mn_net_init(mn_net *net, uint64_t seed) {
    const mn_net_plan *p = &net->plan;
    float *params = calloc(p->trainable ? p->trainable : 1, sizeof(float));
    float *state = calloc(p->state ? p->state : 1, sizeof(float));
    if (!params || !state) {
        free(params);
        free(state);
        return mn_error_set(MN_ERR_NOMEM, "no memory to initialise %zu parameters",
                            p->trainable);
    }
    mn_rng rng;
    mn_rng_seed(&rng, seed);
    for (int i = 0; i < net->arch.n_layers; i++) {
        const mn_layer *l = &net->arch.layers[i];
        float *w = params + net->lay.layers[i].param_off;
        float *s = state + net->lay.layers[i].state_off;
        if (l->kind == MN_LAYER_CONV3X3 || l->kind == MN_LAYER_DENSE) {
            size_t fan_in, fan_out, count;
            if (l->kind == MN_LAYER_CONV3X3) {
                fan_in = 9 * (size_t)l->in.c;
                fan_out = 9 * (size_t)l->out.c;
            } else {
                fan_in = (size_t)l->in.c;
                fan_out = (size_t)l->out.c;
            }
            count = fan_in * (size_t)l->out.c;
            double limit = sqrt(6.0 / (double)(fan_in + fan_out)); /* Glorot uniform */
            for (size_t j = 0; j < count; j++)
                w[j] = (float)((2.0 * mn_rng_uniform(&rng) - 1.0) * limit);
            /* biases follow, already zero */
        } else if (l->kind == MN_LAYER_BATCHNORM) {
            int c = l->in.c;
            for (int j = 0; j < c; j++) {
                w[j] = 1.0f;     /* gamma */
                w[c + j] = 0.0f; /* beta */
                s[j] = 0.0f;     /* moving mean */
                s[c + j] = 1.0f; /* moving variance */
            }
        }
    }
    mn_status st = mn_net_set_params(net, params, state);
    free(params);
    free(state);
    if (st) return st;
    /* Gradients and Adam moments start at zero. */
    st = mn_backend_fill(net->be, param_view(net, 1, 0), 0.0f, 3 * p->trainable);
    net->adam_step = 0;
    return st;
}

mn_status mn_net_set_params(mn_net *net, const float *trainable, const float *state) {
    mn_status st = MN_OK;
    if (trainable && net->plan.trainable)
        st = mn_upload(net->be, param_view(net, 0, 0), trainable,
                       net->plan.trainable * sizeof(float));
    if (!st && state && net->plan.state)
        st = mn_upload(net->be, mn_view_at(net->state, 0), state, net->plan.state * sizeof(float));
    return st;
}

mn_status mn_net_get_params(mn_net *net, float *trainable, float *state) {
    mn_status st = MN_OK;
    if (trainable && net->plan.trainable)
        st = mn_download(net->be, param_view(net, 0, 0), trainable,
                         net->plan.trainable * sizeof(float));
    if (!st && state && net->plan.state)
        st = mn_download(net->be, mn_view_at(net->state, 0), state,
                         net->plan.state * sizeof(float));
    return st;
}

mn_status mn_net_get_grads(mn_net *net, float *grads) {
    if (!net->plan.trainable) return MN_OK;
    return mn_download(net->be, param_view(net, 1, 0), grads,
                       net->plan.trainable * sizeof(float));
}

/* ---- forward / backward ---- */

static mn_view act(mn_net *net, size_t off) { return mn_view_at(net->acts, off); }

/* Which layers a pass turns into the identity, beyond what training or inference does.
 * Only mn_net_forward_mode (the proxies) asks for more than PASS_STANDARD. */
typedef enum pass_kind {
    PASS_STANDARD,   /* training: dropout from the seed; inference: no dropout */
    PASS_NO_DROPOUT, /* dropout is the identity (MN_NET_MODE_TRAIN) */
    PASS_NO_BN       /* dropout and batch norm are the identity (MN_NET_MODE_NO_BN) */
} pass_kind;

/* Runs layers [0, n_layers - 1) (everything before softmax) on the uploaded batch.
 * training: 0 inference, 1 training. */
static mn_status forward_ex(mn_net *net, int n, int training, uint64_t dropout_seed,
                            pass_kind pass);
static mn_status forward(mn_net *net, int n, int training, uint64_t dropout_seed) {
    net->last_mode = LAST_MODE_NONE;
    return forward_ex(net, n, training, dropout_seed, PASS_STANDARD);
}

/* y = x for a BN layer in MN_NET_MODE_NO_BN: the table has no copy op, and this mode runs
 * on one or a few samples (synflow), so the copy goes through the host. */
static mn_status copy_through_host(mn_net *net, mn_view x, mn_view y, size_t count) {
    float *tmp = malloc((count ? count : 1) * sizeof(float));
    if (!tmp) return mn_error_set(MN_ERR_NOMEM, "no memory to copy %zu floats", count);
    mn_status st = mn_download(net->be, x, tmp, count * sizeof(float));
    if (!st) st = mn_upload(net->be, y, tmp, count * sizeof(float));
    free(tmp);
    return st;
}

static mn_status forward_ex(mn_net *net, int n, int training, uint64_t dropout_seed,
                            pass_kind pass) {
    mn_backend *be = net->be;
    const float eps = net->opts.bn_eps;
    mn_status st = MN_OK;
    for (int i = 0; i < net->arch.n_layers && !st; i++) {
        const mn_layer *l = &net->arch.layers[i];
        const mn_net_layer *nl = &net->lay.layers[i];
        mn_view x = act(net, nl->in_off), y = act(net, nl->out_off);
        mn_view p0 = param_view(net, 0, nl->param_off);
        size_t count = (size_t)n * mn_shape_count(l->in);
        int m = n * l->in.h * l->in.w, c = l->in.c;
        switch (l->kind) {
        case MN_LAYER_RESCALE:
            /* the model's x/255, fused with the uint8 upload */
            st = mn_backend_scale_u8(be, count, mn_view_at(net->io, net->lay.io_u8_off),
                                     1.0f / 255.0f, y);
            break;
        case MN_LAYER_BATCHNORM: {
            mn_view beta = param_view(net, 0, nl->param_off + (size_t)c);
            mn_view rmean = mn_view_at(net->state, nl->state_off * sizeof(float));
            mn_view rvar = mn_view_at(net->state, (nl->state_off + (size_t)c) * sizeof(float));
            if (pass == PASS_NO_BN)
                st = copy_through_host(net, x, y, count);
            else if (training)
                st = mn_backend_batchnorm_train(be, m, c, x, p0, beta, rmean, rvar,
                                                net->opts.bn_momentum, eps, y,
                                                act(net, nl->save_off),
                                                act(net, nl->save_off + (size_t)c * sizeof(float)));
            else
                st = mn_backend_batchnorm_infer(be, m, c, x, p0, beta, rmean, rvar, eps, y);
            break;
        }
        case MN_LAYER_CONV3X3: {
            mn_conv_shape s = conv_shape(l, n);
            mn_view b = param_view(net, 0, nl->param_off + (size_t)l->out.c * 9 * c);
            st = mn_backend_conv3x3_forward(be, &s, x, p0, b, y, mn_view_at(net->work, 0));
            break;
        }
        case MN_LAYER_RELU:
            st = mn_backend_relu_forward(be, count, x, y);
            break;
        case MN_LAYER_MAXPOOL2:
            st = mn_backend_maxpool2_forward(be, n, l->in.h, l->in.w, c, x, y);
            break;
        case MN_LAYER_GAP:
            st = mn_backend_gap_forward(be, n, l->in.h, l->in.w, c, x, y);
            break;
        case MN_LAYER_DROPOUT:
            if (training && pass == PASS_STANDARD)
                st = mn_backend_dropout_forward(be, count, l->rate, dropout_seed, x,
                                                act(net, nl->save_off), y);
            break; /* inference: identity, and the layer is in place */
        case MN_LAYER_DENSE: {
            mn_view b = param_view(net, 0, nl->param_off + (size_t)l->out.c * c);
            st = mn_backend_dense_forward(be, n, c, l->out.c, x, p0, b, y);
            break;
        }
        case MN_LAYER_SOFTMAX:
            break; /* fused with the loss */
        }
    }
    return st;
}

/* Softmax cross-entropy on the logits; dlogits (scaled by 1/n) into grads[0] if wanted. */
static mn_status loss_and_grad(mn_net *net, int n, int want_grad) {
    mn_view dlogits = want_grad ? mn_view_at(net->grads, 0) : mn_view_none();
    return mn_backend_softmax_xent(net->be, n, net->arch.classes, act(net, net->lay.logits_off),
                                   mn_view_at(net->io, net->lay.io_labels_off), 1.0f / (float)n,
                                   mn_view_at(net->io, net->lay.io_probs_off),
                                   mn_view_at(net->io, net->lay.io_loss_off), dlogits);
}

/* Back-propagates from dlogits in grads[0]; leaves every parameter gradient in region 1.
 * `pass` is the forward's: the layers it made the identity pass gradients through. */
static mn_status backward_ex(mn_net *net, int n, pass_kind pass);
static mn_status backward(mn_net *net, int n) { return backward_ex(net, n, PASS_STANDARD); }
static mn_status backward_ex(mn_net *net, int n, pass_kind pass) {
    mn_backend *be = net->be;
    const size_t half = net->plan.grad_bytes / 2;
    int cur = 0; /* which ping-pong half holds dL/d(output of the layer being processed) */
    mn_status st = MN_OK;
    for (int i = net->arch.n_layers - 2; i >= 1 && !st; i--) {
        const mn_layer *l = &net->arch.layers[i];
        const mn_net_layer *nl = &net->lay.layers[i];
        mn_view dy = mn_view_at(net->grads, cur * half);
        mn_view dx = mn_view_at(net->grads, (1 - cur) * half);
        mn_view x = act(net, nl->in_off), y = act(net, nl->out_off);
        mn_view g0 = param_view(net, 1, nl->param_off), p0 = param_view(net, 0, nl->param_off);
        size_t count = (size_t)n * mn_shape_count(l->in);
        int m = n * l->in.h * l->in.w, c = l->in.c;
        int swaps = 1;
        switch (l->kind) {
        case MN_LAYER_BATCHNORM:
            if (pass == PASS_NO_BN) { /* identity: dx = dy in place, no parameter gradient */
                st = mn_backend_fill(be, g0, 0.0f, 2 * (size_t)c);
                swaps = 0;
                break;
            }
            st = mn_backend_batchnorm_backward(be, m, c, x, dy, p0, act(net, nl->save_off),
                                               act(net, nl->save_off + (size_t)c * sizeof(float)),
                                               dx, g0,
                                               param_view(net, 1, nl->param_off + (size_t)c));
            break;
        case MN_LAYER_CONV3X3: {
            mn_conv_shape s = conv_shape(l, n);
            mn_view db = param_view(net, 1, nl->param_off + (size_t)l->out.c * 9 * c);
            st = mn_backend_conv3x3_backward_weights(be, &s, x, dy, g0, db,
                                                     mn_view_at(net->work, 0));
            if (!st)
                st = mn_backend_conv3x3_backward_data(be, &s, dy, p0, dx, mn_view_at(net->work, 0));
            break;
        }
        case MN_LAYER_RELU:
            st = mn_backend_relu_backward(be, count, y, dy, dy);
            swaps = 0;
            break;
        case MN_LAYER_MAXPOOL2:
            st = mn_backend_maxpool2_backward(be, n, l->in.h, l->in.w, c, x, y, dy, dx);
            break;
        case MN_LAYER_GAP:
            st = mn_backend_gap_backward(be, n, l->in.h, l->in.w, c, dy, dx);
            break;
        case MN_LAYER_DROPOUT:
            if (pass != PASS_STANDARD) { /* no dropout was applied */
                swaps = 0;
                break;
            }
            st = mn_backend_dropout_backward(be, count, act(net, nl->save_off), dy, dy);
            swaps = 0;
            break;
        case MN_LAYER_DENSE:
            st = mn_backend_dense_backward(
                be, n, c, l->out.c, x, p0, dy, dx, g0,
                param_view(net, 1, nl->param_off + (size_t)l->out.c * c));
            break;
        case MN_LAYER_RESCALE:
        case MN_LAYER_SOFTMAX:
            swaps = 0;
            break;
        }
        if (swaps) cur = 1 - cur;
    }
    return st;
}

static mn_status upload_batch(mn_net *net, const uint8_t *images, const int32_t *labels, int n) {
    if (n < 1 || n > net->opts.batch)
        return mn_error_set(MN_ERR_INVALID_ARG, "batch of %d samples for a net planned for %d",
                            n, net->opts.batch);
    mn_status st = mn_upload(net->be, mn_view_at(net->io, net->lay.io_u8_off), images,
                             (size_t)n * mn_shape_count(net->arch.input));
    if (!st && labels) {
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= net->arch.classes)
                return mn_error_set(MN_ERR_INVALID_ARG,
                                    "label %d of batch sample %d is outside [0, %d)", labels[i], i,
                                    net->arch.classes);
        st = mn_upload(net->be, mn_view_at(net->io, net->lay.io_labels_off), labels,
                       (size_t)n * sizeof(int32_t));
    }
    return st;
}

/* Downloads losses and probabilities; sums loss, counts argmax == label. */
static mn_status collect(mn_net *net, const int32_t *labels, int n, double *loss_sum,
                         int *correct, float *probs_out) {
    const int classes = net->arch.classes;
    mn_status st = MN_OK;
    if (loss_sum) {
        st = mn_download(net->be, mn_view_at(net->io, net->lay.io_loss_off), net->host_loss,
                         (size_t)n * sizeof(float));
        if (st) return st;
        double s = 0;
        for (int i = 0; i < n; i++) s += net->host_loss[i];
        *loss_sum = s;
    }
    if (correct || probs_out) {
        st = mn_download(net->be, mn_view_at(net->io, net->lay.io_probs_off), net->host_probs,
                         (size_t)n * classes * sizeof(float));
        if (st) return st;
        if (probs_out) memcpy(probs_out, net->host_probs, (size_t)n * classes * sizeof(float));
        if (correct) {
            int c = 0;
            for (int i = 0; i < n; i++) {
                const float *p = net->host_probs + (size_t)i * classes;
                int best = 0;
                for (int j = 1; j < classes; j++)
                    if (p[j] > p[best]) best = j;
                c += labels && best == labels[i];
            }
            *correct = c;
        }
    }
    return st;
}

mn_status mn_net_forward_backward(mn_net *net, const uint8_t *images, const int32_t *labels,
                                  int n, uint64_t dropout_seed, double *loss_sum) {
    mn_status st = upload_batch(net, images, labels, n);
    if (!st) st = forward(net, n, 1, dropout_seed);
    if (!st) st = loss_and_grad(net, n, 1);
    if (!st) st = backward(net, n);
    if (!st) st = collect(net, labels, n, loss_sum, NULL, NULL);
    return st;
}

mn_status mn_net_train_step(mn_net *net, const uint8_t *images, const int32_t *labels, int n,
                            const mn_adam *adam, uint64_t dropout_seed, double *loss_sum,
                            int *correct) {
    mn_status st = upload_batch(net, images, labels, n);
    if (!st) st = forward(net, n, 1, dropout_seed);
    if (!st) st = loss_and_grad(net, n, 1);
    if (!st) st = backward(net, n);
    if (!st) {
        net->adam_step++;
        st = mn_backend_adam_step(net->be, net->plan.trainable, param_view(net, 0, 0),
                                  param_view(net, 1, 0), param_view(net, 2, 0),
                                  param_view(net, 3, 0), adam->lr, adam->beta1, adam->beta2,
                                  adam->eps, net->adam_step);
    }
    if (!st) st = collect(net, labels, n, loss_sum, correct, NULL);
    return st;
}

mn_status mn_net_evaluate(mn_net *net, const uint8_t *images, const int32_t *labels, int n,
                          double *loss_sum, int *correct, float *probs) {
    if (!labels && (loss_sum || correct))
        return mn_error_set(MN_ERR_INVALID_ARG, "loss and accuracy need labels");
    mn_status st = upload_batch(net, images, labels, n);
    if (!st && !labels) {
        /* Probabilities only: the loss op still reads labels, so give it valid zeros. */
        int32_t *zeros = calloc((size_t)n, sizeof(int32_t));
        if (!zeros) return mn_error_set(MN_ERR_NOMEM, "no memory for %d labels", n);
        st = mn_upload(net->be, mn_view_at(net->io, net->lay.io_labels_off), zeros,
                       (size_t)n * sizeof(int32_t));
        free(zeros);
    }
    if (!st) st = forward(net, n, 0, 0);
    if (!st) st = loss_and_grad(net, n, 0);
    if (!st) st = collect(net, labels, n, loss_sum, correct, probs);
    return st;
}

/* ---- lower-level passes for the zero-cost proxies ---- */

mn_status mn_net_forward_mode(mn_net *net, const uint8_t *images, int n, mn_net_mode mode) {
    if (mode != MN_NET_MODE_TRAIN && mode != MN_NET_MODE_INFER && mode != MN_NET_MODE_NO_BN)
        return mn_error_set(MN_ERR_INVALID_ARG, "unknown net mode %d", (int)mode);
    net->last_mode = LAST_MODE_NONE;
    mn_status st = upload_batch(net, images, NULL, n);
    if (st) return st;
    if (mode == MN_NET_MODE_TRAIN) st = forward_ex(net, n, 1, 0, PASS_NO_DROPOUT);
    else if (mode == MN_NET_MODE_INFER) st = forward_ex(net, n, 0, 0, PASS_STANDARD);
    else st = forward_ex(net, n, 1, 0, PASS_NO_BN);
    if (!st) {
        net->last_mode = (int)mode;
        net->last_n = n;
    }
    return st;
}

mn_status mn_net_backward_from_logits(mn_net *net, const float *dlogits, int n) {
    if (net->last_mode == LAST_MODE_NONE || n != net->last_n)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "backward of %d samples needs a forward of the same samples first "
                            "(last forward: %d)",
                            n, net->last_mode == LAST_MODE_NONE ? 0 : net->last_n);
    if (net->last_mode == MN_NET_MODE_INFER)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "backward after an inference-mode forward is not supported");
    mn_status st = mn_upload(net->be, mn_view_at(net->grads, 0), dlogits,
                             (size_t)n * net->arch.classes * sizeof(float));
    if (!st)
        st = backward_ex(net, n,
                         net->last_mode == MN_NET_MODE_NO_BN ? PASS_NO_BN : PASS_NO_DROPOUT);
    return st;
}

mn_status mn_net_layer_output(mn_net *net, int layer, int n, float *host) {
    if (layer < 0 || layer >= net->arch.n_layers)
        return mn_error_set(MN_ERR_INVALID_ARG, "layer %d outside [0, %d)", layer,
                            net->arch.n_layers);
    if (net->last_mode == LAST_MODE_NONE || n < 1 || n > net->last_n)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "layer output of %d samples but the last forward ran %d", n,
                            net->last_mode == LAST_MODE_NONE ? 0 : net->last_n);
    const mn_layer *l = &net->arch.layers[layer];
    if (l->kind == MN_LAYER_SOFTMAX)
        return mn_error_set(MN_ERR_INVALID_ARG, "layer %d is the softmax, fused with the loss: "
                            "read the logits (layer %d) instead", layer, layer - 1);
    return mn_download(net->be, act(net, net->lay.layers[layer].out_off), host,
                       (size_t)n * mn_shape_count(l->out) * sizeof(float));
}
