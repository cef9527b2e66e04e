/* mcunas estimate: MACC, parameters, flash, RAM and latency of one candidate on a target. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "mcunas/arch.h"
#include "mcunas/cost.h"
#include "mcunas/target.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas estimate --k K --cells C --target T [options]\n\n"
            "Estimates, from the architecture alone, what the int8 model of A(K,C) costs on an\n"
            "MCU: MACC, parameters, flash (the exact size of the .tflite 'mcunas export' writes),\n"
            "RAM (TFLM's arena: the greedy-planned head plus the persistent tail) and latency,\n"
            "and whether it fits the target (MACC bound, RAM, flash).\n\n"
            "Options:\n"
            "  --k K               kernels of the first convolution [required]\n"
            "  --cells C           number of cells [required]\n"
            "  --input HxWxC       input shape (default 50x50x3)\n"
            "  --classes N         classes (default 2)\n"
            "  --layout L          nanonas (default) | colabnas | convbn\n"
            "  --target T          target name (see 'mcunas targets') [required]\n"
            "  --target-file F     extra targets (INI-like, see docs/cost-model.md)\n"
            "  --io uint8|int8     model input/output type (default uint8)\n"
            "  --kernels K         cmsis-nn (default) | reference: latency constants\n"
            "  --latency-file F    calibrate latency on measurements, one per line:\n"
            "                      'target k cells layout HxWxC classes latency_ms'\n"
            "  --runtime R         tflm (default): the .tflite under TFLM; c: mcunas's C runtime\n"
            "                      (export --c-runtime): its flash, RAM and instructions\n"
            "  --json              one JSON object on stdout\n"
            "  -h, --help          this help\n\n"
            "JSON keys: arch, target, macc, params, int8_params, flash_bytes, ram_bytes,\n"
            "ram_head_bytes, ram_activations_bytes, ram_x86_64_bytes, ram_x86_64_head_bytes,\n"
            "latency_ms, feasible,\n"
            "reasons (when infeasible), macc_bound, target_ram_bytes, target_flash_bytes, runtime;\n"
            "with --runtime c also instructions, tflm_flash_bytes, tflm_ram_bytes.\n");
}

int mn_cmd_estimate(int argc, char **argv) {
    enum { OPT_K = 256, OPT_CELLS, OPT_INPUT, OPT_CLASSES, OPT_LAYOUT, OPT_TARGET, OPT_TFILE,
           OPT_IO, OPT_KERNELS, OPT_LFILE, OPT_JSON, OPT_RUNTIME };
    static const struct option longopts[] = {
        {"k", required_argument, 0, OPT_K},           {"cells", required_argument, 0, OPT_CELLS},
        {"input", required_argument, 0, OPT_INPUT},   {"classes", required_argument, 0, OPT_CLASSES},
        {"layout", required_argument, 0, OPT_LAYOUT}, {"target", required_argument, 0, OPT_TARGET},
        {"target-file", required_argument, 0, OPT_TFILE}, {"io", required_argument, 0, OPT_IO},
        {"kernels", required_argument, 0, OPT_KERNELS},
        {"latency-file", required_argument, 0, OPT_LFILE}, {"json", no_argument, 0, OPT_JSON},
        {"runtime", required_argument, 0, OPT_RUNTIME},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    const char *cmd = "estimate", *target = NULL, *tfile = NULL, *lfile = NULL;
    long k = -1, cells = -1, classes = 2;
    int h = 50, w = 50, ch = 3, json = 0, io_int8 = 0, c;
    mn_layout layout = MN_LAYOUT_NANONAS;
    mn_latency_model lm = {MN_KERNELS_CMSIS_NN, 1.0};
    mn_runtime rt = MN_RUNTIME_TFLM;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_K:
            if (!mn_cli_parse_int(optarg, 1, 4096, &k))
                return mn_cli_usage_error(cmd, "--k must be in [1, 4096], got '%s'", optarg);
            break;
        case OPT_CELLS:
            if (!mn_cli_parse_int(optarg, 0, MN_ARCH_MAX_CELLS, &cells))
                return mn_cli_usage_error(cmd, "--cells must be in [0, %d], got '%s'", MN_ARCH_MAX_CELLS, optarg);
            break;
        case OPT_INPUT:
            if (!mn_cli_parse_shape(optarg, &h, &w, &ch))
                return mn_cli_usage_error(cmd, "--input must look like 28x28x1, got '%s'", optarg);
            break;
        case OPT_CLASSES:
            if (!mn_cli_parse_int(optarg, 2, 65536, &classes))
                return mn_cli_usage_error(cmd, "--classes must be in [2, 65536], got '%s'", optarg);
            break;
        case OPT_LAYOUT:
            if (mn_layout_parse(optarg, &layout)) return mn_cli_usage_error(cmd, "%s", mn_error_message());
            break;
        case OPT_TARGET: target = optarg; break;
        case OPT_TFILE: tfile = optarg; break;
        case OPT_LFILE: lfile = optarg; break;
        case OPT_IO:
            if (!strcmp(optarg, "uint8")) io_int8 = 0;
            else if (!strcmp(optarg, "int8")) io_int8 = 1;
            else return mn_cli_usage_error(cmd, "--io must be uint8 or int8, got '%s'", optarg);
            break;
        case OPT_KERNELS:
            if (!strcmp(optarg, "cmsis-nn")) lm.lib = MN_KERNELS_CMSIS_NN;
            else if (!strcmp(optarg, "reference")) lm.lib = MN_KERNELS_REFERENCE;
            else return mn_cli_usage_error(cmd, "--kernels must be cmsis-nn or reference, got '%s'", optarg);
            break;
        case OPT_JSON: json = 1; break;
        case OPT_RUNTIME:
            if (mn_runtime_parse(optarg, &rt)) return mn_cli_usage_error(cmd, "--runtime: %s", mn_error_message());
            break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (k < 0 || cells < 0) return mn_cli_usage_error(cmd, "--k and --cells are required");
    if (!target) return mn_cli_usage_error(cmd, "--target is required (see 'mcunas targets')");

    mn_target_list list;
    mn_status st = mn_target_list_init(&list);
    if (!st && tfile) st = mn_target_list_load(&list, tfile);
    if (st) {
        mn_target_list_free(&list);
        return mn_cli_fail(cmd, st);
    }
    const mn_target *t = mn_target_find(&list, target);
    if (!t) {
        mn_target_list_free(&list);
        return mn_cli_usage_error(cmd, "unknown target '%s' (see 'mcunas targets')", target);
    }
    int n_cal = 0;
    if (lfile && (st = mn_latency_calibrate(lfile, &list, &lm, &n_cal))) {
        mn_target_list_free(&list);
        return mn_cli_fail(cmd, st);
    }
    mn_arch arch;
    mn_estimate e;
    st = mn_arch_build(&arch, (int)k, (int)cells, layout, (mn_shape){h, w, ch}, (int)classes);
    if (st == MN_ERR_INFEASIBLE) { /* too deep for its input: an answer, not a failure */
        if (json) {
            mn_json j;
            mn_json_begin(&j, stdout);
            mn_json_str(&j, "target", t->name);
            mn_json_int(&j, "k", k);
            mn_json_int(&j, "cells", cells);
            mn_json_raw(&j, "feasible", "false");
            mn_json_str(&j, "reasons", mn_error_message());
            mn_json_end(&j);
        } else {
            printf("A(%ld,%ld) on %s: feasible no: %s\n", k, cells, t->name, mn_error_message());
        }
        mn_target_list_free(&list);
        return MN_EXIT_OK;
    }
    if (!st) st = mn_estimate_compute_runtime(&arch, io_int8, t, &lm, rt, &e);
    if (st) {
        mn_target_list_free(&list);
        return mn_cli_fail(cmd, st);
    }
    char desc[96];
    mn_arch_describe(&arch, desc, sizeof desc);
    if (json) {
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "arch", desc);
        mn_json_str(&j, "target", t->name);
        mn_json_int(&j, "macc", (long long)e.macc);
        mn_json_int(&j, "params", (long long)e.params);
        mn_json_int(&j, "int8_params", (long long)e.int8_params);
        mn_json_int(&j, "flash_bytes", (long long)e.flash_bytes);
        mn_json_int(&j, "ram_bytes", (long long)e.ram_bytes);
        mn_json_int(&j, "ram_head_bytes", (long long)e.ram_head_bytes);
        mn_json_int(&j, "ram_activations_bytes", (long long)e.ram_activations_bytes);
        mn_json_int(&j, "ram_x86_64_bytes", (long long)e.ram_x86_64_bytes);
        mn_json_int(&j, "ram_x86_64_head_bytes", (long long)e.ram_x86_64_head_bytes);
        mn_json_num(&j, "latency_ms", e.latency_ms);
        mn_json_raw(&j, "feasible", e.feasible ? "true" : "false");
        if (!e.feasible) mn_json_str(&j, "reasons", e.reasons);
        mn_json_int(&j, "macc_bound", (long long)t->macc_bound);
        mn_json_int(&j, "target_ram_bytes", (long long)t->ram_bytes);
        mn_json_int(&j, "target_flash_bytes", (long long)t->flash_bytes);
        if (lfile) mn_json_num(&j, "latency_scale", lm.scale);
        mn_json_str(&j, "runtime", mn_runtime_name(rt));
        if (rt == MN_RUNTIME_C) {
            mn_json_int(&j, "instructions", (long long)(e.instructions + 0.5));
            mn_json_int(&j, "tflm_flash_bytes", (long long)e.tflm_flash_bytes);
            mn_json_int(&j, "tflm_ram_bytes", (long long)e.tflm_ram_bytes);
        }
        mn_json_end(&j);
    } else if (rt == MN_RUNTIME_C) {
        printf("%s on %s (%s, %g MHz), C runtime\n", desc, t->name, mn_core_name(t->core), t->clock_mhz);
        printf("  MACC         %12llu   (bound %llu)\n", (unsigned long long)e.macc,
               (unsigned long long)t->macc_bound);
        printf("  flash        %12zu B (%.2f KiB of %.0f KiB; TFLM's .tflite %zu B)\n", e.flash_bytes,
               e.flash_bytes / 1024.0, t->flash_bytes / 1024.0, e.tflm_flash_bytes);
        printf("  RAM          %12zu B (%.2f KiB of %.0f KiB): arena %zu + input/output + stack; TFLM's arena %zu B\n",
               e.ram_bytes, e.ram_bytes / 1024.0, t->ram_bytes / 1024.0, e.ram_head_bytes, e.tflm_ram_bytes);
        printf("  latency      %12.2f ms (%.0f instructions at one cycle each)\n", e.latency_ms, e.instructions);
        printf("  feasible     %s%s%s\n", e.feasible ? "yes" : "no", e.feasible ? "" : ": ", e.reasons);
    } else {
        printf("%s on %s (%s, %g MHz)\n", desc, t->name, mn_core_name(t->core), t->clock_mhz);
        printf("  MACC         %12llu   (bound %llu)\n", (unsigned long long)e.macc,
               (unsigned long long)t->macc_bound);
        printf("  params       %12zu   (%zu in the int8 model)\n", e.params, e.int8_params);
        printf("  flash        %12zu B (%.2f KiB of %.0f KiB)\n", e.flash_bytes, e.flash_bytes / 1024.0,
               t->flash_bytes / 1024.0);
        printf("  RAM (arena)  %12zu B (%.2f KiB of %.0f KiB): head %zu + tail %zu\n", e.ram_bytes,
               e.ram_bytes / 1024.0, t->ram_bytes / 1024.0, e.ram_head_bytes,
               e.ram_bytes - e.ram_head_bytes);
        printf("  activations  %12zu B (planned, unrounded)\n", e.ram_activations_bytes);
        printf("  arena x86-64 %12zu B (desktop TFLM, reference kernels): head %zu\n",
               e.ram_x86_64_bytes, e.ram_x86_64_head_bytes);
        printf("  latency      %12.2f ms (%s kernels%s)\n", e.latency_ms,
               lm.lib == MN_KERNELS_CMSIS_NN ? "CMSIS-NN" : "reference", lfile ? ", calibrated" : "");
        printf("  feasible     %s%s%s\n", e.feasible ? "yes" : "no", e.feasible ? "" : ": ", e.reasons);
    }
    mn_target_list_free(&list);
    return MN_EXIT_OK;
}
