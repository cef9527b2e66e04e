/* mcunas bench: training throughput of reference candidates on a backend. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "cli_arch.h"
#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/bench.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas bench [options]\n\n"
            "Measures training throughput (forward + backward + Adam, steady state after\n"
            "warm-up) on synthetic data. Without --k it runs the reference candidates A(4,3),\n"
            "A(8,4) and A(16,4) (nanonas layout) on 50x50x3 (2 classes) and 28x28x1 (10 classes).\n\n"
            "Options:\n"
            "  --backend B     compute backend (default cpu; built in: %s)\n"
            "  --threads N     worker threads (default: the CPUs this process may use)\n"
            "  --device N      OpenCL device index (default 0; see mcunas devices)\n"
            "  --batch N       batch size (default 16)\n"
            "  --k K --cells C one candidate instead of the reference set\n"
            "  --layout L      nanonas (default) | colabnas | convbn\n"
            "  --input HxWxC   input shape for --k (default 50x50x3)\n"
            "  --classes N     classes for --k (default 2)\n"
            "  --seconds S     timed seconds per candidate (default 3)\n"
            "  --warmup N      untimed steps first (default 5)\n"
            "  --sgemm         measure the SGEMM peak (64x4096x576) instead\n"
            "  --json          one JSON object per line on stdout\n"
            "  -h, --help      this help\n\n"
            "GFLOP/s counts 6 x MACC per image (2 forward, 4 backward), the usual convention.\n",
            mn_backend_available());
}

enum { OPT_BACKEND = 256, OPT_THREADS, OPT_DEVICE, OPT_BATCH, OPT_SECONDS, OPT_WARMUP, OPT_SGEMM,
       OPT_JSON };

static const struct option longopts[] = {
    {"backend", required_argument, 0, OPT_BACKEND}, {"threads", required_argument, 0, OPT_THREADS},
    {"device", required_argument, 0, OPT_DEVICE},
    {"batch", required_argument, 0, OPT_BATCH},     MN_CLI_LONGOPT_K,
    MN_CLI_LONGOPT_CELLS,                           MN_CLI_LONGOPT_LAYOUT,
    MN_CLI_LONGOPT_INPUT,                           MN_CLI_LONGOPT_CLASSES,
    {"seconds", required_argument, 0, OPT_SECONDS}, {"warmup", required_argument, 0, OPT_WARMUP},
    {"sgemm", no_argument, 0, OPT_SGEMM},           {"json", no_argument, 0, OPT_JSON},
    {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};

static const char *const cmd = "bench";

typedef struct bench_opts {
    const char *backend;
    mn_cli_arch arch; /* --k, --cells, --layout, --input, --classes */
    long threads, device, batch, warmup;
    double seconds;
    int json, sgemm;
} bench_opts;

static int run_one(const char *backend, mn_backend *be, const mn_arch *arch, int batch,
                   double seconds, int warmup, int json) {
    mn_bench_result r;
    mn_status st = mn_bench_train(arch, be, batch, seconds, warmup, &mn_cli_stop_flag, &r);
    if (st) return mn_cli_fail(cmd, st);
    char in[32];
    snprintf(in, sizeof in, "%dx%dx%d", arch->input.h, arch->input.w, arch->input.c);
    if (json) {
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "impl", "mcunas");
        mn_json_str(&j, "backend", backend);
        mn_json_int(&j, "k", arch->k);
        mn_json_int(&j, "cells", arch->cells);
        mn_json_str(&j, "layout", mn_layout_name(arch->layout));
        mn_json_str(&j, "input", in);
        mn_json_int(&j, "classes", arch->classes);
        mn_json_int(&j, "batch", batch);
        mn_json_int(&j, "threads", mn_backend_threads(be));
        mn_json_int(&j, "macc", (long long)mn_arch_macc(arch));
        mn_json_int(&j, "steps", r.steps);
        mn_json_num(&j, "seconds", r.seconds);
        mn_json_num(&j, "images_per_second", r.images_per_second);
        mn_json_num(&j, "gflops", r.gflops);
        mn_json_int(&j, "device_bytes", (long long)r.device_bytes);
        mn_json_end(&j);
    } else {
        printf("A(%d,%d) %-8s %-8s batch %4d threads %2d  %9.1f img/s  %6.2f GFLOP/s\n", arch->k,
               arch->cells, mn_layout_name(arch->layout), in, batch, mn_backend_threads(be),
               r.images_per_second, r.gflops);
        fflush(stdout);
    }
    return MN_EXIT_OK;
}

static int parse(int argc, char **argv, bench_opts *o) {
#define BAD(...) return mn_cli_usage_error(cmd, __VA_ARGS__)
    memset(o, 0, sizeof *o);
    mn_cli_arch_init(&o->arch);
    o->backend = "cpu";
    o->batch = 16;
    o->warmup = 5;
    o->seconds = 3;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BACKEND: o->backend = optarg; break;
        case OPT_DEVICE:
            if (!mn_cli_parse_int(optarg, 0, 1024, &o->device)) BAD("--device must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_THREADS:
            if (!mn_cli_parse_int(optarg, 0, 1024, &o->threads)) BAD("--threads must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_BATCH:
            if (!mn_cli_parse_int(optarg, 1, 65536, &o->batch)) BAD("--batch must be in [1, 65536], got '%s'", optarg);
            break;
        case OPT_SECONDS:
            if (!mn_cli_parse_double(optarg, 0.01, 3600, &o->seconds)) BAD("--seconds must be in [0.01, 3600], got '%s'", optarg);
            break;
        case OPT_WARMUP:
            if (!mn_cli_parse_int(optarg, 0, 100000, &o->warmup)) BAD("--warmup must be in [0, 100000], got '%s'", optarg);
            break;
        case OPT_SGEMM: o->sgemm = 1; break;
        case OPT_JSON: o->json = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default:
            if (!mn_cli_arch_is_option(c)) BAD("unknown or incomplete option");
            if (mn_cli_arch_apply(cmd, &o->arch, c, optarg, "") != MN_EXIT_OK) return MN_EXIT_USAGE;
        }
    }
    if (optind < argc) BAD("unexpected argument '%s'", argv[optind]);
    if ((o->arch.k < 0) != (o->arch.cells < 0)) BAD("--k and --cells go together");
#undef BAD
    return MN_CLI_CONTINUE;
}

static int run_sgemm(const bench_opts *o) {
    double gf;
    mn_status st = mn_bench_sgemm((int)o->threads, o->seconds, &mn_cli_stop_flag, &gf);
    if (st) return mn_cli_fail(cmd, st);
    if (o->json) {
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "impl", "openblas");
        mn_json_int(&j, "threads", o->threads);
        mn_json_str(&j, "shape", "64x4096x576");
        mn_json_num(&j, "sgemm_gflops", gf);
        mn_json_end(&j);
    } else {
        printf("SGEMM 64x4096x576, %ld threads: %.1f GFLOP/s\n", o->threads, gf);
    }
    return MN_EXIT_OK;
}

/* One candidate of the options, or the reference set; returns the exit code. */
static int run_candidates(const bench_opts *o, mn_backend *be) {
    static const int ref[3][2] = {{4, 3}, {8, 4}, {16, 4}};
    static const struct { mn_shape in; int classes; } inputs[2] = {{{50, 50, 3}, 2}, {{28, 28, 1}, 10}};
    const mn_cli_arch *a = &o->arch;
    int rc = MN_EXIT_OK;
    for (int i = 0; i < 2 && rc == MN_EXIT_OK; i++)
        for (int r = 0; r < 3 && rc == MN_EXIT_OK; r++) {
            mn_arch arch;
            mn_status st = a->k >= 0
                               ? mn_arch_build(&arch, (int)a->k, (int)a->cells, a->layout, a->input, (int)a->classes)
                               : mn_arch_build(&arch, ref[r][0], ref[r][1], a->layout, inputs[i].in, inputs[i].classes);
            rc = st ? mn_cli_fail(cmd, st)
                    : run_one(o->backend, be, &arch, (int)o->batch, o->seconds, (int)o->warmup, o->json);
            if (a->k >= 0) return rc;
        }
    return rc;
}

int mn_cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    if (o.sgemm) return run_sgemm(&o);
    mn_backend_options bo = {(int)o.threads, (int)o.device};
    mn_backend *be = NULL;
    mn_status st = mn_backend_create(o.backend, &bo, &be);
    if (st) return mn_cli_fail(cmd, st);
    rc = run_candidates(&o, be);
    mn_backend_destroy(be);
    return rc;
}
