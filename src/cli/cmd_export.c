/* mcunas export: int8 post-training quantization of trained weights into a .tflite file
 * (and optionally a C array), with float and int8 test accuracy. The export itself is the
 * library's (mcunas/export.h), the same path a search's final phase takes. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_arch.h"
#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/export.h"
#include "mcunas/net.h"
#include "mcunas/samples.h"
#include "mcunas/train.h"
#include "mcunas/weights.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas export --weights W.h5 --data D.h5 -o model.tflite [options]\n\n"
            "Quantizes trained weights to int8 (post-training: activation ranges from N training\n"
            "images drawn by a seeded shuffle; per-channel int8 conv weights; int32 biases; BN\n"
            "folded where exact, else a per-channel int8 affine) and writes a TFLite flatbuffer\n"
            "that TFLM and LiteRT run. Reports the float accuracy (the trained net on the CPU\n"
            "backend) and the int8 accuracy (mcunas's int8 interpreter, TFLM's arithmetic) on the\n"
            "test split. With a search's --seed and --limit, the file equals the search's\n"
            "model.tflite for its weights.h5.\n\n"
            "Options:\n"
            "  --weights PATH      trained weights (mcunas train --save) [required]\n"
            "  --data PATH         dataset cache the weights were trained on [required]\n"
            "  -o, --output PATH   the .tflite file to write [required]\n"
            "  --c-array PATH      also write PATH (a C source) and its .h\n"
            "  --c-symbol NAME     the C array's name (default %s)\n"
            "  --c-runtime DIR     also (or, without -o, only) write DIR/model.c and model.h: the\n"
            "                      standalone C runtime (no interpreter, no heap; TFLM's bytes)\n"
            "  --io uint8|int8     model input/output type (default uint8, as the seed)\n"
            "  --calib N           calibration images (default %d)\n"
            "  --seed S            seed of the calibration sample (default 1, as a search's)\n"
            "  --limit N           draw calibration images from the first N training images\n"
            "                      only (default all; a search's --limit gives its sample)\n"
            "  --test-limit N      evaluate only the first N test images (default all)\n"
            "  --dump-outputs PATH write the int8 interpreter's raw outputs for the evaluated test\n"
            "                      images (classes bytes each) for runtime comparisons\n"
            "  --dump-inputs PATH  write those test images as the model's input bytes\n"
            "  --dump-labels PATH  write their labels (int32, little-endian)\n"
            "  --rounding R        the int8 interpreter's requantization rounding, for its accuracy\n"
            "                      and dumps (the file is the same): double (default, TFLM's),\n"
            "                      single (LiteRT's default kernels) or litert-ref (LiteRT's\n"
            "                      reference kernels: single in FULLY_CONNECTED, double elsewhere)\n"
            "  --threads N         worker threads for the float evaluation (default: the CPUs\n"
            "                      this process may use)\n"
            "  --json              one JSON object on stdout\n"
            "  -h, --help          this help\n\n"
            "JSON keys: arch, flash_bytes, float_test_acc, int8_test_acc, test_images,\n"
            "calib_images, io, ram_bytes, ram_head_bytes, ram_x86_64_bytes,\n"
            "ram_x86_64_head_bytes, output, c_runtime.\n",
            MN_EXPORT_SYMBOL_DEFAULT, MN_EXPORT_CALIB_DEFAULT);
}

enum { OPT_W = 256, OPT_DATA, OPT_CARR, OPT_CSYM, OPT_CALIB, OPT_SEED, OPT_LIMIT, OPT_TLIM,
       OPT_DUMP, OPT_DUMPIN, OPT_DUMPLAB, OPT_ROUND, OPT_THREADS, OPT_JSON, OPT_CRT };

static const struct option longopts[] = {
    {"weights", required_argument, 0, OPT_W},   {"data", required_argument, 0, OPT_DATA},
    {"output", required_argument, 0, 'o'},      {"c-array", required_argument, 0, OPT_CARR},
    {"c-symbol", required_argument, 0, OPT_CSYM}, MN_CLI_LONGOPT_IO,
    {"calib", required_argument, 0, OPT_CALIB}, {"seed", required_argument, 0, OPT_SEED},
    {"limit", required_argument, 0, OPT_LIMIT}, {"test-limit", required_argument, 0, OPT_TLIM},
    {"dump-outputs", required_argument, 0, OPT_DUMP},
    {"dump-inputs", required_argument, 0, OPT_DUMPIN},
    {"dump-labels", required_argument, 0, OPT_DUMPLAB},
    {"rounding", required_argument, 0, OPT_ROUND},
    {"threads", required_argument, 0, OPT_THREADS}, {"json", no_argument, 0, OPT_JSON},
    {"c-runtime", required_argument, 0, OPT_CRT},
    {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};

typedef struct export_opts {
    const char *weights, *data;
    mn_cli_arch arch; /* --io */
    mn_export_options ex;
    long limit, threads;
    int json;
} export_opts;

static const char *const cmd = "export";

static int parse_rounding(const char *arg, mn_rounding *mode) {
    static const struct { const char *name; mn_rounding mode; } names[] = {
        {"double", MN_ROUNDING_DOUBLE}, {"single", MN_ROUNDING_SINGLE},
        {"litert-ref", MN_ROUNDING_LITERT_REF}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(arg, names[i].name)) {
            *mode = names[i].mode;
            return MN_CLI_CONTINUE;
        }
    return mn_cli_usage_error(cmd, "--rounding must be double, single or litert-ref, got '%s'", arg);
}

/* One option into `o`; MN_CLI_CONTINUE, or the exit code of a usage error. */
static int apply(export_opts *o, int c, const char *arg) {
    long v;
    switch (c) {
    case OPT_W: o->weights = arg; break;
    case OPT_DATA: o->data = arg; break;
    case 'o': o->ex.tflite_path = arg; break;
    case OPT_CARR: o->ex.c_array_path = arg; break;
    case OPT_CSYM: o->ex.c_symbol = arg; break;
    case OPT_CRT: o->ex.c_runtime_dir = arg; break;
    case OPT_DUMP: o->ex.dump_outputs = arg; break;
    case OPT_DUMPIN: o->ex.dump_inputs = arg; break;
    case OPT_DUMPLAB: o->ex.dump_labels = arg; break;
    case OPT_ROUND: return parse_rounding(arg, &o->ex.rounding);
    case OPT_CALIB:
        if (!mn_cli_parse_int(arg, 1, 1000000, &v)) return mn_cli_usage_error(cmd, "--calib must be in [1, 1000000], got '%s'", arg);
        o->ex.calib = (size_t)v;
        break;
    case OPT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &v)) return mn_cli_usage_error(cmd, "--seed must be a non-negative integer, got '%s'", arg);
        o->ex.seed = (uint64_t)v;
        break;
    case OPT_LIMIT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &o->limit)) return mn_cli_usage_error(cmd, "--limit must be a positive integer, got '%s'", arg);
        break;
    case OPT_TLIM:
        if (!mn_cli_parse_int(arg, 1, 100000000, &v)) return mn_cli_usage_error(cmd, "--test-limit must be >= 1, got '%s'", arg);
        o->ex.test_limit = (size_t)v;
        break;
    case OPT_THREADS:
        if (!mn_cli_parse_int(arg, 0, 1024, &o->threads)) return mn_cli_usage_error(cmd, "--threads must be in [0, 1024], got '%s'", arg);
        break;
    case OPT_JSON: o->json = 1; break;
    default:
        if (mn_cli_arch_is_option(c)) {
            int rc = mn_cli_arch_apply(cmd, &o->arch, c, arg, "");
            return rc == MN_EXIT_OK ? MN_CLI_CONTINUE : rc;
        }
        return mn_cli_usage_error(cmd, "unknown or incomplete option");
    }
    return MN_CLI_CONTINUE;
}

static int parse(int argc, char **argv, export_opts *o) {
    memset(o, 0, sizeof *o);
    mn_cli_arch_init(&o->arch);
    mn_export_options_default(&o->ex);
    optind = 1;
    int c, rc;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return MN_EXIT_OK;
        }
        if ((rc = apply(o, c, optarg)) != MN_CLI_CONTINUE) return rc;
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->weights || !o->data || (!o->ex.tflite_path && !o->ex.c_runtime_dir))
        return mn_cli_usage_error(cmd, "--weights, --data and -o (or --c-runtime) are required");
    o->ex.io_int8 = o->arch.io_int8;
    return MN_CLI_CONTINUE;
}

/* The trained parameters (trainable, state: malloc'd) and the float accuracy on `test`. */
static mn_status load_params(const export_opts *o, const mn_arch *arch, const mn_samples *test,
                             float **tr, float **sp, double *float_acc) {
    mn_backend_options bo = {(int)o->threads, 0};
    mn_backend *be = NULL;
    mn_net *net = NULL;
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 100;
    double loss = 0;
    mn_status st = mn_backend_create("cpu", &bo, &be);
    if (!st) st = mn_net_create(arch, be, &no, &net);
    if (!st) st = mn_weights_load(o->weights, net);
    if (!st) st = mn_train_evaluate(net, test, NULL, test->count, NULL, NULL, MN_PHASE_TEST, float_acc, &loss);
    *tr = malloc(sizeof(float) * (mn_arch_trainable_params(arch) + 1));
    *sp = malloc(sizeof(float) * (mn_arch_state_params(arch) + 1));
    if (!st && (!*tr || !*sp)) st = mn_error_set(MN_ERR_NOMEM, "out of memory");
    if (!st) st = mn_net_get_params(net, *tr, *sp);
    mn_net_destroy(net);
    mn_backend_destroy(be);
    return st;
}

static mn_status check_data(const export_opts *o, const mn_arch *arch, const mn_loaded_data *d) {
    const mn_dataset_info *i = &d->info;
    if (i->shape.h != arch->input.h || i->shape.w != arch->input.w || i->shape.c != arch->input.c ||
        i->classes != arch->classes)
        return mn_error_set(MN_ERR_INVALID_ARG, "dataset %s (%dx%dx%d, %d classes) does not match the weights' input (%dx%dx%d, %d classes)",
                            o->data, i->shape.h, i->shape.w, i->shape.c, i->classes,
                            arch->input.h, arch->input.w, arch->input.c, arch->classes);
    if (d->test.count == 0) return mn_error_set(MN_ERR_INVALID_ARG, "dataset %s has no test images", o->data);
    return MN_OK;
}

static void print_result(const export_opts *o, const mn_arch *arch, double float_acc,
                         const mn_export_result *r) {
    char desc[96];
    mn_arch_describe(arch, desc, sizeof desc);
    const char *io = o->ex.io_int8 ? "int8" : "uint8";
    if (!o->json) {
        printf("%s -> %s (%zu bytes, io %s)\n", desc, o->ex.tflite_path ? o->ex.tflite_path : "(no .tflite)",
               r->flash_bytes, io);
        printf("  test accuracy: float %.4f, int8 %.4f (%zu images; %zu calibration images)\n",
               float_acc, r->int8_test_acc, r->test_images, r->calib_images);
        printf("  arena: %zu B on a 32-bit MCU (head %zu), %zu B on x86-64\n", r->arena_arm32.total,
               r->arena_arm32.head, r->arena_x86_64.total);
        if (o->ex.c_array_path) printf("  C array: %s\n", o->ex.c_array_path);
        if (o->ex.c_runtime_dir) printf("  C runtime: %s/model.c, model.h\n", o->ex.c_runtime_dir);
        return;
    }
    mn_json j;
    mn_json_begin(&j, stdout);
    mn_json_str(&j, "arch", desc);
    if (o->ex.tflite_path) mn_json_str(&j, "output", o->ex.tflite_path);
    if (o->ex.c_runtime_dir) mn_json_str(&j, "c_runtime", o->ex.c_runtime_dir);
    mn_json_str(&j, "io", io);
    mn_json_int(&j, "flash_bytes", (long long)r->flash_bytes);
    mn_json_num(&j, "float_test_acc", float_acc);
    mn_json_num(&j, "int8_test_acc", r->int8_test_acc);
    mn_json_int(&j, "test_images", (long long)r->test_images);
    mn_json_int(&j, "calib_images", (long long)r->calib_images);
    mn_json_int(&j, "ram_bytes", (long long)r->arena_arm32.total);
    mn_json_int(&j, "ram_head_bytes", (long long)r->arena_arm32.head);
    mn_json_int(&j, "ram_x86_64_bytes", (long long)r->arena_x86_64.total);
    mn_json_int(&j, "ram_x86_64_head_bytes", (long long)r->arena_x86_64.head);
    mn_json_end(&j);
}

int mn_cmd_export(int argc, char **argv) {
    export_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    o.ex.stop = &mn_cli_stop_flag;
    mn_cli_remove_on_exit(o.ex.tflite_path);
    if (o.ex.c_array_path) mn_cli_remove_on_exit(o.ex.c_array_path);
    mn_arch arch;
    mn_status st = mn_weights_read_arch(o.weights, &arch);
    if (st) return mn_cli_fail(cmd, st);
    mn_loaded_data data;
    if ((st = mn_loaded_data_read(o.data, (size_t)o.limit, &data))) return mn_cli_fail(cmd, st);
    float *tr = NULL, *sp = NULL;
    double float_acc = 0;
    mn_export_result res;
    mn_samples test = data.test;
    if (o.ex.test_limit && o.ex.test_limit < test.count) test.count = o.ex.test_limit;
    st = check_data(&o, &arch, &data);
    if (!st) st = load_params(&o, &arch, &test, &tr, &sp, &float_acc);
    if (!st && mn_cli_stop_flag) st = mn_error_set(MN_ERR_INTERRUPTED, "export stopped; nothing was written");
    if (!st) st = mn_export_model(&o.ex, &arch, tr, sp, &data.train, &test, &res);
    if (!st) print_result(&o, &arch, float_acc, &res);
    rc = st ? mn_cli_fail(cmd, st) : MN_EXIT_OK;
    free(tr);
    free(sp);
    mn_loaded_data_free(&data);
    return rc;
}
