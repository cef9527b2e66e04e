/* Journal writing and reading. Every line is a JSON object written and read by jansson, so
 * whatever a string value holds (quotes, "key": text, control characters, any UTF-8), it
 * reads back as it was written. */
#include "mcunas/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jsonutil.h"

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

/* The entry as a JSON object, keys in the journal's order. NULL when out of memory. */
static json_t *entry_json(const mn_journal_entry *e) {
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = 0;
#define SET(key, value) bad |= json_object_set_new(o, key, value)
    SET("event", json_string("candidate"));
    SET("k", json_integer(e->point.k));
    SET("cells", json_integer(e->point.cells));
    SET("outcome", json_string(mn_outcome_name(e->outcome)));
    SET("reason", mn_json_string_new(e->reason));
    SET("val_acc", mn_json_real_new(e->val_acc, 6));
    SET("macc", json_integer((json_int_t)e->macc));
    SET("params", json_integer((json_int_t)e->params));
    SET("flash_bytes", json_integer((json_int_t)e->flash_bytes));
    SET("ram_bytes", json_integer((json_int_t)e->ram_bytes));
    SET("latency_ms", mn_json_real_new(e->latency_ms, 6));
    SET("host_planned_bytes", json_integer((json_int_t)e->host_planned_bytes));
    SET("host_measured_bytes", json_integer((json_int_t)e->host_measured_bytes));
    SET("device_planned_bytes", json_integer((json_int_t)e->device_planned_bytes));
    SET("device_measured_bytes", json_integer((json_int_t)e->device_measured_bytes));
    SET("seconds", mn_json_real_new(e->seconds, 3));
    SET("speculative", json_integer(e->speculative));
    SET("node", mn_json_string_new(e->node));
    SET("rank", json_integer(e->rank));
    SET("worker", json_integer(e->worker));
    SET("started", mn_json_real_new(e->started, 3));
    SET("joint_planned_bytes", json_integer((json_int_t)e->joint_planned_bytes));
    SET("host_added_bytes", json_integer((json_int_t)e->host_added_bytes));
#undef SET
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The entry's line (no newline), malloc'd; NULL when out of memory. */
static char *entry_line(const mn_journal_entry *e) {
    json_t *o = entry_json(e);
    char *line = o ? json_dumps(o, MN_JSON_FLAGS) : NULL;
    json_decref(o);
    return line;
}

int mn_journal_format(const mn_journal_entry *e, char *buf, size_t size) {
    char *line = entry_line(e);
    if (!line) return -1;
    int n = snprintf(buf, size, "%s", line);
    free(line);
    return n;
}

/* ---- reading back ---- */

/* A number member as a double; 0 when absent or not a number. */
static int get_num(const json_t *o, const char *key, double *out) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) return 0;
    *out = json_number_value(v);
    return 1;
}

/* A non-negative integer member (written as an integer, so exact beyond 2^53). */
static void get_u64(const json_t *o, const char *key, uint64_t *out) {
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0) *out = (uint64_t)json_integer_value(v);
    /* Beyond 2^64 the conversion is undefined; no journal we wrote holds such a value. */
    else if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 0x1p64)
        *out = (uint64_t)json_real_value(v);
}

static mn_status parse_entry(const char *line, const char *path, size_t lineno,
                             mn_journal_entry *e) {
    json_error_t err;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(o)) {
        mn_status st = o ? mn_error_set(MN_ERR_FORMAT, "%s:%zu: not a JSON object", path, lineno)
                         : mn_error_set(MN_ERR_FORMAT, "%s:%zu: column %d: %s", path, lineno,
                                        err.column, err.text);
        json_decref(o);
        return st;
    }
    const json_t *k = json_object_get(o, "k"), *cells = json_object_get(o, "cells");
    const char *outcome = json_string_value(json_object_get(o, "outcome"));
    mn_status st = MN_OK;
    if (!json_is_integer(k) || !json_is_integer(cells) || !outcome) {
        st = mn_error_set(MN_ERR_FORMAT, "%s:%zu: candidate line lacks k, cells or outcome",
                          path, lineno);
        goto done;
    }
    if (json_integer_value(k) < 1 || json_integer_value(k) > INT_MAX ||
        json_integer_value(cells) < 0 || json_integer_value(cells) > INT_MAX) {
        st = mn_error_set(MN_ERR_FORMAT, "%s:%zu: k %lld or cells %lld out of range", path, lineno,
                          (long long)json_integer_value(k), (long long)json_integer_value(cells));
        goto done;
    }
    mn_journal_entry_init(e, (mn_point){(int)json_integer_value(k), (int)json_integer_value(cells)});
    if ((st = mn_outcome_parse(outcome, &e->outcome))) {
        st = mn_error_prefix(st, "%s:%zu: ", path, lineno);
        goto done;
    }
    mn_json_string_copy(json_object_get(o, "reason"), e->reason, sizeof e->reason);
    get_num(o, "val_acc", &e->val_acc);
    if (e->outcome == MN_OUTCOME_SCORED && !(e->val_acc >= 0 && e->val_acc <= 1)) {
        st = mn_error_set(MN_ERR_FORMAT, "%s:%zu: scored candidate with val_acc %g", path,
                          lineno, e->val_acc);
        goto done;
    }
    get_u64(o, "macc", &e->macc);
    get_u64(o, "params", &e->params);
    get_u64(o, "flash_bytes", &e->flash_bytes);
    get_u64(o, "ram_bytes", &e->ram_bytes);
    get_u64(o, "host_planned_bytes", &e->host_planned_bytes);
    get_u64(o, "host_measured_bytes", &e->host_measured_bytes);
    get_u64(o, "device_planned_bytes", &e->device_planned_bytes);
    get_u64(o, "device_measured_bytes", &e->device_measured_bytes);
    get_num(o, "latency_ms", &e->latency_ms);
    get_num(o, "seconds", &e->seconds);
    double d;
    if (get_num(o, "speculative", &d)) e->speculative = d != 0;
    mn_json_string_copy(json_object_get(o, "node"), e->node, sizeof e->node);
    if (get_num(o, "rank", &d)) e->rank = (int)d;
    if (get_num(o, "worker", &d)) e->worker = (int)d;
    get_num(o, "started", &e->started);
    get_u64(o, "joint_planned_bytes", &e->joint_planned_bytes);
    get_u64(o, "host_added_bytes", &e->host_added_bytes);
done:
    json_decref(o);
    return st;
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

/* The first key (in `a`'s order, then keys only `b` has) whose value differs between two
 * settings objects, for the message; "?" when either is not a JSON object. */
static void first_difference(const char *a, const char *b, char *key, size_t size) {
    snprintf(key, size, "?");
    json_t *oa = json_loads(a, 0, NULL), *ob = json_loads(b, 0, NULL);
    if (json_is_object(oa) && json_is_object(ob)) {
        const char *k;
        json_t *v;
        int found = 0;
        json_object_foreach(oa, k, v) {
            if (!json_equal(v, json_object_get(ob, k))) {
                snprintf(key, size, "%s", k);
                found = 1;
                break;
            }
        }
        if (!found) {
            json_object_foreach(ob, k, v) {
                if (!json_object_get(oa, k)) {
                    snprintf(key, size, "%s", k);
                    break;
                }
            }
        }
    }
    json_decref(oa);
    json_decref(ob);
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
    errno = 0;
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
    /* Only the end of the file ends the journal: a read error (or no memory for a line) is
     * not a torn last line, and cutting there would throw evaluated candidates away. */
    const int e = errno;
    if (!st && ferror(f))
        st = mn_error_set(MN_ERR_IO, "%s: cannot read journal: %s", j->path, strerror(e ? e : EIO));
    else if (!st && !feof(f) && len < 0)
        st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for journal line %zu", j->path, lineno + 1);
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
    struct stat before;
    const int have_size = fstat(j->fd, &before) == 0;
    while (off < total) {
        ssize_t n = write(j->fd, buf + off, total - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            st = mn_error_set(MN_ERR_IO, "%s: write failed: %s", j->path, strerror(errno));
            /* a full disk can take part of a line: cut it, so the journal stays whole lines */
            if (off && have_size && ftruncate(j->fd, before.st_size) == 0) fsync(j->fd);
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
    json_error_t err;
    json_t *parsed = json_loads(settings, 0, &err);
    int valid = parsed != NULL, is_object = json_is_object(parsed);
    json_decref(parsed);
    if (!is_object) /* caught here, not when report.json embeds them after the search */
        return mn_error_set(MN_ERR_INVALID_ARG, "journal settings are not a JSON object%s%s",
                            valid ? "" : ": ", valid ? "" : err.text);
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
    char *line = entry_line(e);
    if (!line) return mn_error_set(MN_ERR_NOMEM, "no memory for a journal line");
    mn_status st = write_line(j, line);
    free(line);
    if (!st) st = push(j, e);
    return st;
}
