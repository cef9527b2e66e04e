/* mcunas bench --compare-torch: runs benchmarks/torch_throughput.py (installed as
 * share/mcunas/torch_throughput.py) for one configuration and reads its JSON line. */
#include "bench_torch.h"

#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *const script_name = "torch_throughput.py";

/* `s` in single quotes for /bin/sh ('\'' for a quote inside). */
static int sh_quote(char *out, size_t size, const char *s) {
    size_t n = 0;
    if (size < 3) return 0;
    out[n++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : (char[]){*s, 0};
        size_t len = strlen(piece);
        if (n + len + 2 > size) return 0;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n++] = '\'';
    out[n] = '\0';
    return 1;
}

static int readable(const char *p) { return access(p, R_OK) == 0; }

/* $MCUNAS_TORCH_SCRIPT, else next to the executable: ../share/mcunas/ (installed) or
 * share/mcunas/ (the build tree, where CMake copies it). */
static int find_script(char *out, size_t size) {
    const char *env = getenv("MCUNAS_TORCH_SCRIPT");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        if (readable(out)) return 1;
        fprintf(stderr, "mcunas bench: MCUNAS_TORCH_SCRIPT=%s is not a readable file\n", env);
        return 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *dir = dirname(exe);
        snprintf(out, size, "%s/../share/mcunas/%s", dir, script_name);
        if (readable(out)) return 1;
        snprintf(out, size, "%s/share/mcunas/%s", dir, script_name);
        if (readable(out)) return 1;
    }
    fprintf(stderr,
            "mcunas bench: --compare-torch: %s not found in share/mcunas/ beside the mcunas binary; "
            "reinstall mcunas or set MCUNAS_TORCH_SCRIPT to benchmarks/%s\n",
            script_name, script_name);
    return 0;
}

int mn_bench_torch_open(mn_bench_torch *t, const char *python) {
    memset(t, 0, sizeof *t);
    snprintf(t->python, sizeof t->python, "%s", python ? python : "python3");
    if (!find_script(t->script, sizeof t->script)) return MN_EXIT_FAILURE;
    char qpy[4200], cmd[4400];
    if (!sh_quote(qpy, sizeof qpy, t->python)) {
        fprintf(stderr, "mcunas bench: --python path too long\n");
        return MN_EXIT_FAILURE;
    }
    snprintf(cmd, sizeof cmd,
             "%s -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null", qpy);
    FILE *p = popen(cmd, "r");
    int ok = p && fgets(t->version, sizeof t->version, p) != NULL;
    int rc = p ? pclose(p) : -1;
    if (!ok || rc != 0) {
        fprintf(stderr,
                "mcunas bench: --compare-torch needs PyTorch, but '%s' cannot import torch.\n"
                "  Install it into that Python (pip install torch), or point --python at one "
                "that has it\n  (benchmarks/train_throughput sets up a venv with it).\n",
                t->python);
        return MN_EXIT_FAILURE;
    }
    t->version[strcspn(t->version, "\r\n")] = '\0';
    return MN_EXIT_OK;
}

int mn_bench_torch_run(mn_bench_torch *t, const mn_arch *arch, int batch, int threads,
                       double seconds, int warmup, const char *device, double *images_per_second) {
    char qpy[4200], qscript[4200], cmd[9000];
    if (!sh_quote(qpy, sizeof qpy, t->python) || !sh_quote(qscript, sizeof qscript, t->script))
        return MN_EXIT_FAILURE;
    snprintf(cmd, sizeof cmd,
             "%s %s --nets %d,%d --inputs %dx%dx%d:%d --batches %d --threads %d --seconds %g "
             "--warmup %d --device %s",
             qpy, qscript, arch->k, arch->cells, arch->input.h, arch->input.w, arch->input.c,
             arch->classes, batch, threads, seconds, warmup, device);
    FILE *p = popen(cmd, "r");
    char line[4096], last[4096] = "";
    while (p && fgets(line, sizeof line, p))
        if (line[0] == '{') memcpy(last, line, sizeof last);
    int rc = p ? pclose(p) : -1;
    json_t *j = rc == 0 ? json_loads(last, 0, NULL) : NULL;
    json_t *ips = json_object_get(j, "images_per_second");
    int ok = json_is_number(ips) && json_number_value(ips) > 0;
    if (ok) *images_per_second = json_number_value(ips);
    json_decref(j);
    if (!ok) {
        fprintf(stderr, "mcunas bench: the PyTorch run failed (exit status %d): %s\n", rc, cmd);
        return MN_EXIT_FAILURE;
    }
    return MN_EXIT_OK;
}
