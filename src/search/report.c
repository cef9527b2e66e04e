/* report.json, candidates.csv and plot.svg of a search. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/report.h"

#include "core/fileio.h"
#include "core/jsonutil.h"

/* A growing text buffer, published whole by mn_file_write_atomic. */
typedef struct mn_text {
    char *s;
    size_t len, cap;
    int oom;
} mn_text;

static void tx(mn_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx(mn_text *t, const char *fmt, ...) {
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->oom = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

static mn_status text_commit(mn_text *t, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mn_status st = t->oom ? mn_error_set(MN_ERR_NOMEM, "no memory for %s", path)
                          : mn_file_write_atomic(path, t->s ? t->s : "", t->len);
    free(t->s);
    memset(t, 0, sizeof *t);
    return st;
}

static void csv_quoted(mn_text *t, const char *s) {
    tx(t, "\"");
    for (; *s; s++) tx(t, *s == '"' ? "\"\"" : "%c", *s);
    tx(t, "\"");
}

static void xml_str(mn_text *t, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': tx(t, "&lt;"); break;
        case '>': tx(t, "&gt;"); break;
        case '&': tx(t, "&amp;"); break;
        case '"': tx(t, "&quot;"); break;
        default: tx(t, "%c", *s);
        }
    }
}

/* Whether journal line i is reported: every line the rules asked (the path), and the lines
 * evaluated ahead of need that the rules never asked (the speculative waste); a speculative
 * line whose point the path reached later is that path line's twin. */
static int reported(const mn_journal *j, size_t i) {
    const mn_journal_entry *e = mn_journal_get(j, i);
    if (!e->speculative) return 1;
    for (size_t o = 0; o < mn_journal_count(j); o++) {
        const mn_journal_entry *x = mn_journal_get(j, o);
        if (!x->speculative && x->point.k == e->point.k && x->point.cells == e->point.cells) return 0;
    }
    return 1;
}

/* ---- the plot: validation accuracy against RAM and against MACC ---- */

typedef struct panel {
    double x0, y0, w, h; /* pixel box */
    double xmax;         /* data range [0, xmax] */
} panel;

static double px(const panel *p, double x) { return p->x0 + p->w * (x / p->xmax); }
static double py(const panel *p, double acc, double lo) {
    return p->y0 + p->h * (1.0 - (acc - lo) / (1.0 - lo));
}

static void draw_panel(mn_text *t, const panel *p, const mn_journal *j, int use_ram, double limit,
                       const char *xlabel, double unit, const char *limit_label, double lo,
                       const mn_final_result *final) {
    tx(t, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n", p->x0,
       p->y0, p->w, p->h);
    for (int i = 0; i <= 4; i++) { /* ticks */
        double xv = p->xmax * i / 4, yv = lo + (1.0 - lo) * i / 4;
        tx(t, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%.3g</text>\n", px(p, xv),
           p->y0 + p->h + 15, xv / unit);
        tx(t, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%.2f</text>\n", p->x0 - 5,
           py(p, yv, lo) + 4, yv);
    }
    tx(t, "<text x='%.1f' y='%.1f' font-size='13' text-anchor='middle'>%s</text>\n", p->x0 + p->w / 2,
       p->y0 + p->h + 33, xlabel);
    if (limit > 0 && limit <= p->xmax) {
        tx(t, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#c00' stroke-dasharray='6 4'/>\n",
           px(p, limit), p->y0, px(p, limit), p->y0 + p->h);
        tx(t, "<text x='%.1f' y='%.1f' font-size='11' fill='#c00' text-anchor='end'>",
           px(p, limit) - 4, p->y0 + 14);
        xml_str(t, limit_label);
        tx(t, "</text>\n");
    }
    for (size_t i = 0; i < mn_journal_count(j); i++) {
        const mn_journal_entry *e = mn_journal_get(j, i);
        if (!reported(j, i)) continue;
        double x = use_ram ? (double)e->ram_bytes : (double)e->macc;
        if (x <= 0 || x > p->xmax) continue;
        if (e->outcome == MN_OUTCOME_SCORED) {
            tx(t, "<circle cx='%.1f' cy='%.1f' r='4' fill='#2a6ebb' fill-opacity='0.75'>"
                  "<title>A(%d,%d) val %.3f</title></circle>\n",
               px(p, x), py(p, e->val_acc < lo ? lo : e->val_acc, lo), e->point.k, e->point.cells,
               e->val_acc);
        } else { /* not trained: a cross on the axis at its cost */
            double cx = px(p, x), cy = p->y0 + p->h;
            tx(t, "<path d='M%.1f %.1f l6 -6 m-6 0 l6 6' stroke='#999' transform='translate(-3 -3)'>"
                  "<title>A(%d,%d) %s</title></path>\n",
               cx, cy, e->point.k, e->point.cells, mn_outcome_name(e->outcome));
        }
    }
    if (final) {
        double x = use_ram ? (double)final->est.ram_bytes : (double)final->est.macc;
        double y = final->val_acc;
        for (size_t i = 0; i < mn_journal_count(j); i++) { /* mark the searched score */
            const mn_journal_entry *e = mn_journal_get(j, i);
            if (e->point.k == final->arch.k && e->point.cells == final->arch.cells &&
                e->outcome == MN_OUTCOME_SCORED)
                y = e->val_acc;
        }
        if (y < lo) y = lo;
        tx(t, "<circle cx='%.1f' cy='%.1f' r='8' fill='none' stroke='#e07000' stroke-width='2.5'/>\n",
           px(p, x), py(p, y, lo));
        tx(t, "<text x='%.1f' y='%.1f' font-size='12' fill='#e07000'>winner A(%d,%d)</text>\n",
           px(p, x) + 10, py(p, y, lo) - 8, final->arch.k, final->arch.cells);
    }
}

static mn_status write_plot(const mn_search_config *cfg, const char *dir, const mn_journal *j,
                            const mn_final_result *final) {
    double ram_max = (double)cfg->target->ram_bytes * 1.2, macc_max = (double)cfg->target->macc_bound * 1.2;
    double lo = 1.0;
    for (size_t i = 0; i < mn_journal_count(j); i++) {
        const mn_journal_entry *e = mn_journal_get(j, i);
        if ((double)e->ram_bytes > ram_max) ram_max = (double)e->ram_bytes * 1.05;
        if ((double)e->macc > macc_max) macc_max = (double)e->macc * 1.05;
        if (e->outcome == MN_OUTCOME_SCORED && e->val_acc < lo) lo = e->val_acc;
    }
    lo = floor((lo - 0.02) * 20) / 20;
    if (lo < 0) lo = 0;
    if (lo > 0.9) lo = 0.9;
    mn_text t = {0};
    tx(&t, "<?xml version='1.0' encoding='UTF-8'?>\n"
           "<svg xmlns='http://www.w3.org/2000/svg' width='960' height='420' font-family='sans-serif'>\n"
           "<rect width='960' height='420' fill='white'/>\n");
    tx(&t, "<text x='480' y='22' font-size='15' text-anchor='middle'>Validation accuracy of every "
           "candidate on ");
    xml_str(&t, cfg->target->name);
    tx(&t, " (crosses: not trained: infeasible or pruned)</text>\n");
    tx(&t, "<text x='16' y='210' font-size='13' transform='rotate(-90 16 210)' text-anchor='middle'>"
           "validation accuracy</text>\n");
    char ram_label[64], macc_label[64];
    const size_t ram_budget = mn_target_ram_budget(cfg->target);
    if (cfg->target->ram_reserve_bytes)
        snprintf(ram_label, sizeof ram_label, "RAM %zu KiB less %.1f KiB reserved",
                 cfg->target->ram_bytes / 1024, cfg->target->ram_reserve_bytes / 1024.0);
    else
        snprintf(ram_label, sizeof ram_label, "RAM %zu KiB", cfg->target->ram_bytes / 1024);
    snprintf(macc_label, sizeof macc_label, "MACC bound %.2f M", (double)cfg->target->macc_bound / 1e6);
    panel a = {70, 45, 380, 310, ram_max}, b = {550, 45, 380, 310, macc_max};
    draw_panel(&t, &a, j, 1, (double)ram_budget, "peak RAM (KiB)", 1024.0, ram_label, lo, final);
    draw_panel(&t, &b, j, 0, (double)cfg->target->macc_bound, "MACC (millions)", 1e6, macc_label, lo, final);
    tx(&t, "</svg>\n");
    return text_commit(&t, dir, "plot.svg");
}

static mn_status write_csv(const char *dir, const mn_journal *j) {
    mn_text t = {0};
    tx(&t, "k,cells,outcome,val_acc,macc,params,flash_bytes,ram_bytes,latency_ms,"
           "host_planned_bytes,host_measured_bytes,device_planned_bytes,device_measured_bytes,"
           "seconds,speculative,node,rank,worker,started,joint_planned_bytes,reason\n");
    for (size_t i = 0; i < mn_journal_count(j); i++) {
        const mn_journal_entry *e = mn_journal_get(j, i);
        if (!reported(j, i)) continue;
        tx(&t, "%d,%d,%s,", e->point.k, e->point.cells, mn_outcome_name(e->outcome));
        if (e->outcome == MN_OUTCOME_SCORED) tx(&t, "%.4f", e->val_acc);
        tx(&t, ",%llu,%llu,%llu,%llu,%.3f,%llu,%llu,%llu,%llu,%.2f,", (unsigned long long)e->macc,
           (unsigned long long)e->params, (unsigned long long)e->flash_bytes,
           (unsigned long long)e->ram_bytes, e->latency_ms, (unsigned long long)e->host_planned_bytes,
           (unsigned long long)e->host_measured_bytes, (unsigned long long)e->device_planned_bytes,
           (unsigned long long)e->device_measured_bytes, e->seconds);
        tx(&t, "%d,", e->speculative);
        csv_quoted(&t, e->node);
        tx(&t, ",%d,%d,%.3f,%llu,", e->rank, e->worker, e->started,
           (unsigned long long)e->joint_planned_bytes);
        csv_quoted(&t, e->reason);
        tx(&t, "\n");
    }
    return text_commit(&t, dir, "candidates.csv");
}

static mn_status write_json(const mn_search_config *cfg, const char *dir, const mn_journal *j,
                            const mn_search_result *s, const mn_final_result *f, double total) {
    size_t n[MN_OUTCOME_COUNT] = {0}, path = 0; /* the lines the rules asked */
    for (size_t i = 0; i < mn_journal_count(j); i++)
        if (!mn_journal_get(j, i)->speculative) {
            n[mn_journal_get(j, i)->outcome]++;
            path++;
        }
    json_error_t err;
    json_t *settings = json_loads(cfg->settings_json, 0, &err);
    if (!settings)
        return mn_error_set(MN_ERR_INVALID_ARG, "search settings are not JSON: %s", err.text);
    /* json_pack keeps the keys in the order given (readers may rely on it) and drops the
     * values it took ("o") when anything fails, so NULL means out of memory. */
    json_t *winner = f ? json_pack("{s:i, s:i, s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I,"
                                   " s:o, s:o, s:[ssss]}",
                                   "k", f->arch.k, "cells", f->arch.cells,
                                   "layout", mn_layout_name(f->arch.layout),
                                   "val_acc", mn_json_real_new(f->val_acc, 4),
                                   "search_val_acc", mn_json_real_new(s->winner_val_acc, 4),
                                   "float_test_acc", mn_json_real_new(f->float_test_acc, 4),
                                   "int8_test_acc", mn_json_real_new(f->int8_test_acc, 4),
                                   "ram_bytes", (json_int_t)f->est.ram_bytes,
                                   "ram_head_bytes", (json_int_t)f->est.ram_head_bytes,
                                   "ram_x86_64_bytes", (json_int_t)f->est.ram_x86_64_bytes,
                                   "flash_bytes", (json_int_t)f->flash_bytes,
                                   "macc", (json_int_t)f->est.macc,
                                   "params", (json_int_t)f->est.params,
                                   "latency_ms", mn_json_real_new(f->est.latency_ms, 3),
                                   "final_train_seconds", mn_json_real_new(f->train_seconds, 1),
                                   "files", "model.tflite", "model_data.c", "model_data.h",
                                   "weights.h5")
                       : json_null();
    /* the workers: how busy they were, what ran ahead of need, the shared budget */
    json_t *workers = json_pack("{s:i, s:i, s:i, s:o, s:o, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I}",
                                "slots", s->slots, "nodes", s->nodes, "threads", cfg->threads,
                                "busy_seconds", mn_json_real_new(s->busy_seconds, 1),
                                "utilisation", mn_json_real_new(s->utilisation, 3),
                                "speculative", (json_int_t)s->speculative,
                                "speculative_used", (json_int_t)s->speculative_used,
                                "speculative_seconds", mn_json_real_new(s->speculative_seconds, 1),
                                "lost", (json_int_t)s->lost, "host_mem", (json_int_t)cfg->host_mem,
                                "base_host_bytes", (json_int_t)s->base_host_bytes,
                                "peak_search_host_bytes", (json_int_t)s->peak_search_host_bytes,
                                "max_joint_planned_bytes", (json_int_t)s->max_joint_planned_bytes);
    json_t *report = json_pack(
        "{s:o, s:{s:o, s:I, s:I, s:I, s:I, s:f}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:I,"
        " s:o, s:o}",
        "settings", settings,
        "target", "name", mn_json_string_new(cfg->target->name),
        "ram_bytes", (json_int_t)cfg->target->ram_bytes,
        "ram_reserve_bytes", (json_int_t)cfg->target->ram_reserve_bytes,
        "flash_bytes", (json_int_t)cfg->target->flash_bytes,
        "macc_bound", (json_int_t)cfg->target->macc_bound, "clock_mhz", cfg->target->clock_mhz,
        "candidates", "total", (json_int_t)path,
        "scored", (json_int_t)n[MN_OUTCOME_SCORED], "infeasible", (json_int_t)n[MN_OUTCOME_INFEASIBLE],
        "pruned", (json_int_t)n[MN_OUTCOME_PRUNED], "failed", (json_int_t)n[MN_OUTCOME_FAILED],
        "trained_this_run", (json_int_t)s->trained, "replayed", (json_int_t)s->replayed,
        "search_seconds", mn_json_real_new(s->seconds, 1),
        "total_seconds", mn_json_real_new(total, 1),
        "peak_host_bytes", (json_int_t)s->peak_host_bytes,
        "workers", workers, "winner", winner);
    /* indented for people, reals short once rounded */
    char *text = report ? json_dumps(report, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                                 JSON_REAL_PRECISION(15))
                        : NULL;
    json_decref(report);
    mn_text t = {0};
    if (text) tx(&t, "%s\n", text);
    else t.oom = 1;
    free(text);
    return text_commit(&t, dir, "report.json");
}

mn_status mn_search_write_report(const mn_search_config *cfg, const char *dir,
                                 const mn_search_result *search, const mn_final_result *final,
                                 double total_seconds) {
    mn_journal *j = NULL;
    mn_status st = mn_journal_open(cfg->journal_path, cfg->settings_json, 1, &j);
    if (!st) st = write_csv(dir, j);
    if (!st) st = write_plot(cfg, dir, j, final);
    if (!st) st = write_json(cfg, dir, j, search, final, total_seconds);
    mn_journal_close(j);
    return st;
}
