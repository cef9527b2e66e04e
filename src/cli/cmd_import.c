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
            "                               [--test-count N] [--seed S] -o OUT.h5\n\n"
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
            "  synthetic      N generated images (class-coloured noise) for benchmarks\n\n"
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

typedef struct import_progress {
    int tty, quiet;
    double last;
} import_progress;

static void on_progress(void *user, const char *what, size_t done, size_t total) {
    import_progress *p = user;
    if (p->quiet) return;
    double now = mn_time_now();
    int finished = done == total;
    if (!finished && now - p->last < (p->tty ? 0.1 : 5.0)) return;
    p->last = now;
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    if (p->tty)
        fprintf(stderr, "\r%s %zu/%zu (%3.0f%%)%s", what, done, total, pct, finished ? "\n" : "");
    else
        fprintf(stderr, "%s %zu/%zu (%.0f%%)\n", what, done, total, pct);
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

/* Class-coloured noise: class k has its own mean colour per channel and a gradient, so a
 * net can learn it; cheap to make at any size. */
static mn_status make_synthetic(const char *out, long count, long test_count, int w, int h,
                                int c, int classes, uint64_t seed, import_progress *prog) {
    mn_dataset_writer_options wo;
    memset(&wo, 0, sizeof wo);
    wo.shape = (mn_shape){h, w, c};
    wo.classes = classes;
    wo.source = "synthetic (mcunas import synthetic)";
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
            on_progress(prog, sp ? "test images" : "train images", done, n);
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

int mn_cmd_import(int argc, char **argv) {
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
    const char *cmd = "import";
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return MN_EXIT_OK;
    }
    if (argc < 2)
        return mn_cli_usage_error(cmd, "missing the format (idx, fashion-mnist, cifar, folder or synthetic)");
    const char *format = argv[1];
    int fashion = !strcmp(format, "fashion-mnist"), cifar = !strcmp(format, "cifar"),
        folder = !strcmp(format, "folder"), synthetic = !strcmp(format, "synthetic");
    if (!fashion && !cifar && !folder && !synthetic && strcmp(format, "idx") != 0)
        return mn_cli_usage_error(
            cmd, "unknown format '%s' (expected idx, fashion-mnist, cifar, folder or synthetic)", format);
    int coarse = 0, skip_bad = 0, dir_given = 0;
    int sw = 0, sh = 0;
    long channels = 0, seed_arg = 1, count = 0, classes = 10, test_count = 0;
    double test_split = 0;

    mn_import_idx_options o;
    memset(&o, 0, sizeof o);
    const char *names_arg = NULL, *dir = FASHION_MNIST_DIR;
    long limit = 0;
    int quiet = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc - 1, argv + 1, "ho:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_IMAGES: o.train_images = optarg; break;
        case OPT_LABELS: o.train_labels = optarg; break;
        case OPT_TIMAGES: o.test_images = optarg; break;
        case OPT_TLABELS: o.test_labels = optarg; break;
        case OPT_NAMES: names_arg = optarg; break;
        case OPT_DIR: dir = optarg; dir_given = 1; break;
        case OPT_COARSE: coarse = 1; break;
        case OPT_SKIP_BAD: skip_bad = 1; break;
        case OPT_SIZE: {
            int a = 0, b = 0;
            char extra;
            if (sscanf(optarg, "%dx%d%c", &a, &b, &extra) != 2 || a < 1 || b < 1 || a > 4096 || b > 4096)
                return mn_cli_usage_error(cmd, "--size must be WxH (e.g. 50x50), got '%s'", optarg);
            sw = a;
            sh = b;
            break;
        }
        case OPT_CHANNELS:
            if (!mn_cli_parse_int(optarg, 1, 3, &channels) || channels == 2)
                return mn_cli_usage_error(cmd, "--channels must be 1 or 3, got '%s'", optarg);
            break;
        case OPT_TEST_SPLIT:
            if (!mn_cli_parse_double(optarg, 0, 0.99, &test_split))
                return mn_cli_usage_error(cmd, "--test-split must be in [0, 0.99], got '%s'", optarg);
            break;
        case OPT_SEED:
            if (!mn_cli_parse_int(optarg, 0, 0x7fffffffL, &seed_arg))
                return mn_cli_usage_error(cmd, "--seed must be a non-negative integer, got '%s'", optarg);
            break;
        case OPT_COUNT:
            if (!mn_cli_parse_int(optarg, 1, 0x7fffffffL, &count))
                return mn_cli_usage_error(cmd, "--count must be a positive integer, got '%s'", optarg);
            break;
        case OPT_TEST_COUNT:
            if (!mn_cli_parse_int(optarg, 0, 0x7fffffffL, &test_count))
                return mn_cli_usage_error(cmd, "--test-count must be a non-negative integer, got '%s'", optarg);
            break;
        case OPT_CLASSES:
            if (!mn_cli_parse_int(optarg, 2, 65536, &classes))
                return mn_cli_usage_error(cmd, "--classes must be in [2, 65536], got '%s'", optarg);
            break;
        case OPT_LIMIT:
            if (!mn_cli_parse_int(optarg, 1, 0x7fffffffL, &limit))
                return mn_cli_usage_error(cmd, "--limit must be a positive integer, got '%s'", optarg);
            break;
        case 'o': o.output = optarg; break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind < argc - 1) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (!o.output) return mn_cli_usage_error(cmd, "-o OUT.h5 is required");

    import_progress prog0 = {isatty(fileno(stderr)), quiet, 0};
    if (cifar || folder || synthetic) {
        double t0 = mn_time_now();
        mn_status st;
        size_t skipped = 0;
        if (cifar) {
            if (!dir_given) return mn_cli_usage_error(cmd, "--dir is required");
            mn_import_cifar_options co = {dir, o.output, coarse, (size_t)limit, on_progress, &prog0};
            st = mn_import_cifar(&co);
        } else if (folder) {
            if (!dir_given) return mn_cli_usage_error(cmd, "--dir is required");
            mn_import_folder_options fo;
            memset(&fo, 0, sizeof fo);
            fo.dir = dir;
            fo.output = o.output;
            fo.width = sw;
            fo.height = sh;
            fo.channels = (int)channels;
            fo.test_split = test_split;
            fo.seed = (uint64_t)seed_arg;
            fo.limit = (size_t)limit;
            fo.skip_bad = skip_bad;
            fo.skipped = &skipped;
            fo.progress = on_progress;
            fo.progress_user = &prog0;
            st = mn_import_folder(&fo);
        } else {
            if (!count) return mn_cli_usage_error(cmd, "--count is required");
            st = make_synthetic(o.output, count, test_count, sw ? sw : 32, sh ? sh : 32,
                                channels ? (int)channels : 3, (int)classes, (uint64_t)seed_arg, &prog0);
        }
        if (st) return mn_cli_fail(cmd, st);
        if (!quiet) {
            if (skipped) fprintf(stderr, "skipped %zu unreadable images\n", skipped);
            fprintf(stderr, "wrote %s in %.1f s\n", o.output, mn_time_now() - t0);
        }
        return MN_EXIT_OK;
    }

    char paths[4][1024];
    if (fashion) {
        static const char *const files[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
        for (int i = 0; i < 4; i++) snprintf(paths[i], sizeof paths[i], "%s/%s", dir, files[i]);
        if (access(paths[0], R_OK) != 0) {
            fprintf(stderr,
                    "mcunas import: error: %s not found; install Debian's dataset-fashion-mnist "
                    "package (scripts/setup does) or pass --dir\n",
                    paths[0]);
            return MN_EXIT_FAILURE;
        }
        o.train_images = paths[0];
        o.train_labels = paths[1];
        o.test_images = paths[2];
        o.test_labels = paths[3];
        o.class_names = fashion_mnist_names;
        o.n_class_names = 10;
    } else {
        if (!o.train_images || !o.train_labels)
            return mn_cli_usage_error(cmd, "--images and --labels are required");
        if (!o.test_images != !o.test_labels)
            return mn_cli_usage_error(cmd, "--test-images and --test-labels go together");
    }
    char **names = NULL;
    if (names_arg) {
        names = split_names(names_arg, &o.n_class_names);
        if (!names) return mn_cli_fail(cmd, mn_error_set(MN_ERR_NOMEM, "no memory"));
        o.class_names = (const char *const *)names;
    }
    import_progress prog = {isatty(fileno(stderr)), quiet, 0};
    o.limit = (size_t)limit;
    o.progress = on_progress;
    o.progress_user = &prog;
    double t0 = mn_time_now();
    mn_status st = mn_import_idx(&o);
    free(names);
    if (st) return mn_cli_fail(cmd, st);
    if (!quiet) fprintf(stderr, "wrote %s in %.1f s\n", o.output, mn_time_now() - t0);
    return MN_EXIT_OK;
}
