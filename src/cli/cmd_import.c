/* mcunas import: images in the formats people have -> an HDF5 dataset cache. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mcunas/dataset.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static const char *const fashion_mnist_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                  "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                  "Bag",         "Ankle boot"};

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas import idx --images F --labels F [--test-images F --test-labels F]\n"
            "                         [--class-names A,B,...] [--limit N] -o OUT.h5\n"
            "       mcunas import fashion-mnist [--dir DIR] [--limit N] -o OUT.h5\n\n"
            "Formats:\n"
            "  idx            MNIST-format IDX image and label files, gzip or raw (MNIST,\n"
            "                 Fashion-MNIST, EMNIST)\n"
            "  fashion-mnist  the IDX files of Debian's dataset-fashion-mnist package\n"
            "                 (default --dir %s), with its class names\n\n"
            "Options:\n"
            "  --images F, --labels F            training images and labels\n"
            "  --test-images F, --test-labels F  test split (both or neither)\n"
            "  --class-names A,B,...             names of the classes, in label order\n"
            "  --dir DIR                         where the fashion-mnist files are\n"
            "  --limit N                         import only the first N training images\n"
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

enum { OPT_IMAGES = 256, OPT_LABELS, OPT_TIMAGES, OPT_TLABELS, OPT_NAMES, OPT_DIR, OPT_LIMIT, OPT_QUIET };

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
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "import";
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return MN_EXIT_OK;
    }
    if (argc < 2) return mn_cli_usage_error(cmd, "missing the format (idx or fashion-mnist)");
    const char *format = argv[1];
    int fashion = !strcmp(format, "fashion-mnist");
    if (!fashion && strcmp(format, "idx") != 0)
        return mn_cli_usage_error(cmd, "unknown format '%s' (expected idx or fashion-mnist)", format);

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
        case OPT_DIR: dir = optarg; break;
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
