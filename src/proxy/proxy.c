/* Zero-cost proxies through the net API (definitions in include/mcunas/proxy.h). */
#include "mcunas/proxy.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/clock.h"
#include "mcunas/net.h"
#include "mcunas/rng.h"

void mn_proxy_options_default(mn_proxy_options *o) {
    memset(o, 0, sizeof *o);
    o->which = MN_PROXY_ALL;
    o->batch = 8;
    o->inits = 3;
    o->regions_inputs = 1000;
    o->regions_div = 8;
    o->seed = 1;
}

/* LAPACK's dsyev from the OpenBLAS the backend already links (Debian's libopenblas exports
 * the whole LAPACK): linking liblapacke instead pulls in liblapack.so.3 and libblas.so.3, a
 * second BLAS whose cblas_sgemm can interpose on OpenBLAS's. Fortran ABI: arguments by
 * reference, then the hidden lengths of the two character arguments. */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info, size_t jobz_len,
                   size_t uplo_len);

mn_status mn_proxy_sym_eigenvalues(double *a, int n, double *w) {
    /* symmetric: row-major and column-major storage are the same matrix */
    int info = 0, lwork = -1;
    double query = 0;
    dsyev_("N", "U", &n, a, &n, w, &query, &lwork, &info, 1, 1);
    if (info != 0)
        return mn_error_set(MN_ERR_BACKEND, "dsyev workspace query for a %dx%d matrix failed "
                            "(info %d)", n, n, info);
    lwork = (int)query;
    if (lwork < 3 * n) lwork = 3 * n;
    double *work = malloc((size_t)lwork * sizeof(double));
    if (!work) return mn_error_set(MN_ERR_NOMEM, "no memory for dsyev's workspace (%d)", lwork);
    dsyev_("N", "U", &n, a, &n, w, work, &lwork, &info, 1, 1);
    free(work);
    if (info != 0)
        return mn_error_set(MN_ERR_BACKEND, "dsyev on a %dx%d matrix failed (info %d)", n, n,
                            info);
    return MN_OK;
}

/* ---- ReLU codes ---- */

mn_status mn_proxy_relu_codes(struct mn_net *net, int n, uint64_t **codes, size_t *words) {
    const mn_arch *a = mn_net_arch(net);
    size_t bits = 0, largest = 0;
    for (int i = 0; i < a->n_layers; i++)
        if (a->layers[i].kind == MN_LAYER_RELU) {
            size_t c = mn_shape_count(a->layers[i].out);
            bits += c;
            if (c > largest) largest = c;
        }
    size_t w = (bits + 63) / 64;
    *words = w;
    *codes = calloc((size_t)n * (w ? w : 1), sizeof(uint64_t));
    float *buf = malloc((size_t)n * (largest ? largest : 1) * sizeof(float));
    if (!*codes || !buf) {
        free(*codes);
        *codes = NULL;
        free(buf);
        return mn_error_set(MN_ERR_NOMEM, "no memory for the ReLU codes of %d samples (%zu bits)",
                            n, bits);
    }
    size_t base = 0;
    mn_status st = MN_OK;
    for (int i = 0; i < a->n_layers && !st; i++) {
        if (a->layers[i].kind != MN_LAYER_RELU) continue;
        size_t c = mn_shape_count(a->layers[i].out);
        st = mn_net_layer_output(net, i, n, buf);
        for (int s = 0; s < n && !st; s++) {
            uint64_t *row = *codes + (size_t)s * w;
            const float *x = buf + (size_t)s * c;
            for (size_t j = 0; j < c; j++)
                if (x[j] > 0.0f) row[(base + j) >> 6] |= 1ull << ((base + j) & 63);
        }
        base += c;
    }
    free(buf);
    if (st) {
        free(*codes);
        *codes = NULL;
    }
    return st;
}

static uint64_t hash_row(const uint64_t *r, size_t words) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < words; i++) {
        uint64_t z = r[i] + h;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        h = z ^ (z >> 31);
    }
    return h;
}

/* A row's sort key. Each carries its row and width: ranking computes the regions of several
 * candidates at once on worker threads, so the comparison can use no shared context. */
typedef struct {
    uint64_t h;
    const uint64_t *codes;
    size_t words;
    int row;
} hrow;

static int hrow_cmp(const void *pa, const void *pb) {
    const hrow *a = pa, *b = pb;
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    int c = memcmp(a->codes, b->codes, a->words * sizeof(uint64_t));
    if (c) return c;
    return (a->row > b->row) - (a->row < b->row);
}

size_t mn_proxy_count_distinct(const uint64_t *codes, int n, size_t words) {
    if (n <= 0) return 0;
    hrow *h = malloc((size_t)n * sizeof *h);
    if (!h) return 0;
    for (int i = 0; i < n; i++) {
        h[i].codes = codes + (size_t)i * words;
        h[i].h = hash_row(h[i].codes, words);
        h[i].words = words;
        h[i].row = i;
    }
    qsort(h, (size_t)n, sizeof *h, hrow_cmp);
    size_t distinct = 1;
    for (int i = 1; i < n; i++)
        if (h[i].h != h[i - 1].h || memcmp(h[i].codes, h[i - 1].codes, words * sizeof(uint64_t)) != 0)
            distinct++;
    free(h);
    return distinct;
}

mn_status mn_proxy_naswot_logdet(const uint64_t *codes, int n, size_t words, size_t bits,
                                 double *out) {
    double *k = malloc((size_t)n * n * sizeof(double));
    double *w = malloc((size_t)n * sizeof(double));
    if (!k || !w) {
        free(k);
        free(w);
        return mn_error_set(MN_ERR_NOMEM, "no memory for a %dx%d kernel", n, n);
    }
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            size_t diff = 0;
            for (size_t q = 0; q < words; q++)
                diff += (size_t)__builtin_popcountll(codes[(size_t)i * words + q] ^
                                                     codes[(size_t)j * words + q]);
            k[(size_t)i * n + j] = k[(size_t)j * n + i] = (double)(bits - diff);
        }
    mn_status st = mn_proxy_sym_eigenvalues(k, n, w);
    if (!st) {
        double s = 0;
        for (int i = 0; i < n; i++) s += log(fabs(w[i]));
        *out = s;
    }
    free(k);
    free(w);
    return st;
}

/* ---- helpers over the net ---- */

static mn_status logits_of(mn_net *net, int n, float *logits) {
    const mn_arch *a = mn_net_arch(net);
    return mn_net_layer_output(net, a->n_layers - 2, n, logits);
}

/* kappa of Theta = J J^T from n rows of p floats. */
static mn_status condition_number(const float *j, int n, size_t p, double *kappa) {
    double *t = malloc((size_t)n * n * sizeof(double));
    double *w = malloc((size_t)n * sizeof(double));
    if (!t || !w) {
        free(t);
        free(w);
        return mn_error_set(MN_ERR_NOMEM, "no memory for a %dx%d NTK", n, n);
    }
    for (int a = 0; a < n; a++)
        for (int b = a; b < n; b++) {
            /* float inputs, double accumulation; P can exceed BLAS's int in theory only */
            double d = cblas_dsdot((blasint)p, j + (size_t)a * p, 1, j + (size_t)b * p, 1);
            t[(size_t)a * n + b] = t[(size_t)b * n + a] = d;
        }
    mn_status st = mn_proxy_sym_eigenvalues(t, n, w);
    if (!st) {
        double lo = w[0], hi = w[n - 1];
        *kappa = (lo > 0.0 && isfinite(hi)) ? hi / lo : INFINITY;
    }
    free(t);
    free(w);
    return st;
}

static mn_status ntk_rows(mn_net *net, const uint8_t *images, int n, float *j, size_t p) {
    const int classes = mn_net_arch(net)->classes;
    float *dl = calloc((size_t)n * classes, sizeof(float));
    if (!dl) return mn_error_set(MN_ERR_NOMEM, "no memory for %d x %d dlogits", n, classes);
    mn_status st = mn_net_forward_mode(net, images, n, MN_NET_MODE_TRAIN);
    for (int i = 0; i < n && !st; i++) {
        memset(dl, 0, (size_t)n * classes * sizeof(float));
        for (int c = 0; c < classes; c++) dl[(size_t)i * classes + c] = 1.0f;
        st = mn_net_backward_from_logits(net, dl, n);
        if (!st && p) st = mn_net_get_grads(net, j + (size_t)i * p);
    }
    free(dl);
    return st;
}

/* grad_norm and snip from the cross-entropy of the batch; leaves the forward for NASWOT. */
static mn_status grad_proxies(mn_net *net, const uint8_t *images, const int32_t *labels, int n,
                              float *params, float *grads, size_t p, double *gn, double *snip) {
    const int classes = mn_net_arch(net)->classes;
    float *lg = malloc((size_t)n * classes * sizeof(float));
    if (!lg) return mn_error_set(MN_ERR_NOMEM, "no memory for %d x %d logits", n, classes);
    mn_status st = mn_net_forward_mode(net, images, n, MN_NET_MODE_TRAIN);
    if (!st) st = logits_of(net, n, lg);
    if (!st) {
        for (int i = 0; i < n; i++) { /* softmax - onehot, over n (the mean loss) */
            float *r = lg + (size_t)i * classes;
            float m = r[0];
            for (int c = 1; c < classes; c++) m = r[c] > m ? r[c] : m;
            double z = 0;
            for (int c = 0; c < classes; c++) z += exp((double)(r[c] - m));
            for (int c = 0; c < classes; c++)
                r[c] = (float)((exp((double)(r[c] - m)) / z - (c == labels[i] ? 1.0 : 0.0)) /
                               (double)n);
        }
        st = mn_net_backward_from_logits(net, lg, n);
    }
    if (!st) st = mn_net_get_grads(net, grads);
    if (!st) st = mn_net_get_params(net, params, NULL);
    if (!st) {
        double s2 = 0, s1 = 0;
        for (size_t i = 0; i < p; i++) {
            s2 += (double)grads[i] * grads[i];
            s1 += fabs((double)params[i] * grads[i]);
        }
        *gn = sqrt(s2);
        *snip = s1;
    }
    free(lg);
    return st;
}

static mn_status synflow(mn_net *net, float *params, float *grads, size_t p, double *out) {
    const mn_arch *a = mn_net_arch(net);
    size_t px = mn_shape_count(a->input);
    uint8_t *ones = malloc(px);
    float *dl = malloc((size_t)a->classes * sizeof(float));
    if (!ones || !dl) {
        free(ones);
        free(dl);
        return mn_error_set(MN_ERR_NOMEM, "no memory for the synflow input");
    }
    memset(ones, 255, px);
    for (int c = 0; c < a->classes; c++) dl[c] = 1.0f;
    mn_status st = mn_net_get_params(net, params, NULL);
    if (!st) {
        for (size_t i = 0; i < p; i++) params[i] = fabsf(params[i]);
        st = mn_net_set_params(net, params, NULL);
    }
    if (!st) st = mn_net_forward_mode(net, ones, 1, MN_NET_MODE_NO_BN);
    if (!st) st = mn_net_backward_from_logits(net, dl, 1);
    if (!st) st = mn_net_get_grads(net, grads);
    if (!st) {
        double s = 0;
        for (size_t i = 0; i < p; i++) s += (double)params[i] * grads[i];
        *out = s;
    }
    free(ones);
    free(dl);
    return st;
}

static mn_status regions(const mn_arch *arch, mn_backend *be, const mn_proxy_options *o,
                         double *out) {
    int div = o->regions_div > 0 ? o->regions_div : 8;
    int kt = (arch->k + div - 1) / div;
    int s = 1 << arch->cells; /* the smallest input the cells still fit */
    if (s < 2) s = 2;
    mn_shape in = {s, s, arch->input.c};
    mn_arch thin;
    mn_status st = mn_arch_build(&thin, kt, arch->cells, arch->layout, in, arch->classes);
    if (st) return st;
    const int r = o->regions_inputs > 0 ? o->regions_inputs : 1000;
    size_t px = mn_shape_count(in);
    uint8_t *x = malloc((size_t)r * px);
    if (!x) return mn_error_set(MN_ERR_NOMEM, "no memory for %d random inputs", r);
    /* Inputs on a random 2-D plane through input space, x = x0 + a u + b v with (a, b)
     * uniform in [-1, 1]^2: the regions crossing a 2-D slice (as in Hanin & Rolnick's
     * counts) stay far below R where random points of the full space would each land in a
     * region of their own. */
    mn_rng rng;
    mn_rng_seed(&rng, o->seed ^ 0x5EEDull);
    float *base = malloc(3 * px * sizeof(float));
    if (!base) {
        free(x);
        return mn_error_set(MN_ERR_NOMEM, "no memory for the regions' plane");
    }
    for (size_t i = 0; i < px; i++) {
        base[i] = (float)(64.0 + 128.0 * mn_rng_uniform(&rng));
        base[px + i] = (float)(128.0 * mn_rng_uniform(&rng) - 64.0);
        base[2 * px + i] = (float)(128.0 * mn_rng_uniform(&rng) - 64.0);
    }
    for (int q = 0; q < r; q++) {
        double a = 2.0 * mn_rng_uniform(&rng) - 1.0, b = 2.0 * mn_rng_uniform(&rng) - 1.0;
        for (size_t i = 0; i < px; i++) {
            double v = base[i] + a * base[px + i] + b * base[2 * px + i];
            x[(size_t)q * px + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
        }
    }
    free(base);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = r;
    mn_net *net = NULL;
    st = mn_net_create(&thin, be, &no, &net);
    if (!st) st = mn_net_init(net, o->seed);
    if (!st) st = mn_net_forward_mode(net, x, r, MN_NET_MODE_TRAIN);
    uint64_t *codes = NULL;
    size_t words = 0;
    if (!st) st = mn_proxy_relu_codes(net, r, &codes, &words);
    if (!st) *out = (double)mn_proxy_count_distinct(codes, r, words);
    free(codes);
    free(x);
    mn_net_destroy(net);
    return st;
}

mn_status mn_proxy_compute(const mn_arch *arch, mn_backend *be, const uint8_t *images,
                           const int32_t *labels, int n, const mn_proxy_options *opts,
                           mn_proxy_scores *out) {
    double t0 = mn_time_now();
    mn_proxy_options o;
    if (opts) o = *opts;
    else mn_proxy_options_default(&o);
    unsigned which = o.which ? o.which : MN_PROXY_ALL;
    out->ntk_cond = out->regions = out->naswot = out->synflow = out->grad_norm = out->snip = NAN;
    out->flops = 2.0 * (double)mn_arch_macc(arch);
    out->params = (double)mn_arch_params(arch);
    out->seconds = 0;
    if (o.batch < 2) return mn_error_set(MN_ERR_INVALID_ARG, "proxy batch must be >= 2 (got %d)",
                                         o.batch);
    if (o.inits < 1) return mn_error_set(MN_ERR_INVALID_ARG, "inits must be >= 1 (got %d)", o.inits);
    const int nb = o.batch;
    if (which & (MN_PROXY_NTK | MN_PROXY_NASWOT | MN_PROXY_GRAD_NORM | MN_PROXY_SNIP)) {
        if (n < nb)
            return mn_error_set(MN_ERR_INVALID_ARG, "the proxies need %d images, %d given", nb, n);
        for (int i = 0; labels && i < nb; i++)
            if (labels[i] < 0 || labels[i] >= arch->classes)
                return mn_error_set(MN_ERR_INVALID_ARG, "label %d of sample %d outside [0, %d)",
                                    labels[i], i, arch->classes);
    }
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = nb;
    mn_net *net = NULL;
    mn_status st = mn_net_create(arch, be, &no, &net);
    if (st) return st;
    size_t p = mn_net_get_plan(net)->trainable;
    int rows = (which & MN_PROXY_NTK) ? nb : 1;
    float *params = malloc((p ? p : 1) * sizeof(float));
    float *grads = malloc((p ? p : 1) * sizeof(float));
    float *j = malloc((size_t)rows * (p ? p : 1) * sizeof(float));
    if (!params || !grads || !j) {
        st = mn_error_set(MN_ERR_NOMEM, "no memory for %d x %zu NTK rows", rows, p);
        goto done;
    }
    if ((st = mn_net_init(net, o.seed))) goto done;
    if (which & (MN_PROXY_GRAD_NORM | MN_PROXY_SNIP | MN_PROXY_NASWOT)) {
        double gn = NAN, sn = NAN;
        if (!labels) {
            st = mn_error_set(MN_ERR_INVALID_ARG, "grad_norm, snip and naswot need labels");
            goto done;
        }
        if ((st = grad_proxies(net, images, labels, nb, params, grads, p, &gn, &sn))) goto done;
        if (which & MN_PROXY_GRAD_NORM) out->grad_norm = gn;
        if (which & MN_PROXY_SNIP) out->snip = sn;
        if (which & MN_PROXY_NASWOT) { /* the same training-mode forward */
            uint64_t *codes = NULL;
            size_t words = 0, bits = 0;
            for (int i = 0; i < arch->n_layers; i++)
                if (arch->layers[i].kind == MN_LAYER_RELU)
                    bits += mn_shape_count(arch->layers[i].out);
            if ((st = mn_proxy_relu_codes(net, nb, &codes, &words))) goto done;
            st = mn_proxy_naswot_logdet(codes, nb, words, bits, &out->naswot);
            free(codes);
            if (st) goto done;
        }
    }
    if (which & MN_PROXY_NTK) {
        double sum = 0;
        for (int t = 0; t < o.inits; t++) {
            if (t > 0 && (st = mn_net_init(net, o.seed + (uint64_t)t))) goto done;
            if ((st = ntk_rows(net, images, nb, j, p))) goto done;
            double kappa = INFINITY;
            if ((st = condition_number(j, nb, p, &kappa))) goto done;
            sum += kappa;
        }
        out->ntk_cond = sum / o.inits;
    }
    if (which & MN_PROXY_SYNFLOW) {
        if ((st = mn_net_init(net, o.seed))) goto done;
        if ((st = synflow(net, params, grads, p, &out->synflow))) goto done;
    }
    if (which & MN_PROXY_REGIONS) {
        mn_net_destroy(net); /* one net at a time on the backend */
        net = NULL;
        if ((st = regions(arch, be, &o, &out->regions))) goto done;
    }
done:
    free(params);
    free(grads);
    free(j);
    mn_net_destroy(net);
    out->seconds = mn_time_now() - t0;
    return st;
}
