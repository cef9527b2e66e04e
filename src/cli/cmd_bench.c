/* mcunas bench: training throughput of reference candidates on a backend. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
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
            "  --threads N     worker threads (default: all cores)\n"
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

enum { OPT_BACKEND = 256, OPT_THREADS, OPT_DEVICE, OPT_BATCH, OPT_K, OPT_CELLS, OPT_LAYOUT, OPT_INPUT,
       OPT_CLASSES, OPT_SECONDS, OPT_WARMUP, OPT_SGEMM, OPT_JSON };

static int run_one(const char *backend, mn_backend *be, const mn_arch *arch, int batch,
                   double seconds, int warmup, int json) {
    mn_bench_result r;
    mn_status st = mn_bench_train(arch, be, batch, seconds, warmup, &r);
    if (st) return mn_cli_fail("bench", st);
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

int mn_cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {
        {"backend", required_argument, 0, OPT_BACKEND}, {"threads", required_argument, 0, OPT_THREADS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"batch", required_argument, 0, OPT_BATCH},     {"k", required_argument, 0, OPT_K},
        {"cells", required_argument, 0, OPT_CELLS},     {"layout", required_argument, 0, OPT_LAYOUT},
        {"input", required_argument, 0, OPT_INPUT},     {"classes", required_argument, 0, OPT_CLASSES},
        {"seconds", required_argument, 0, OPT_SECONDS}, {"warmup", required_argument, 0, OPT_WARMUP},
        {"sgemm", no_argument, 0, OPT_SGEMM},           {"json", no_argument, 0, OPT_JSON},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    const char *cmd = "bench", *backend = "cpu";
    long threads = 0, device = 0, batch = 16, k = -1, cells = -1, classes = 2, warmup = 5;
    double seconds = 3;
    int h = 50, w = 50, ch = 3, json = 0, sgemm = 0;
    mn_layout layout = MN_LAYOUT_NANONAS;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BACKEND: backend = optarg; break;
        case OPT_DEVICE:
            if (!mn_cli_parse_int(optarg, 0, 1024, &device))
                return mn_cli_usage_error(cmd, "--device must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_THREADS:
            if (!mn_cli_parse_int(optarg, 0, 1024, &threads))
                return mn_cli_usage_error(cmd, "--threads must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_BATCH:
            if (!mn_cli_parse_int(optarg, 1, 65536, &batch))
                return mn_cli_usage_error(cmd, "--batch must be in [1, 65536], got '%s'", optarg);
            break;
        case OPT_K:
            if (!mn_cli_parse_int(optarg, 1, 4096, &k))
                return mn_cli_usage_error(cmd, "--k must be in [1, 4096], got '%s'", optarg);
            break;
        case OPT_CELLS:
            if (!mn_cli_parse_int(optarg, 0, MN_ARCH_MAX_CELLS, &cells))
                return mn_cli_usage_error(cmd, "--cells must be in [0, %d], got '%s'", MN_ARCH_MAX_CELLS, optarg);
            break;
        case OPT_LAYOUT:
            if (mn_layout_parse(optarg, &layout)) return mn_cli_usage_error(cmd, "%s", mn_error_message());
            break;
        case OPT_INPUT:
            if (!mn_cli_parse_shape(optarg, &h, &w, &ch))
                return mn_cli_usage_error(cmd, "--input must look like 28x28x1, got '%s'", optarg);
            break;
        case OPT_CLASSES:
            if (!mn_cli_parse_int(optarg, 2, 65536, &classes))
                return mn_cli_usage_error(cmd, "--classes must be in [2, 65536], got '%s'", optarg);
            break;
        case OPT_SECONDS:
            if (!mn_cli_parse_double(optarg, 0.01, 3600, &seconds))
                return mn_cli_usage_error(cmd, "--seconds must be in [0.01, 3600], got '%s'", optarg);
            break;
        case OPT_WARMUP:
            if (!mn_cli_parse_int(optarg, 0, 100000, &warmup))
                return mn_cli_usage_error(cmd, "--warmup must be in [0, 100000], got '%s'", optarg);
            break;
        case OPT_SGEMM: sgemm = 1; break;
        case OPT_JSON: json = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if ((k < 0) != (cells < 0)) return mn_cli_usage_error(cmd, "--k and --cells go together");

    if (sgemm) {
        double gf;
        mn_status st = mn_bench_sgemm((int)threads, seconds, &gf);
        if (st) return mn_cli_fail(cmd, st);
        if (json) {
            mn_json j;
            mn_json_begin(&j, stdout);
            mn_json_str(&j, "impl", "openblas");
            mn_json_int(&j, "threads", threads);
            mn_json_str(&j, "shape", "64x4096x576");
            mn_json_num(&j, "sgemm_gflops", gf);
            mn_json_end(&j);
        } else {
            printf("SGEMM 64x4096x576, %ld threads: %.1f GFLOP/s\n", threads, gf);
        }
        return MN_EXIT_OK;
    }

    mn_backend_options bo = {(int)threads, (int)device};
    mn_backend *be = NULL;
    mn_status st = mn_backend_create(backend, &bo, &be);
    if (st) return mn_cli_fail(cmd, st);
    int rc = MN_EXIT_OK;
    mn_arch arch;
    if (k >= 0) {
        st = mn_arch_build(&arch, (int)k, (int)cells, layout, (mn_shape){h, w, ch}, (int)classes);
        rc = st ? mn_cli_fail(cmd, st)
                : run_one(backend, be, &arch, (int)batch, seconds, (int)warmup, json);
    } else {
        static const int ref[3][2] = {{4, 3}, {8, 4}, {16, 4}};
        static const struct { mn_shape in; int classes; } inputs[2] = {{{50, 50, 3}, 2}, {{28, 28, 1}, 10}};
        for (int i = 0; i < 2 && rc == MN_EXIT_OK; i++)
            for (int r = 0; r < 3 && rc == MN_EXIT_OK; r++) {
                st = mn_arch_build(&arch, ref[r][0], ref[r][1], layout, inputs[i].in, inputs[i].classes);
                rc = st ? mn_cli_fail(cmd, st)
                        : run_one(backend, be, &arch, (int)batch, seconds, (int)warmup, json);
            }
    }
    mn_backend_destroy(be);
    return rc;
}
