/* mcunas estimate: MACC, parameters, flash, RAM and latency of one candidate on a target. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "cli_arch.h"
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
            "  --ram-reserve SIZE  RAM of the target kept free of the model (e.g. 2K for a\n"
            "                      vendor's TFLM build); overrides the target's ram_reserve_kib\n"
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
            "reasons (when infeasible), macc_bound, target_ram_bytes, target_ram_reserve_bytes,\n"
            "target_flash_bytes, runtime;\n"
            "with --runtime c also instructions, tflm_flash_bytes, tflm_ram_bytes.\n");
}

enum { OPT_TARGET = 256, OPT_TFILE, OPT_KERNELS, OPT_LFILE, OPT_JSON, OPT_RUNTIME };

static const struct option longopts[] = {
    MN_CLI_LONGOPT_K,      MN_CLI_LONGOPT_CELLS, MN_CLI_LONGOPT_INPUT,
    MN_CLI_LONGOPT_CLASSES, MN_CLI_LONGOPT_LAYOUT, MN_CLI_LONGOPT_IO, MN_CLI_LONGOPT_RAM_RESERVE,
    {"target", required_argument, 0, OPT_TARGET}, {"target-file", required_argument, 0, OPT_TFILE},
    {"kernels", required_argument, 0, OPT_KERNELS},
    {"latency-file", required_argument, 0, OPT_LFILE}, {"json", no_argument, 0, OPT_JSON},
    {"runtime", required_argument, 0, OPT_RUNTIME},
    {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};

static const char *const cmd = "estimate";

typedef struct estimate_opts {
    mn_cli_arch arch; /* --k, --cells, --input, --classes, --layout, --io */
    const char *target, *tfile, *lfile;
    mn_latency_model lm;
    mn_runtime runtime;
    int json;
} estimate_opts;

static int parse(int argc, char **argv, estimate_opts *o) {
    memset(o, 0, sizeof *o);
    mn_cli_arch_init(&o->arch);
    o->lm = (mn_latency_model){MN_KERNELS_CMSIS_NN, 1.0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TARGET: o->target = optarg; break;
        case OPT_TFILE: o->tfile = optarg; break;
        case OPT_LFILE: o->lfile = optarg; break;
        case OPT_KERNELS:
            if (!strcmp(optarg, "cmsis-nn")) o->lm.lib = MN_KERNELS_CMSIS_NN;
            else if (!strcmp(optarg, "reference")) o->lm.lib = MN_KERNELS_REFERENCE;
            else return mn_cli_usage_error(cmd, "--kernels must be cmsis-nn or reference, got '%s'", optarg);
            break;
        case OPT_JSON: o->json = 1; break;
        case OPT_RUNTIME:
            if (mn_runtime_parse(optarg, &o->runtime)) return mn_cli_usage_error(cmd, "--runtime: %s", mn_error_message());
            break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default:
            if (!mn_cli_arch_is_option(c)) return mn_cli_usage_error(cmd, "unknown or incomplete option");
            if (mn_cli_arch_apply(cmd, &o->arch, c, optarg, "") != MN_EXIT_OK) return MN_EXIT_USAGE;
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    int rc = mn_cli_arch_require_point(cmd, &o->arch);
    if (rc != MN_EXIT_OK) return rc;
    if (!o->target) return mn_cli_usage_error(cmd, "--target is required (see 'mcunas targets')");
    return MN_CLI_CONTINUE;
}

/* A candidate too deep for its input: an answer, not a failure. */
static void print_infeasible(const estimate_opts *o, const mn_target *t) {
    if (!o->json) {
        printf("A(%ld,%ld) on %s: feasible no: %s\n", o->arch.k, o->arch.cells, t->name, mn_error_message());
        return;
    }
    mn_json j;
    mn_json_begin(&j, stdout);
    mn_json_str(&j, "target", t->name);
    mn_json_int(&j, "k", o->arch.k);
    mn_json_int(&j, "cells", o->arch.cells);
    mn_json_raw(&j, "feasible", "false");
    mn_json_str(&j, "reasons", mn_error_message());
    mn_json_end(&j);
}

static void print_json(const estimate_opts *o, const mn_target *t, const char *desc, const mn_estimate *e) {
    mn_json j;
    mn_json_begin(&j, stdout);
    mn_json_str(&j, "arch", desc);
    mn_json_str(&j, "target", t->name);
    mn_json_int(&j, "macc", (long long)e->macc);
    mn_json_int(&j, "params", (long long)e->params);
    mn_json_int(&j, "int8_params", (long long)e->int8_params);
    mn_json_int(&j, "flash_bytes", (long long)e->flash_bytes);
    mn_json_int(&j, "ram_bytes", (long long)e->ram_bytes);
    mn_json_int(&j, "ram_head_bytes", (long long)e->ram_head_bytes);
    mn_json_int(&j, "ram_activations_bytes", (long long)e->ram_activations_bytes);
    mn_json_int(&j, "ram_x86_64_bytes", (long long)e->ram_x86_64_bytes);
    mn_json_int(&j, "ram_x86_64_head_bytes", (long long)e->ram_x86_64_head_bytes);
    mn_json_num(&j, "latency_ms", e->latency_ms);
    mn_json_raw(&j, "feasible", e->feasible ? "true" : "false");
    if (!e->feasible) mn_json_str(&j, "reasons", e->reasons);
    mn_json_int(&j, "macc_bound", (long long)t->macc_bound);
    mn_json_int(&j, "target_ram_bytes", (long long)t->ram_bytes);
    mn_json_int(&j, "target_ram_reserve_bytes", (long long)t->ram_reserve_bytes);
    mn_json_int(&j, "target_flash_bytes", (long long)t->flash_bytes);
    if (o->lfile) mn_json_num(&j, "latency_scale", o->lm.scale);
    mn_json_str(&j, "runtime", mn_runtime_name(o->runtime));
    if (o->runtime == MN_RUNTIME_C) {
        mn_json_int(&j, "instructions", (long long)(e->instructions + 0.5));
        mn_json_int(&j, "tflm_flash_bytes", (long long)e->tflm_flash_bytes);
        mn_json_int(&j, "tflm_ram_bytes", (long long)e->tflm_ram_bytes);
    }
    mn_json_end(&j);
}

/* The target's RAM reserve, when it has one: the RAM figure is held against what is left. */
static void print_reserve(const mn_target *t) {
    if (t->ram_reserve_bytes)
        printf("  RAM reserve  %12zu B (the model may use %zu B of %zu B)\n", t->ram_reserve_bytes,
               mn_target_ram_budget(t), t->ram_bytes);
}

/* The C runtime's figures (include/mcunas/cruntime.h) beside TFLM's. */
static void print_text_c(const mn_target *t, const char *desc, const mn_estimate *e) {
    printf("%s on %s (%s, %g MHz), C runtime\n", desc, t->name, mn_core_name(t->core), t->clock_mhz);
    printf("  MACC         %12llu   (bound %llu)\n", (unsigned long long)e->macc,
           (unsigned long long)t->macc_bound);
    printf("  flash        %12zu B (%.2f KiB of %.0f KiB; TFLM's .tflite %zu B)\n", e->flash_bytes,
           e->flash_bytes / 1024.0, t->flash_bytes / 1024.0, e->tflm_flash_bytes);
    printf("  RAM          %12zu B (%.2f KiB of %.0f KiB): arena %zu + input/output + stack; TFLM's arena %zu B\n",
           e->ram_bytes, e->ram_bytes / 1024.0, t->ram_bytes / 1024.0, e->ram_head_bytes, e->tflm_ram_bytes);
    print_reserve(t);
    printf("  latency      %12.2f ms (%.0f instructions at one cycle each)\n", e->latency_ms, e->instructions);
    printf("  feasible     %s%s%s\n", e->feasible ? "yes" : "no", e->feasible ? "" : ": ", e->reasons);
}

static void print_text(const estimate_opts *o, const mn_target *t, const char *desc, const mn_estimate *e) {
    if (o->runtime == MN_RUNTIME_C) {
        print_text_c(t, desc, e);
        return;
    }
    printf("%s on %s (%s, %g MHz)\n", desc, t->name, mn_core_name(t->core), t->clock_mhz);
    printf("  MACC         %12llu   (bound %llu)\n", (unsigned long long)e->macc,
           (unsigned long long)t->macc_bound);
    printf("  params       %12zu   (%zu in the int8 model)\n", e->params, e->int8_params);
    printf("  flash        %12zu B (%.2f KiB of %.0f KiB)\n", e->flash_bytes, e->flash_bytes / 1024.0,
           t->flash_bytes / 1024.0);
    printf("  RAM (arena)  %12zu B (%.2f KiB of %.0f KiB): head %zu + tail %zu\n", e->ram_bytes,
           e->ram_bytes / 1024.0, t->ram_bytes / 1024.0, e->ram_head_bytes,
           e->ram_bytes - e->ram_head_bytes);
    print_reserve(t);
    printf("  activations  %12zu B (planned, unrounded)\n", e->ram_activations_bytes);
    printf("  arena x86-64 %12zu B (desktop TFLM, reference kernels): head %zu\n",
           e->ram_x86_64_bytes, e->ram_x86_64_head_bytes);
    printf("  latency      %12.2f ms (%s kernels%s)\n", e->latency_ms,
           o->lm.lib == MN_KERNELS_CMSIS_NN ? "CMSIS-NN" : "reference", o->lfile ? ", calibrated" : "");
    printf("  feasible     %s%s%s\n", e->feasible ? "yes" : "no", e->feasible ? "" : ": ", e->reasons);
}

int mn_cmd_estimate(int argc, char **argv) {
    estimate_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    mn_target_list list;
    const mn_target *t;
    if ((rc = mn_cli_target_find(cmd, o.target, o.tfile, &o.arch, &list, &t)) != MN_EXIT_OK) return rc;
    int n_cal = 0;
    mn_status st = o.lfile ? mn_latency_calibrate(o.lfile, &list, &o.lm, &n_cal) : MN_OK;
    mn_arch arch;
    mn_estimate e;
    if (!st) {
        st = mn_arch_build(&arch, (int)o.arch.k, (int)o.arch.cells, o.arch.layout, o.arch.input, (int)o.arch.classes);
        if (st == MN_ERR_INFEASIBLE) {
            print_infeasible(&o, t);
            mn_target_list_free(&list);
            return MN_EXIT_OK;
        }
    }
    if (!st) st = mn_estimate_compute_runtime(&arch, o.arch.io_int8, t, &o.lm, o.runtime, &e);
    if (st) {
        mn_target_list_free(&list);
        return mn_cli_fail(cmd, st);
    }
    char desc[96];
    mn_arch_describe(&arch, desc, sizeof desc);
    if (o.json) print_json(&o, t, desc, &e);
    else print_text(&o, t, desc, &e);
    mn_target_list_free(&list);
    return MN_EXIT_OK;
}
