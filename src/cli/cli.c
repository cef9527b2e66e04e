#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/jsonutil.h"

int mn_cli_fail(const char *cmd, mn_status st) {
    fprintf(stderr, "mcunas %s: error: %s\n", cmd, mn_error_message());
    return st == MN_ERR_INTERRUPTED ? MN_EXIT_INTERRUPTED : MN_EXIT_FAILURE;
}

int mn_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "mcunas %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'mcunas %s --help'.\n", cmd);
    return MN_EXIT_USAGE;
}

int mn_cli_parse_int(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return 0;
    *out = v;
    return 1;
}

int mn_cli_parse_double(const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) return 0;
    *out = v;
    return 1;
}

int mn_cli_parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return 0;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    if (mult > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end) return 0;
    v *= mult;
    if (v < 1 || v > 1e15) return 0;
    *out = (size_t)v;
    return 1;
}

int mn_cli_parse_shape(const char *s, int *h, int *w, int *c) {
    char extra;
    if (sscanf(s, "%dx%dx%d%c", h, w, c, &extra) != 3) return 0;
    return *h >= 1 && *w >= 1 && *c >= 1 && *h <= 4096 && *w <= 4096 && *c <= 64;
}

int mn_cli_parse_wh(const char *s, int *w, int *h) {
    char extra;
    if (sscanf(s, "%dx%d%c", w, h, &extra) != 2) return 0;
    return *w >= 1 && *h >= 1 && *w <= 4096 && *h <= 4096;
}

/* ---- progress ---- */

void mn_cli_progress_init(mn_cli_progress *p, int quiet) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
    p->last_phase = -1;
}

void mn_cli_count_progress_init(mn_cli_count_progress *p, int quiet) {
    p->tty = isatty(fileno(stderr));
    p->quiet = quiet;
    p->last = 0;
}

void mn_cli_count_progress_report(void *user, const char *what, size_t done, size_t total) {
    mn_cli_count_progress *p = user;
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

static const char *phase_name(mn_train_phase ph) {
    switch (ph) {
    case MN_PHASE_TRAIN: return "train";
    case MN_PHASE_VALIDATE: return "val";
    case MN_PHASE_TEST: return "test";
    }
    return "?";
}

static void format_eta(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 359999) s = 0;
    int t = (int)(s + 0.5);
    snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
}

void mn_cli_progress_train(void *user, const mn_train_progress *pr) {
    mn_cli_progress *p = user;
    if (p->quiet) return;
    double rate = pr->elapsed_s > 0 ? (double)pr->done / pr->elapsed_s : 0;
    double eta = rate > 0 ? (double)(pr->total - pr->done) / rate : 0;
    char eta_s[32], epoch_s[32] = "";
    format_eta(eta, eta_s, sizeof eta_s);
    if (pr->phase == MN_PHASE_TRAIN) snprintf(epoch_s, sizeof epoch_s, "epoch %d/%d ", pr->epoch, pr->epochs);
    double frac = pr->total ? (double)pr->done / (double)pr->total : 1;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[30] = '\0';
        fprintf(stderr, "\r%s%-5s [%s] %3.0f%% %zu/%zu loss %.4f acc %.4f %.0f img/s ETA %s ",
                epoch_s, phase_name(pr->phase), bar, 100 * frac, pr->done, pr->total, pr->loss,
                pr->accuracy, rate, eta_s);
        if (pr->finished) fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    /* Not a terminal: a line at most every 5 s, and one at the end of each phase. */
    double now = mn_time_now();
    if (!pr->finished && now - p->last_plain < 5.0) return;
    p->last_plain = now;
    fprintf(stderr, "%s%s %zu/%zu (%.0f%%) loss %.4f acc %.4f %.0f img/s ETA %s%s\n", epoch_s,
            phase_name(pr->phase), pr->done, pr->total, 100 * frac, pr->loss, pr->accuracy, rate,
            eta_s, pr->finished ? " done" : "");
}

/* ---- JSON ---- */

void mn_json_begin(mn_json *j, FILE *f) {
    j->f = f;
    j->first = 1;
    fputc('{', f);
}

/* Writes one jansson value (and drops it); null when it could not be made. */
static void json_put(mn_json *j, json_t *v, size_t flags) {
    if (!v || json_dumpf(v, j->f, flags | JSON_ENCODE_ANY) != 0) fputs("null", j->f);
    json_decref(v);
}

static void json_key(mn_json *j, const char *key) {
    if (!j->first) fputc(',', j->f);
    j->first = 0;
    json_put(j, mn_json_string_new(key), MN_JSON_FLAGS);
    fputc(':', j->f);
}

void mn_json_int(mn_json *j, const char *key, long long v) {
    json_key(j, key);
    json_put(j, json_integer(v), MN_JSON_FLAGS);
}

void mn_json_num(mn_json *j, const char *key, double v) {
    json_key(j, key);
    /* six significant digits, as the figures printed for people; null when not finite */
    json_put(j, isfinite(v) ? json_real(v) : json_null(), JSON_COMPACT | JSON_REAL_PRECISION(6));
}

void mn_json_str(mn_json *j, const char *key, const char *v) {
    json_key(j, key);
    json_put(j, mn_json_string_new(v), MN_JSON_FLAGS);
}

void mn_json_raw(mn_json *j, const char *key, const char *raw) {
    json_key(j, key);
    fputs(raw, j->f);
}

void mn_json_end(mn_json *j) {
    fputs("}\n", j->f);
    fflush(j->f);
}
