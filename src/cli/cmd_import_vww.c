/* mcunas import vww: Visual Wake Words (person / no person) built from COCO annotations
 * and images into an HDF5 dataset cache. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mcunas/dataset.h"

#define VWW_MAX_SOURCES 16

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas import vww --annotations F --images DIR [--annotations F --images DIR ...]\n"
            "                         --size WxH [--channels 1|3] [--minival-ids F] [--seed S]\n"
            "                         [--skip-bad] [--limit N] -o OUT.h5\n\n"
            "Visual Wake Words from COCO: class 1 \"person\" when an image has a person\n"
            "annotation whose area exceeds %.1f%% of the image (crowd annotations included),\n"
            "otherwise class 0 \"no-person\". The standard split: COCO 2014 train and val with\n"
            "mscoco_minival_ids.txt, whose 8,059 images become the test split.\n\n"
            "Options:\n"
            "  --annotations F        a COCO instances_*.json file (repeatable)\n"
            "  --images DIR           the folder of the preceding file's images (its\n"
            "                         file_name entries are relative to DIR)\n"
            "  --minival-ids F        image ids, one a line, that form the test split;\n"
            "                         without it every image is training\n"
            "  --size WxH             resize every image (area averaging when shrinking,\n"
            "                         bilinear when growing); required\n"
            "  --channels 1|3         grey or RGB (default 3)\n"
            "  --seed S               seed of the training images' order (default 1)\n"
            "  --skip-bad             skip unreadable images (and count them) instead of\n"
            "                         stopping at the first\n"
            "  --limit N              import only N training images (a seeded random N)\n"
            "  -o, --output OUT.h5    the cache to write (written to OUT.h5.tmp, renamed when\n"
            "                         complete)\n"
            "  --quiet                no progress output\n"
            "  -h, --help             this help\n",
            100.0 * MN_VWW_PERSON_AREA_FRACTION);
}

enum { OPT_ANN = 256, OPT_IMAGES, OPT_MINIVAL, OPT_SIZE, OPT_CHANNELS, OPT_SEED, OPT_SKIP_BAD,
       OPT_LIMIT, OPT_QUIET };

static const struct option longopts[] = {
    {"annotations", required_argument, 0, OPT_ANN},
    {"images", required_argument, 0, OPT_IMAGES},
    {"minival-ids", required_argument, 0, OPT_MINIVAL},
    {"size", required_argument, 0, OPT_SIZE},
    {"channels", required_argument, 0, OPT_CHANNELS},
    {"seed", required_argument, 0, OPT_SEED},
    {"skip-bad", no_argument, 0, OPT_SKIP_BAD},
    {"limit", required_argument, 0, OPT_LIMIT},
    {"output", required_argument, 0, 'o'},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static const char *const cmd = "import vww";

typedef struct vww_opts {
    const char *ann[VWW_MAX_SOURCES], *dirs[VWW_MAX_SOURCES];
    int n_ann, n_dirs, quiet;
    long channels, seed, limit;
    mn_import_vww_options o;
} vww_opts;

/* One option into `v`; MN_CLI_CONTINUE, or the exit code of a usage error. */
static int apply(vww_opts *v, int c, const char *arg) {
    switch (c) {
    case OPT_ANN:
        if (v->n_ann == VWW_MAX_SOURCES)
            return mn_cli_usage_error(cmd, "at most %d --annotations files", VWW_MAX_SOURCES);
        if (v->n_dirs != v->n_ann)
            return mn_cli_usage_error(cmd, "--images DIR must follow each --annotations F");
        v->ann[v->n_ann++] = arg;
        break;
    case OPT_IMAGES:
        if (v->n_dirs == v->n_ann)
            return mn_cli_usage_error(cmd, "--images DIR must follow its --annotations F");
        v->dirs[v->n_dirs++] = arg;
        break;
    case OPT_MINIVAL: v->o.minival_ids = arg; break;
    case OPT_SIZE:
        if (!mn_cli_parse_wh(arg, &v->o.width, &v->o.height))
            return mn_cli_usage_error(cmd, "--size must be WxH (e.g. 50x50), got '%s'", arg);
        break;
    case OPT_CHANNELS:
        if (!mn_cli_parse_int(arg, 1, 3, &v->channels) || v->channels == 2)
            return mn_cli_usage_error(cmd, "--channels must be 1 or 3, got '%s'", arg);
        break;
    case OPT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &v->seed))
            return mn_cli_usage_error(cmd, "--seed must be a non-negative integer, got '%s'", arg);
        break;
    case OPT_SKIP_BAD: v->o.skip_bad = 1; break;
    case OPT_LIMIT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &v->limit))
            return mn_cli_usage_error(cmd, "--limit must be a positive integer, got '%s'", arg);
        break;
    case 'o': v->o.output = arg; break;
    case OPT_QUIET: v->quiet = 1; break;
    case 'h': usage(stdout); return MN_EXIT_OK;
    default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
    }
    return MN_CLI_CONTINUE;
}

/* argv[1] is "vww". Fills `v`; MN_CLI_CONTINUE, or an exit code. */
static int parse(int argc, char **argv, vww_opts *v) {
    memset(v, 0, sizeof *v);
    v->channels = 3;
    v->seed = 1;
    optind = 1;
    int c, rc;
    while ((c = getopt_long(argc - 1, argv + 1, "ho:", longopts, NULL)) != -1)
        if ((rc = apply(v, c, optarg)) != MN_CLI_CONTINUE) return rc;
    if (optind < argc - 1) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    if (v->n_ann == 0) return mn_cli_usage_error(cmd, "--annotations F --images DIR is required");
    if (v->n_dirs != v->n_ann)
        return mn_cli_usage_error(cmd, "--annotations %s has no --images DIR", v->ann[v->n_ann - 1]);
    if (!v->o.width) return mn_cli_usage_error(cmd, "--size WxH is required (COCO images differ in size)");
    if (!v->o.output) return mn_cli_usage_error(cmd, "-o OUT.h5 is required");
    return MN_CLI_CONTINUE;
}

int mn_cmd_import_vww(int argc, char **argv) {
    vww_opts v;
    int rc = parse(argc, argv, &v);
    if (rc != MN_CLI_CONTINUE) return rc;
    mn_cli_count_progress prog;
    mn_cli_count_progress_init(&prog, v.quiet);
    size_t skipped = 0;
    mn_import_vww_options *o = &v.o;
    o->annotations = v.ann;
    o->image_dirs = v.dirs;
    o->n_sources = v.n_ann;
    o->channels = (int)v.channels;
    o->seed = (uint64_t)v.seed;
    o->limit = (size_t)v.limit;
    o->skipped = &skipped;
    o->progress = mn_cli_count_progress_report;
    o->progress_user = &prog;
    o->stop = &mn_cli_stop_flag;
    mn_cli_remove_on_exit(o->output);
    double t0 = mn_time_now();
    mn_status st = mn_import_vww(o);
    if (st) return mn_cli_fail(cmd, st);
    if (!v.quiet) {
        if (skipped) fprintf(stderr, "skipped %zu unreadable images\n", skipped);
        fprintf(stderr, "wrote %s in %.1f s\n", o->output, mn_time_now() - t0);
    }
    return MN_EXIT_OK;
}
