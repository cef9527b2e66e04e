/* The zero-shot front of the zeroshot and hybrid strategies: rank the space by the MONAS
 * objective (src/search/rank.c) and hand the top points to the ordinary candidate loop. */
#include <stdlib.h>
#include <string.h>

#include "mcunas/rank.h"
#include "mcunas/search.h"

mn_status mn_search_rank_points(const mn_search_config *cfg, const mn_loaded_data *data,
                                size_t runtime_bytes, int n, mn_point **out, int *count) {
    *out = NULL;
    *count = 0;
    if (n < 1) return mn_error_set(MN_ERR_INVALID_ARG, "top must be >= 1 (got %d)", n);
    mn_rank_options ro;
    if (cfg->rank) ro = *cfg->rank;
    else mn_rank_options_default(&ro);
    ro.k_min = 1;
    ro.k_max = cfg->k_max > 0 ? cfg->k_max : 64;
    ro.layouts = 1u << cfg->layout;
    ro.target = cfg->target;
    ro.latency = cfg->latency;
    ro.io_int8 = cfg->io_int8;
    ro.max_latency_ms = cfg->max_latency_ms;
    ro.host_mem = cfg->host_mem;
    ro.device_mem = cfg->device_mem;
    ro.runtime_bytes = runtime_bytes;
    ro.train_batch = cfg->batch;
    ro.backend = cfg->backend;
    ro.threads = cfg->threads;
    ro.device = cfg->device;
    ro.workers = cfg->threads;
    ro.stop = cfg->stop;
    ro.progress = NULL;
    mn_rank_result r;
    mn_status st = mn_rank_space(&ro, data, &r);
    if (st) return st;
    int m = (size_t)n < r.count ? n : (int)r.count;
    mn_point *p = malloc((size_t)(m > 0 ? m : 1) * sizeof *p);
    if (!p) {
        mn_rank_result_free(&r);
        return mn_error_set(MN_ERR_NOMEM, "no memory for %d points", m);
    }
    for (int i = 0; i < m; i++) {
        p[i].k = r.entries[i].k;
        p[i].cells = r.entries[i].cells;
    }
    mn_rank_result_free(&r);
    *out = p;
    *count = m;
    return MN_OK;
}
