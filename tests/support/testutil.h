/* Small helpers shared by the cmocka suites. Each suite includes cmocka itself. */
#ifndef MN_TESTUTIL_H
#define MN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mcunas/samples.h"
#include "mcunas/target.h"

/* 1 in an AddressSanitizer build (gcc or clang): its quarantine and shadow memory change
 * what a process's resident set does, so budget tests allow for them. */
#if defined(__SANITIZE_ADDRESS__)
#define MN_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MN_UNDER_ASAN 1
#endif
#endif
#ifndef MN_UNDER_ASAN
#define MN_UNDER_ASAN 0
#endif

/* A fresh directory for this test (under $MN_TEST_TMPDIR or /tmp); caller frees. */
char *mn_test_tmpdir(const char *tag);
/* dir + "/" + name; caller frees. */
char *mn_test_path(const char *dir, const char *name);
/* Deterministic uniform floats in [lo, hi) from a seed. */
void mn_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
/* max |a - b| / max(1, |b|) over n values. */
double mn_test_max_rel_err(const float *a, const double *b, size_t n);
/* Writes a dataset cache of h x w x 1 images in 4 classes of mean brightness under noise
 * (class c: 30 + 50c + U[0,40)), n_train + n_test images from `seed`. */
int mn_test_write_brightness_dataset(const char *path, int h, int w, int n_train, int n_test,
                                     uint64_t seed);
/* The fixture of the search, pool and proxy suites: a fresh folder named after `tag`, a
 * 16x16x1 brightness dataset in it (data.h5: n_train + n_test images, seed 5) read into
 * memory, and the built-in targets. 0 on success. */
typedef struct mn_test_fixture {
    char *tmpdir, *data_path;
    mn_loaded_data data;
    mn_target_list targets;
} mn_test_fixture;
int mn_test_fixture_setup(mn_test_fixture *f, const char *tag, int n_train, int n_test);
/* Frees it all and removes the folder; 0 on success. */
int mn_test_fixture_teardown(mn_test_fixture *f);
/* Removes a folder and everything in it; 0 on success. */
int mn_test_remove_tree(const char *dir);

/* A quantized int8 graph of A(k, cells) with deterministic random parameters (BN gammas
 * near 1, variances in [0.5, 1.5]) and n_img random calibration images (returned in
 * *images, caller frees; uint8 pixels). NULL on failure. */
struct mn_qgraph;
struct mn_qgraph *mn_test_random_qgraph(int k, int cells, int layout, int h, int w, int c, int classes,
                                        int io_int8, uint8_t **images, int n_img, uint64_t seed);
/* Path of the built mcunas binary ($MN_BIN), or NULL. */
const char *mn_test_bin(void);

/* ---- running commands (every CLI test goes through these) ----
 * argv: the program then its arguments, NULL-terminated. The command's stdout and stderr go
 * together into the file `log` (created or truncated), so that a failing test can show what
 * the command said. Exit codes are the command's, or 128 + the signal that killed it. */

/* Runs argv to completion; returns its exit code. When it is not `expect`, prints the
 * command line, the exit code and the log on stderr (the caller's assert then fails). */
int mn_test_run(int expect, const char *const *argv, const char *log);
/* Starts argv in the background; returns its pid (-1 when fork fails). */
pid_t mn_test_spawn(const char *const *argv, const char *log);
/* Waits for a spawned command; like mn_test_run, prints it all when the exit code is not
 * `expect`. */
int mn_test_reap(pid_t pid, int expect, const char *const *argv, const char *log);
/* Prints the command line, its exit code and the log on stderr. */
void mn_test_print_run(const char *const *argv, const char *log, int rc);
/* Waits until `pid` has installed a handler for signal `sig` (its /proc status lists the
 * signal as caught); 0 when it exits first or after `timeout_s` seconds. */
int mn_test_wait_caught(pid_t pid, int sig, double timeout_s);
/* Waits until the file `path` exists and, when `needle` is not NULL, contains it; 0 when
 * `pid` (if > 0) exits first or after `timeout_s` seconds. */
int mn_test_wait_file(const char *path, const char *needle, pid_t pid, double timeout_s);
/* Lines of the file `path` that contain `needle`; -1 when it cannot be read. */
int mn_test_count_lines(const char *path, const char *needle);

#endif
