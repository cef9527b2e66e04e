/* mcunas export: int8 post-training quantization of trained weights into a .tflite file
 * (and optionally a C array), with float and int8 test accuracy. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/cost.h"
#include "mcunas/net.h"
#include "mcunas/qgraph.h"
#include "mcunas/samples.h"
#include "mcunas/tflite.h"
#include "mcunas/train.h"
#include "mcunas/weights.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas export --weights W.h5 --data D.h5 -o model.tflite [options]\n\n"
            "Quantizes trained weights to int8 (post-training: activation ranges from the first\n"
            "N training images; per-channel int8 conv weights; int32 biases; BN folded where\n"
            "exact, else a per-channel int8 affine) and writes a TFLite flatbuffer that TFLM and\n"
            "LiteRT run. Reports the float accuracy (the trained net on the CPU backend) and the\n"
            "int8 accuracy (mcunas's int8 interpreter, TFLM's arithmetic) on the test split.\n\n"
            "Options:\n"
            "  --weights PATH      trained weights (mcunas train --save) [required]\n"
            "  --data PATH         dataset cache the weights were trained on [required]\n"
            "  -o, --output PATH   the .tflite file to write [required]\n"
            "  --c-array PATH      also write PATH (model_data.c style) and its .h\n"
            "  --io uint8|int8     model input/output type (default uint8, as the seed)\n"
            "  --calib N           calibration images (default 150)\n"
            "  --test-limit N      evaluate only the first N test images (default all)\n"
            "  --dump-outputs PATH write the int8 interpreter's raw outputs for the evaluated test\n"
            "                      images (classes bytes each) for runtime comparisons\n"
            "  --dump-inputs PATH  write those test images as the model's input bytes\n"
            "  --dump-labels PATH  write their labels (int32, little-endian)\n"
            "  --rounding R        the int8 interpreter's requantization rounding, for its accuracy\n"
            "                      and dumps (the file is the same): double (default, TFLM's),\n"
            "                      single (LiteRT's default kernels) or litert-ref (LiteRT's\n"
            "                      reference kernels: single in FULLY_CONNECTED, double elsewhere)\n"
            "  --threads N         worker threads for the float evaluation (default: all)\n"
            "  --json              one JSON object on stdout\n"
            "  -h, --help          this help\n\n"
            "JSON keys: arch, flash_bytes, float_test_acc, int8_test_acc, test_images,\n"
            "calib_images, io, ram_bytes, ram_head_bytes, ram_x86_64_bytes,\n"
            "ram_x86_64_head_bytes, output.\n");
}

int mn_cmd_export(int argc, char **argv) {
    enum { OPT_W = 256, OPT_DATA, OPT_CARR, OPT_IO, OPT_CALIB, OPT_TLIM, OPT_DUMP, OPT_DUMPIN, OPT_DUMPLAB, OPT_ROUND, OPT_THREADS, OPT_JSON };
    static const struct option longopts[] = {
        {"weights", required_argument, 0, OPT_W},   {"data", required_argument, 0, OPT_DATA},
        {"output", required_argument, 0, 'o'},      {"c-array", required_argument, 0, OPT_CARR},
        {"io", required_argument, 0, OPT_IO},       {"calib", required_argument, 0, OPT_CALIB},
        {"test-limit", required_argument, 0, OPT_TLIM},
        {"dump-outputs", required_argument, 0, OPT_DUMP},
        {"dump-inputs", required_argument, 0, OPT_DUMPIN},
        {"rounding", required_argument, 0, OPT_ROUND},
        {"dump-labels", required_argument, 0, OPT_DUMPLAB},
        {"threads", required_argument, 0, OPT_THREADS}, {"json", no_argument, 0, OPT_JSON},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    const char *cmd = "export", *wpath = NULL, *dpath = NULL, *out = NULL, *carr = NULL, *dump = NULL, *dumpin = NULL, *dumplab = NULL;
    long calib = 150, tlim = 0, threads = 0;
    int io_int8 = 0, json = 0, single = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_W: wpath = optarg; break;
        case OPT_DATA: dpath = optarg; break;
        case 'o': out = optarg; break;
        case OPT_CARR: carr = optarg; break;
        case OPT_DUMP: dump = optarg; break;
        case OPT_DUMPIN: dumpin = optarg; break;
        case OPT_DUMPLAB: dumplab = optarg; break;
        case OPT_ROUND:
            if (!strcmp(optarg, "double")) single = MN_ROUNDING_DOUBLE;
            else if (!strcmp(optarg, "single")) single = MN_ROUNDING_SINGLE;
            else if (!strcmp(optarg, "litert-ref")) single = MN_ROUNDING_LITERT_REF;
            else return mn_cli_usage_error(cmd, "--rounding must be double, single or litert-ref, got '%s'", optarg);
            break;
        case OPT_IO:
            if (!strcmp(optarg, "uint8")) io_int8 = 0;
            else if (!strcmp(optarg, "int8")) io_int8 = 1;
            else return mn_cli_usage_error(cmd, "--io must be uint8 or int8, got '%s'", optarg);
            break;
        case OPT_CALIB:
            if (!mn_cli_parse_int(optarg, 1, 1000000, &calib))
                return mn_cli_usage_error(cmd, "--calib must be in [1, 1000000], got '%s'", optarg);
            break;
        case OPT_TLIM:
            if (!mn_cli_parse_int(optarg, 1, 100000000, &tlim))
                return mn_cli_usage_error(cmd, "--test-limit must be >= 1, got '%s'", optarg);
            break;
        case OPT_THREADS:
            if (!mn_cli_parse_int(optarg, 0, 1024, &threads))
                return mn_cli_usage_error(cmd, "--threads must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_JSON: json = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!wpath || !dpath || !out) return mn_cli_usage_error(cmd, "--weights, --data and -o are required");

    mn_arch arch;
    mn_status st = mn_weights_read_arch(wpath, &arch);
    if (st) return mn_cli_fail(cmd, st);
    mn_loaded_data data;
    memset(&data, 0, sizeof data);
    if ((st = mn_loaded_data_read(dpath, (size_t)calib, &data))) return mn_cli_fail(cmd, st);
    int rc = MN_EXIT_FAILURE;
    mn_backend *be = NULL;
    mn_net *net = NULL;
    mn_qgraph *g = NULL;
    mn_qinterp *it = NULL;
    float *tr = NULL, *sp = NULL;
    uint8_t *outs = NULL, *img8 = NULL;
    FILE *fin = NULL;
    if (data.info.shape.h != arch.input.h || data.info.shape.w != arch.input.w ||
        data.info.shape.c != arch.input.c || data.info.classes != arch.classes) {
        st = mn_error_set(MN_ERR_INVALID_ARG, "dataset %s (%dx%dx%d, %d classes) does not match the weights' input (%dx%dx%d, %d classes)",
                          dpath, data.info.shape.h, data.info.shape.w, data.info.shape.c, data.info.classes,
                          arch.input.h, arch.input.w, arch.input.c, arch.classes);
        goto fail;
    }
    size_t n_test = data.test.count;
    if (tlim > 0 && (size_t)tlim < n_test) n_test = (size_t)tlim;
    if (n_test == 0) {
        st = mn_error_set(MN_ERR_INVALID_ARG, "dataset %s has no test images", dpath);
        goto fail;
    }
    mn_backend_options bo = {(int)threads, 0};
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 100;
    if ((st = mn_backend_create("cpu", &bo, &be)) || (st = mn_net_create(&arch, be, &no, &net)) ||
        (st = mn_weights_load(wpath, net)))
        goto fail;
    double float_acc = 0, loss = 0;
    mn_samples test = data.test;
    test.count = n_test;
    if ((st = mn_train_evaluate(net, &test, NULL, n_test, NULL, NULL, MN_PHASE_TEST, &float_acc, &loss)))
        goto fail;
    tr = malloc(sizeof(float) * (mn_arch_trainable_params(&arch) + 1));
    sp = malloc(sizeof(float) * (mn_arch_state_params(&arch) + 1));
    if (!tr || !sp) {
        st = mn_error_set(MN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = mn_net_get_params(net, tr, sp)) || (st = mn_qgraph_build(&arch, io_int8, &g)) ||
        (st = mn_qgraph_set_params(g, tr, sp, no.bn_eps)))
        goto fail;
    size_t n_cal = data.train.count < (size_t)calib ? data.train.count : (size_t)calib;
    if ((st = mn_qgraph_quantize(g, data.train.images, n_cal))) goto fail;
    size_t flash = 0;
    if ((st = mn_tflite_write(g, out, &flash))) goto fail;
    if (carr) {
        uint8_t *buf;
        size_t n;
        if ((st = mn_tflite_serialize(g, &buf, &n))) goto fail;
        st = mn_tflite_write_c_array(buf, n, carr, "model_data");
        free(buf);
        if (st) goto fail;
    }
    if ((st = mn_qinterp_create(g, &it))) goto fail;
    mn_qinterp_set_rounding(it, (mn_rounding)single);
    size_t img = mn_shape_count(arch.input), correct = 0;
    int classes = arch.classes;
    outs = malloc(n_test * (size_t)classes);
    img8 = malloc(img);
    if (!outs || !img8) {
        st = mn_error_set(MN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (dumpin && !(fin = fopen(dumpin, "wb"))) {
        st = mn_error_set(MN_ERR_IO, "cannot create %s", dumpin);
        goto fail;
    }
    for (size_t i = 0; i < n_test; i++) {
        const uint8_t *x = data.test.images + i * img;
        if (io_int8) {
            for (size_t k = 0; k < img; k++) img8[k] = (uint8_t)(x[k] ^ 0x80);
            x = img8;
        }
        if (fin && fwrite(x, 1, img, fin) != img) {
            st = mn_error_set(MN_ERR_IO, "cannot write %s", dumpin);
            goto fail;
        }
        uint8_t *o = outs + i * (size_t)classes;
        if ((st = mn_qinterp_run(it, x, o))) goto fail;
        int best = 0;
        for (int k = 1; k < classes; k++) {
            int a = io_int8 ? (int8_t)o[k] : o[k], b = io_int8 ? (int8_t)o[best] : o[best];
            if (a > b) best = k;
        }
        if (best == data.test.labels[i]) correct++;
    }
    if (fin) {
        int bad = fclose(fin);
        fin = NULL;
        if (bad) {
            st = mn_error_set(MN_ERR_IO, "cannot write %s", dumpin);
            goto fail;
        }
    }
    if (dumplab) {
        FILE *f = fopen(dumplab, "wb");
        int bad = !f || fwrite(data.test.labels, sizeof(int32_t), n_test, f) != n_test;
        if (f && fclose(f)) bad = 1;
        if (bad) {
            st = mn_error_set(MN_ERR_IO, "cannot write %s", dumplab);
            goto fail;
        }
    }
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(outs, 1, n_test * (size_t)classes, f) != n_test * (size_t)classes) {
            if (f) fclose(f);
            st = mn_error_set(MN_ERR_IO, "cannot write %s", dump);
            goto fail;
        }
        if (fclose(f)) {
            st = mn_error_set(MN_ERR_IO, "cannot write %s", dump);
            goto fail;
        }
    }
    double int8_acc = (double)correct / (double)n_test;
    mn_arena a32, a64;
    if ((st = mn_arena_compute(g, MN_ABI_ARM32, &a32)) || (st = mn_arena_compute(g, MN_ABI_X86_64, &a64)))
        goto fail;
    char desc[96];
    mn_arch_describe(&arch, desc, sizeof desc);
    if (json) {
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "arch", desc);
        mn_json_str(&j, "output", out);
        mn_json_str(&j, "io", io_int8 ? "int8" : "uint8");
        mn_json_int(&j, "flash_bytes", (long long)flash);
        mn_json_num(&j, "float_test_acc", float_acc);
        mn_json_num(&j, "int8_test_acc", int8_acc);
        mn_json_int(&j, "test_images", (long long)n_test);
        mn_json_int(&j, "calib_images", (long long)n_cal);
        mn_json_int(&j, "ram_bytes", (long long)a32.total);
        mn_json_int(&j, "ram_head_bytes", (long long)a32.head);
        mn_json_int(&j, "ram_x86_64_bytes", (long long)a64.total);
        mn_json_int(&j, "ram_x86_64_head_bytes", (long long)a64.head);
        mn_json_end(&j);
    } else {
        printf("%s -> %s (%zu bytes, io %s)\n", desc, out, flash, io_int8 ? "int8" : "uint8");
        printf("  test accuracy: float %.4f, int8 %.4f (%zu images; %zu calibration images)\n",
               float_acc, int8_acc, n_test, n_cal);
        printf("  arena: %zu B on a 32-bit MCU (head %zu), %zu B on x86-64\n", a32.total, a32.head,
               a64.total);
        if (carr) printf("  C array: %s\n", carr);
    }
    rc = MN_EXIT_OK;
fail:
    if (rc != MN_EXIT_OK) rc = mn_cli_fail(cmd, st);
    if (fin) fclose(fin);
    free(outs);
    free(img8);
    free(tr);
    free(sp);
    mn_qinterp_free(it);
    mn_qgraph_free(g);
    mn_net_destroy(net);
    mn_backend_destroy(be);
    mn_loaded_data_free(&data);
    return rc;
}
