/* mcunas rank: zero-cost proxies and the MONAS rank of every feasible candidate. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_arch.h"
#include "core/fileio.h"
#include "mcunas/backend.h"
#include "mcunas/rank.h"
#include "mcunas/samples.h"
#include "mcunas/search.h"
#include "mcunas/target.h"

static void usage(FILE *f) {
    mn_rank_options d;
    mn_rank_options_default(&d);
    fprintf(f,
            "Usage: mcunas rank --data D.h5 --target T [options]\n\n"
            "Ranks every candidate A(k,c) that fits the target MCU (cost model) and this\n"
            "machine's memory by zero-cost proxies computed at initialisation, without\n"
            "training: NTK condition number, linear regions, NASWOT, synflow, grad_norm, snip,\n"
            "FLOPs and params; the MONAS score combines the ranks of (NTK, regions, FLOPs,\n"
            "latency) with weights ((1-wf-wl)/2, (1-wf-wl)/2, wf, wl). Proxies are cheap hints,\n"
            "not accuracies (README, \"Zero-shot search\").\n\n"
            "Options:\n"
            "  --data PATH          dataset cache [required]\n"
            "  --target T           target MCU (see 'mcunas targets') [required]\n"
            "  --target-file F      more targets from a file\n"
            "  --ram-reserve SIZE   RAM of the target kept free of the model (e.g. 2K)\n"
            "  --layout L|all       nanonas | colabnas | convbn | all (default all)\n"
            "  --k-min K, --k-max K range of k (default %d..%d)\n"
            "  --max-latency-ms X   also require the estimated latency below X\n"
            "  --io uint8|int8      model input/output type (default uint8)\n"
            "  --wf X, --wl X       MONAS weights of FLOPs and latency (default %g, %g)\n"
            "  --batch N            images of the NTK/NASWOT/gradient batch (default %d)\n"
            "  --inits N            NTK initialisations averaged (default %d)\n"
            "  --regions-inputs R   random inputs for the linear regions (default %d)\n"
            "  --regions-div D      thin copy width ceil(k / D) (default %d)\n"
            "  --seed S             initialisation seed (default 1)\n"
            "  --limit N            read only the first N training images\n"
            "  --host-mem SIZE      drop candidates whose training would not fit (default: the\n"
            "                       available RAM, within the cgroup's limit; training batch 16)\n"
            "  --backend B          compute backend (default cpu; built in: %s)\n"
            "  --threads N          candidates computed at once, one core each (default: the\n"
            "                       CPUs this process may use)\n"
            "  --out FILE           write every ranked candidate as CSV\n"
            "  --top N              candidates printed (default 10; 0: all)\n"
            "  --json               one JSON object per candidate and a summary on stdout\n"
            "  --quiet              no progress output\n"
            "  -h, --help           this help\n",
            d.k_min, d.k_max, d.wf, d.wl, d.proxy.batch, d.proxy.inits, d.proxy.regions_inputs,
            d.proxy.regions_div, mn_backend_available());
}

enum {
    OPT_DATA = 256, OPT_TARGET, OPT_TARGET_FILE, OPT_MAXLAT, OPT_WF, OPT_WL, OPT_BATCH,
    OPT_INITS, OPT_RIN, OPT_RDIV, OPT_SEED, OPT_LIMIT, OPT_HOSTMEM, OPT_BACKEND, OPT_THREADS,
    OPT_OUT, OPT_TOP, OPT_JSON, OPT_QUIET
};

static const struct option longopts[] = {
    {"data", required_argument, 0, OPT_DATA},
    {"target", required_argument, 0, OPT_TARGET},
    {"target-file", required_argument, 0, OPT_TARGET_FILE},
    MN_CLI_LONGOPT_LAYOUT,
    MN_CLI_LONGOPT_K_MIN,
    MN_CLI_LONGOPT_K_MAX,
    MN_CLI_LONGOPT_RAM_RESERVE,
    {"max-latency-ms", required_argument, 0, OPT_MAXLAT},
    MN_CLI_LONGOPT_IO,
    {"wf", required_argument, 0, OPT_WF},
    {"wl", required_argument, 0, OPT_WL},
    {"batch", required_argument, 0, OPT_BATCH},
    {"inits", required_argument, 0, OPT_INITS},
    {"regions-inputs", required_argument, 0, OPT_RIN},
    {"regions-div", required_argument, 0, OPT_RDIV},
    {"seed", required_argument, 0, OPT_SEED},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"host-mem", required_argument, 0, OPT_HOSTMEM},
    {"backend", required_argument, 0, OPT_BACKEND},
    {"threads", required_argument, 0, OPT_THREADS},
    {"out", required_argument, 0, OPT_OUT},
    {"top", required_argument, 0, OPT_TOP},
    {"json", no_argument, 0, OPT_JSON},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static const char *const cmd = "rank";

typedef struct rank_opts {
    mn_rank_options ro;
    mn_cli_arch arch; /* --layout (or all), --k-min, --k-max, --io */
    const char *data, *target, *target_file, *out;
    long limit, top;
    int json, quiet;
    size_t host_mem;
} rank_opts;

typedef struct progress_ctx {
    int quiet;
    double last;
    double t0;
} progress_ctx;

static void on_progress(void *user, size_t done, size_t total) {
    progress_ctx *p = user;
    if (p->quiet) return;
    double now = mn_time_now();
    if (done == total || now - p->last >= 2.0) {
        fprintf(stderr, "rank: %zu/%zu candidates (%.1f s)\n", done, total, now - p->t0);
        p->last = now;
    }
}

static void print_num(FILE *f, double v) {
    if (isnan(v)) fputs("nan", f);
    else if (isinf(v)) fputs(v > 0 ? "inf" : "-inf", f);
    else fprintf(f, "%.9g", v);
}

/* The table, built in memory and published whole. */
static mn_status write_csv(const char *path, const mn_rank_result *r) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return mn_error_set(MN_ERR_NOMEM, "no memory for %s", path);
    fputs("rank,k,cells,layout,monas_score,ntk_cond,regions,naswot,synflow,grad_norm,snip,flops,"
          "params,latency_ms,ram_bytes,flash_bytes,rank_ntk,rank_regions,rank_flops,rank_latency,"
          "proxy_seconds\n", f);
    for (size_t i = 0; i < r->count; i++) {
        const mn_rank_entry *e = &r->entries[i];
        fprintf(f, "%d,%d,%d,%s,%.6g,", e->rank, e->k, e->cells, mn_layout_name(e->layout), e->score);
        const double v[] = {e->s.ntk_cond, e->s.regions, e->s.naswot, e->s.synflow,
                            e->s.grad_norm, e->s.snip, e->s.flops, e->s.params, e->latency_ms};
        for (size_t q = 0; q < sizeof v / sizeof v[0]; q++) {
            print_num(f, v[q]);
            fputc(',', f);
        }
        fprintf(f, "%zu,%zu,%g,%g,%g,%g,%.4f\n", e->ram_bytes, e->flash_bytes, e->r_ntk,
                e->r_regions, e->r_flops, e->r_latency, e->s.seconds);
    }
    return mn_file_publish_memstream(f, &buf, &size, path);
}

static void json_num_or_null(mn_json *j, const char *key, double v) {
    if (isfinite(v)) mn_json_num(j, key, v);
    else mn_json_raw(j, key, isnan(v) ? "null" : (v > 0 ? "1e999" : "-1e999"));
}

/* One option into `o`; MN_CLI_CONTINUE, or the exit code of a usage error. */
static int apply(rank_opts *o, int c, const char *arg) {
#define BAD(...) return mn_cli_usage_error(cmd, __VA_ARGS__)
    mn_rank_options *ro = &o->ro;
    long lv;
    switch (c) {
    case OPT_DATA: o->data = arg; break;
    case OPT_TARGET: o->target = arg; break;
    case OPT_TARGET_FILE: o->target_file = arg; break;
    case OPT_OUT: o->out = arg; break;
    case OPT_MAXLAT:
        if (!mn_cli_parse_double(arg, 1e-6, 1e9, &ro->max_latency_ms)) BAD("--max-latency-ms must be > 0, got '%s'", arg);
        break;
    case OPT_WF:
        if (!mn_cli_parse_double(arg, 0, 1, &ro->wf)) BAD("--wf must be in [0, 1], got '%s'", arg);
        break;
    case OPT_WL:
        if (!mn_cli_parse_double(arg, 0, 1, &ro->wl)) BAD("--wl must be in [0, 1], got '%s'", arg);
        break;
    case OPT_BATCH:
        if (!mn_cli_parse_int(arg, 2, 4096, &lv)) BAD("--batch must be in [2, 4096], got '%s'", arg);
        ro->proxy.batch = (int)lv;
        break;
    case OPT_INITS:
        if (!mn_cli_parse_int(arg, 1, 100, &lv)) BAD("--inits must be in [1, 100], got '%s'", arg);
        ro->proxy.inits = (int)lv;
        break;
    case OPT_RIN:
        if (!mn_cli_parse_int(arg, 2, 1000000, &lv)) BAD("--regions-inputs must be in [2, 1000000], got '%s'", arg);
        ro->proxy.regions_inputs = (int)lv;
        break;
    case OPT_RDIV:
        if (!mn_cli_parse_int(arg, 1, 4096, &lv)) BAD("--regions-div must be in [1, 4096], got '%s'", arg);
        ro->proxy.regions_div = (int)lv;
        break;
    case OPT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &lv)) BAD("--seed must be a non-negative integer, got '%s'", arg);
        ro->proxy.seed = (uint64_t)lv;
        break;
    case OPT_LIMIT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &o->limit)) BAD("--limit must be a positive integer, got '%s'", arg);
        break;
    case OPT_HOSTMEM:
        if (!mn_cli_parse_size(arg, &o->host_mem)) BAD("--host-mem must be a size like 512M, got '%s'", arg);
        break;
    case OPT_BACKEND: ro->backend = arg; break;
    case OPT_THREADS:
        if (!mn_cli_parse_int(arg, 0, 1024, &lv)) BAD("--threads must be in [0, 1024], got '%s'", arg);
        ro->threads = ro->workers = (int)lv;
        break;
    case OPT_TOP:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &o->top)) BAD("--top must be >= 0, got '%s'", arg);
        break;
    case OPT_JSON: o->json = 1; break;
    case OPT_QUIET: o->quiet = 1; break;
    default:
        if (!mn_cli_arch_is_option(c)) BAD("unknown or incomplete option");
        if (mn_cli_arch_apply(cmd, &o->arch, c, arg, "") != MN_EXIT_OK) return MN_EXIT_USAGE;
    }
#undef BAD
    return MN_CLI_CONTINUE;
}

static int parse(int argc, char **argv, rank_opts *o) {
    memset(o, 0, sizeof *o);
    mn_rank_options_default(&o->ro);
    mn_cli_arch_init(&o->arch);
    o->arch.allow_all_layouts = 1;
    o->top = 10;
    optind = 1;
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return MN_EXIT_OK;
        }
        if ((rc = apply(o, c, optarg)) != MN_CLI_CONTINUE) return rc;
    }
    mn_rank_options *ro = &o->ro;
    if (o->arch.layouts) ro->layouts = o->arch.layouts;
    if (o->arch.k_min) ro->k_min = (int)o->arch.k_min;
    if (o->arch.k_max) ro->k_max = (int)o->arch.k_max;
    ro->io_int8 = o->arch.io_int8;
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->data) return mn_cli_usage_error(cmd, "--data is required");
    if (!o->target) return mn_cli_usage_error(cmd, "--target is required (see 'mcunas targets')");
    if (ro->k_max < ro->k_min) return mn_cli_usage_error(cmd, "--k-min %d is above --k-max %d", ro->k_min, ro->k_max);
    if (ro->wf + ro->wl > 1.0) return mn_cli_usage_error(cmd, "--wf + --wl must be <= 1");
    return MN_CLI_CONTINUE;
}

static void print_json(const mn_rank_result *r, const mn_target *target, double total) {
    for (size_t i = 0; i < r->count; i++) {
        const mn_rank_entry *e = &r->entries[i];
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "event", "candidate");
        mn_json_int(&j, "rank", e->rank);
        mn_json_int(&j, "k", e->k);
        mn_json_int(&j, "cells", e->cells);
        mn_json_str(&j, "layout", mn_layout_name(e->layout));
        mn_json_num(&j, "monas_score", e->score);
        json_num_or_null(&j, "ntk_cond", e->s.ntk_cond);
        json_num_or_null(&j, "regions", e->s.regions);
        json_num_or_null(&j, "naswot", e->s.naswot);
        json_num_or_null(&j, "synflow", e->s.synflow);
        json_num_or_null(&j, "grad_norm", e->s.grad_norm);
        json_num_or_null(&j, "snip", e->s.snip);
        mn_json_num(&j, "flops", e->s.flops);
        mn_json_num(&j, "params", e->s.params);
        mn_json_num(&j, "latency_ms", e->latency_ms);
        mn_json_int(&j, "ram_bytes", (long long)e->ram_bytes);
        mn_json_int(&j, "flash_bytes", (long long)e->flash_bytes);
        mn_json_end(&j);
    }
    mn_json j;
    mn_json_begin(&j, stdout);
    mn_json_str(&j, "event", "done");
    mn_json_str(&j, "target", target->name);
    mn_json_int(&j, "considered", (long long)r->considered);
    mn_json_int(&j, "feasible", (long long)r->count);
    mn_json_int(&j, "infeasible", (long long)r->infeasible);
    mn_json_int(&j, "pruned", (long long)r->pruned);
    mn_json_num(&j, "filter_seconds", r->filter_seconds);
    mn_json_num(&j, "proxy_seconds", r->proxy_seconds);
    mn_json_num(&j, "total_seconds", total);
    mn_json_end(&j);
}

static void print_text(const mn_rank_result *r, const mn_target *target, double total, long top) {
    printf("%zu of %zu candidates fit %s (%zu infeasible, %zu over the host budget); "
           "filter %.2f s, proxies %.1f s, total %.1f s\n",
           r->count, r->considered, target->name, r->infeasible, r->pruned, r->filter_seconds,
           r->proxy_seconds, total);
    size_t shown = top == 0 || (size_t)top > r->count ? r->count : (size_t)top;
    if (shown)
        printf("%4s %-18s %9s %10s %8s %9s %10s %9s\n", "rank", "candidate", "score",
               "ntk_cond", "regions", "naswot", "MFLOPs", "lat_ms");
    for (size_t i = 0; i < shown; i++) {
        const mn_rank_entry *e = &r->entries[i];
        char name[64];
        snprintf(name, sizeof name, "A(%d,%d) %s", e->k, e->cells, mn_layout_name(e->layout));
        printf("%4d %-18s %9.2f %10.4g %8.0f %9.2f %10.3f %9.2f\n", e->rank, name, e->score,
               e->s.ntk_cond, e->s.regions, e->s.naswot, e->s.flops / 1e6, e->latency_ms);
    }
}

int mn_cmd_rank(int argc, char **argv) {
    rank_opts o;
    int rc = parse(argc, argv, &o);
    if (rc == MN_CLI_CONTINUE) rc = mn_cli_host_mem_check(cmd, o.host_mem);
    if (rc != MN_CLI_CONTINUE) return rc;
    mn_cli_remove_on_exit(o.out);
    mn_target_list targets;
    const mn_target *target;
    if ((rc = mn_cli_target_find(cmd, o.target, o.target_file, &o.arch, &targets, &target)) != MN_EXIT_OK) return rc;
    mn_loaded_data data;
    double t0 = mn_time_now();
    mn_status st = mn_loaded_data_read(o.data, (size_t)o.limit, &data);
    if (st) {
        mn_target_list_free(&targets);
        return mn_cli_fail(cmd, st);
    }
    mn_rank_options *ro = &o.ro;
    ro->target = target;
    ro->host_mem = o.host_mem ? o.host_mem : mn_cli_host_mem_default();
    progress_ctx pc = {o.quiet || o.json, 0, mn_time_now()};
    ro->progress = on_progress;
    ro->user = &pc;
    ro->stop = &mn_cli_stop_flag;
    mn_rank_result r;
    st = mn_rank_space(ro, &data, &r);
    double total = mn_time_now() - t0;
    rc = MN_EXIT_OK;
    if (st) {
        rc = mn_cli_fail(cmd, st);
    } else if (o.out && (st = write_csv(o.out, &r)) != MN_OK) {
        rc = mn_cli_fail(cmd, st);
    } else if (o.json) {
        print_json(&r, target, total);
    } else if (!o.quiet) {
        print_text(&r, target, total, o.top);
    }
    mn_rank_result_free(&r);
    mn_loaded_data_free(&data);
    mn_target_list_free(&targets);
    return rc;
}
