/* mcunas bench through the CLI: the throughput keys of --json, and --compare-torch's
 * plumbing (a stand-in interpreter plays PyTorch's side, or has no torch at all). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char *tmpdir;

/* Runs `mcunas bench` with args (NULL-terminated), stdout and stderr into files; returns the
 * exit code and the two outputs (caller frees). */
static int run_bench(const char *const *args, char **out, char **err) {
    char *outp = mn_test_path(tmpdir, "stdout.txt"), *errp = mn_test_path(tmpdir, "stderr.txt");
    const char *argv[32] = {mn_test_bin(), "bench"};
    int n = 2;
    while (*args && n < 31) argv[n++] = *args++;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    char *paths[2] = {outp, errp}, **texts[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        *texts[i] = calloc(1, 65536);
        if (f) {
            size_t got = fread(*texts[i], 1, 65535, f);
            (void)got;
            fclose(f);
        }
        free(paths[i]);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* An executable shell script in the test folder; caller frees the path. */
static char *write_script(const char *name, const char *body) {
    char *p = mn_test_path(tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    assert_int_equal(chmod(p, 0755), 0);
    return p;
}

static double num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("key '%s' missing or not a number", key);
    return json_number_value(v);
}

static void json_has_throughput_keys(void **state) {
    (void)state;
    if (!mn_test_bin()) skip();
    const char *args[] = {"--k", "4", "--cells", "3", "--batch", "4,8", "--threads", "1",
                          "--seconds", "0.05", "--warmup", "1", "--json", NULL};
    char *out, *err;
    assert_int_equal(run_bench(args, &out, &err), 0);
    int lines = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        if (!j) fail_msg("not JSON: %s", l);
        assert_int_equal((int)num(j, "batch"), lines ? 8 : 4);
        assert_int_equal((int)num(j, "threads"), 1);
        /* 6 x MACC per image, and GFLOP/s consistent with images/s. */
        assert_float_equal(num(j, "flops_per_image"), 6.0 * num(j, "macc"), 1e-6 * num(j, "macc"));
        assert_true(num(j, "images_per_second") > 0);
        double gf = num(j, "gflops");
        assert_true(gf > 0);
        assert_float_equal(gf, num(j, "flops_per_image") * num(j, "images_per_second") * 1e-9, 1e-3 * gf);
        assert_true(num(j, "sgemm_gflops") > 0);
        double share = num(j, "peak_share");
        if (!(share > 0 && share < 1.5)) fail_msg("peak_share %g outside (0, 1.5)", share);
        assert_float_equal(share, gf / num(j, "sgemm_gflops"), 1e-3 * share);
        assert_null(json_object_get(j, "ratio")); /* no --compare-torch */
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 2);
    free(out);
    free(err);
}

static void compare_torch_without_torch(void **state) {
    (void)state;
    if (!mn_test_bin()) skip();
    char *py = write_script("python-no-torch",
                            "echo \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n");
    const char *args[] = {"--k", "4", "--cells", "3", "--seconds", "0.05", "--compare-torch",
                          "--python", py, NULL};
    char *out, *err;
    assert_int_equal(run_bench(args, &out, &err), 1);
    if (!strstr(err, "cannot import torch") || !strstr(err, py)) fail_msg("unclear message: %s", err);
    assert_string_equal(out, ""); /* fails before timing anything */
    free(out);
    free(err);
    /* --python alone, and a layout the PyTorch script does not build: usage errors. */
    const char *alone[] = {"--python", py, NULL}, *layout[] = {"--compare-torch", "--layout", "colabnas", NULL};
    assert_int_equal(run_bench(alone, &out, &err), 2);
    free(out);
    free(err);
    assert_int_equal(run_bench(layout, &out, &err), 2);
    free(out);
    free(err);
    free(py);
}

/* A stand-in interpreter: "imports torch" (prints a version) and answers the script's
 * command line with one JSON line of 100 images/s, echoing what it was asked. */
static void compare_torch_side_by_side(void **state) {
    (void)state;
    if (!mn_test_bin()) skip();
    char *py = write_script(
        "python-fake-torch",
        "if [ \"$1\" = -W ]; then echo 9.9.9; exit 0; fi\n"
        "case \"$1\" in *torch_throughput.py) ;; *) exit 3 ;; esac\n"
        "shift\n"
        "while [ $# -gt 0 ]; do case $1 in --batches) b=$2 ;; --threads) t=$2 ;; --nets) n=$2 ;; esac; shift; done\n"
        "echo '{\"impl\": \"pytorch\", \"net\": \"'$n'\", \"batch\": '$b', \"threads\": '$t', "
        "\"images_per_second\": 100.0}'\n");
    const char *args[] = {"--k", "4", "--cells", "3", "--batch", "4", "--threads", "1", "--seconds",
                          "0.05", "--warmup", "1", "--compare-torch", "--python", py, "--json", NULL};
    char *out, *err;
    assert_int_equal(run_bench(args, &out, &err), 0);
    json_t *j = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
    if (!j) fail_msg("not JSON: %s (stderr: %s)", out, err);
    assert_float_equal(num(j, "torch_images_per_second"), 100.0, 1e-9);
    assert_float_equal(num(j, "ratio"), num(j, "images_per_second") / 100.0, 1e-6);
    assert_string_equal(json_string_value(json_object_get(j, "torch_version")), "9.9.9");
    json_decref(j);
    free(out);
    free(err);
    free(py);
}

int main(void) {
    tmpdir = mn_test_tmpdir("bench");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_has_throughput_keys),
        cmocka_unit_test(compare_torch_without_torch),
        cmocka_unit_test(compare_torch_side_by_side),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(tmpdir);
    return rc;
}
