/* mcunas info: what a dataset cache holds (shapes, counts per class and split, storage),
 * optionally a contact sheet of sample images per class. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/jsonutil.h"
#include "mcunas/dataset.h"
#include "mcunas/stream.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas info DATA.h5 [--json] [--preview SHEET.png [--per-class N]]\n"
            "       mcunas info DATA.h5 --read-bench [--data-mem SIZE] [--batch N] [--json]\n\n"
            "Shows a dataset cache: image shape, classes, images per split and per class,\n"
            "chunking, compression and size on disk.\n\n"
            "Options:\n"
            "  --json               one JSON object on stdout: path, format_version, height,\n"
            "                       width, channels, classes, source, file_bytes, class_names,\n"
            "                       and per split (train, test) count, chunk_images,\n"
            "                       compressed, stored_bytes, per_class (and val when the\n"
            "                       cache has one)\n"
            "  --preview PNG        write a contact sheet: one row per class (at most 100),\n"
            "                       its first N training images\n"
            "  --per-class N        images per class in the sheet (default 10)\n"
            "  --read-bench         read one shuffled epoch of the train split through the\n"
            "                       training data stream and report images/s\n"
            "  --data-mem SIZE      the stream's memory budget for --read-bench, e.g. 64M\n"
            "                       (default 256M, as mcunas train)\n"
            "  --batch N            batch of --read-bench (default 16)\n"
            "  -h, --help           this help\n");
}

/* A JSON string, written by jansson. */
static void json_escape(FILE *f, const char *s) {
    json_t *v = mn_json_string_new(s);
    if (!v || json_dumpf(v, f, MN_JSON_FLAGS | JSON_ENCODE_ANY) != 0) fputs("null", f);
    json_decref(v);
}

enum { OPT_JSON = 256, OPT_PREVIEW, OPT_PER_CLASS, OPT_READ_BENCH, OPT_DATA_MEM, OPT_BATCH };

static const struct option longopts[] = {{"json", no_argument, 0, OPT_JSON},
                                         {"preview", required_argument, 0, OPT_PREVIEW},
                                         {"per-class", required_argument, 0, OPT_PER_CLASS},
                                         {"read-bench", no_argument, 0, OPT_READ_BENCH},
                                         {"data-mem", required_argument, 0, OPT_DATA_MEM},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};

static const char *const cmd = "info";

typedef struct info_opts {
    const char *path, *preview;
    int json, bench;
    long per_class, batch;
    size_t mem;
} info_opts;

/* What the cache holds: storage and class counts per split. */
typedef struct info_stats {
    mn_dataset *ds;
    const mn_dataset_info *info;
    size_t *counts; /* [split][class] */
    mn_dataset_storage sto[MN_SPLITS];
    long long file_bytes;
} info_stats;

/* One shuffled epoch of the train split through the stream: what training would see. */
static int read_bench(const char *path, size_t budget, int batch, int json) {
    mn_stream_options so;
    mn_stream_options_default(&so);
    so.memory_budget = budget;
    so.batch = batch;
    double t0 = mn_time_now();
    mn_stream *s = NULL;
    mn_status st = mn_stream_open(path, &so, &s);
    if (st) return mn_cli_fail(cmd, st);
    double t_open = mn_time_now() - t0;
    size_t n = 0;
    t0 = mn_time_now();
    st = mn_stream_begin(s, MN_SPLIT_TRAIN, NULL, 0, 1, 1, 0);
    unsigned long sum = 0;
    while (!st) {
        mn_batch b;
        if ((st = mn_stream_next(s, &b)) || !b.count) break;
        n += b.count;
        sum += b.images[0];
    }
    double t = mn_time_now() - t0;
    if (st) {
        mn_stream_close(s);
        return mn_cli_fail("info", st);
    }
    const mn_dataset_info *info = mn_stream_info(s);
    double mb = (double)n * (double)mn_shape_count(info->shape) / 1e6;
    if (json)
        printf("{\"images\":%zu,\"seconds\":%.4f,\"images_per_second\":%.1f,\"mb_per_second\":%.1f,"
               "\"open_seconds\":%.4f,\"resident\":%d,\"memory_bytes\":%zu,\"budget\":%zu,"
               "\"checksum\":%lu}\n",
               n, t, n / t, mb / t, t_open, mn_stream_is_resident(s), mn_stream_memory_bytes(s),
               budget, sum);
    else
        printf("%s: %zu images (%.0f MB) in %.3f s: %.0f images/s, %.0f MB/s; %s, stream memory "
               "%.1f MiB of %.1f MiB (open %.3f s)\n",
               path, n, mb, t, n / t, mb / t, mn_stream_is_resident(s) ? "in RAM" : "streamed",
               (double)mn_stream_memory_bytes(s) / 1048576.0, (double)budget / 1048576.0, t_open);
    mn_stream_close(s);
    return MN_EXIT_OK;
}

static int parse(int argc, char **argv, info_opts *o) {
    memset(o, 0, sizeof *o);
    o->per_class = 10;
    o->batch = 16;
    o->mem = MN_STREAM_DEFAULT_BUDGET;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: o->json = 1; break;
        case OPT_PREVIEW: o->preview = optarg; break;
        case OPT_PER_CLASS:
            if (!mn_cli_parse_int(optarg, 1, 1000, &o->per_class))
                return mn_cli_usage_error(cmd, "--per-class must be in [1, 1000], got '%s'", optarg);
            break;
        case OPT_READ_BENCH: o->bench = 1; break;
        case OPT_DATA_MEM:
            if (!mn_cli_parse_size(optarg, &o->mem))
                return mn_cli_usage_error(cmd, "--data-mem must be a size like 64M or 1G, got '%s'", optarg);
            break;
        case OPT_BATCH:
            if (!mn_cli_parse_int(optarg, 1, 65536, &o->batch))
                return mn_cli_usage_error(cmd, "--batch must be in [1, 65536], got '%s'", optarg);
            break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind != argc - 1) return mn_cli_usage_error(cmd, "expected one dataset file");
    o->path = argv[optind];
    return MN_CLI_CONTINUE;
}

static mn_status collect(const info_opts *o, info_stats *s) {
    memset(s, 0, sizeof *s);
    mn_status st = mn_dataset_open(o->path, &s->ds);
    if (st) return st;
    s->info = mn_dataset_get_info(s->ds);
    const int k = s->info->classes;
    s->counts = calloc(MN_SPLITS * (size_t)k, sizeof *s->counts);
    if (!s->counts) st = mn_error_set(MN_ERR_NOMEM, "no memory");
    for (int sp = 0; sp < MN_SPLITS && !st; sp++) {
        st = mn_dataset_storage_info(s->ds, (mn_split)sp, &s->sto[sp]);
        if (!st) st = mn_dataset_class_counts(s->ds, (mn_split)sp, s->counts + (size_t)sp * (size_t)k);
    }
    if (!st && o->preview) st = mn_dataset_preview(s->ds, o->preview, (int)o->per_class, 100);
    struct stat sb;
    s->file_bytes = stat(o->path, &sb) == 0 ? (long long)sb.st_size : -1;
    return st;
}

static void print_json(const info_opts *o, const info_stats *s) {
    const mn_dataset_info *info = s->info;
    const int k = info->classes;
    printf("{\"path\":");
    json_escape(stdout, o->path);
    printf(",\"format_version\":%d,\"height\":%d,\"width\":%d,\"channels\":%d,\"classes\":%d,"
           "\"source\":",
           info->format_version, info->shape.h, info->shape.w, info->shape.c, k);
    json_escape(stdout, info->source);
    printf(",\"file_bytes\":%lld,\"class_names\":[", s->file_bytes);
    for (int i = 0; i < k; i++) {
        if (i) putchar(',');
        json_escape(stdout, mn_dataset_class_name(s->ds, i));
    }
    printf("],\"splits\":{");
    int first = 1;
    for (int sp = 0; sp < MN_SPLITS; sp++) {
        if (sp != MN_SPLIT_TRAIN && !info->count[sp] && !s->sto[sp].stored_bytes) continue;
        printf("%s\"%s\":{\"count\":%zu,\"chunk_images\":%zu,\"compressed\":%s,"
               "\"stored_bytes\":%llu,\"per_class\":[",
               first ? "" : ",", mn_split_name((mn_split)sp), info->count[sp],
               s->sto[sp].chunk_images, s->sto[sp].compressed ? "true" : "false",
               s->sto[sp].stored_bytes);
        for (int i = 0; i < k; i++) printf("%s%zu", i ? "," : "", s->counts[(size_t)sp * (size_t)k + (size_t)i]);
        printf("]}");
        first = 0;
    }
    printf("}");
    if (o->preview) {
        printf(",\"preview\":");
        json_escape(stdout, o->preview);
    }
    printf("}\n");
}

static void print_text(const info_opts *o, const info_stats *s) {
    const mn_dataset_info *info = s->info;
    const int k = info->classes;
    printf("%s: mcunas dataset, format version %d\n", o->path, info->format_version);
    printf("  images   %dx%dx%d uint8 (HxWxC), %d classes\n", info->shape.h, info->shape.w,
           info->shape.c, k);
    if (info->source[0]) printf("  source   %s\n", info->source);
    printf("  file     %.1f MB on disk\n", (double)s->file_bytes / 1e6);
    for (int sp = 0; sp < MN_SPLITS; sp++) {
        if (sp != MN_SPLIT_TRAIN && !info->count[sp]) {
            printf("  %-8s (none)%s\n", mn_split_name((mn_split)sp),
                   sp == MN_SPLIT_VAL ? ": training holds out part of train" : "");
            continue;
        }
        printf("  %-8s %zu images, ", mn_split_name((mn_split)sp), info->count[sp]);
        if (s->sto[sp].chunk_images) printf("chunks of %zu images", s->sto[sp].chunk_images);
        else printf("contiguous");
        printf(", %s, %.1f MB stored\n", s->sto[sp].compressed ? "deflate" : "uncompressed",
               (double)s->sto[sp].stored_bytes / 1e6);
    }
    const int has_val = info->count[MN_SPLIT_VAL] > 0;
    printf("  %-6s %-24s %10s %10s%s\n", "class", "name", "train", "test", has_val ? "        val" : "");
    int shown = k > 200 ? 200 : k;
    for (int i = 0; i < shown; i++) {
        size_t tr = s->counts[i], te = s->counts[(size_t)k + (size_t)i];
        printf("  %-6d %-24.24s %10zu %10zu", i, mn_dataset_class_name(s->ds, i), tr, te);
        if (has_val) printf(" %10zu", s->counts[2 * (size_t)k + (size_t)i]);
        printf("%s\n", tr == 0 ? "  (empty)" : "");
    }
    if (shown < k) printf("  ... %d more classes (--json lists all)\n", k - shown);
    if (o->preview)
        printf("  preview  %s: one row per class (the first %d), %ld images each\n", o->preview,
               k < 100 ? k : 100, o->per_class);
}

int mn_cmd_info(int argc, char **argv) {
    info_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != MN_CLI_CONTINUE) return rc;
    if (o.bench) return read_bench(o.path, o.mem, (int)o.batch, o.json);
    info_stats s;
    mn_status st = collect(&o, &s);
    if (st) {
        rc = mn_cli_fail(cmd, st);
    } else {
        if (o.json) print_json(&o, &s);
        else print_text(&o, &s);
        rc = MN_EXIT_OK;
    }
    free(s.counts);
    mn_dataset_close(s.ds);
    return rc;
}
