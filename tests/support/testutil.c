#include "testutil.h"

#include "mcunas/arch.h"
#include "mcunas/dataset.h"
#include "mcunas/qgraph.h"
#include "mcunas/rng.h"
#include "mcunas/samples.h"
#include "mcunas/target.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *mn_test_tmpdir(const char *tag) {
    const char *base = getenv("MN_TEST_TMPDIR");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    size_t len = strlen(base) + strlen(tag) + 32;
    char *dir = malloc(len);
    snprintf(dir, len, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

char *mn_test_path(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

void mn_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u = (double)(s >> 11) / 9007199254740992.0;
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

double mn_test_max_rel_err(const float *a, const double *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs(b[i]));
        if (d > worst || isnan(d)) worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

const char *mn_test_bin(void) { return getenv("MN_BIN"); }

int mn_test_write_brightness_dataset(const char *path, int h, int w, int n_train, int n_test,
                                     uint64_t seed) {
    mn_dataset_writer_options o = {{h, w, 1}, 4, NULL, "tests: brightness classes", 0, 0, NULL};
    mn_dataset_writer *wr;
    if (mn_dataset_writer_create(path, &o, &wr) != MN_OK) return 0;
    mn_rng r;
    mn_rng_seed(&r, seed);
    size_t pixels = (size_t)h * (size_t)w;
    uint8_t *img = malloc(pixels);
    for (int split = 0; split < 2 && img; split++)
        for (int i = 0; i < (split ? n_test : n_train); i++) {
            int32_t cls = (int32_t)mn_rng_below(&r, 4);
            for (size_t p = 0; p < pixels; p++)
                img[p] = (uint8_t)(30 + 50 * cls + (int)mn_rng_below(&r, 40));
            if (mn_dataset_writer_append(wr, split ? MN_SPLIT_TEST : MN_SPLIT_TRAIN, img, &cls, 1)) {
                free(img);
                mn_dataset_writer_abort(wr);
                return 0;
            }
        }
    if (!img) {
        mn_dataset_writer_abort(wr);
        return 0;
    }
    free(img);
    return mn_dataset_writer_commit(wr) == MN_OK;
}

struct mn_qgraph *mn_test_random_qgraph(int k, int cells, int layout, int h, int w, int c, int classes,
                                        int io_int8, uint8_t **images, int n_img, uint64_t seed) {
    mn_arch a;
    mn_shape in = {h, w, c};
    *images = NULL;
    if (mn_arch_build(&a, k, cells, (mn_layout)layout, in, classes)) return NULL;
    size_t P = mn_arch_trainable_params(&a), S = mn_arch_state_params(&a);
    float *tr = malloc(sizeof(float) * (P + 1)), *st = malloc(sizeof(float) * (S + 1));
    size_t img = mn_shape_count(in);
    float *f = malloc(sizeof(float) * img * (size_t)n_img);
    *images = malloc(img * (size_t)n_img);
    mn_qgraph *g = NULL;
    if (!tr || !st || !f || !*images) goto done;
    mn_test_fill_uniform(tr, P, seed, -0.5f, 0.5f);
    size_t p = 0, s = 0;
    for (int i = 0; i < a.n_layers; i++) {
        const mn_layer *l = &a.layers[i];
        if (l->kind == MN_LAYER_BATCHNORM) {
            int C = l->in.c;
            for (int ch = 0; ch < C; ch++) tr[p + ch] = 0.8f + 0.4f * (float)((ch * 37) % 11) / 11.0f;
            mn_test_fill_uniform(st + s, (size_t)C, seed + 2 + (uint64_t)i, -0.2f, 0.2f);
            mn_test_fill_uniform(st + s + C, (size_t)C, seed + 6 + (uint64_t)i, 0.5f, 1.5f);
        }
        p += l->n_trainable;
        s += l->n_state;
    }
    mn_test_fill_uniform(f, img * (size_t)n_img, seed + 12, 0.0f, 256.0f);
    for (size_t i = 0; i < img * (size_t)n_img; i++) (*images)[i] = (uint8_t)f[i];
    if (mn_qgraph_build(&a, io_int8, &g) || mn_qgraph_set_params(g, tr, st, 1e-3f) ||
        mn_qgraph_quantize(g, *images, (size_t)n_img)) {
        mn_qgraph_free(g);
        g = NULL;
    }
done:
    if (!g) {
        free(*images);
        *images = NULL;
    }
    free(tr);
    free(st);
    free(f);
    return g;
}

/* ---- running commands ---- */

pid_t mn_test_spawn(const char *const *argv, const char *log) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null_in = open("/dev/null", O_RDONLY);
    if (fd < 0 || null_in < 0) _exit(126);
    dup2(null_in, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    /* The child starts with the default dispositions a shell would give it. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    execv(argv[0], (char *const *)argv);
    dprintf(2, "cannot run %s\n", argv[0]);
    _exit(127);
}

void mn_test_print_run(const char *const *argv, const char *log, int rc) {
    fprintf(stderr, "---- command (exit %d):", rc);
    for (size_t i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n---- its output (%s):\n", log);
    FILE *f = fopen(log, "r");
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stderr);
        fclose(f);
    } else {
        fprintf(stderr, "(no output file)\n");
    }
    fprintf(stderr, "---- end of output\n");
}

int mn_test_reap(pid_t pid, int expect, const char *const *argv, const char *log) {
    int status = 0, rc;
    if (pid < 0) {
        rc = -1;
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (rc != expect) mn_test_print_run(argv, log, rc);
    return rc;
}

int mn_test_run(int expect, const char *const *argv, const char *log) {
    return mn_test_reap(mn_test_spawn(argv, log), expect, argv, log);
}

/* Whether pid has exited (and is a zombie not yet reaped) or is gone. */
static int exited(pid_t pid) {
    char path[64], state = 0, buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* "pid (comm) S ..." */
    if (p && p[1] == ' ') state = p[2];
    return state == 'Z' || state == 'X';
}

int mn_test_wait_caught(pid_t pid, int sig, double timeout_s) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    for (double waited = 0; waited < timeout_s; waited += 0.01) {
        if (exited(pid)) return 0;
        FILE *f = fopen(path, "r");
        unsigned long long caught = 0;
        if (f) {
            while (fgets(line, sizeof line, f))
                if (sscanf(line, "SigCgt: %llx", &caught) == 1) break;
            fclose(f);
        }
        if (caught & (1ull << (sig - 1))) return 1;
        usleep(10000);
    }
    return 0;
}

static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (!needle) {
        fclose(f);
        return 1;
    }
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int mn_test_wait_file(const char *path, const char *needle, pid_t pid, double timeout_s) {
    for (double waited = 0; waited < timeout_s; waited += 0.01) {
        if (file_contains(path, needle)) return 1;
        if (pid > 0 && exited(pid)) return file_contains(path, needle);
        usleep(10000);
    }
    return 0;
}

int mn_test_count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

int mn_test_remove_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int mn_test_fixture_setup(mn_test_fixture *f, const char *tag, int n_train, int n_test) {
    memset(f, 0, sizeof *f);
    f->tmpdir = mn_test_tmpdir(tag);
    f->data_path = f->tmpdir ? mn_test_path(f->tmpdir, "data.h5") : NULL;
    if (!f->data_path || !mn_test_write_brightness_dataset(f->data_path, 16, 16, n_train, n_test, 5)) {
        fprintf(stderr, "fixture %s: cannot write the dataset\n", tag);
        return -1;
    }
    if (mn_loaded_data_read(f->data_path, 0, &f->data) != MN_OK || mn_target_list_init(&f->targets) != MN_OK) {
        fprintf(stderr, "fixture %s: %s\n", tag, mn_error_message());
        return -1;
    }
    return 0;
}

int mn_test_fixture_teardown(mn_test_fixture *f) {
    mn_loaded_data_free(&f->data);
    mn_target_list_free(&f->targets);
    int rc = f->tmpdir ? mn_test_remove_tree(f->tmpdir) : 0;
    free(f->data_path);
    free(f->tmpdir);
    memset(f, 0, sizeof *f);
    return rc;
}
