/* Every long command stops cleanly on the signals batch schedulers and terminals send:
 * SIGTERM, SIGHUP and SIGINT end import, train, export, rank and bench with exit code 130 and
 * leave neither their output nor its temporary file; a second Ctrl-C leaves at once, still
 * removing the temporary file. And --host-mem is held to what the process's cgroup allows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Generous: the suite must pass on a loaded machine and under the sanitizers. */
#define WAIT_S 600.0

static char *tmpdir, *data_path;

static int setup(void **state) {
    (void)state;
    tmpdir = mn_test_tmpdir("signals");
    data_path = mn_test_path(tmpdir, "data.h5");
    /* 28x28 brightness classes; 2,000 test images make the export's int8 evaluation long
     * enough to be stopped in. */
    assert_true(mn_test_write_brightness_dataset(data_path, 28, 28, 3000, 2000, 3));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = mn_test_remove_tree(tmpdir);
    free(data_path);
    free(tmpdir);
    return rc == 0 ? 0 : 1;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Neither `path` nor `path`.tmp is there. */
static void assert_nothing_left(const char *path) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (exists(path)) fail_msg("%s was left behind", path);
    if (exists(tmp)) fail_msg("%s was left behind", tmp);
}

/* Sends `sig` to a spawned command and checks that it stopped with 130. */
static void stop_and_expect_130(pid_t pid, int sig, const char *const *argv, const char *log) {
    assert_int_equal(kill(pid, sig), 0);
    assert_int_equal(mn_test_reap(pid, 130, argv, log), 130);
}

static void import_stops_on_sigterm_and_sighup(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    const int sigs[] = {SIGTERM, SIGHUP};
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "synthetic-%d.h5", sigs[i]);
        char *out = mn_test_path(tmpdir, name), *log = mn_test_path(tmpdir, "import.log");
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.tmp", out);
        /* 300,000 images of 32x32x3: seconds of work, stopped once its file is being written */
        const char *argv[] = {bin, "import", "synthetic", "--count", "300000", "--size", "32x32",
                              "--channels", "3", "-o", out, NULL};
        pid_t pid = mn_test_spawn(argv, log);
        assert_true(pid > 0);
        if (!mn_test_wait_file(tmp, NULL, pid, WAIT_S)) {
            mn_test_print_run(argv, log, -1);
            fail_msg("the import never started writing %s", tmp);
        }
        stop_and_expect_130(pid, sigs[i], argv, log);
        assert_nothing_left(out);
        assert_true(mn_test_count_lines(log, "stopped") >= 1);
        free(out);
        free(log);
    }
}

static void second_ctrl_c_leaves_at_once(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *out = mn_test_path(tmpdir, "twice.h5"), *log = mn_test_path(tmpdir, "twice.log");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    const char *argv[] = {bin, "import", "synthetic", "--count", "300000", "--size", "32x32",
                          "--channels", "3", "-o", out, NULL};
    pid_t pid = mn_test_spawn(argv, log);
    assert_true(pid > 0);
    assert_true(mn_test_wait_file(tmp, NULL, pid, WAIT_S));
    assert_int_equal(kill(pid, SIGINT), 0);
    kill(pid, SIGINT); /* may find it gone already: either way, 130 and nothing left */
    assert_int_equal(mn_test_reap(pid, 130, argv, log), 130);
    assert_nothing_left(out);
    free(out);
    free(log);
}

static void train_stops_on_sigterm(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *w = mn_test_path(tmpdir, "stopped.h5"), *log = mn_test_path(tmpdir, "train.log");
    const char *argv[] = {bin, "train", "--data", data_path, "--k", "4", "--cells", "2",
                          "--epochs", "500", "--batch", "16", "--save", w, NULL};
    pid_t pid = mn_test_spawn(argv, log);
    assert_true(pid > 0);
    /* the first progress line: training is under way */
    if (!mn_test_wait_file(log, "epoch 1/500", pid, WAIT_S)) {
        mn_test_print_run(argv, log, -1);
        fail_msg("training never started");
    }
    stop_and_expect_130(pid, SIGTERM, argv, log);
    assert_nothing_left(w);
    assert_true(mn_test_count_lines(log, "training stopped") >= 1);
    free(w);
    free(log);
}

static void export_stops_on_sigterm(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *w = mn_test_path(tmpdir, "trained.h5"), *log = mn_test_path(tmpdir, "export.log"),
         *model = mn_test_path(tmpdir, "model.tflite"), *carr = mn_test_path(tmpdir, "model_data.c");
    const char *train[] = {bin, "train", "--data", data_path, "--k", "4", "--cells", "2",
                           "--epochs", "1", "--limit", "500", "--quiet", "--save", w, NULL};
    assert_int_equal(mn_test_run(0, train, log), 0);
    const char *argv[] = {bin, "export", "--weights", w, "--data", data_path, "-o", model,
                          "--c-array", carr, NULL};
    pid_t pid = mn_test_spawn(argv, log);
    assert_true(pid > 0);
    /* Nothing to watch before the files appear at the end: stop it once it handles the
     * signal (it has started, and stops at its next check, at the latest per test image). */
    assert_true(mn_test_wait_caught(pid, SIGTERM, WAIT_S));
    stop_and_expect_130(pid, SIGTERM, argv, log);
    assert_nothing_left(model);
    assert_nothing_left(carr);
    free(w);
    free(log);
    free(model);
    free(carr);
}

static void rank_stops_on_sigterm(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *csv = mn_test_path(tmpdir, "ranks.csv"), *log = mn_test_path(tmpdir, "rank.log");
    const char *argv[] = {bin, "rank", "--data", data_path, "--target", "stm32f746", "--k-max", "64",
                          "--out", csv, NULL};
    pid_t pid = mn_test_spawn(argv, log);
    assert_true(pid > 0);
    /* the first candidate's proxies are done */
    if (!mn_test_wait_file(log, "rank: ", pid, WAIT_S)) {
        mn_test_print_run(argv, log, -1);
        fail_msg("ranking never started");
    }
    stop_and_expect_130(pid, SIGTERM, argv, log);
    assert_nothing_left(csv);
    assert_true(mn_test_count_lines(log, "ranking stopped") >= 1);
    free(csv);
    free(log);
}

static void bench_stops_on_sigterm(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *log = mn_test_path(tmpdir, "bench.log");
    const char *argv[] = {bin, "bench", "--k", "4", "--cells", "2", "--input", "28x28x1",
                          "--classes", "10", "--seconds", "3600", NULL};
    pid_t pid = mn_test_spawn(argv, log);
    assert_true(pid > 0);
    assert_true(mn_test_wait_caught(pid, SIGTERM, WAIT_S));
    stop_and_expect_130(pid, SIGTERM, argv, log);
    assert_int_equal(mn_test_count_lines(log, "img/s"), 0); /* no half-measured figure */
    free(log);
}

/* A fake cgroup tree (MN_CGROUP_ROOT) that allows 256 MiB, whatever this process's cgroup
 * path is: v1 and v2 files at the top of the tree. */
static char *fake_cgroup_256m(void) {
    char *root = mn_test_path(tmpdir, "cgroup");
    char path[4200];
    mkdir(root, 0755);
    snprintf(path, sizeof path, "%s/memory", root);
    mkdir(path, 0755);
    static const char *const files[][2] = {{"cgroup.controllers", "memory\n"},
                                           {"memory.max", "268435456\n"},
                                           {"memory.current", "0\n"},
                                           {"memory/memory.limit_in_bytes", "268435456\n"},
                                           {"memory/memory.usage_in_bytes", "0\n"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, files[i][0]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(files[i][1], f);
        assert_int_equal(fclose(f), 0);
    }
    return root;
}

static void host_mem_is_held_to_the_cgroup(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char *root = fake_cgroup_256m(), *log = mn_test_path(tmpdir, "cgroup.log"),
         *out = mn_test_path(tmpdir, "search-cgroup");
    assert_int_equal(setenv("MN_CGROUP_ROOT", root, 1), 0);
    /* more than the cgroup allows: refused, naming both sizes */
    const char *rank[] = {bin, "rank", "--data", data_path, "--target", "stm32f412", "--host-mem", "1G", NULL};
    assert_int_equal(mn_test_run(2, rank, log), 2);
    assert_int_equal(mn_test_count_lines(log, "--host-mem 1024.0 MiB is more than this process's cgroup allows"), 1);
    assert_int_equal(mn_test_count_lines(log, "its memory limit is 256.0 MiB"), 1);
    const char *search[] = {bin, "search", "--data", data_path, "--target", "stm32f412", "--out", out,
                            "--host-mem", "300M", NULL};
    assert_int_equal(mn_test_run(2, search, log), 2);
    /* no --host-mem: the default budget is the cgroup's room, not the machine's RAM */
    const char *dflt[] = {bin, "search", "--data", data_path, "--target", "stm32f412", "--out", out, NULL};
    pid_t pid = mn_test_spawn(dflt, log);
    assert_true(pid > 0);
    if (!mn_test_wait_file(log, "host budget", pid, WAIT_S)) {
        mn_test_print_run(dflt, log, -1);
        fail_msg("the search never printed its budget");
    }
    stop_and_expect_130(pid, SIGTERM, dflt, log);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[4096];
    double mib = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "host budget ");
        if (p) mib = atof(p + strlen("host budget "));
    }
    fclose(f);
    /* never above the cgroup's limit (the machine's RAM would be far more) */
    if (!(mib > 0 && mib <= 256)) {
        mn_test_print_run(dflt, log, 130);
        fail_msg("host budget %.0f MiB, expected at most the fake cgroup's 256 MiB", mib);
    }
    assert_int_equal(unsetenv("MN_CGROUP_ROOT"), 0);
    free(root);
    free(log);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(import_stops_on_sigterm_and_sighup),
        cmocka_unit_test(second_ctrl_c_leaves_at_once),
        cmocka_unit_test(train_stops_on_sigterm),
        cmocka_unit_test(export_stops_on_sigterm),
        cmocka_unit_test(rank_stops_on_sigterm),
        cmocka_unit_test(bench_stops_on_sigterm),
        cmocka_unit_test(host_mem_is_held_to_the_cgroup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
