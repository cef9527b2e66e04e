/* Journal writing and reading. The lines are flat JSON objects of our own making, so the
 * reader is a small parser for exactly that shape: string and number values, no nesting. */
#include "mcunas/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mn_journal {
    int fd;
    char *path;
    mn_journal_entry *entries;
    size_t count, cap;
    int has_settings; /* the file already starts with a complete settings line */
};

void mn_journal_entry_init(mn_journal_entry *e, mn_point p) {
    memset(e, 0, sizeof *e);
    e->point = p;
    e->val_acc = -1;
    e->latency_ms = -1;
}

static void escape(const char *s, char *out, size_t size) {
    size_t o = 0;
    for (; *s && o + 7 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

int mn_journal_format(const mn_journal_entry *e, char *buf, size_t size) {
    char reason[600], node[400];
    escape(e->reason, reason, sizeof reason);
    escape(e->node, node, sizeof node);
    return snprintf(buf, size,
                    "{\"event\":\"candidate\",\"k\":%d,\"cells\":%d,\"outcome\":\"%s\","
                    "\"reason\":\"%s\",\"val_acc\":%.6f,\"macc\":%" PRIu64 ",\"params\":%" PRIu64
                    ",\"flash_bytes\":%" PRIu64 ",\"ram_bytes\":%" PRIu64 ",\"latency_ms\":%.6g,"
                    "\"host_planned_bytes\":%" PRIu64 ",\"host_measured_bytes\":%" PRIu64
                    ",\"device_planned_bytes\":%" PRIu64 ",\"device_measured_bytes\":%" PRIu64
                    ",\"seconds\":%.3f,\"speculative\":%d,\"node\":\"%s\",\"rank\":%d,"
                    "\"worker\":%d,\"started\":%.3f,\"joint_planned_bytes\":%" PRIu64
                    ",\"host_added_bytes\":%" PRIu64 "}",
                    e->point.k, e->point.cells, mn_outcome_name(e->outcome), reason, e->val_acc,
                    e->macc, e->params, e->flash_bytes, e->ram_bytes, e->latency_ms,
                    e->host_planned_bytes, e->host_measured_bytes, e->device_planned_bytes,
                    e->device_measured_bytes, e->seconds, e->speculative, node, e->rank,
                    e->worker, e->started, e->joint_planned_bytes, e->host_added_bytes);
}

/* ---- a reader for flat JSON objects ---- */

/* Finds "key": in a line and returns a pointer to its value, or NULL. */
static const char *find_value(const char *line, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = strchr(line, '"'); p; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, klen) == 0 && p[klen + 1] == '"') {
            const char *v = p + klen + 2;
            while (*v == ' ') v++;
            if (*v != ':') continue;
            v++;
            while (*v == ' ') v++;
            return v;
        }
        /* skip over the rest of this string so keys inside values are not matched */
        const char *q = p + 1;
        while (*q && *q != '"') q += (*q == '\\' && q[1]) ? 2 : 1;
        if (!*q) return NULL;
        p = q;
    }
    return NULL;
}

static int get_num(const char *line, const char *key, double *out) {
    const char *v = find_value(line, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno) return 0;
    *out = d;
    return 1;
}

static int get_str(const char *line, const char *key, char *out, size_t size) {
    const char *v = find_value(line, key);
    if (!v || *v != '"') return 0;
    size_t o = 0;
    for (v++; *v && *v != '"'; v++) {
        char ch = *v;
        if (ch == '\\') {
            v++;
            if (*v == 'u') { /* only control characters are escaped this way */
                unsigned code = 0;
                if (sscanf(v + 1, "%4x", &code) != 1) return 0;
                ch = (char)code;
                v += 4;
            } else if (*v) {
                ch = *v;
            } else {
                return 0;
            }
        }
        if (o + 1 < size) out[o++] = ch;
    }
    if (*v != '"') return 0;
    out[o] = '\0';
    return 1;
}

static mn_status parse_entry(const char *line, const char *path, size_t lineno,
                             mn_journal_entry *e) {
    double k, cells, d;
    char outcome[32];
    if (!get_num(line, "k", &k) || !get_num(line, "cells", &cells) ||
        !get_str(line, "outcome", outcome, sizeof outcome))
        return mn_error_set(MN_ERR_FORMAT, "%s:%zu: candidate line lacks k, cells or outcome",
                            path, lineno);
    mn_journal_entry_init(e, (mn_point){(int)k, (int)cells});
    mn_status st = mn_outcome_parse(outcome, &e->outcome);
    if (st) return mn_error_prefix(st, "%s:%zu: ", path, lineno);
    get_str(line, "reason", e->reason, sizeof e->reason);
    if (get_num(line, "val_acc", &d)) e->val_acc = d;
    if (e->outcome == MN_OUTCOME_SCORED && !(e->val_acc >= 0 && e->val_acc <= 1))
        return mn_error_set(MN_ERR_FORMAT, "%s:%zu: scored candidate with val_acc %g", path,
                            lineno, e->val_acc);
#define U64(key, field)                                                                        \
    if (get_num(line, key, &d) && d >= 0) e->field = (uint64_t)d;
    U64("macc", macc)
    U64("params", params)
    U64("flash_bytes", flash_bytes)
    U64("ram_bytes", ram_bytes)
    U64("host_planned_bytes", host_planned_bytes)
    U64("host_measured_bytes", host_measured_bytes)
    U64("device_planned_bytes", device_planned_bytes)
    U64("device_measured_bytes", device_measured_bytes)
    U64("joint_planned_bytes", joint_planned_bytes)
    U64("host_added_bytes", host_added_bytes)
#undef U64
    if (get_num(line, "latency_ms", &d)) e->latency_ms = d;
    if (get_num(line, "seconds", &d)) e->seconds = d;
    if (get_num(line, "speculative", &d)) e->speculative = d != 0;
    get_str(line, "node", e->node, sizeof e->node);
    if (get_num(line, "rank", &d)) e->rank = (int)d;
    if (get_num(line, "worker", &d)) e->worker = (int)d;
    if (get_num(line, "started", &d)) e->started = d;
    return MN_OK;
}

static mn_status push(mn_journal *j, const mn_journal_entry *e) {
    if (j->count == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 64;
        mn_journal_entry *n = realloc(j->entries, cap * sizeof *n);
        if (!n) return mn_error_set(MN_ERR_NOMEM, "no memory for %zu journal entries", cap);
        j->entries = n;
        j->cap = cap;
    }
    j->entries[j->count++] = *e;
    return MN_OK;
}

/* The first differing "key" between two settings lines, for the message. */
static void first_difference(const char *a, const char *b, char *key, size_t size) {
    snprintf(key, size, "?");
    for (const char *p = strchr(a, '"'); p; p = strchr(p + 1, '"')) {
        const char *q = strchr(p + 1, '"');
        if (!q || q[1] != ':') {
            if (!q) return;
            p = q;
            continue;
        }
        char k[64];
        size_t len = (size_t)(q - p - 1) < sizeof k - 1 ? (size_t)(q - p - 1) : sizeof k - 1;
        memcpy(k, p + 1, len);
        k[len] = '\0';
        const char *va = q + 2, *vb = find_value(b, k);
        const char *ea = strpbrk(va, ",}");
        if (!vb || !ea || strncmp(va, vb, (size_t)(ea - va)) != 0 ||
            (vb[ea - va] != ',' && vb[ea - va] != '}')) {
            snprintf(key, size, "%s", k);
            return;
        }
        p = q;
    }
}

/* Reads an existing journal: settings line, then entries; a last line without its newline
 * was torn by a kill and is cut off the file. */
static mn_status load(mn_journal *j, const char *settings) {
    FILE *f = fopen(j->path, "rb");
    if (!f) return mn_error_set(MN_ERR_IO, "%s: cannot read journal", j->path);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    long good_end = 0;
    ssize_t len;
    mn_status st = MN_OK;
    while (!st && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] != '\n') break; /* torn */
        line[len - 1] = '\0';
        if (lineno == 1) {
            if (strcmp(line, settings) != 0) {
                char key[64];
                first_difference(settings, line, key, sizeof key);
                st = mn_error_set(MN_ERR_INVALID_ARG,
                                  "%s: cannot resume: the journal was written by a search with "
                                  "different settings (first difference: \"%s\")",
                                  j->path, key);
            }
        } else if (line[0]) {
            mn_journal_entry e;
            st = parse_entry(line, j->path, lineno, &e);
            if (!st) st = push(j, &e);
        }
        good_end = ftell(f);
        j->has_settings = 1;
    }
    free(line);
    fclose(f);
    if (!st && truncate(j->path, good_end) != 0)
        st = mn_error_set(MN_ERR_IO, "%s: cannot cut a torn last line", j->path);
    return st;
}

static mn_status write_line(mn_journal *j, const char *text) {
    size_t len = strlen(text);
    char *buf = malloc(len + 2);
    if (!buf) return mn_error_set(MN_ERR_NOMEM, "no memory for a journal line");
    memcpy(buf, text, len);
    buf[len] = '\n';
    size_t off = 0, total = len + 1;
    mn_status st = MN_OK;
    while (off < total) {
        ssize_t n = write(j->fd, buf + off, total - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            st = mn_error_set(MN_ERR_IO, "%s: write failed: %s", j->path, strerror(errno));
            break;
        }
        off += (size_t)n;
    }
    free(buf);
    if (!st && fsync(j->fd) != 0)
        st = mn_error_set(MN_ERR_IO, "%s: fsync failed: %s", j->path, strerror(errno));
    return st;
}

mn_status mn_journal_open(const char *path, const char *settings, int resume, mn_journal **out) {
    *out = NULL;
    if (strchr(settings, '\n'))
        return mn_error_set(MN_ERR_INVALID_ARG, "journal settings must be one line");
    mn_journal *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        return mn_error_set(MN_ERR_NOMEM, "no memory for a journal");
    }
    j->fd = -1;
    int exists = access(path, F_OK) == 0;
    mn_status st = MN_OK;
    if (exists && resume) {
        st = load(j, settings);
    } else if (exists && !resume) {
        FILE *f = fopen(path, "rb");
        int empty = f && fgetc(f) == EOF;
        if (f) fclose(f);
        if (!empty)
            st = mn_error_set(MN_ERR_INVALID_ARG,
                              "%s already holds a search; resume it with --resume or choose "
                              "another output folder",
                              path);
    }
    if (!st) {
        j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (j->fd < 0) st = mn_error_set(MN_ERR_IO, "%s: cannot open journal: %s", path, strerror(errno));
    }
    if (!st && !j->has_settings) st = write_line(j, settings);
    if (st) {
        mn_journal_close(j);
        return st;
    }
    *out = j;
    return MN_OK;
}

void mn_journal_close(mn_journal *j) {
    if (!j) return;
    if (j->fd >= 0) close(j->fd);
    free(j->entries);
    free(j->path);
    free(j);
}

size_t mn_journal_count(const mn_journal *j) { return j->count; }

const mn_journal_entry *mn_journal_get(const mn_journal *j, size_t i) {
    return i < j->count ? &j->entries[i] : NULL;
}

mn_status mn_journal_append(mn_journal *j, const mn_journal_entry *e) {
    char line[2048];
    int n = mn_journal_format(e, line, sizeof line);
    if (n < 0 || (size_t)n >= sizeof line)
        return mn_error_set(MN_ERR_INVALID_ARG, "journal line too long");
    mn_status st = write_line(j, line);
    if (!st) st = push(j, e);
    return st;
}
