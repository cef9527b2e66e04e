/* The MONAS objective over the A(k, c) space: filter by the evaluator's check (target, then
 * host and device budgets), compute the proxies of what is left on a pool of workers, combine
 * the indicator ranks with weights. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/budget.h"
#include "mcunas/clock.h"
#include "mcunas/rank.h"
#include "mcunas/rng.h"

typedef struct {
    double v;
    int i;
} vi;

static int vi_cmp(const void *pa, const void *pb) {
    const vi *a = pa, *b = pb;
    /* NAN last */
    int na = isnan(a->v), nb = isnan(b->v);
    if (na != nb) return na - nb;
    if (!na && a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

void mn_rank_values(const double *v, int n, int lower_is_better, double *rank) {
    vi *t = malloc((size_t)(n > 0 ? n : 1) * sizeof *t);
    if (!t) { /* no memory: everyone ties */
        for (int i = 0; i < n; i++) rank[i] = (n + 1) / 2.0;
        return;
    }
    for (int i = 0; i < n; i++) {
        t[i].v = isnan(v[i]) ? NAN : (lower_is_better ? v[i] : -v[i]);
        t[i].i = i;
    }
    qsort(t, (size_t)n, sizeof *t, vi_cmp);
    for (int a = 0; a < n;) {
        int b = a + 1;
        while (b < n && ((isnan(t[b].v) && isnan(t[a].v)) || t[b].v == t[a].v)) b++;
        double r = (a + 1 + b) / 2.0; /* mean of ranks a+1 .. b */
        for (int q = a; q < b; q++) rank[t[q].i] = r;
        a = b;
    }
    free(t);
}

static int entry_cmp(const void *pa, const void *pb) {
    const mn_rank_entry *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? -1 : 1;
    if (a->s.flops != b->s.flops) return a->s.flops < b->s.flops ? -1 : 1;
    if (a->k != b->k) return a->k - b->k;
    if (a->cells != b->cells) return a->cells - b->cells;
    return (int)a->layout - (int)b->layout;
}

mn_status mn_rank_combine(mn_rank_entry *e, int n, double wf, double wl) {
    if (!(wf >= 0 && wl >= 0 && wf + wl <= 1.0))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "MONAS weights wf %g and wl %g must be >= 0 with wf + wl <= 1", wf, wl);
    if (n <= 0) return MN_OK;
    double *v = malloc((size_t)n * sizeof(double));
    double *r = malloc((size_t)n * 4 * sizeof(double));
    if (!v || !r) {
        free(v);
        free(r);
        return mn_error_set(MN_ERR_NOMEM, "no memory to rank %d candidates", n);
    }
    for (int i = 0; i < n; i++) v[i] = e[i].s.ntk_cond;
    mn_rank_values(v, n, 1, r);
    for (int i = 0; i < n; i++) v[i] = e[i].s.regions;
    mn_rank_values(v, n, 0, r + n);
    for (int i = 0; i < n; i++) v[i] = e[i].s.flops;
    mn_rank_values(v, n, 1, r + 2 * n);
    for (int i = 0; i < n; i++) v[i] = e[i].latency_ms;
    mn_rank_values(v, n, 1, r + 3 * n);
    const double wa = (1.0 - wf - wl) / 2.0;
    for (int i = 0; i < n; i++) {
        e[i].r_ntk = r[i];
        e[i].r_regions = r[n + i];
        e[i].r_flops = r[2 * n + i];
        e[i].r_latency = r[3 * n + i];
        e[i].score = wa * e[i].r_ntk + wa * e[i].r_regions + wf * e[i].r_flops +
                     wl * e[i].r_latency;
    }
    qsort(e, (size_t)n, sizeof *e, entry_cmp);
    for (int i = 0; i < n; i++) e[i].rank = i + 1;
    free(v);
    free(r);
    return MN_OK;
}

void mn_rank_options_default(mn_rank_options *o) {
    memset(o, 0, sizeof *o);
    mn_proxy_options_default(&o->proxy);
    o->wf = 0.1;
    o->wl = 0.1;
    o->k_min = 1;
    o->k_max = 64;
    o->train_batch = 16;
    o->runtime_bytes = MN_RUNTIME_BYTES_UNMEASURED;
    o->backend = "cpu";
    o->sample_seed = 7;
}

void mn_rank_result_free(mn_rank_result *r) {
    if (!r) return;
    free(r->entries);
    memset(r, 0, sizeof *r);
}

mn_status mn_rank_space(const mn_rank_options *o, const mn_loaded_data *data,
                        mn_rank_result *out) {
    memset(out, 0, sizeof *out);
    if (!o->target) return mn_error_set(MN_ERR_INVALID_ARG, "ranking needs a target MCU");
    if (o->k_min < 1 || o->k_max < o->k_min)
        return mn_error_set(MN_ERR_INVALID_ARG, "k range [%d, %d] is empty or below 1", o->k_min,
                            o->k_max);
    const int nb = o->proxy.batch;
    if (nb < 2) return mn_error_set(MN_ERR_INVALID_ARG, "proxy batch must be >= 2 (got %d)", nb);
    if (data->train.count < (size_t)nb)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "the proxies need %d training images, the dataset has %zu", nb,
                            data->train.count);
    double t0 = mn_time_now();
    const unsigned layouts = o->layouts ? o->layouts : (1u << MN_LAYOUT_COUNT) - 1;
    int max_cells = mn_arch_max_cells(data->info.shape);
    if (max_cells < 0) max_cells = 0;
    size_t cap = (size_t)(o->k_max - o->k_min + 1) * (size_t)(max_cells + 1) * MN_LAYOUT_COUNT;
    mn_rank_entry *e = calloc(cap ? cap : 1, sizeof *e);
    if (!e) return mn_error_set(MN_ERR_NOMEM, "no memory for %zu candidates", cap);
    mn_search_budget bud = {.target = o->target,
                            .latency = o->latency,
                            .io_int8 = o->io_int8,
                            .max_latency_ms = o->max_latency_ms,
                            .backend = o->backend,
                            .threads = o->threads,
                            .device = o->device,
                            .batch = o->train_batch,
                            .host_mem = o->host_mem,
                            .device_mem = o->device_mem,
                            .runtime_bytes = o->runtime_bytes};
    if (bud.runtime_bytes == MN_RUNTIME_BYTES_UNMEASURED) {
        int first = 0;
        while (first < MN_LAYOUT_COUNT - 1 && !(layouts & (1u << first))) first++;
        bud.runtime_bytes = o->host_mem ? mn_search_runtime_bytes(&bud, (mn_layout)first,
                                                                  data->info.shape,
                                                                  data->info.classes)
                                        : 0;
    }
    mn_backend *be = NULL; /* plans every candidate; created by the first check that plans */
    mn_status st = MN_OK;
    size_t n = 0;
    /* 1. The cheap filters: depth, then the evaluator's check. */
    for (int lay = 0; lay < MN_LAYOUT_COUNT && !st; lay++) {
        if (!(layouts & (1u << lay))) continue;
        for (int k = o->k_min; k <= o->k_max && !st; k++)
            for (int c = 0; c <= max_cells && !st; c++) {
                out->considered++;
                mn_arch arch;
                st = mn_arch_build(&arch, k, c, (mn_layout)lay, data->info.shape,
                                   data->info.classes);
                if (st == MN_ERR_INFEASIBLE) {
                    mn_error_clear();
                    st = MN_OK;
                    out->infeasible++;
                    continue;
                }
                if (st) break;
                mn_candidate_check chk;
                if ((st = mn_search_check_candidate(&bud, &arch, data->train.count, &be, &chk)))
                    break;
                if (chk.fit == MN_CANDIDATE_INFEASIBLE) {
                    out->infeasible++;
                    continue;
                }
                if (chk.fit == MN_CANDIDATE_PRUNED) {
                    out->pruned++;
                    continue;
                }
                mn_rank_entry *x = &e[n++];
                x->k = k;
                x->cells = c;
                x->layout = (mn_layout)lay;
                x->latency_ms = chk.est.latency_ms;
                x->ram_bytes = chk.est.ram_bytes;
                x->flash_bytes = chk.est.flash_bytes;
            }
    }
    mn_backend_destroy(be);
    out->filter_seconds = mn_time_now() - t0;
    /* 2. The batch: nb distinct training images chosen by sample_seed. */
    uint8_t *img = NULL;
    int32_t *lab = NULL;
    uint32_t *idx = NULL;
    const size_t px = mn_shape_count(data->info.shape);
    if (!st && n) {
        img = malloc((size_t)nb * px);
        lab = malloc((size_t)nb * sizeof(int32_t));
        idx = malloc(data->train.count * sizeof(uint32_t));
        if (!img || !lab || !idx) st = mn_error_set(MN_ERR_NOMEM, "no memory for the proxy batch");
    }
    if (!st && n) {
        mn_rng rng;
        mn_rng_seed(&rng, o->sample_seed);
        for (size_t i = 0; i < data->train.count; i++) idx[i] = (uint32_t)i;
        for (int i = 0; i < nb; i++) { /* partial Fisher-Yates */
            size_t r = (size_t)i + (size_t)mn_rng_below(&rng, data->train.count - (size_t)i);
            uint32_t tmp = idx[i];
            idx[i] = idx[r];
            idx[r] = tmp;
            memcpy(img + (size_t)i * px, data->train.images + (size_t)idx[i] * px, px);
            lab[i] = data->train.labels[idx[i]];
        }
    }
    /* 3. The proxies: candidates spread over `workers` threads, each with its own
     * single-threaded backend (tiny nets gain more from this than from splitting each op),
     * so every candidate's numbers are the same whatever the worker count. */
    double t1 = mn_time_now();
    const int is_cpu = !o->backend || strcmp(o->backend, "cpu") == 0;
    int workers = o->workers > 0 ? o->workers : omp_get_max_threads();
    if (!is_cpu) workers = 1; /* one device: one backend at a time */
    if (workers < 1) workers = 1;
    if ((size_t)workers > n) workers = n ? (int)n : 1;
    mn_status *wst = calloc((size_t)workers, sizeof *wst);
    char (*wmsg)[512] = calloc((size_t)workers, sizeof *wmsg);
    if (!st && n && (!wst || !wmsg)) st = mn_error_set(MN_ERR_NOMEM, "no memory for %d workers", workers);
    if (!st && n) {
        size_t next = 0, done = 0;
        int failed = 0;
#pragma omp parallel num_threads(workers)
        {
            const int w = omp_get_thread_num();
            /* BLAS and LAPACK in the proxies (NTK, NASWOT) on this worker's thread alone: a
             * team of one is not a parallel region to OpenMP, so OpenBLAS would otherwise
             * spread them over every core and sum in another order than with two workers. */
            omp_set_num_threads(1);
            mn_backend *wbe = NULL;
            mn_backend_options wbo = {is_cpu ? 1 : o->threads, o->device};
            mn_status s2 = mn_backend_create(o->backend ? o->backend : "cpu", &wbo, &wbe);
            for (;;) {
                size_t i;
#pragma omp atomic capture
                i = next++;
                int stop_all;
#pragma omp atomic read
                stop_all = failed;
                if (s2 || stop_all || i >= n) break;
                if (o->stop && *o->stop) {
                    s2 = mn_error_set(MN_ERR_INTERRUPTED,
                                      "ranking stopped after %zu of %zu candidates", i, n);
                    break;
                }
                mn_arch arch;
                s2 = mn_arch_build(&arch, e[i].k, e[i].cells, e[i].layout, data->info.shape,
                                   data->info.classes);
                if (!s2) s2 = mn_proxy_compute(&arch, wbe, img, lab, nb, &o->proxy, &e[i].s);
                if (s2) break;
                size_t d;
#pragma omp atomic capture
                d = ++done;
                if (o->progress) {
#pragma omp critical(mn_rank_progress)
                    o->progress(o->user, d, n);
                }
            }
            if (s2) {
#pragma omp atomic write
                failed = 1;
                wst[w] = s2;
                snprintf(wmsg[w], sizeof wmsg[w], "%s", mn_error_message());
            }
            mn_backend_destroy(wbe);
        }
        for (int w = 0; w < workers && !st; w++)
            if (wst[w]) st = mn_error_set(wst[w], "%s", wmsg[w]);
    }
    free(wst);
    free(wmsg);
    out->proxy_seconds = mn_time_now() - t1;
    free(img);
    free(lab);
    free(idx);
    if (!st) st = mn_rank_combine(e, (int)n, o->wf, o->wl);
    if (st) {
        free(e);
        return st;
    }
    out->entries = e;
    out->count = n;
    return MN_OK;
}
