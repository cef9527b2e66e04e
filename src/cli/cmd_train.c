/* mcunas train: one candidate, trained and scored as the search scores it. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/net.h"
#include "mcunas/stream.h"
#include "mcunas/train.h"
#include "mcunas/weights.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas train --data D.h5 --k K --cells C [options]\n\n"
            "Trains the network A(K,C) on a dataset cache (see 'mcunas import') with Adam,\n"
            "holding out a seeded validation split of the training set. The score is the best\n"
            "validation accuracy over the epochs (what a search ranks by); the test split is\n"
            "evaluated once at the end.\n\n"
            "Options:\n"
            "  --data PATH        dataset cache (HDF5) [required]\n"
            "  --k K              kernels of the first convolution [required]\n"
            "  --cells C          number of cells [required]\n"
            "  --layout L         nanonas (default) | colabnas | convbn\n"
            "  --epochs N         training epochs (default 3)\n"
            "  --batch N          batch size (default 16)\n"
            "  --lr X             Adam learning rate (default 1e-3)\n"
            "  --beta1 X          Adam beta1 (default 0.9)\n"
            "  --beta2 X          Adam beta2 (default 0.999)\n"
            "  --val-split F      fraction of training images held out (default 0.3; a cache\n"
            "                     with a /val split validates on it instead)\n"
            "  --split-seed S     seed of the validation split (default 11)\n"
            "  --seed S           seed of initialisation, shuffling and dropout (default 1)\n"
            "  --limit N          use only the first N training images (default all)\n"
            "  --data-mem SIZE    memory budget of the data stream, e.g. 64M, 1G (default 256M):\n"
            "                     data that fits is read once and kept in RAM, larger data is\n"
            "                     streamed from the file by a prefetch thread\n"
            "  --augment LIST     on-the-fly augmentation of training batches: flip, rotate or\n"
            "                     flip,rotate (Keras RandomFlip('horizontal') and\n"
            "                     RandomRotation(0.2), 'reflect' fill; default none)\n"
            "  --backend B        compute backend (default cpu; built in: %s)\n"
            "  --threads N        worker threads (default: all cores)\n"
            "  --device N         OpenCL device index (default 0; see mcunas devices)\n"
            "  --load PATH        start from saved weights instead of a fresh initialisation\n"
            "  --save PATH        save the trained weights (HDF5, docs/weights-format.md)\n"
            "  --json             print one JSON object with the results on stdout\n"
            "  --quiet            no progress output\n"
            "  -h, --help         this help\n\n"
            "JSON keys: arch, k, cells, layout, val_acc, best_epoch, val_acc_per_epoch,\n"
            "test_acc, test_loss, train_loss, train_acc, macc, params, trainable_params,\n"
            "train_images, val_images, test_images, seconds, train_seconds,\n"
            "images_per_second, device_bytes, data_bytes, data_resident.\n",
            mn_backend_available());
}

enum {
    OPT_DATA = 256, OPT_K, OPT_CELLS, OPT_LAYOUT, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_BETA1,
    OPT_BETA2, OPT_VAL, OPT_SPLIT_SEED, OPT_SEED, OPT_LIMIT, OPT_BACKEND, OPT_THREADS, OPT_DEVICE, OPT_LOAD,
    OPT_SAVE, OPT_JSON, OPT_QUIET, OPT_DATA_MEM, OPT_AUGMENT
};

/* "flip", "rotate", "flip,rotate", "none" -> MN_AUGMENT_* flags; -1 when unknown. */
static int parse_augment(const char *s) {
    int flags = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 4 && !strncmp(p, "flip", 4)) flags |= MN_AUGMENT_FLIP;
        else if (len == 6 && !strncmp(p, "rotate", 6)) flags |= MN_AUGMENT_ROTATE;
        else if (len == 4 && !strncmp(p, "none", 4)) flags |= 0;
        else return -1;
        p += len;
        if (*p == ',') p++;
    }
    return flags;
}

int mn_cmd_train(int argc, char **argv) {
    static const struct option longopts[] = {
        {"data", required_argument, 0, OPT_DATA},       {"k", required_argument, 0, OPT_K},
        {"cells", required_argument, 0, OPT_CELLS},     {"layout", required_argument, 0, OPT_LAYOUT},
        {"epochs", required_argument, 0, OPT_EPOCHS},   {"batch", required_argument, 0, OPT_BATCH},
        {"lr", required_argument, 0, OPT_LR},           {"beta1", required_argument, 0, OPT_BETA1},
        {"beta2", required_argument, 0, OPT_BETA2},     {"val-split", required_argument, 0, OPT_VAL},
        {"split-seed", required_argument, 0, OPT_SPLIT_SEED},
        {"seed", required_argument, 0, OPT_SEED},       {"limit", required_argument, 0, OPT_LIMIT},
        {"backend", required_argument, 0, OPT_BACKEND}, {"threads", required_argument, 0, OPT_THREADS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"load", required_argument, 0, OPT_LOAD},       {"save", required_argument, 0, OPT_SAVE},
        {"json", no_argument, 0, OPT_JSON},             {"quiet", no_argument, 0, OPT_QUIET},
        {"data-mem", required_argument, 0, OPT_DATA_MEM},
        {"augment", required_argument, 0, OPT_AUGMENT},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    const char *cmd = "train";
    const char *data_path = NULL, *backend_name = "cpu", *save_path = NULL, *load_path = NULL;
    long k = -1, cells = -1, batch = 16, limit = 0, threads = 0, device = 0, seed = 1, split_seed = 11;
    mn_layout layout = MN_LAYOUT_NANONAS;
    int json = 0, quiet = 0, augment = 0;
    size_t data_mem = MN_STREAM_DEFAULT_BUDGET;
    mn_train_options to;
    mn_train_options_default(&to);
    long epochs = to.epochs;
    double lr = to.adam.lr, beta1 = to.adam.beta1, beta2 = to.adam.beta2, val = to.val_split;

    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DATA: data_path = optarg; break;
        case OPT_K:
            if (!mn_cli_parse_int(optarg, 1, 4096, &k))
                return mn_cli_usage_error(cmd, "--k must be an integer in [1, 4096], got '%s'", optarg);
            break;
        case OPT_CELLS:
            if (!mn_cli_parse_int(optarg, 0, MN_ARCH_MAX_CELLS, &cells))
                return mn_cli_usage_error(cmd, "--cells must be an integer in [0, %d], got '%s'",
                                          MN_ARCH_MAX_CELLS, optarg);
            break;
        case OPT_LAYOUT:
            if (mn_layout_parse(optarg, &layout)) return mn_cli_usage_error(cmd, "%s", mn_error_message());
            break;
        case OPT_EPOCHS:
            if (!mn_cli_parse_int(optarg, 1, MN_TRAIN_MAX_EPOCHS, &epochs))
                return mn_cli_usage_error(cmd, "--epochs must be in [1, %d], got '%s'",
                                          MN_TRAIN_MAX_EPOCHS, optarg);
            break;
        case OPT_BATCH:
            if (!mn_cli_parse_int(optarg, 1, 65536, &batch))
                return mn_cli_usage_error(cmd, "--batch must be in [1, 65536], got '%s'", optarg);
            break;
        case OPT_LR:
            if (!mn_cli_parse_double(optarg, 1e-12, 10, &lr))
                return mn_cli_usage_error(cmd, "--lr must be a number in (0, 10], got '%s'", optarg);
            break;
        case OPT_BETA1:
            if (!mn_cli_parse_double(optarg, 0, 0.999999, &beta1))
                return mn_cli_usage_error(cmd, "--beta1 must be in [0, 1), got '%s'", optarg);
            break;
        case OPT_BETA2:
            if (!mn_cli_parse_double(optarg, 0, 0.999999999, &beta2))
                return mn_cli_usage_error(cmd, "--beta2 must be in [0, 1), got '%s'", optarg);
            break;
        case OPT_VAL:
            if (!mn_cli_parse_double(optarg, 0, 0.99, &val))
                return mn_cli_usage_error(cmd, "--val-split must be in [0, 0.99], got '%s'", optarg);
            break;
        case OPT_SPLIT_SEED:
            if (!mn_cli_parse_int(optarg, 0, 0x7fffffffL, &split_seed))
                return mn_cli_usage_error(cmd, "--split-seed must be a non-negative integer, got '%s'", optarg);
            break;
        case OPT_SEED:
            if (!mn_cli_parse_int(optarg, 0, 0x7fffffffL, &seed))
                return mn_cli_usage_error(cmd, "--seed must be a non-negative integer, got '%s'", optarg);
            break;
        case OPT_LIMIT:
            if (!mn_cli_parse_int(optarg, 1, 0x7fffffffL, &limit))
                return mn_cli_usage_error(cmd, "--limit must be a positive integer, got '%s'", optarg);
            break;
        case OPT_DATA_MEM:
            if (!mn_cli_parse_size(optarg, &data_mem))
                return mn_cli_usage_error(cmd, "--data-mem must be a size like 64M or 1G, got '%s'", optarg);
            break;
        case OPT_AUGMENT:
            if ((augment = parse_augment(optarg)) < 0)
                return mn_cli_usage_error(cmd, "--augment takes flip, rotate or flip,rotate, got '%s'", optarg);
            break;
        case OPT_BACKEND: backend_name = optarg; break;
        case OPT_DEVICE:
            if (!mn_cli_parse_int(optarg, 0, 1024, &device))
                return mn_cli_usage_error(cmd, "--device must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_THREADS:
            if (!mn_cli_parse_int(optarg, 0, 1024, &threads))
                return mn_cli_usage_error(cmd, "--threads must be in [0, 1024], got '%s'", optarg);
            break;
        case OPT_LOAD: load_path = optarg; break;
        case OPT_SAVE: save_path = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!data_path) return mn_cli_usage_error(cmd, "--data is required");
    if (k < 0) return mn_cli_usage_error(cmd, "--k is required");
    if (cells < 0) return mn_cli_usage_error(cmd, "--cells is required");

    mn_stream_options so;
    mn_stream_options_default(&so);
    so.memory_budget = data_mem;
    so.batch = (int)batch;
    so.limit = (size_t)limit;
    mn_stream *data = NULL;
    mn_status st = mn_stream_open(data_path, &so, &data);
    if (st) return mn_cli_fail(cmd, st);
    const mn_dataset_info *info = mn_stream_info(data);

    mn_arch arch;
    st = mn_arch_build(&arch, (int)k, (int)cells, layout, info->shape, info->classes);
    if (st) {
        mn_stream_close(data);
        return mn_cli_fail(cmd, st);
    }
    mn_backend_options bo = {(int)threads, (int)device};
    mn_backend *be = NULL;
    mn_net *net = NULL;
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = (int)batch;
    if ((st = mn_backend_create(backend_name, &bo, &be)) ||
        (st = mn_net_create(&arch, be, &no, &net)) || (st = mn_net_init(net, (uint64_t)seed)) ||
        (load_path && (st = mn_weights_load(load_path, net)))) {
        mn_net_destroy(net);
        mn_backend_destroy(be);
        mn_stream_close(data);
        return mn_cli_fail(cmd, st);
    }

    char desc[96];
    mn_arch_describe(&arch, desc, sizeof desc);
    if (!quiet)
        fprintf(stderr,
                "%s: %llu MACC, %zu params; %zu train+val images, %zu test; backend %s, %d "
                "threads, batch %ld\n"
                "data: %s, %.1f MiB of a %.1f MiB budget%s\n",
                desc, (unsigned long long)mn_arch_macc(&arch), mn_arch_params(&arch),
                info->count[MN_SPLIT_TRAIN], info->count[MN_SPLIT_TEST], backend_name,
                mn_backend_threads(be), batch,
                mn_stream_is_resident(data) ? "in RAM" : "streamed from the file",
                (double)mn_stream_memory_bytes(data) / 1048576.0, (double)data_mem / 1048576.0,
                info->count[MN_SPLIT_VAL] ? "; validating on the cache's /val split" : "");

    mn_cli_progress prog;
    mn_cli_progress_init(&prog, quiet);
    to.epochs = (int)epochs;
    to.adam.lr = (float)lr;
    to.adam.beta1 = (float)beta1;
    to.adam.beta2 = (float)beta2;
    to.val_split = val;
    to.split_seed = (uint64_t)split_seed;
    to.seed = (uint64_t)seed;
    to.progress = mn_cli_progress_train;
    to.progress_user = &prog;
    to.stop = &mn_cli_stop_flag;
    to.augment = augment;
    mn_cli_install_sigint();

    mn_train_result res;
    st = mn_train_run_stream(net, data, &to, &res);
    if (!st && save_path) st = mn_weights_save(save_path, net);
    int rc = MN_EXIT_OK;
    if (st) {
        rc = mn_cli_fail(cmd, st);
    } else if (json) {
        mn_json j;
        char per_epoch[64 * 16] = "[";
        size_t len = 1;
        for (int e = 0; e < res.epochs_run && e < 64; e++)
            len += (size_t)snprintf(per_epoch + len, sizeof per_epoch - len, "%s%.6g",
                                    e ? "," : "", res.val_acc[e]);
        snprintf(per_epoch + len, sizeof per_epoch - len, "]");
        mn_json_begin(&j, stdout);
        mn_json_str(&j, "arch", desc);
        mn_json_int(&j, "k", arch.k);
        mn_json_int(&j, "cells", arch.cells);
        mn_json_str(&j, "layout", mn_layout_name(arch.layout));
        mn_json_num(&j, "val_acc", res.val_count ? res.best_val_acc : -1);
        mn_json_int(&j, "best_epoch", res.best_epoch);
        mn_json_raw(&j, "val_acc_per_epoch", per_epoch);
        mn_json_num(&j, "test_acc", res.test_acc);
        mn_json_num(&j, "test_loss", res.test_loss);
        mn_json_num(&j, "train_loss", res.final_train_loss);
        mn_json_num(&j, "train_acc", res.final_train_acc);
        mn_json_int(&j, "macc", (long long)mn_arch_macc(&arch));
        mn_json_int(&j, "params", (long long)mn_arch_params(&arch));
        mn_json_int(&j, "trainable_params", (long long)mn_arch_trainable_params(&arch));
        mn_json_int(&j, "train_images", (long long)res.train_count);
        mn_json_int(&j, "val_images", (long long)res.val_count);
        mn_json_int(&j, "test_images", (long long)res.test_count);
        mn_json_num(&j, "seconds", res.total_seconds);
        mn_json_num(&j, "train_seconds", res.train_seconds);
        mn_json_num(&j, "images_per_second", res.images_per_second);
        mn_json_int(&j, "device_bytes", (long long)mn_net_get_plan(net)->device_bytes);
        mn_json_str(&j, "backend", backend_name);
        mn_json_int(&j, "threads", mn_backend_threads(be));
        mn_json_int(&j, "batch", batch);
        mn_json_int(&j, "epochs", res.epochs_run);
        mn_json_int(&j, "seed", seed);
        mn_json_int(&j, "data_bytes", (long long)mn_stream_memory_bytes(data));
        mn_json_int(&j, "data_resident", mn_stream_is_resident(data));
        mn_json_end(&j);
    } else {
        printf("%s\n  val acc   %.4f (best of %d epochs, epoch %d)\n", desc, res.best_val_acc,
               res.epochs_run, res.best_epoch);
        if (res.test_acc >= 0) printf("  test acc  %.4f (%zu images)\n", res.test_acc, res.test_count);
        printf("  MACC %llu, params %zu, %.0f train images/s, %.1f s\n",
               (unsigned long long)mn_arch_macc(&arch), mn_arch_params(&arch), res.images_per_second,
               res.total_seconds);
        if (save_path) printf("  weights saved to %s\n", save_path);
    }
    mn_net_destroy(net);
    mn_backend_destroy(be);
    mn_stream_close(data);
    return rc;
}
