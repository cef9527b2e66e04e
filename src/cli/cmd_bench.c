/* mcunas bench: training throughput of reference candidates on a backend. */
#include <getopt.h>
#include <string.h>

#include "bench_torch.h"
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
            "  --threads N,..  worker threads, one run per value (default: the CPUs this\n"
            "                  process may use)\n"
            "  --device N      opencl/cuda device index (default 0; see mcunas devices)\n"
            "  --batch N,..    batch sizes, one run per value (default 16)\n"
            "  --k K --cells C one candidate instead of the reference set\n"
            "  --layout L      nanonas (default) | colabnas | convbn\n"
            "  --input HxWxC   input shape for --k (default 50x50x3)\n"
            "  --classes N     classes for --k (default 2)\n"
            "  --seconds S     timed seconds per candidate (default 3)\n"
            "  --warmup N      untimed steps first (default 5)\n"
            "  --sgemm         measure the SGEMM peak (64x4096x576) instead\n"
            "  --compare-torch time the same networks, batches and threads in PyTorch (plain\n"
            "                  eager; needs a Python that imports torch) and print the ratio\n"
            "  --python PATH   the Python for --compare-torch (default python3)\n"
            "  --json          one JSON object per line on stdout\n"
            "  -h, --help      this help\n\n"
            "GFLOP/s counts 6 x MACC per image (2 forward, 4 backward), the usual convention;\n"
            "pooling, normalisation and Adam are not counted. On the cpu backend each run also\n"
            "reports its share of the SGEMM peak (--sgemm) measured with the same threads.\n",
            mn_backend_available());
}

enum { OPT_BACKEND = 256, OPT_THREADS, OPT_DEVICE, OPT_BATCH, OPT_SECONDS, OPT_WARMUP, OPT_SGEMM,
       OPT_JSON, OPT_COMPARE_TORCH, OPT_PYTHON };

static const struct option longopts[] = {
    {"backend", required_argument, 0, OPT_BACKEND}, {"threads", required_argument, 0, OPT_THREADS},
    {"device", required_argument, 0, OPT_DEVICE},
    {"batch", required_argument, 0, OPT_BATCH},     MN_CLI_LONGOPT_K,
    MN_CLI_LONGOPT_CELLS,                           MN_CLI_LONGOPT_LAYOUT,
    MN_CLI_LONGOPT_INPUT,                           MN_CLI_LONGOPT_CLASSES,
    {"seconds", required_argument, 0, OPT_SECONDS}, {"warmup", required_argument, 0, OPT_WARMUP},
    {"sgemm", no_argument, 0, OPT_SGEMM},           {"json", no_argument, 0, OPT_JSON},
    {"compare-torch", no_argument, 0, OPT_COMPARE_TORCH},
    {"python", required_argument, 0, OPT_PYTHON},
    {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};

static const char *const cmd = "bench";

#define MN_BENCH_MAX_LIST 16

typedef struct bench_opts {
    const char *backend;
    mn_cli_arch arch; /* --k, --cells, --layout, --input, --classes */
    long threads[MN_BENCH_MAX_LIST], batch[MN_BENCH_MAX_LIST];
    int n_threads, n_batch;
    long device, warmup;
    double seconds;
    int json, sgemm, compare_torch;
    const char *python;
} bench_opts;

/* One configuration's numbers: ours, the SGEMM peak with the same threads (0: not measured,
 * the backend is not the CPU), and PyTorch's images/s (0: not compared). */
typedef struct bench_row {
    const mn_arch *arch;
    const char *backend;
    int batch, threads;
    mn_bench_result r;
    double sgemm_gflops, torch_ips;
    const char *torch_version;
} bench_row;

static void print_row(const bench_row *w, int json) {
    const mn_arch *arch = w->arch;
    char in[32];
    snprintf(in, sizeof in, "%dx%dx%d", arch->input.h, arch->input.w, arch->input.c);
    if (json) {
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "impl", "mcunas");
        mn_json_str(&j, "backend", w->backend);
        mn_json_int(&j, "k", arch->k);
        mn_json_int(&j, "cells", arch->cells);
        mn_json_str(&j, "layout", mn_layout_name(arch->layout));
        mn_json_str(&j, "input", in);
        mn_json_int(&j, "classes", arch->classes);
        mn_json_int(&j, "batch", w->batch);
        mn_json_int(&j, "threads", w->threads);
        mn_json_int(&j, "macc", (long long)mn_arch_macc(arch));
        mn_json_int(&j, "flops_per_image", (long long)mn_bench_flops_per_image(arch));
        mn_json_int(&j, "steps", w->r.steps);
        mn_json_num(&j, "seconds", w->r.seconds);
        mn_json_num(&j, "images_per_second", w->r.images_per_second);
        mn_json_num(&j, "gflops", w->r.gflops);
        if (w->sgemm_gflops > 0) {
            mn_json_num(&j, "sgemm_gflops", w->sgemm_gflops);
            mn_json_num(&j, "peak_share", w->r.gflops / w->sgemm_gflops);
        }
        mn_json_int(&j, "device_bytes", (long long)w->r.device_bytes);
        if (w->torch_ips > 0) {
            mn_json_num(&j, "torch_images_per_second", w->torch_ips);
            mn_json_str(&j, "torch_version", w->torch_version);
            mn_json_num(&j, "ratio", w->r.images_per_second / w->torch_ips);
        }
        mn_json_end(&j);
    } else {
        printf("A(%d,%d) %-8s %-8s batch %4d threads %2d  %9.1f img/s  %6.2f GFLOP/s", arch->k,
               arch->cells, mn_layout_name(arch->layout), in, w->batch, w->threads,
               w->r.images_per_second, w->r.gflops);
        if (w->sgemm_gflops > 0) printf("  %5.1f%% of SGEMM peak", 100 * w->r.gflops / w->sgemm_gflops);
        if (w->torch_ips > 0)
            printf("  | PyTorch %9.1f img/s  ratio %.2f", w->torch_ips,
                   w->r.images_per_second / w->torch_ips);
        printf("\n");
        fflush(stdout);
    }
}

/* "16,128" -> {16, 128}; returns 0 on a bad list. */
static int parse_list(const char *s, long min, long max, long *out, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MN_BENCH_MAX_LIST || !mn_cli_parse_int(tok, min, max, &out[*n])) return 0;
        (*n)++;
    }
    return *n > 0 && strlen(s) < sizeof buf;
}

static int parse(int argc, char **argv, bench_opts *o) {
#define BAD(...) return mn_cli_usage_error(cmd, __VA_ARGS__)
    memset(o, 0, sizeof *o);
    mn_cli_arch_init(&o->arch);
    o->backend = "cpu";
    o->batch[0] = 16;
    o->n_batch = o->n_threads = 1;
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
            if (!parse_list(optarg, 0, 1024, o->threads, &o->n_threads))
                BAD("--threads must be up to %d values in [0, 1024], comma-separated, got '%s'", MN_BENCH_MAX_LIST, optarg);
            break;
        case OPT_BATCH:
            if (!parse_list(optarg, 1, 65536, o->batch, &o->n_batch))
                BAD("--batch must be up to %d values in [1, 65536], comma-separated, got '%s'", MN_BENCH_MAX_LIST, optarg);
            break;
        case OPT_SECONDS:
            if (!mn_cli_parse_double(optarg, 0.01, 3600, &o->seconds)) BAD("--seconds must be in [0.01, 3600], got '%s'", optarg);
            break;
        case OPT_WARMUP:
            if (!mn_cli_parse_int(optarg, 0, 100000, &o->warmup)) BAD("--warmup must be in [0, 100000], got '%s'", optarg);
            break;
        case OPT_SGEMM: o->sgemm = 1; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_COMPARE_TORCH: o->compare_torch = 1; break;
        case OPT_PYTHON: o->python = optarg; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default:
            if (!mn_cli_arch_is_option(c)) BAD("unknown or incomplete option");
            if (mn_cli_arch_apply(cmd, &o->arch, c, optarg, "") != MN_EXIT_OK) return MN_EXIT_USAGE;
        }
    }
    if (optind < argc) BAD("unexpected argument '%s'", argv[optind]);
    if ((o->arch.k < 0) != (o->arch.cells < 0)) BAD("--k and --cells go together");
    if (o->compare_torch && o->arch.layout != MN_LAYOUT_NANONAS)
        BAD("--compare-torch has the nanonas layout only (the PyTorch script builds that network)");
    if (o->compare_torch && o->sgemm) BAD("--compare-torch times networks, not --sgemm");
    if (o->python && !o->compare_torch) BAD("--python goes with --compare-torch");
#undef BAD
    return MN_CLI_CONTINUE;
}

static int run_sgemm(const bench_opts *o) {
    for (int t = 0; t < o->n_threads; t++) {
        double gf;
        mn_status st = mn_bench_sgemm((int)o->threads[t], o->seconds, &mn_cli_stop_flag, &gf);
        if (st) return mn_cli_fail(cmd, st);
        if (o->json) {
            mn_json j;
            mn_json_begin(&j, stdout);
            mn_json_str(&j, "impl", "openblas");
            mn_json_int(&j, "threads", o->threads[t]);
            mn_json_str(&j, "shape", "64x4096x576");
            mn_json_num(&j, "sgemm_gflops", gf);
            mn_json_end(&j);
        } else {
            printf("SGEMM 64x4096x576, %ld threads: %.1f GFLOP/s\n", o->threads[t], gf);
        }
    }
    return MN_EXIT_OK;
}

/* Every batch size of the options for one candidate on one backend. */
static int run_batches(const bench_opts *o, mn_backend *be, const mn_arch *arch, double sgemm,
                       mn_bench_torch *torch) {
    for (int b = 0; b < o->n_batch; b++) {
        bench_row w = {.arch = arch, .backend = o->backend, .batch = (int)o->batch[b],
                       .threads = mn_backend_threads(be), .sgemm_gflops = sgemm};
        mn_status st = mn_bench_train(arch, be, w.batch, o->seconds, (int)o->warmup, &mn_cli_stop_flag, &w.r);
        if (st) return mn_cli_fail(cmd, st);
        if (torch) {
            const char *device = strcmp(o->backend, "cuda") == 0 ? "cuda" : "cpu";
            int rc = mn_bench_torch_run(torch, arch, w.batch, w.threads, o->seconds, (int)o->warmup,
                                        device, &w.torch_ips);
            if (rc != MN_EXIT_OK) return rc;
            w.torch_version = torch->version;
        }
        print_row(&w, o->json);
    }
    return MN_EXIT_OK;
}

/* One candidate of the options, or the reference set, on one backend. */
static int run_candidates(const bench_opts *o, mn_backend *be, double sgemm, mn_bench_torch *torch) {
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
            rc = st ? mn_cli_fail(cmd, st) : run_batches(o, be, &arch, sgemm, torch);
            if (a->k >= 0) return rc;
        }
    return rc;
}

int mn_cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    if (o.sgemm) return run_sgemm(&o);
    mn_bench_torch torch;
    rc = MN_EXIT_OK;
    if (o.compare_torch && (rc = mn_bench_torch_open(&torch, o.python)) != MN_EXIT_OK) return rc;
    for (int t = 0; t < o.n_threads && rc == MN_EXIT_OK; t++) {
        mn_backend_options bo = {(int)o.threads[t], (int)o.device};
        mn_backend *be = NULL;
        mn_status st = mn_backend_create(o.backend, &bo, &be);
        if (st) return mn_cli_fail(cmd, st);
        /* The peak a CPU run is measured against: SGEMM through the same BLAS and threads. */
        double sgemm = 0;
        if (strcmp(o.backend, "cpu") == 0)
            st = mn_bench_sgemm(mn_backend_threads(be), o.seconds < 1 ? o.seconds : 1, &mn_cli_stop_flag, &sgemm);
        rc = st ? mn_cli_fail(cmd, st) : run_candidates(&o, be, sgemm, o.compare_torch ? &torch : NULL);
        mn_backend_destroy(be);
    }
    return rc;
}
