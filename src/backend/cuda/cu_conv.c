/* 3x3 stride-1 'same' convolution on CUDA through cuDNN's convolution API.
 *
 * cuDNN takes our layouts as they are: activations as NHWC tensors, OHWI weights as an
 * NHWC (KRSC) filter, pad 1, cross-correlation. Per shape (n, h, w, c, k) the descriptors
 * and, for each direction, cuDNN's heuristic ranking (cudnnGet*Algorithm_v7, not timed,
 * so the same choice every run) are computed once and cached; only algorithms cuDNN
 * reports as deterministic are kept (some backward ones use atomics), and they run under
 * CUDNN_FMA_MATH: no TF32 tensor ops, whose 10-bit mantissas would not match the CPU up
 * to float rounding (CUDNN_DEFAULT_MATH allows them on Ampere and later).
 *
 * After cuDNN's list comes our direct kernel (kernels/mcunas.cu: one thread per output,
 * one block per weight gradient, fixed-order sums, no workspace), so a shape cuDNN offers
 * no deterministic algorithm for still runs; MN_CUDA_CONV=direct uses only it (to check
 * cuDNN's results against ours).
 *
 * Workspace: an op runs the best kept algorithm whose workspace fits in what the caller's
 * workspace view holds. conv3x3_workspace_bytes is the largest first choice over the
 * three directions, for this batch and for a batch of one, so a plan made for the full
 * batch also serves a partial last batch (the net's plan equals what it allocates). The
 * bias is added and its gradient summed by our kernels (fixed-order sums). */
#include "cu_internal.h"

#include <limits.h>
#include <string.h>

enum { MN_CONV_FWD, MN_CONV_DATA, MN_CONV_WEIGHTS };

static mn_status mn_cu_conv_check(const char *op, const mn_conv_shape *s) {
    if (!s) return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument 's' is absent", op);
    int dims[5] = {s->n, s->h, s->w, s->c, s->k};
    size_t pix, ck, t;
    MN_GPU_TRY(mn_backend_dims(op, "n, h, w", dims, 3, 0, &pix));
    MN_GPU_TRY(mn_backend_dims(op, "c, k", dims + 3, 2, 0, &ck));
    const size_t cmax = (size_t)(s->c > s->k ? s->c : s->k);
    if (__builtin_mul_overflow(pix, cmax, &t) || t > INT_MAX || ck > INT_MAX / 9)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: shape n=%d h=%d w=%d c=%d k=%d is too large", op, s->n, s->h,
                            s->w, s->c, s->k);
    return MN_OK;
}

static void mn_cu_conv_entry_clear(mn_cu_conv_entry *e) {
    if (e->xd) mn_cu_fn.cudnnDestroyTensorDescriptor(e->xd);
    if (e->yd) mn_cu_fn.cudnnDestroyTensorDescriptor(e->yd);
    if (e->wd) mn_cu_fn.cudnnDestroyFilterDescriptor(e->wd);
    if (e->cd) mn_cu_fn.cudnnDestroyConvolutionDescriptor(e->cd);
    memset(e, 0, sizeof *e);
}

void mn_cu_conv_cache_clear(mn_cu *c) {
    for (int i = 0; i < MN_CU_CONV_CACHE; i++)
        if (c->conv[i].used) mn_cu_conv_entry_clear(&c->conv[i]);
}

/* Keeps a ranked candidate when cuDNN offers it and calls it deterministic. The ranking
 * lists algorithms under tensor-op math too, whatever the descriptor says: those are
 * dropped, and the rest run under the descriptor's FMA math, so their workspace is asked
 * again under it (an algorithm FMA math cannot run is dropped there). */
static void mn_cu_algo_keep(mn_cu *c, const mn_cu_conv_entry *e, int which,
                            mn_cu_algo_list *l, cudnnStatus_t st, cudnnDeterminism_t det,
                            cudnnMathType_t math, int algo) {
    size_t bytes = 0;
    if (st != CUDNN_STATUS_SUCCESS || det != CUDNN_DETERMINISTIC) return;
    if (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return;
    for (int i = 0; i < l->n; i++)
        if (l->algo[i] == algo) return; /* listed once per math type */
    if (l->n >= MN_CU_ALGOS - 1) return; /* the last slot is the direct kernel's */
    if (which == MN_CONV_FWD)
        st = mn_cu_fn.cudnnGetConvolutionForwardWorkspaceSize(
            c->dnn, e->xd, e->wd, e->cd, e->yd, (cudnnConvolutionFwdAlgo_t)algo, &bytes);
    else if (which == MN_CONV_DATA)
        st = mn_cu_fn.cudnnGetConvolutionBackwardDataWorkspaceSize(
            c->dnn, e->wd, e->yd, e->cd, e->xd, (cudnnConvolutionBwdDataAlgo_t)algo, &bytes);
    else
        st = mn_cu_fn.cudnnGetConvolutionBackwardFilterWorkspaceSize(
            c->dnn, e->xd, e->yd, e->cd, e->wd, (cudnnConvolutionBwdFilterAlgo_t)algo, &bytes);
    if (st != CUDNN_STATUS_SUCCESS) return;
    l->algo[l->n] = algo;
    l->bytes[l->n] = bytes;
    l->n++;
}

#define MN_CU_PERF_MAX 16

static mn_status mn_cu_conv_rank(mn_cu *c, mn_cu_conv_entry *e) {
    int max = 0, got = 0;
    cudnnStatus_t st;
    {
        cudnnConvolutionFwdAlgoPerf_t perf[MN_CU_PERF_MAX];
        st = mn_cu_fn.cudnnGetConvolutionForwardAlgorithmMaxCount(c->dnn, &max);
        if (st == CUDNN_STATUS_SUCCESS)
            st = mn_cu_fn.cudnnGetConvolutionForwardAlgorithm_v7(
                c->dnn, e->xd, e->wd, e->cd, e->yd, max < MN_CU_PERF_MAX ? max : MN_CU_PERF_MAX,
                &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return mn_cu_dnn_fail(st, "cudnnGetConvolutionForwardAlgorithm_v7");
        for (int i = 0; i < got; i++)
            mn_cu_algo_keep(c, e, MN_CONV_FWD, &e->fwd, perf[i].status, perf[i].determinism,
                            perf[i].mathType, (int)perf[i].algo);
    }
    {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MN_CU_PERF_MAX];
        st = mn_cu_fn.cudnnGetConvolutionBackwardDataAlgorithmMaxCount(c->dnn, &max);
        if (st == CUDNN_STATUS_SUCCESS)
            st = mn_cu_fn.cudnnGetConvolutionBackwardDataAlgorithm_v7(
                c->dnn, e->wd, e->yd, e->cd, e->xd, max < MN_CU_PERF_MAX ? max : MN_CU_PERF_MAX,
                &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return mn_cu_dnn_fail(st, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
        for (int i = 0; i < got; i++)
            mn_cu_algo_keep(c, e, MN_CONV_DATA, &e->data, perf[i].status, perf[i].determinism,
                            perf[i].mathType, (int)perf[i].algo);
    }
    {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MN_CU_PERF_MAX];
        st = mn_cu_fn.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(c->dnn, &max);
        if (st == CUDNN_STATUS_SUCCESS)
            st = mn_cu_fn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                c->dnn, e->xd, e->yd, e->cd, e->wd, max < MN_CU_PERF_MAX ? max : MN_CU_PERF_MAX,
                &got, perf);
        if (st != CUDNN_STATUS_SUCCESS)
            return mn_cu_dnn_fail(st, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
        for (int i = 0; i < got; i++)
            mn_cu_algo_keep(c, e, MN_CONV_WEIGHTS, &e->filt, perf[i].status,
                            perf[i].determinism, perf[i].mathType, (int)perf[i].algo);
    }
    return MN_OK;
}

/* Appends our direct kernel, which needs no workspace, to every direction's list. */
static void mn_cu_conv_add_direct(mn_cu_conv_entry *e) {
    mn_cu_algo_list *lists[3] = {&e->fwd, &e->data, &e->filt};
    for (int i = 0; i < 3; i++) {
        lists[i]->algo[lists[i]->n] = MN_CU_ALGO_DIRECT;
        lists[i]->bytes[lists[i]->n] = 0;
        lists[i]->n++;
    }
}

/* Fills *e (descriptors and rankings) for shape s; on failure *e holds nothing. */
static mn_status mn_cu_conv_entry_make(mn_cu *c, const mn_conv_shape *s, mn_cu_conv_entry *e) {
    memset(e, 0, sizeof *e);
    e->s = *s;
    if (c->conv_direct) {
        mn_cu_conv_add_direct(e);
        e->used = 1;
        return MN_OK;
    }
    MN_GPU_TRY(mn_cu_enter(c));
    cudnnStatus_t st = mn_cu_fn.cudnnCreateTensorDescriptor(&e->xd);
    if (st == CUDNN_STATUS_SUCCESS) st = mn_cu_fn.cudnnCreateTensorDescriptor(&e->yd);
    if (st == CUDNN_STATUS_SUCCESS) st = mn_cu_fn.cudnnCreateFilterDescriptor(&e->wd);
    if (st == CUDNN_STATUS_SUCCESS) st = mn_cu_fn.cudnnCreateConvolutionDescriptor(&e->cd);
    if (st == CUDNN_STATUS_SUCCESS)
        st = mn_cu_fn.cudnnSetTensor4dDescriptor(e->xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT,
                                                 s->n, s->c, s->h, s->w);
    if (st == CUDNN_STATUS_SUCCESS)
        st = mn_cu_fn.cudnnSetTensor4dDescriptor(e->yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT,
                                                 s->n, s->k, s->h, s->w);
    if (st == CUDNN_STATUS_SUCCESS)
        st = mn_cu_fn.cudnnSetFilter4dDescriptor(e->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC,
                                                 s->k, s->c, 3, 3);
    if (st == CUDNN_STATUS_SUCCESS)
        st = mn_cu_fn.cudnnSetConvolution2dDescriptor(e->cd, 1, 1, 1, 1, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
    if (st == CUDNN_STATUS_SUCCESS)
        st = mn_cu_fn.cudnnSetConvolutionMathType(e->cd, CUDNN_FMA_MATH);
    mn_status ms = st == CUDNN_STATUS_SUCCESS
                       ? mn_cu_conv_rank(c, e)
                       : mn_cu_dnn_fail(st, "describing conv n=%d h=%d w=%d c=%d k=%d to cuDNN",
                                        s->n, s->h, s->w, s->c, s->k);
    if (ms != MN_OK) {
        mn_cu_conv_entry_clear(e);
        return ms;
    }
    mn_cu_conv_add_direct(e);
    e->used = 1;
    return MN_OK;
}

/* The cache entry of shape s, made on first use (round-robin eviction). */
static mn_status mn_cu_conv_entry_get(mn_cu *c, const mn_conv_shape *s, mn_cu_conv_entry **out) {
    *out = NULL;
    for (int i = 0; i < MN_CU_CONV_CACHE; i++) {
        mn_cu_conv_entry *e = &c->conv[i];
        if (e->used && !memcmp(&e->s, s, sizeof *s)) {
            *out = e;
            return MN_OK;
        }
    }
    mn_cu_conv_entry *e = &c->conv[c->conv_next];
    c->conv_next = (c->conv_next + 1) % MN_CU_CONV_CACHE;
    if (e->used) mn_cu_conv_entry_clear(e);
    MN_GPU_TRY(mn_cu_conv_entry_make(c, s, e));
    *out = e;
    return MN_OK;
}

static const mn_cu_algo_list *mn_cu_conv_list(const mn_cu_conv_entry *e, int which) {
    return which == MN_CONV_FWD ? &e->fwd : which == MN_CONV_DATA ? &e->data : &e->filt;
}

static const char *const mn_cu_conv_dir[] = {"forward", "backward-data", "backward-filter"};

/* The largest first-choice workspace over the three directions for shape s: from the
 * op cache when s is there, else from a ranking made and dropped here (workspace queries
 * cover many batch sizes that never run; they should not evict the shapes that do). */
static mn_status mn_cu_conv_first_bytes(mn_cu *c, const mn_conv_shape *s, size_t *out) {
    mn_cu_conv_entry tmp, *e = NULL;
    *out = 0;
    for (int i = 0; i < MN_CU_CONV_CACHE && !e; i++) {
        mn_cu_conv_entry *x = &c->conv[i];
        if (x->used && !memcmp(&x->s, s, sizeof *s)) e = x;
    }
    if (!e) {
        MN_GPU_TRY(mn_cu_conv_entry_make(c, s, &tmp));
        e = &tmp;
    }
    for (int which = MN_CONV_FWD; which <= MN_CONV_WEIGHTS; which++) {
        const mn_cu_algo_list *l = mn_cu_conv_list(e, which);
        if (l->n && l->bytes[0] > *out) *out = l->bytes[0];
    }
    if (e == &tmp) mn_cu_conv_entry_clear(&tmp);
    return MN_OK;
}

/* Reported: the largest first choice over the batch sizes 1, 2, 4, ... up to the first
 * power of two >= s->n. A smaller batch's set of sizes is a subset, so the number never
 * grows when n shrinks (the net plans the full batch and a partial last batch must fit),
 * and it covers s->n itself wherever cuDNN's needs grow with the batch; an op whose first
 * choice would not fit falls back down its ranking. Memoised per shape. */
size_t mn_cu_conv3x3_workspace_bytes(mn_backend *be, const mn_conv_shape *s) {
    mn_cu *c = mn_cu_impl(be);
    if (mn_cu_conv_check("conv3x3_workspace_bytes", s) != MN_OK) return 0;
    for (int i = 0; i < MN_CU_WS_MEMO; i++)
        if (c->ws_memo[i].used && !memcmp(&c->ws_memo[i].s, s, sizeof *s))
            return c->ws_memo[i].bytes;
    size_t best = 0;
    mn_conv_shape t = *s;
    for (long n = 1;; n *= 2) {
        size_t b;
        t.n = (int)(n < INT_MAX ? n : INT_MAX);
        /* a failure here resurfaces, with its message, when the op itself runs */
        if (mn_cu_conv_first_bytes(c, &t, &b) == MN_OK && b > best) best = b;
        if (n >= s->n) break;
    }
    mn_cu_ws_memo *m = &c->ws_memo[c->ws_memo_next];
    c->ws_memo_next = (c->ws_memo_next + 1) % MN_CU_WS_MEMO;
    m->used = 1;
    m->s = *s;
    m->bytes = best;
    return best;
}

/* The algorithm to run: the best kept one whose workspace fits in `room` bytes. */
static mn_status mn_cu_conv_pick(const char *op, const mn_cu_conv_entry *e, int which,
                                 size_t room, int *algo, size_t *bytes) {
    const mn_cu_algo_list *l = mn_cu_conv_list(e, which);
    for (int i = 0; i < l->n; i++)
        if (l->bytes[i] <= room) {
            *algo = l->algo[i];
            *bytes = l->bytes[i];
            return MN_OK;
        }
    return mn_error_set(MN_ERR_INVALID_ARG,
                        "%s: argument 'workspace' holds %zu bytes but the %s algorithm needs "
                        "%zu (conv3x3_workspace_bytes)",
                        op, room, mn_cu_conv_dir[which], l->bytes[l->n - 1]);
}

/* The workspace pointer, or 0 when the algorithm needs none. */
static CUdeviceptr mn_cu_ws_ptr(mn_view ws, size_t bytes) {
    return bytes && ws.buf ? (CUdeviceptr)ws.buf->base.addr + (CUdeviceptr)ws.offset : 0;
}

#define MN_DEV(p) ((void *)(uintptr_t)(p))

mn_status mn_cu_conv3x3_forward(mn_backend *be, const mn_conv_shape *s, mn_view x, mn_view w,
                                mn_view b, mn_view y, mn_view workspace) {
    static const char op[] = "conv3x3_forward";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr px, pw, pb, py;
    mn_cu_conv_entry *e;
    int algo = MN_CU_ALGO_DIRECT;
    size_t wsb = 0;
    MN_GPU_TRY(mn_cu_conv_check(op, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w, kz = (size_t)s->k;
    MN_GPU_TRY(mn_cu_view(c, op, "x", x, pix * (size_t)s->c, 4, &px));
    MN_GPU_TRY(mn_cu_view(c, op, "w", w, 9 * kz * (size_t)s->c, 4, &pw));
    MN_GPU_TRY(mn_cu_view_opt(c, op, "b", b, kz, 4, &pb));
    MN_GPU_TRY(mn_cu_view(c, op, "y", y, pix * kz, 4, &py));
    MN_GPU_TRY(mn_cu_conv_entry_get(c, s, &e));
    MN_GPU_TRY(mn_cu_conv_pick(op, e, MN_CONV_FWD, mn_cu_view_room(workspace), &algo, &wsb));
    const float one = 1.0f, zero = 0.0f;
    if (algo == MN_CU_ALGO_DIRECT) {
        MN_GPU_TRY(mn_gpu_run(be, MN_GPU_CONV_FWD_DIRECT, pix * kz,
                              MN_GPU_ARGS(MN_KP(px), MN_KP(pw), MN_KP(py), MN_GA_U32(s->h),
                                          MN_GA_U32(s->w), MN_GA_U32(s->c), MN_GA_U32(s->k),
                                          MN_GA_U32(pix * kz))));
        goto bias;
    }
    MN_GPU_TRY(mn_cu_enter(c));
    cudnnStatus_t st = mn_cu_fn.cudnnConvolutionForward(
        c->dnn, &one, e->xd, MN_DEV(px), e->wd, MN_DEV(pw), e->cd, (cudnnConvolutionFwdAlgo_t)algo,
        MN_DEV(mn_cu_ws_ptr(workspace, wsb)), wsb, &zero, e->yd, MN_DEV(py));
    if (st != CUDNN_STATUS_SUCCESS)
        return mn_cu_dnn_fail(st, "%s: cudnnConvolutionForward (algo %d)", op, algo);
bias:
    if (!pb) return MN_OK;
    return mn_gpu_bias_rows(be, mn_cu_ptr(py), mn_cu_ptr(pb), pix, kz);
}

mn_status mn_cu_conv3x3_backward_data(mn_backend *be, const mn_conv_shape *s, mn_view dy,
                                      mn_view w, mn_view dx, mn_view workspace) {
    static const char op[] = "conv3x3_backward_data";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr pdy, pw, pdx;
    mn_cu_conv_entry *e;
    int algo = MN_CU_ALGO_DIRECT;
    size_t wsb = 0;
    MN_GPU_TRY(mn_cu_conv_check(op, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w;
    MN_GPU_TRY(mn_cu_view(c, op, "dy", dy, pix * (size_t)s->k, 4, &pdy));
    MN_GPU_TRY(mn_cu_view(c, op, "w", w, 9 * (size_t)s->k * (size_t)s->c, 4, &pw));
    MN_GPU_TRY(mn_cu_view(c, op, "dx", dx, pix * (size_t)s->c, 4, &pdx));
    MN_GPU_TRY(mn_cu_conv_entry_get(c, s, &e));
    MN_GPU_TRY(mn_cu_conv_pick(op, e, MN_CONV_DATA, mn_cu_view_room(workspace), &algo, &wsb));
    if (algo == MN_CU_ALGO_DIRECT)
        return mn_gpu_run(be, MN_GPU_CONV_BWD_DATA_DIRECT, pix * (size_t)s->c,
                          MN_GPU_ARGS(MN_KP(pdy), MN_KP(pw), MN_KP(pdx), MN_GA_U32(s->h),
                                      MN_GA_U32(s->w), MN_GA_U32(s->c), MN_GA_U32(s->k),
                                      MN_GA_U32(pix * (size_t)s->c)));
    const float one = 1.0f, zero = 0.0f;
    MN_GPU_TRY(mn_cu_enter(c));
    cudnnStatus_t st = mn_cu_fn.cudnnConvolutionBackwardData(
        c->dnn, &one, e->wd, MN_DEV(pw), e->yd, MN_DEV(pdy), e->cd,
        (cudnnConvolutionBwdDataAlgo_t)algo, MN_DEV(mn_cu_ws_ptr(workspace, wsb)), wsb, &zero,
        e->xd, MN_DEV(pdx));
    if (st != CUDNN_STATUS_SUCCESS)
        return mn_cu_dnn_fail(st, "%s: cudnnConvolutionBackwardData (algo %d)", op, algo);
    return MN_OK;
}

mn_status mn_cu_conv3x3_backward_weights(mn_backend *be, const mn_conv_shape *s, mn_view x,
                                         mn_view dy, mn_view dw, mn_view db,
                                         mn_view workspace) {
    static const char op[] = "conv3x3_backward_weights";
    mn_cu *c = mn_cu_impl(be);
    CUdeviceptr px, pdy, pdw, pdb;
    mn_cu_conv_entry *e;
    int algo = MN_CU_ALGO_DIRECT;
    size_t wsb = 0;
    MN_GPU_TRY(mn_cu_conv_check(op, s));
    const size_t pix = (size_t)s->n * (size_t)s->h * (size_t)s->w, kz = (size_t)s->k;
    MN_GPU_TRY(mn_cu_view(c, op, "x", x, pix * (size_t)s->c, 4, &px));
    MN_GPU_TRY(mn_cu_view(c, op, "dy", dy, pix * kz, 4, &pdy));
    MN_GPU_TRY(mn_cu_view(c, op, "dw", dw, 9 * kz * (size_t)s->c, 4, &pdw));
    MN_GPU_TRY(mn_cu_view_opt(c, op, "db", db, kz, 4, &pdb));
    MN_GPU_TRY(mn_cu_conv_entry_get(c, s, &e));
    MN_GPU_TRY(mn_cu_conv_pick(op, e, MN_CONV_WEIGHTS, mn_cu_view_room(workspace), &algo, &wsb));
    if (algo == MN_CU_ALGO_DIRECT) {
        MN_GPU_TRY(mn_gpu_run_groups(
            be, MN_GPU_CONV_BWD_FILTER_DIRECT, 9 * kz * (size_t)s->c,
            MN_GPU_ARGS(MN_KP(px), MN_KP(pdy), MN_KP(pdw), MN_GA_U32(s->n), MN_GA_U32(s->h),
                        MN_GA_U32(s->w), MN_GA_U32(s->c), MN_GA_U32(s->k))));
        goto bias;
    }
    const float one = 1.0f, zero = 0.0f;
    MN_GPU_TRY(mn_cu_enter(c));
    cudnnStatus_t st = mn_cu_fn.cudnnConvolutionBackwardFilter(
        c->dnn, &one, e->xd, MN_DEV(px), e->yd, MN_DEV(pdy), e->cd,
        (cudnnConvolutionBwdFilterAlgo_t)algo, MN_DEV(mn_cu_ws_ptr(workspace, wsb)), wsb,
        &zero, e->wd, MN_DEV(pdw));
    if (st != CUDNN_STATUS_SUCCESS)
        return mn_cu_dnn_fail(st, "%s: cudnnConvolutionBackwardFilter (algo %d)", op, algo);
bias:
    if (!pdb) return MN_OK;
    return mn_gpu_colsum(be, mn_cu_ptr(pdy), pix, kz, mn_cu_ptr(pdb));
}
