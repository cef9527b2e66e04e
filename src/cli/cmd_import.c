/* mcunas import: images in the formats people have -> an HDF5 dataset cache. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mcunas/dataset.h"
#include "mcunas/rng.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static const char *const fashion_mnist_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                  "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas import idx --images F --labels F [--test-images F --test-labels F]\n"
            "                         [--class-names A,B,...] [--limit N] -o OUT.h5\n"
            "       mcunas import fashion-mnist [--dir DIR] [--limit N] -o OUT.h5\n"
            "       mcunas import cifar --dir DIR [--coarse] [--limit N] -o OUT.h5\n"
            "       mcunas import folder --dir DIR [--size WxH] [--channels 1|3] [--test-split F]\n"
            "                            [--seed S] [--skip-bad] [--limit N] -o OUT.h5\n"
            "       mcunas import synthetic --count N [--size WxH] [--channels 1|3] [--classes K]\n"
            "                               [--test-count N] [--seed S] -o OUT.h5\n"
            "       mcunas import vww --annotations F --images DIR [...] --size WxH -o OUT.h5\n"
            "                         (mcunas import vww --help)\n\n"
            "Formats:\n"
            "  idx            MNIST-format IDX image and label files, gzip or raw (MNIST,\n"
            "                 Fashion-MNIST, EMNIST)\n"
            "  fashion-mnist  the IDX files of Debian's dataset-fashion-mnist package\n"
            "                 (default --dir %s), with its class names\n"
            "  cifar          CIFAR-10 binary batches (data_batch_*.bin, test_batch.bin) or\n"
            "                 CIFAR-100 (train.bin, test.bin: fine labels, --coarse for the 20\n"
            "                 coarse ones) in DIR\n"
            "  folder         one subfolder per class of PNG/JPEG/BMP/PGM/PPM/GIF/TGA files in\n"
            "                 DIR, or DIR/train/<class>/ and DIR/test/<class>/ (Visual Wake\n"
            "                 Words layout); decoded on all cores\n"
            "  synthetic      N generated images (class-coloured noise) for benchmarks\n"
            "  vww            Visual Wake Words (person / no person) from COCO annotations\n"
            "                 and images\n\n"
            "Options:\n"
            "  --images F, --labels F            training images and labels\n"
            "  --test-images F, --test-labels F  test split (both or neither)\n"
            "  --class-names A,B,...             names of the classes, in label order\n"
            "  --dir DIR                         where the files are\n"
            "  --coarse                          CIFAR-100: coarse labels (20 classes)\n"
            "  --size WxH                        folder: resize every image (area averaging\n"
            "                                    when shrinking, bilinear when growing);\n"
            "                                    default: the first image's size, which every\n"
            "                                    image must then have\n"
            "  --channels 1|3                    folder: grey or RGB (default: the first image's)\n"
            "  --test-split F                    folder without test/: hold out this fraction\n"
            "                                    as the test split (seeded; default 0)\n"
            "  --seed S                          seed of the test split and image order (default 1)\n"
            "  --skip-bad                        folder: skip unreadable images (and count them)\n"
            "                                    instead of stopping at the first\n"
            "  --limit N                         import only N training images (the first N;\n"
            "                                    for folder, a seeded random N)\n"
            "  -o, --output OUT.h5               the cache to write (written to OUT.h5.tmp,\n"
            "                                    renamed when complete)\n"
            "  --quiet                           no progress output\n"
            "  -h, --help                        this help\n",
            FASHION_MNIST_DIR);
}

/* Splits "a,b,c" into a NULL-terminated array of strings (one allocation). */
static char **split_names(const char *list, int *count) {
    size_t len = strlen(list);
    int n = 1;
    for (const char *s = list; *s; s++) n += *s == ',';
    char **names = malloc((size_t)(n + 1) * sizeof(char *) + len + 1);
    if (!names) return NULL;
    char *text = (char *)(names + n + 1);
    memcpy(text, list, len + 1);
    int i = 0;
    for (char *tok = text;; i++) {
        names[i] = tok;
        char *comma = strchr(tok, ',');
        if (!comma) break;
        *comma = '\0';
        tok = comma + 1;
    }
    names[n] = NULL;
    *count = n;
    return names;
}

enum {
    OPT_IMAGES = 256, OPT_LABELS, OPT_TIMAGES, OPT_TLABELS, OPT_NAMES, OPT_DIR, OPT_LIMIT,
    OPT_QUIET, OPT_COARSE, OPT_SIZE, OPT_CHANNELS, OPT_TEST_SPLIT, OPT_SEED, OPT_SKIP_BAD,
    OPT_COUNT, OPT_CLASSES, OPT_TEST_COUNT
};

static const struct option longopts[] = {
    {"images", required_argument, 0, OPT_IMAGES},
    {"labels", required_argument, 0, OPT_LABELS},
    {"test-images", required_argument, 0, OPT_TIMAGES},
    {"test-labels", required_argument, 0, OPT_TLABELS},
    {"class-names", required_argument, 0, OPT_NAMES},
    {"dir", required_argument, 0, OPT_DIR},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"output", required_argument, 0, 'o'},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"coarse", no_argument, 0, OPT_COARSE},
    {"size", required_argument, 0, OPT_SIZE},
    {"channels", required_argument, 0, OPT_CHANNELS},
    {"test-split", required_argument, 0, OPT_TEST_SPLIT},
    {"seed", required_argument, 0, OPT_SEED},
    {"skip-bad", no_argument, 0, OPT_SKIP_BAD},
    {"count", required_argument, 0, OPT_COUNT},
    {"classes", required_argument, 0, OPT_CLASSES},
    {"test-count", required_argument, 0, OPT_TEST_COUNT},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static const char *const cmd = "import";

/* Every option of every format; each importer reads the ones it takes. */
typedef struct import_opts {
    const char *images, *labels, *test_images, *test_labels, *names, *dir, *output;
    int dir_given, coarse, skip_bad, quiet;
    int sw, sh; /* --size, 0 when not given */
    long channels, seed, count, classes, test_count, limit;
    double test_split;
} import_opts;

/* Class-coloured noise: class k has its own mean colour per channel and a gradient, so a
 * net can learn it; cheap to make at any size. */
static mn_status make_synthetic(const char *out, long count, long test_count, int w, int h,
                                int c, int classes, uint64_t seed, mn_cli_count_progress *prog) {
    mn_dataset_writer_options wo;
    memset(&wo, 0, sizeof wo);
    wo.shape = (mn_shape){h, w, c};
    wo.classes = classes;
    wo.source = "synthetic (mcunas import synthetic)";
    wo.stop = &mn_cli_stop_flag;
    mn_dataset_writer *wr = NULL;
    mn_status st = mn_dataset_writer_create(out, &wo, &wr);
    if (st) return st;
    const size_t ib = (size_t)w * (size_t)h * (size_t)c, block = 1024;
    uint8_t *img = malloc(block * ib);
    int32_t *lab = malloc(block * sizeof *lab);
    if (!img || !lab) st = mn_error_set(MN_ERR_NOMEM, "no memory for a block");
    mn_rng r;
    mn_rng_seed(&r, seed);
    for (int sp = 0; sp < 2 && !st; sp++) {
        size_t n = (size_t)(sp ? test_count : count);
        for (size_t done = 0; done < n && !st;) {
            size_t b = n - done < block ? n - done : block;
            for (size_t i = 0; i < b; i++) {
                int k = (int)mn_rng_below(&r, (uint64_t)classes);
                lab[i] = k;
                uint8_t *d = img + i * ib;
                for (size_t p = 0; p < ib; p++) {
                    if ((p & 7) == 0) {
                        uint64_t x = mn_rng_next(&r);
                        for (size_t q = p; q < p + 8 && q < ib; q++, x >>= 8) {
                            int ch = (int)(q % (size_t)c), px = (int)(q / (size_t)c) % w;
                            /* a colour and a stripe period per class */
                            int v = 30 + ((k + 1) * (2 * ch + 3) * 37) % 170 +
                                    ((px / (2 + k % 7)) % 2) * 24 + (int)(x & 31) - 16;
                            d[q] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                        }
                    }
                }
            }
            st = mn_dataset_writer_append(wr, (mn_split)sp, img, lab, b);
            done += b;
            mn_cli_count_progress_report(prog, sp ? "test images" : "train images", done, n);
        }
    }
    free(img);
    free(lab);
    if (st) {
        mn_dataset_writer_abort(wr);
        return st;
    }
    return mn_dataset_writer_commit(wr);
}


/* One option into `o`; MN_CLI_CONTINUE, or the exit code of a usage error. */
static int apply(import_opts *o, int c, const char *arg) {
    switch (c) {
    case OPT_IMAGES: o->images = arg; break;
    case OPT_LABELS: o->labels = arg; break;
    case OPT_TIMAGES: o->test_images = arg; break;
    case OPT_TLABELS: o->test_labels = arg; break;
    case OPT_NAMES: o->names = arg; break;
    case OPT_DIR: o->dir = arg; o->dir_given = 1; break;
    case OPT_COARSE: o->coarse = 1; break;
    case OPT_SKIP_BAD: o->skip_bad = 1; break;
    case OPT_SIZE:
        if (!mn_cli_parse_wh(arg, &o->sw, &o->sh))
            return mn_cli_usage_error(cmd, "--size must be WxH (e.g. 50x50), got '%s'", arg);
        break;
    case OPT_CHANNELS:
        if (!mn_cli_parse_int(arg, 1, 3, &o->channels) || o->channels == 2)
            return mn_cli_usage_error(cmd, "--channels must be 1 or 3, got '%s'", arg);
        break;
    case OPT_TEST_SPLIT:
        if (!mn_cli_parse_double(arg, 0, 0.99, &o->test_split))
            return mn_cli_usage_error(cmd, "--test-split must be in [0, 0.99], got '%s'", arg);
        break;
    case OPT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &o->seed))
            return mn_cli_usage_error(cmd, "--seed must be a non-negative integer, got '%s'", arg);
        break;
    case OPT_COUNT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &o->count))
            return mn_cli_usage_error(cmd, "--count must be a positive integer, got '%s'", arg);
        break;
    case OPT_TEST_COUNT:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &o->test_count))
            return mn_cli_usage_error(cmd, "--test-count must be a non-negative integer, got '%s'", arg);
        break;
    case OPT_CLASSES:
        if (!mn_cli_parse_int(arg, 2, 65536, &o->classes))
            return mn_cli_usage_error(cmd, "--classes must be in [2, 65536], got '%s'", arg);
        break;
    case OPT_LIMIT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &o->limit))
            return mn_cli_usage_error(cmd, "--limit must be a positive integer, got '%s'", arg);
        break;
    case 'o': o->output = arg; break;
    case OPT_QUIET: o->quiet = 1; break;
    default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
    }
    return MN_CLI_CONTINUE;
}

/* The options after the format (argv[0] is the format). */
static int parse(int argc, char **argv, import_opts *o) {
    memset(o, 0, sizeof *o);
    o->dir = FASHION_MNIST_DIR;
    o->seed = 1;
    o->classes = 10;
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
    if (!o->output) return mn_cli_usage_error(cmd, "-o OUT.h5 is required");
    return MN_CLI_CONTINUE;
}

/* ---- the importers: each checks its own options and runs; returns an exit code ---- */

static int finish(const import_opts *o, mn_status st, double t0, size_t skipped) {
    if (st) return mn_cli_fail(cmd, st);
    if (!o->quiet) {
        if (skipped) fprintf(stderr, "skipped %zu unreadable images\n", skipped);
        fprintf(stderr, "wrote %s in %.1f s\n", o->output, mn_time_now() - t0);
    }
    return MN_EXIT_OK;
}

static int run_idx_files(const import_opts *o, mn_import_idx_options *io,
                         mn_cli_count_progress *prog) {
    char **names = NULL;
    if (o->names) {
        names = split_names(o->names, &io->n_class_names);
        if (!names) return mn_cli_fail(cmd, mn_error_set(MN_ERR_NOMEM, "no memory"));
        io->class_names = (const char *const *)names;
    }
    io->output = o->output;
    io->limit = (size_t)o->limit;
    io->progress = mn_cli_count_progress_report;
    io->progress_user = prog;
    io->stop = &mn_cli_stop_flag;
    double t0 = mn_time_now();
    mn_status st = mn_import_idx(io);
    free(names);
    return finish(o, st, t0, 0);
}

static int run_idx(const import_opts *o, mn_cli_count_progress *prog) {
    if (!o->images || !o->labels) return mn_cli_usage_error(cmd, "--images and --labels are required");
    if (!o->test_images != !o->test_labels)
        return mn_cli_usage_error(cmd, "--test-images and --test-labels go together");
    mn_import_idx_options io = {.train_images = o->images, .train_labels = o->labels,
                                .test_images = o->test_images, .test_labels = o->test_labels};
    return run_idx_files(o, &io, prog);
}

static int run_fashion_mnist(const import_opts *o, mn_cli_count_progress *prog) {
    static const char *const files[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    char paths[4][1024];
    for (int i = 0; i < 4; i++) snprintf(paths[i], sizeof paths[i], "%s/%s", o->dir, files[i]);
    if (access(paths[0], R_OK) != 0) {
        fprintf(stderr,
                "mcunas import: error: %s not found; install Debian's dataset-fashion-mnist "
                "package (scripts/setup does) or pass --dir\n",
                paths[0]);
        return MN_EXIT_FAILURE;
    }
    mn_import_idx_options io = {.train_images = paths[0], .train_labels = paths[1],
                                .test_images = paths[2], .test_labels = paths[3],
                                .class_names = fashion_mnist_names, .n_class_names = 10};
    return run_idx_files(o, &io, prog);
}

static int run_cifar(const import_opts *o, mn_cli_count_progress *prog) {
    if (!o->dir_given) return mn_cli_usage_error(cmd, "--dir is required");
    mn_import_cifar_options co = {.dir = o->dir, .output = o->output, .coarse = o->coarse,
                                  .limit = (size_t)o->limit,
                                  .progress = mn_cli_count_progress_report, .progress_user = prog,
                                  .stop = &mn_cli_stop_flag};
    double t0 = mn_time_now();
    return finish(o, mn_import_cifar(&co), t0, 0);
}

static int run_folder(const import_opts *o, mn_cli_count_progress *prog) {
    if (!o->dir_given) return mn_cli_usage_error(cmd, "--dir is required");
    size_t skipped = 0;
    mn_import_folder_options fo;
    memset(&fo, 0, sizeof fo);
    fo.dir = o->dir;
    fo.output = o->output;
    fo.width = o->sw;
    fo.height = o->sh;
    fo.channels = (int)o->channels;
    fo.test_split = o->test_split;
    fo.seed = (uint64_t)o->seed;
    fo.limit = (size_t)o->limit;
    fo.skip_bad = o->skip_bad;
    fo.skipped = &skipped;
    fo.progress = mn_cli_count_progress_report;
    fo.progress_user = prog;
    fo.stop = &mn_cli_stop_flag;
    double t0 = mn_time_now();
    mn_status st = mn_import_folder(&fo);
    return finish(o, st, t0, skipped);
}

static int run_synthetic(const import_opts *o, mn_cli_count_progress *prog) {
    if (!o->count) return mn_cli_usage_error(cmd, "--count is required");
    double t0 = mn_time_now();
    mn_status st = make_synthetic(o->output, o->count, o->test_count, o->sw ? o->sw : 32,
                                  o->sh ? o->sh : 32, o->channels ? (int)o->channels : 3,
                                  (int)o->classes, (uint64_t)o->seed, prog);
    return finish(o, st, t0, 0);
}

/* The formats, in the order messages list them: one line per importer. */
static const struct importer {
    const char *name;
    int (*run)(const import_opts *o, mn_cli_count_progress *prog);
    int (*own)(int argc, char **argv); /* a format with its own options and file */
} importers[] = {
    {"idx", run_idx, NULL},
    {"fashion-mnist", run_fashion_mnist, NULL},
    {"cifar", run_cifar, NULL},
    {"folder", run_folder, NULL},
    {"synthetic", run_synthetic, NULL},
    {"vww", NULL, mn_cmd_import_vww},
};
#define N_IMPORTERS (sizeof importers / sizeof importers[0])

/* "idx, fashion-mnist, cifar, folder, synthetic or vww" */
static void format_names(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_IMPORTERS && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i == 0 ? "" : i + 1 == N_IMPORTERS ? " or " : ", ",
                                importers[i].name);
}

int mn_cmd_import(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return MN_EXIT_OK;
    }
    char names[256];
    format_names(names, sizeof names);
    if (argc < 2) return mn_cli_usage_error(cmd, "missing the format (%s)", names);
    const struct importer *imp = NULL;
    for (size_t i = 0; i < N_IMPORTERS; i++)
        if (!strcmp(argv[1], importers[i].name)) imp = &importers[i];
    if (!imp) return mn_cli_usage_error(cmd, "unknown format '%s' (expected %s)", argv[1], names);
    if (imp->own) return imp->own(argc, argv);
    import_opts o;
    int rc = parse(argc - 1, argv + 1, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    mn_cli_remove_on_exit(o.output);
    mn_cli_count_progress prog;
    mn_cli_count_progress_init(&prog, o.quiet);
    return imp->run(&o, &prog);
}
