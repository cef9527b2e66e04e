/* Small helpers shared by the cmocka suites. Each suite includes cmocka itself. */
#ifndef MN_TESTUTIL_H
#define MN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

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
/* A quantized int8 graph of A(k, cells) with deterministic random parameters (BN gammas
 * near 1, variances in [0.5, 1.5]) and n_img random calibration images (returned in
 * *images, caller frees; uint8 pixels). NULL on failure. */
struct mn_qgraph;
struct mn_qgraph *mn_test_random_qgraph(int k, int cells, int layout, int h, int w, int c, int classes,
                                        int io_int8, uint8_t **images, int n_img, uint64_t seed);
/* Path of the built mcunas binary ($MN_BIN), or NULL. */
const char *mn_test_bin(void);

#endif
