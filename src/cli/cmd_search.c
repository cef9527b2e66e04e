/* mcunas search: from a dataset and a target MCU to the best network that fits. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_arch.h"
#include "mcunas/backend.h"
#include "mcunas/rank.h"
#include "mcunas/report.h"
#include "mcunas/samples.h"
#include "mcunas/search.h"
#include "mcunas/target.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas search --data D.h5 --target T --out DIR [options]\n\n"
            "Searches the A(k,c) space for the most accurate network that fits the target MCU\n"
            "(RAM, flash, MACC bound, optional latency) and the memory of this machine, then\n"
            "retrains the winner, quantizes it to int8 and writes DIR/model.tflite,\n"
            "DIR/model_data.c/.h, DIR/weights.h5, DIR/report.json, DIR/candidates.csv and\n"
            "DIR/plot.svg. Every candidate is appended to DIR/journal.jsonl as it is\n"
            "evaluated; a killed search continues with --resume.\n\n"
            "Options:\n"
            "  --data PATH          dataset cache (see 'mcunas import') [required]\n"
            "  --target T           target MCU (see 'mcunas targets') [required]\n"
            "  --target-file F      more targets from a file (docs/cost-model.md)\n"
            "  --ram-reserve SIZE   RAM of the target kept free of the model (e.g. 2K for a\n"
            "                       vendor's TFLM build); overrides the target's ram_reserve_kib\n"
            "  --out DIR            output folder (created) [required]\n"
            "  --strategy S         nanonas (default) | colabnas | grid | zeroshot | hybrid\n"
            "                       (zeroshot: rank by zero-cost proxies, train the top one;\n"
            "                       hybrid: train the top --top; see 'mcunas rank')\n"
            "  --top N              hybrid: ranked candidates to train (default 5)\n"
            "  --wf X, --wl X       zeroshot/hybrid: MONAS weights of FLOPs, latency (0.1)\n"
            "  --layout L           nanonas (default) | colabnas | convbn\n"
            "  --k-max K            largest k any strategy may try (default 256; grid: 16;\n"
            "                       zeroshot/hybrid: 64)\n"
            "  --max-latency-ms X   also require the estimated latency below X\n"
            "  --io uint8|int8      model input/output type (default uint8, as the seeds)\n"
            "  --runtime tflm|c     what must fit the target: the .tflite under TFLM (default)\n"
            "                       or mcunas's C runtime (also writes DIR/model.c, model.h)\n"
            "  --epochs N           epochs per candidate (default 3)\n"
            "  --batch N            batch size (default 16)\n"
            "  --lr X               Adam learning rate (default 1e-3)\n"
            "  --val-split F        validation fraction of the training set (default 0.3)\n"
            "  --seed S             seed of initialisation, shuffling, dropout (default 1)\n"
            "  --final-epochs N     epochs to retrain the winner (default %d)\n"
            "  --calib N            calibration images for int8 quantization (default %d)\n"
            "  --limit N            use only the first N training images\n"
            "  --host-mem SIZE      host memory the search may use, e.g. 512M (default: the\n"
            "                       machine's available RAM)\n"
            "  --device-mem SIZE    device memory for a GPU backend (default: the device's)\n"
            "  --backend B          compute backend (default cpu; built in: %s)\n"
            "  --workers W          candidates evaluated at once, each in a worker process of\n"
            "                       its own with --threads threads; they share --host-mem and\n"
            "                       --device-mem (default: from the cores and the budget, see\n"
            "                       the first line of output)\n"
            "  --lookahead N        points the strategy may ask next that idle workers\n"
            "                       evaluate ahead of need (default: 2 x workers; 0: none)\n"
            "  --threads N          threads per worker (default: the cores over the workers)\n"
            "  --device N           device index for the opencl or cuda backend\n"
            "  --resume             continue the search whose journal is in DIR\n"
            "  --config FILE        read options from an INI file: keys are these long option\n"
            "                       names in a [search] section; the command line wins\n"
            "  --print-config       check the options (config file and command line), print\n"
            "                       the ones given as such an INI file and exit; the data,\n"
            "                       target and output are not opened (e.g. to check a batch\n"
            "                       job's settings before it queues)\n"
            "  --json               one JSON event per line on stdout (candidate, winner, done)\n"
            "  --quiet              no progress output\n"
            "  -h, --help           this help\n\n"
            "Exit codes: 0 a model was delivered, 1 an error (message on stderr), 2 bad\n"
            "command line, 3 no candidate fits the target, 130 interrupted (the journal is\n"
            "intact; rerun with --resume).\n",
            MN_FINAL_EPOCHS_DEFAULT, MN_CALIB_IMAGES_DEFAULT, mn_backend_available());
}

enum {
    OPT_DATA = 256, OPT_TARGET, OPT_TARGET_FILE, OPT_OUT, OPT_STRATEGY,
    OPT_MAXLAT, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_VAL, OPT_SEED, OPT_FINAL, OPT_CALIB,
    OPT_LIMIT, OPT_HOSTMEM, OPT_DEVMEM, OPT_BACKEND, OPT_THREADS, OPT_DEVICE, OPT_RESUME,
    OPT_CONFIG, OPT_JSON, OPT_QUIET, OPT_TOP, OPT_WF, OPT_WL, OPT_RUNTIME, OPT_WORKERS,
    OPT_LOOKAHEAD, OPT_PRINT_CONFIG
};

static const struct option longopts[] = {
    {"data", required_argument, 0, OPT_DATA},         {"target", required_argument, 0, OPT_TARGET},
    {"target-file", required_argument, 0, OPT_TARGET_FILE},
    {"out", required_argument, 0, OPT_OUT},           {"strategy", required_argument, 0, OPT_STRATEGY},
    MN_CLI_LONGOPT_LAYOUT,                            MN_CLI_LONGOPT_K_MAX,
    {"max-latency-ms", required_argument, 0, OPT_MAXLAT},
    MN_CLI_LONGOPT_IO,                                MN_CLI_LONGOPT_RAM_RESERVE,                                {"epochs", required_argument, 0, OPT_EPOCHS},
    {"batch", required_argument, 0, OPT_BATCH},       {"lr", required_argument, 0, OPT_LR},
    {"val-split", required_argument, 0, OPT_VAL},     {"seed", required_argument, 0, OPT_SEED},
    {"final-epochs", required_argument, 0, OPT_FINAL}, {"calib", required_argument, 0, OPT_CALIB},
    {"limit", required_argument, 0, OPT_LIMIT},       {"host-mem", required_argument, 0, OPT_HOSTMEM},
    {"device-mem", required_argument, 0, OPT_DEVMEM}, {"backend", required_argument, 0, OPT_BACKEND},
    {"threads", required_argument, 0, OPT_THREADS},   {"device", required_argument, 0, OPT_DEVICE},
    {"resume", no_argument, 0, OPT_RESUME},           {"config", required_argument, 0, OPT_CONFIG},
    {"json", no_argument, 0, OPT_JSON},               {"quiet", no_argument, 0, OPT_QUIET},
    {"top", required_argument, 0, OPT_TOP},           {"wf", required_argument, 0, OPT_WF},
    {"wl", required_argument, 0, OPT_WL},             {"runtime", required_argument, 0, OPT_RUNTIME},
    {"workers", required_argument, 0, OPT_WORKERS},   {"lookahead", required_argument, 0, OPT_LOOKAHEAD},
    {"print-config", no_argument, 0, OPT_PRINT_CONFIG},
    {"help", no_argument, 0, 'h'},                    {0, 0, 0, 0}};
#define N_LONGOPTS (sizeof longopts / sizeof longopts[0] - 1)

typedef struct opts {
    const char *data, *target, *target_file, *out, *backend;
    mn_strategy_kind strategy;
    mn_cli_arch arch; /* --layout, --k-max, --io */
    long epochs, batch, seed, final_epochs, calib, limit, threads, device, top;
    long workers, lookahead; /* -1: chosen from the cores and the budget */
    int run_workers, run_threads, run_lookahead; /* what runs (choose_workers) */
    char chose[256];          /* how they were chosen, for the first line of output */
    double lr, val, max_latency, wf, wl;
    int resume, json, quiet, print_config;
    const char *given[N_LONGOPTS]; /* each option's last value, config file then command line */
    int mpi, rank;            /* started by mpirun/srun with more than one rank */
    mn_runtime runtime;
    size_t host_mem, device_mem;
} opts;

static const char *const cmd = "search";

/* Applies one option; returns MN_EXIT_OK or a usage error. `where` names its origin. A flag
 * (no argument) is cleared by "false" (a config file's value) and set by anything else. */
static int apply_one(opts *o, int c, const char *arg, const char *where) {
#define BAD(...) return mn_cli_usage_error(cmd, __VA_ARGS__)
    switch (c) {
    case OPT_DATA: o->data = arg; break;
    case OPT_TARGET: o->target = arg; break;
    case OPT_TARGET_FILE: o->target_file = arg; break;
    case OPT_OUT: o->out = arg; break;
    case OPT_STRATEGY:
        if (mn_strategy_kind_parse(arg, &o->strategy)) BAD("%s%s", where, mn_error_message());
        break;
    case OPT_MAXLAT:
        if (!mn_cli_parse_double(arg, 1e-6, 1e9, &o->max_latency)) BAD("%s--max-latency-ms must be > 0, got '%s'", where, arg);
        break;
    case OPT_EPOCHS:
        if (!mn_cli_parse_int(arg, 1, MN_TRAIN_MAX_EPOCHS, &o->epochs)) BAD("%s--epochs must be in [1, %d], got '%s'", where, MN_TRAIN_MAX_EPOCHS, arg);
        break;
    case OPT_BATCH:
        if (!mn_cli_parse_int(arg, 1, 65536, &o->batch)) BAD("%s--batch must be in [1, 65536], got '%s'", where, arg);
        break;
    case OPT_LR:
        if (!mn_cli_parse_double(arg, 1e-12, 10, &o->lr)) BAD("%s--lr must be in (0, 10], got '%s'", where, arg);
        break;
    case OPT_VAL:
        if (!mn_cli_parse_double(arg, 0.01, 0.99, &o->val)) BAD("%s--val-split must be in [0.01, 0.99], got '%s'", where, arg);
        break;
    case OPT_SEED:
        if (!mn_cli_parse_int(arg, 0, 0x7fffffffL, &o->seed)) BAD("%s--seed must be a non-negative integer, got '%s'", where, arg);
        break;
    case OPT_FINAL:
        if (!mn_cli_parse_int(arg, 1, MN_TRAIN_MAX_EPOCHS, &o->final_epochs)) BAD("%s--final-epochs must be in [1, %d], got '%s'", where, MN_TRAIN_MAX_EPOCHS, arg);
        break;
    case OPT_CALIB:
        if (!mn_cli_parse_int(arg, 1, 100000, &o->calib)) BAD("%s--calib must be in [1, 100000], got '%s'", where, arg);
        break;
    case OPT_LIMIT:
        if (!mn_cli_parse_int(arg, 1, 0x7fffffffL, &o->limit)) BAD("%s--limit must be a positive integer, got '%s'", where, arg);
        break;
    case OPT_HOSTMEM:
        if (!mn_cli_parse_size(arg, &o->host_mem)) BAD("%s--host-mem must be a size like 512M, got '%s'", where, arg);
        break;
    case OPT_DEVMEM:
        if (!mn_cli_parse_size(arg, &o->device_mem)) BAD("%s--device-mem must be a size like 2G, got '%s'", where, arg);
        break;
    case OPT_BACKEND: o->backend = arg; break;
    case OPT_THREADS:
        if (!mn_cli_parse_int(arg, 0, 1024, &o->threads)) BAD("%s--threads must be in [0, 1024], got '%s'", where, arg);
        break;
    case OPT_DEVICE:
        if (!mn_cli_parse_int(arg, 0, 1024, &o->device)) BAD("%s--device must be in [0, 1024], got '%s'", where, arg);
        break;
    case OPT_WORKERS:
        if (!mn_cli_parse_int(arg, 1, 256, &o->workers)) BAD("%s--workers must be in [1, 256], got '%s'", where, arg);
        break;
    case OPT_LOOKAHEAD:
        if (!mn_cli_parse_int(arg, 0, 4096, &o->lookahead)) BAD("%s--lookahead must be in [0, 4096], got '%s'", where, arg);
        break;
    case OPT_TOP:
        if (!mn_cli_parse_int(arg, 1, 100000, &o->top)) BAD("%s--top must be in [1, 100000], got '%s'", where, arg);
        break;
    case OPT_WF:
        if (!mn_cli_parse_double(arg, 0, 1, &o->wf)) BAD("%s--wf must be in [0, 1], got '%s'", where, arg);
        break;
    case OPT_WL:
        if (!mn_cli_parse_double(arg, 0, 1, &o->wl)) BAD("%s--wl must be in [0, 1], got '%s'", where, arg);
        break;
    case OPT_RUNTIME:
        if (mn_runtime_parse(arg, &o->runtime)) BAD("%s--runtime: %s", where, mn_error_message());
        break;
    case OPT_RESUME: o->resume = strcmp(arg, "false") != 0; break;
    case OPT_JSON: o->json = strcmp(arg, "false") != 0; break;
    case OPT_QUIET: o->quiet = strcmp(arg, "false") != 0; break;
    case OPT_PRINT_CONFIG: o->print_config = strcmp(arg, "false") != 0; break;
    default:
        if (!mn_cli_arch_is_option(c)) BAD("%sunknown or incomplete option", where);
        return mn_cli_arch_apply(cmd, &o->arch, c, arg, where);
    }
#undef BAD
    return MN_EXIT_OK;
}

/* apply_one, remembering the value for --print-config (a flag as "true" or "false"; not
 * --print-config itself, which a config file may not set). */
static int apply(opts *o, int c, const char *arg, const char *where) {
    int rc = apply_one(o, c, arg, where);
    for (size_t i = 0; rc == MN_EXIT_OK && c != OPT_PRINT_CONFIG && i < N_LONGOPTS; i++)
        if (longopts[i].val == c)
            o->given[i] = longopts[i].has_arg == no_argument && strcmp(arg, "false") ? "true" : arg;
    return rc;
}

/* ---- --config FILE (inih) ---- */

typedef struct config_ctx {
    opts *o;
    const char *path;
    int rc;
    char *strings[64]; /* values kept alive for the options that point at them */
    int n_strings;
} config_ctx;

static int on_ini(void *user, const char *section, const char *name, const char *value) {
    config_ctx *ctx = user;
    char where[600];
    snprintf(where, sizeof where, "%s: [%s] %s: ", ctx->path, section, name);
    if (strcmp(section, "search") != 0) {
        ctx->rc = mn_cli_usage_error(cmd, "%sunknown section [%s] (expected [search])", where, section);
        return 0;
    }
    for (const struct option *lo = longopts; lo->name; lo++) {
        if (strcmp(lo->name, name) != 0 || lo->val == OPT_CONFIG || lo->val == OPT_PRINT_CONFIG ||
            lo->val == 'h')
            continue;
        if (lo->has_arg == no_argument) {
            if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1")) value = "true";
            else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0")) value = "false";
            else {
                ctx->rc = mn_cli_usage_error(cmd, "%s%s takes true or false, got '%s'", where, name, value);
                return 0;
            }
        }
        if (ctx->n_strings == 64) {
            ctx->rc = mn_cli_usage_error(cmd, "%stoo many keys", where);
            return 0;
        }
        char *copy = strdup(value);
        if (!copy) {
            ctx->rc = mn_cli_fail(cmd, mn_error_set(MN_ERR_NOMEM, "no memory for the value of %s", name));
            return 0;
        }
        ctx->strings[ctx->n_strings++] = copy;
        ctx->rc = apply(ctx->o, lo->val, copy, where);
        return ctx->rc == MN_EXIT_OK;
    }
    ctx->rc = mn_cli_usage_error(cmd, "%sunknown key '%s'", where, name);
    return 0;
}

/* Reads a config file whole (once: it may be a pipe) into *text, refusing with the line's
 * number what inih would take otherwise than a user expects: a NUL byte (the end of the
 * text for inih), a line of INI_MAX_LINE - 2 characters or more (inih reads it in pieces,
 * the rest as a line of its own), and an indented line after a key (inih's continuation
 * line, which would replace the key's value, even when it looks like a [section]). */
static int read_config(const char *path, char **text) {
    enum { MAX_CONFIG = 1 << 20 };
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return mn_cli_usage_error(cmd, "cannot read config file %s: %s", path, strerror(errno));
    char *buf = malloc(MAX_CONFIG + 1);
    size_t n = buf ? fread(buf, 1, MAX_CONFIG + 1, f) : 0;
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf) return mn_cli_fail(cmd, mn_error_set(MN_ERR_NOMEM, "no memory to read %s", path));
    int rc = MN_EXIT_OK;
    if (e) rc = mn_cli_usage_error(cmd, "cannot read config file %s: %s", path, strerror(e));
    else if (n > MAX_CONFIG) rc = mn_cli_usage_error(cmd, "%s: config file larger than %d bytes", path, MAX_CONFIG);
    buf[n < MAX_CONFIG ? n : MAX_CONFIG] = '\0';
    long line = 1;
    int after_key = 0;
    for (size_t i = 0; rc == MN_EXIT_OK && i < n; line++) {
        size_t end = i;
        while (end < n && buf[end] != '\n' && buf[end]) end++;
        if (end < n && !buf[end]) {
            rc = mn_cli_usage_error(cmd, "%s:%ld: a NUL byte", path, line);
            break;
        }
        if (end - i > INI_MAX_LINE - 2) {
            rc = mn_cli_usage_error(cmd, "%s:%ld: line longer than %d characters", path, line, INI_MAX_LINE - 2);
            break;
        }
        size_t start = i;
        while (start < end && isspace((unsigned char)buf[start])) start++;
        if (start < end && !strchr(";#", buf[start])) { /* not blank, not a comment */
            if (start > i && after_key) {
                rc = mn_cli_usage_error(cmd, "%s:%ld: an indented line would continue the value above "
                                        "(each option takes one value, on one line)", path, line);
                break;
            }
            after_key = buf[start] != '[';
        }
        i = end + 1;
    }
    if (rc != MN_EXIT_OK) free(buf);
    else *text = buf;
    return rc;
}

/* Whether inih reads `name = value` back as the same value: one line within its limit,
 * nothing it strips (spaces at either end) or takes for a comment (";" after a space). */
static int ini_writable(const char *name, const char *value) {
    size_t n = strlen(value);
    if (strlen(name) + 3 + n > INI_MAX_LINE - 2 || strpbrk(value, "\r\n")) return 0;
    if (n && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1]))) return 0;
    for (size_t i = 0; i < n; i++) /* written after "= ": a ';' first is a comment too */
        if (value[i] == ';' && (i == 0 || isspace((unsigned char)value[i - 1]))) return 0;
    return 1;
}

/* --print-config: the options given, as a config file that --config reads back. */
static int print_config(const opts *o) {
    for (size_t i = 0; i < N_LONGOPTS; i++)
        if (o->given[i] && !ini_writable(longopts[i].name, o->given[i]))
            return mn_cli_usage_error(cmd, "--print-config: the value of --%s cannot be written to an INI file: '%s'",
                                      longopts[i].name, o->given[i]);
    printf("[search]\n");
    for (size_t i = 0; i < N_LONGOPTS; i++)
        if (o->given[i]) printf("%s = %s\n", longopts[i].name, o->given[i]);
    if (fflush(stdout) != 0) return mn_cli_fail(cmd, mn_error_set(MN_ERR_IO, "--print-config: cannot write: %s", strerror(errno)));
    return MN_EXIT_OK;
}

/* ---- progress and events ---- */

typedef struct run_ctx {
    const opts *o;
    mn_cli_progress prog;
    size_t n;
} run_ctx;

static void on_candidate(void *user, const mn_journal_entry *e, int replayed) {
    run_ctx *r = user;
    r->n++;
    if (r->o->json) {
        char line[2048];
        mn_journal_format(e, line, sizeof line);
        /* the journal line with "candidate" as the event and a replay flag */
        size_t len = strlen(line);
        if (len > 1) {
            line[len - 1] = '\0';
            printf("%s,\"replayed\":%s}\n", line, replayed ? "true" : "false");
            fflush(stdout);
        }
    }
    if (r->o->quiet) return;
    if (e->outcome == MN_OUTCOME_SCORED)
        fprintf(stderr, "[%3zu] A(%d,%d) val %.4f  RAM %.1f KiB  flash %.1f KiB  MACC %.3f M  %.1f s%s\n",
                r->n, e->point.k, e->point.cells, e->val_acc, e->ram_bytes / 1024.0,
                e->flash_bytes / 1024.0, e->macc / 1e6, e->seconds, replayed ? "  (journal)" : "");
    else
        fprintf(stderr, "[%3zu] A(%d,%d) %s: %s%s\n", r->n, e->point.k, e->point.cells,
                mn_outcome_name(e->outcome), e->reason, replayed ? "  (journal)" : "");
}

static void on_progress(void *user, const mn_train_progress *p) {
    run_ctx *r = user;
    mn_cli_progress_train(&r->prog, p);
}

static int make_dir(const char *dir) {
    if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
        struct stat sb;
        return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    }
    return 0;
}

/* The config file first, so that the command line overrides it; then the command line. */
static int parse(int argc, char **argv, opts *o, config_ctx *cfgctx) {
    memset(o, 0, sizeof *o);
    mn_cli_arch_init(&o->arch);
    o->backend = "cpu";
    o->strategy = MN_STRATEGY_NANONAS;
    o->epochs = 3;
    o->batch = 16;
    o->seed = 1;
    o->final_epochs = MN_FINAL_EPOCHS_DEFAULT;
    o->calib = MN_CALIB_IMAGES_DEFAULT;
    o->lr = 1e-3;
    o->val = 0.3;
    o->top = 5;
    o->wf = 0.1;
    o->wl = 0.1;
    o->workers = -1;
    o->lookahead = -1;
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc) path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9)) path = argv[i] + 9;
        if (!path) continue;
        cfgctx->path = path;
        char *text;
        int r = read_config(path, &text);
        if (r != MN_EXIT_OK) return r;
        r = ini_parse_string(text, on_ini, cfgctx);
        free(text);
        if (r < 0) return mn_cli_fail(cmd, mn_error_set(MN_ERR_NOMEM, "no memory to parse %s", path));
        if (cfgctx->rc != MN_EXIT_OK) return cfgctx->rc;
        if (r > 0) return mn_cli_usage_error(cmd, "%s:%d: syntax error", path, r);
    }
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return MN_EXIT_OK;
        }
        if (c == OPT_CONFIG) continue;
        int rc = apply(o, c, optarg ? optarg : "", "");
        if (rc != MN_EXIT_OK) return rc;
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->data) return mn_cli_usage_error(cmd, "--data is required");
    if (!o->target) return mn_cli_usage_error(cmd, "--target is required (see 'mcunas targets')");
    if (!o->out) return mn_cli_usage_error(cmd, "--out DIR is required");
    if (o->wf + o->wl > 1.0) return mn_cli_usage_error(cmd, "--wf + --wl must be <= 1");
    const int zero_shot = o->strategy == MN_STRATEGY_ZEROSHOT || o->strategy == MN_STRATEGY_HYBRID;
    if (!o->arch.k_max) o->arch.k_max = o->strategy == MN_STRATEGY_GRID ? 16L : zero_shot ? 64L : 256L;
    return MN_CLI_CONTINUE;
}

/* The settings a resumed search must share (the journal's first line), built by jansson so
 * that any path or name is escaped; NULL when out of memory. The caller frees it. */
static char *format_settings(const opts *o, const mn_target *target) {
    json_t *s = json_pack("{s:s, s:i, s:s, s:I, s:s, s:s, s:s, s:I, s:s, s:f, s:I, s:I, s:f, s:f, s:I, s:s, s:I}",
                          "event", "search", "version", MN_JOURNAL_VERSION, "data", o->data,
                          "limit", (json_int_t)o->limit, "target", target->name,
                          "strategy", mn_strategy_kind_name(o->strategy),
                          "layout", mn_layout_name(o->arch.layout), "k_max", (json_int_t)o->arch.k_max,
                          "io", o->arch.io_int8 ? "int8" : "uint8", "max_latency_ms", o->max_latency,
                          "epochs", (json_int_t)o->epochs, "batch", (json_int_t)o->batch, "lr", o->lr,
                          "val_split", o->val, "seed", (json_int_t)o->seed, "backend", o->backend,
                          "threads", (json_int_t)o->threads);
    if (!s) return NULL;
    /* each added only when not the default, so journals written before it still resume */
    if (o->runtime != MN_RUNTIME_TFLM) json_object_set_new(s, "runtime", json_string(mn_runtime_name(o->runtime)));
    if (target->ram_reserve_bytes)
        json_object_set_new(s, "ram_reserve", json_integer((json_int_t)target->ram_reserve_bytes));
    if (o->strategy == MN_STRATEGY_ZEROSHOT || o->strategy == MN_STRATEGY_HYBRID) {
        /* the ranking's settings too */
        json_object_set_new(s, "top", json_integer(o->strategy == MN_STRATEGY_ZEROSHOT ? 1 : o->top));
        json_object_set_new(s, "wf", json_real(o->wf));
        json_object_set_new(s, "wl", json_real(o->wl));
    }
    char *text = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(s);
    return text;
}

/* The library's search configuration from the options; `ro` and `rc` must outlive it. */
static void make_config(const opts *o, const mn_target *target, mn_rank_options *ro,
                        run_ctx *rc, mn_search_config *sc) {
    memset(sc, 0, sizeof *sc);
    sc->strategy = o->strategy;
    sc->layout = o->arch.layout;
    sc->k_max = (int)o->arch.k_max;
    mn_rank_options_default(ro);
    ro->wf = o->wf;
    ro->wl = o->wl;
    ro->proxy.seed = (uint64_t)o->seed;
    sc->rank = ro;
    sc->top = (int)o->top;
    sc->target = target;
    sc->max_latency_ms = o->max_latency;
    sc->io_int8 = o->arch.io_int8;
    sc->runtime = o->runtime;
    sc->epochs = (int)o->epochs;
    sc->batch = (int)o->batch;
    sc->adam = (mn_adam){(float)o->lr, 0.9f, 0.999f, 1e-7f};
    sc->val_split = o->val;
    sc->split_seed = 11;
    sc->seed = (uint64_t)o->seed;
    sc->backend = o->backend;
    sc->threads = o->run_threads;
    sc->workers = o->run_workers;
    sc->lookahead = o->run_lookahead;
    sc->device = (int)o->device;
    sc->host_mem = o->host_mem ? o->host_mem : mn_cli_host_mem_default();
    sc->device_mem = o->device_mem;
    sc->resume = o->resume;
    sc->mpi = o->mpi;
    sc->data_path = o->data;
    sc->on_candidate = on_candidate;
    sc->on_train_progress = on_progress;
    sc->user = rc;
    sc->stop = &mn_cli_stop_flag;
}

static void print_done_json(const opts *o, const mn_search_result *res, const mn_final_result *fin,
                            double total) {
    mn_json j;
    mn_json_begin(&j, stdout);
    mn_json_str(&j, "event", "done");
    mn_json_int(&j, "candidates", (long long)res->evaluated);
    mn_json_int(&j, "trained", (long long)res->trained);
    mn_json_num(&j, "search_seconds", res->seconds);
    mn_json_num(&j, "total_seconds", total);
    mn_json_int(&j, "workers", res->slots);
    mn_json_int(&j, "nodes", res->nodes);
    mn_json_num(&j, "utilisation", res->utilisation);
    mn_json_int(&j, "speculative", (long long)res->speculative);
    mn_json_num(&j, "speculative_seconds", res->speculative_seconds);
    if (fin) {
        mn_json_int(&j, "k", fin->arch.k);
        mn_json_int(&j, "cells", fin->arch.cells);
        mn_json_str(&j, "layout", mn_layout_name(fin->arch.layout));
        mn_json_num(&j, "float_test_acc", fin->float_test_acc);
        mn_json_num(&j, "int8_test_acc", fin->int8_test_acc);
        mn_json_int(&j, "ram_bytes", (long long)fin->est.ram_bytes);
        mn_json_int(&j, "flash_bytes", (long long)fin->flash_bytes);
        mn_json_int(&j, "macc", (long long)fin->est.macc);
        mn_json_num(&j, "latency_ms", fin->est.latency_ms);
    }
    mn_json_str(&j, "out", o->out);
    mn_json_end(&j);
}

static void print_summary(const opts *o, const mn_target *target, const mn_search_result *res,
                          const mn_final_result *fin, double total) {
    printf("\nwinner    A(%d,%d) %s (%zu candidates, %zu trained in this run)\n", fin->arch.k,
           fin->arch.cells, mn_layout_name(fin->arch.layout), res->evaluated, res->trained);
    printf("accuracy  float %.4f, int8 %.4f (test split)\n", fin->float_test_acc, fin->int8_test_acc);
    printf("RAM       %.1f KiB of %zu KiB", fin->est.ram_bytes / 1024.0, target->ram_bytes / 1024);
    if (target->ram_reserve_bytes) printf(" (%.1f KiB reserved)", target->ram_reserve_bytes / 1024.0);
    printf("\n");
    printf("flash     %.1f KiB of %zu KiB\n", fin->flash_bytes / 1024.0, target->flash_bytes / 1024);
    printf("MACC      %llu (bound %llu)\n", (unsigned long long)fin->est.macc,
           (unsigned long long)target->macc_bound);
    printf("latency   %.1f ms on %s (estimated)\n", fin->est.latency_ms, target->name);
    printf("time      search %.1f s, total %.1f s\n", res->seconds, total);
    printf("workers   %d on %d node%s (x %d threads): utilisation %.0f%%, lost %zu\n", res->slots,
           res->nodes, res->nodes == 1 ? "" : "s", o->run_threads, 100.0 * res->utilisation, res->lost);
    printf("ahead     %zu evaluated ahead and used, %zu never asked (%.1f worker-s spent on them)\n",
           res->speculative_used, res->speculative, res->speculative_seconds);
    printf("files     %s/model.tflite, model_data.c/.h, report.json, candidates.csv, plot.svg\n", o->out);
}

/* The candidate phase, the winner's export and the report; returns the exit code. */
static int run(const opts *o, const mn_target *target, const mn_loaded_data *data, double t_start) {
    char journal_path[4096];
    char *settings = format_settings(o, target);
    if (!settings) return mn_cli_fail(cmd, mn_error_set(MN_ERR_NOMEM, "no memory for the search's settings"));
    snprintf(journal_path, sizeof journal_path, "%s/journal.jsonl", o->out);
    run_ctx rc;
    memset(&rc, 0, sizeof rc);
    rc.o = o;
    mn_cli_progress_init(&rc.prog, o->quiet || o->json);
    mn_search_config sc;
    mn_rank_options ro;
    make_config(o, target, &ro, &rc, &sc);
    sc.journal_path = journal_path;
    sc.settings_json = settings;
    mn_cli_install_sigint();
    if (!o->quiet && !o->json)
        fprintf(stderr, "search: %s on %s (%zu train+val images), target %s: RAM %zu KiB, flash %zu KiB, "
                        "MACC bound %.2f M; host budget %.0f MiB\n",
                mn_strategy_kind_name(o->strategy), o->data, data->train.count, target->name,
                target->ram_bytes / 1024, target->flash_bytes / 1024, target->macc_bound / 1e6,
                sc.host_mem / 1048576.0);
    if (!o->quiet && !o->json && o->rank == 0) {
        if (o->mpi) fprintf(stderr, "search: MPI job: rank 0 coordinates, the other ranks train\n");
        else fprintf(stderr, "search: %s\n", o->chose);
    }
    mn_search_result res;
    mn_status st = mn_search_run(&sc, data, &res);
    if (o->rank != 0) return st ? mn_cli_fail(cmd, st) : MN_EXIT_OK; /* a worker rank: served */
    mn_final_result fin;
    int have_final = 0;
    if (!st && res.have_winner) {
        if (!o->quiet && !o->json)
            fprintf(stderr, "winner A(%d,%d) (val %.3f); retraining for %ld epochs\n", res.winner.k,
                    res.winner.cells, res.winner_val_acc, o->final_epochs);
        st = mn_search_finalize(&sc, data, res.winner, (int)o->final_epochs, (int)o->calib, o->out, &fin);
        have_final = st == MN_OK;
    }
    double total = mn_time_now() - t_start;
    if (!st) st = mn_search_write_report(&sc, o->out, &res, have_final ? &fin : NULL, total);
    free(settings);
    if (st) return mn_cli_fail(cmd, st);
    if (o->json) print_done_json(o, &res, have_final ? &fin : NULL, total);
    else if (have_final && !o->quiet) print_summary(o, target, &res, &fin, total);
    if (!have_final) {
        fprintf(stderr, "mcunas search: no candidate fits %s; see %s/candidates.csv\n", target->name, o->out);
        return 3;
    }
    return MN_EXIT_OK;
}

/* A worker's share of the host budget when nothing is known of the candidates yet: about
 * what a small candidate's training and a backend's runtime hold. */
#define WORKER_BYTES_GUESS ((size_t)128 << 20)

/* The workers and threads per worker: what the options say, else half the cores as workers
 * of two threads (a candidate's kernels gain little past a few threads, and two threads keep
 * the cores busy while one waits on memory), fewer where the host budget cannot hold them. */
static void choose_workers(opts *o, size_t host_mem) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    long w = o->workers, t = o->threads;
    const char *why = "given";
    if (w < 1) {
        w = t > 0 ? cores / t : cores / 2;
        size_t fit = host_mem / WORKER_BYTES_GUESS;
        if ((size_t)w > fit) w = (long)fit;
        if (w < 1) w = 1;
        if (w > 64) w = 64;
        why = "chosen";
    }
    if (t < 1) t = cores / w > 0 ? cores / w : 1;
    o->run_workers = (int)w;
    o->run_threads = (int)t;
    o->run_lookahead = o->lookahead >= 0 ? (int)o->lookahead : (int)(2 * w);
    snprintf(o->chose, sizeof o->chose,
             "workers: %ld x %ld threads (%s; %ld cores, host budget %.0f MiB), look-ahead %d",
             w, t, why, cores, host_mem / 1048576.0, o->run_lookahead);
}

/* The target, the output folder and the data, then the run; returns the exit code. */
static int load_and_run(opts *o) {
    mn_target_list targets;
    const mn_target *target;
    int rc = mn_cli_target_find(cmd, o->target, o->target_file, &o->arch, &targets, &target);
    if (rc != MN_EXIT_OK) return rc;
    if (o->rank == 0 && !make_dir(o->out)) {
        mn_target_list_free(&targets);
        fprintf(stderr, "mcunas search: error: cannot create output folder %s\n", o->out);
        return MN_EXIT_FAILURE;
    }
    double t_start = mn_time_now();
    mn_loaded_data data;
    mn_status st = mn_loaded_data_read(o->data, (size_t)o->limit, &data);
    if (st) {
        rc = mn_cli_fail(cmd, st);
    } else {
        choose_workers(o, o->host_mem ? o->host_mem : mn_cli_host_mem_default());
        rc = run(o, target, &data, t_start);
        mn_loaded_data_free(&data);
    }
    mn_target_list_free(&targets);
    return rc;
}

/* Under mpirun or srun (their environment says so) with more than one rank, the search runs
 * across the ranks: rank 0 coordinates and writes everything, the others train quietly. */
static void start_mpi(opts *o) {
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK")) return;
    /* each rank forks its worker processes after MPI starts; they never call MPI, so Open
     * MPI's warning about fork (meant for RDMA networks) does not apply */
    setenv("OMPI_MCA_mpi_warn_on_fork", "0", 0);
    int size = 1;
    o->rank = mn_search_mpi_rank(&size);
    o->mpi = size > 1;
    if (!o->mpi) mn_search_mpi_finish(); /* one rank: a search on this machine alone */
    if (o->rank != 0) o->quiet = 1, o->json = 0;
}

int mn_cmd_search(int argc, char **argv) {
    opts o;
    config_ctx cfgctx;
    memset(&cfgctx, 0, sizeof cfgctx);
    cfgctx.o = &o;
    cfgctx.rc = MN_EXIT_OK;
    int rc = parse(argc, argv, &o, &cfgctx);
    if (rc == MN_CLI_CONTINUE) rc = mn_cli_host_mem_check(cmd, o.host_mem);
    if (rc == MN_CLI_CONTINUE && o.print_config) rc = print_config(&o);
    if (rc == MN_CLI_CONTINUE) {
        start_mpi(&o);
        rc = load_and_run(&o);
    }
    for (int i = 0; i < cfgctx.n_strings; i++) free(cfgctx.strings[i]);
    return rc;
}
