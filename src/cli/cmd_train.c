/* mcunas train: one candidate, trained and scored as the search scores it. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_arch.h"
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
            "  --threads N        worker threads (default: the CPUs this process may use)\n"
            "  --device N         opencl/cuda device index (default 0; see mcunas devices)\n"
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
    OPT_DATA = 256, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_BETA1, OPT_BETA2, OPT_VAL,
    OPT_SPLIT_SEED, OPT_SEED, OPT_LIMIT, OPT_BACKEND, OPT_THREADS, OPT_DEVICE, OPT_LOAD,
    OPT_SAVE, OPT_JSON, OPT_QUIET, OPT_DATA_MEM, OPT_AUGMENT
};

static const struct option longopts[] = {
    {"data", required_argument, 0, OPT_DATA},       MN_CLI_LONGOPT_K,
    MN_CLI_LONGOPT_CELLS,                           MN_CLI_LONGOPT_LAYOUT,
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

static const char *const cmd = "train";

typedef struct train_opts {
    const char *data, *backend, *save, *load;
    mn_cli_arch arch; /* --k, --cells, --layout */
    long batch, limit, threads, device, seed, split_seed, epochs;
    double lr, beta1, beta2, val;
    int json, quiet, augment;
    size_t data_mem;
} train_opts;

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

/* One option into `o`; MN_CLI_CONTINUE, or the exit code of a usage error. */
static int apply(train_opts *o, int c, const char *arg) {
#define BAD(...) return mn_cli_usage_error(cmd, __VA_ARGS__)
    switch (c) {
    case OPT_DATA: o->data = arg; break;
    case OPT_EPOCHS:
        if (!mn_cli_parse_int(arg, 1, MN_TRAIN_MAX_EPOCHS, &o->epochs)) BAD("--epochs must be in [1, %d], got '%s'", MN_TRAIN_MAX_EPOCHS, arg);
        break;
    case OPT_BATCH:
        if (!mn_cli_parse_int(arg, 1, 65536, &o->batch)) BAD("--batch must be in [1, 65536], got '%s'", arg);
        break;
    case OPT_LR:
        if (!mn_cli_parse_double(arg, 1e-12, 10, &o->lr)) BAD("--lr must be a number in (0, 10], got '%s'", arg);
        break;
    case OPT_BETA1:
        if (!mn_cli_parse_double(arg, 0, 0.999999, &o->beta1)) BAD("--beta1 must be in [0, 1), got '%s'", arg);
        break;
    case OPT_BETA2:
        if (!mn_cli_parse_double(arg, 0, 0.999999999, &o->beta2)) BAD("--beta2 must be in [0, 1), got '%s'", arg);
        break;
    case OPT_VAL:
        if (!mn_cli_parse_double(arg, 0, 0.99, &o->val)) BAD("--val-split must be in [0, 0.99], got '%s'", arg);
        break;
    case OPT_SPLIT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &o->split_seed)) BAD("--split-seed must be a non-negative integer, got '%s'", arg);
        break;
    case OPT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &o->seed)) BAD("--seed must be a non-negative integer, got '%s'", arg);
        break;
    case OPT_LIMIT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &o->limit)) BAD("--limit must be a positive integer, got '%s'", arg);
        break;
    case OPT_DATA_MEM:
        if (!mn_cli_parse_size(arg, &o->data_mem)) BAD("--data-mem must be a size like 64M or 1G, got '%s'", arg);
        break;
    case OPT_AUGMENT:
        if ((o->augment = parse_augment(arg)) < 0) BAD("--augment takes flip, rotate or flip,rotate, got '%s'", arg);
        break;
    case OPT_BACKEND: o->backend = arg; break;
    case OPT_DEVICE:
        if (!mn_cli_parse_int(arg, 0, 1024, &o->device)) BAD("--device must be in [0, 1024], got '%s'", arg);
        break;
    case OPT_THREADS:
        if (!mn_cli_parse_int(arg, 0, 1024, &o->threads)) BAD("--threads must be in [0, 1024], got '%s'", arg);
        break;
    case OPT_LOAD: o->load = arg; break;
    case OPT_SAVE: o->save = arg; break;
    case OPT_JSON: o->json = 1; break;
    case OPT_QUIET: o->quiet = 1; break;
    default:
        if (!mn_cli_arch_is_option(c)) BAD("unknown or incomplete option");
        if (mn_cli_arch_apply(cmd, &o->arch, c, arg, "") != MN_EXIT_OK) return MN_EXIT_USAGE;
    }
#undef BAD
    return MN_CLI_CONTINUE;
}

static int parse(int argc, char **argv, train_opts *o) {
    memset(o, 0, sizeof *o);
    mn_cli_arch_init(&o->arch);
    mn_train_options to;
    mn_train_options_default(&to);
    o->backend = "cpu";
    o->batch = 16;
    o->seed = 1;
    o->split_seed = 11;
    o->data_mem = MN_STREAM_DEFAULT_BUDGET;
    o->epochs = to.epochs;
    o->lr = to.adam.lr;
    o->beta1 = to.adam.beta1;
    o->beta2 = to.adam.beta2;
    o->val = to.val_split;
    optind = 1;
    int c, rc;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return MN_EXIT_OK;
        }
        if ((rc = apply(o, c, optarg)) != MN_CLI_CONTINUE) return rc;
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->data) return mn_cli_usage_error(cmd, "--data is required");
    if ((rc = mn_cli_arch_require_point(cmd, &o->arch)) != MN_EXIT_OK) return rc;
    return MN_CLI_CONTINUE;
}

/* What a run holds; released by release(). */
typedef struct train_run {
    mn_stream *data;
    mn_arch arch;
    mn_backend *be;
    mn_net *net;
} train_run;

static mn_status setup(const train_opts *o, train_run *r) {
    mn_stream_options so;
    mn_stream_options_default(&so);
    so.memory_budget = o->data_mem;
    so.batch = (int)o->batch;
    so.limit = (size_t)o->limit;
    mn_status st = mn_stream_open(o->data, &so, &r->data);
    if (st) return st;
    const mn_dataset_info *info = mn_stream_info(r->data);
    st = mn_arch_build(&r->arch, (int)o->arch.k, (int)o->arch.cells, o->arch.layout, info->shape, info->classes);
    if (st) return st;
    mn_backend_options bo = {(int)o->threads, (int)o->device};
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = (int)o->batch;
    if (!st) st = mn_backend_create(o->backend, &bo, &r->be);
    if (!st) st = mn_net_create(&r->arch, r->be, &no, &r->net);
    if (!st) st = mn_net_init(r->net, (uint64_t)o->seed);
    if (!st && o->load) st = mn_weights_load(o->load, r->net);
    return st;
}

static void release(train_run *r) {
    mn_net_destroy(r->net);
    mn_backend_destroy(r->be);
    mn_stream_close(r->data);
}

static void print_plan(const train_opts *o, const train_run *r, const char *desc) {
    if (o->quiet) return;
    const mn_dataset_info *info = mn_stream_info(r->data);
    fprintf(stderr,
            "%s: %llu MACC, %zu params; %zu train+val images, %zu test; backend %s, %d "
            "threads, batch %ld\n"
            "data: %s, %.1f MiB of a %.1f MiB budget%s\n",
            desc, (unsigned long long)mn_arch_macc(&r->arch), mn_arch_params(&r->arch),
            info->count[MN_SPLIT_TRAIN], info->count[MN_SPLIT_TEST], o->backend,
            mn_backend_threads(r->be), o->batch,
            mn_stream_is_resident(r->data) ? "in RAM" : "streamed from the file",
            (double)mn_stream_memory_bytes(r->data) / 1048576.0, (double)o->data_mem / 1048576.0,
            info->count[MN_SPLIT_VAL] ? "; validating on the cache's /val split" : "");
}

static void print_json(const train_opts *o, const train_run *r, const char *desc,
                       const mn_train_result *res) {
    mn_json j;
    char per_epoch[64 * 16] = "[";
    size_t len = 1;
    for (int e = 0; e < res->epochs_run && e < 64; e++)
        len += (size_t)snprintf(per_epoch + len, sizeof per_epoch - len, "%s%.6g",
                                e ? "," : "", res->val_acc[e]);
    snprintf(per_epoch + len, sizeof per_epoch - len, "]");
    const mn_arch *a = &r->arch;
    mn_json_begin(&j, stdout);
    mn_json_str(&j, "arch", desc);
    mn_json_int(&j, "k", a->k);
    mn_json_int(&j, "cells", a->cells);
    mn_json_str(&j, "layout", mn_layout_name(a->layout));
    mn_json_num(&j, "val_acc", res->val_count ? res->best_val_acc : -1);
    mn_json_int(&j, "best_epoch", res->best_epoch);
    mn_json_raw(&j, "val_acc_per_epoch", per_epoch);
    mn_json_num(&j, "test_acc", res->test_acc);
    mn_json_num(&j, "test_loss", res->test_loss);
    mn_json_num(&j, "train_loss", res->final_train_loss);
    mn_json_num(&j, "train_acc", res->final_train_acc);
    mn_json_int(&j, "macc", (long long)mn_arch_macc(a));
    mn_json_int(&j, "params", (long long)mn_arch_params(a));
    mn_json_int(&j, "trainable_params", (long long)mn_arch_trainable_params(a));
    mn_json_int(&j, "train_images", (long long)res->train_count);
    mn_json_int(&j, "val_images", (long long)res->val_count);
    mn_json_int(&j, "test_images", (long long)res->test_count);
    mn_json_num(&j, "seconds", res->total_seconds);
    mn_json_num(&j, "train_seconds", res->train_seconds);
    mn_json_num(&j, "images_per_second", res->images_per_second);
    mn_json_int(&j, "device_bytes", (long long)mn_net_get_plan(r->net)->device_bytes);
    mn_json_str(&j, "backend", o->backend);
    mn_json_int(&j, "threads", mn_backend_threads(r->be));
    mn_json_int(&j, "batch", o->batch);
    mn_json_int(&j, "epochs", res->epochs_run);
    mn_json_int(&j, "seed", o->seed);
    mn_json_int(&j, "data_bytes", (long long)mn_stream_memory_bytes(r->data));
    mn_json_int(&j, "data_resident", mn_stream_is_resident(r->data));
    mn_json_end(&j);
}

static void print_text(const train_opts *o, const train_run *r, const char *desc,
                       const mn_train_result *res) {
    printf("%s\n  val acc   %.4f (best of %d epochs, epoch %d)\n", desc, res->best_val_acc,
           res->epochs_run, res->best_epoch);
    if (res->test_acc >= 0) printf("  test acc  %.4f (%zu images)\n", res->test_acc, res->test_count);
    printf("  MACC %llu, params %zu, %.0f train images/s, %.1f s\n",
           (unsigned long long)mn_arch_macc(&r->arch), mn_arch_params(&r->arch),
           res->images_per_second, res->total_seconds);
    if (o->save) printf("  weights saved to %s\n", o->save);
}

int mn_cmd_train(int argc, char **argv) {
    train_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    mn_cli_remove_on_exit(o.save);
    train_run r;
    memset(&r, 0, sizeof r);
    mn_status st = setup(&o, &r);
    if (st) {
        release(&r);
        return mn_cli_fail(cmd, st);
    }
    char desc[96];
    mn_arch_describe(&r.arch, desc, sizeof desc);
    print_plan(&o, &r, desc);

    mn_cli_progress prog;
    mn_cli_progress_init(&prog, o.quiet);
    mn_train_options to;
    mn_train_options_default(&to);
    to.epochs = (int)o.epochs;
    to.adam.lr = (float)o.lr;
    to.adam.beta1 = (float)o.beta1;
    to.adam.beta2 = (float)o.beta2;
    to.val_split = o.val;
    to.split_seed = (uint64_t)o.split_seed;
    to.seed = (uint64_t)o.seed;
    to.progress = mn_cli_progress_train;
    to.progress_user = &prog;
    to.stop = &mn_cli_stop_flag;
    to.augment = o.augment;

    mn_train_result res;
    st = mn_train_run_stream(r.net, r.data, &to, &res);
    if (!st && o.save) st = mn_weights_save(o.save, r.net);
    rc = MN_EXIT_OK;
    if (st) rc = mn_cli_fail(cmd, st);
    else if (o.json) print_json(&o, &r, desc, &res);
    else print_text(&o, &r, desc, &res);
    release(&r);
    return rc;
}
