/* The data stream: every index exactly once per pass (resident and streaming), seeded
 * orders, the memory budget, errors from the reader thread, augmentation, and training
 * through the stream. Fixture caches are generated here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcunas/backend.h"
#include "mcunas/dataset.h"
#include "mcunas/net.h"
#include "mcunas/rng.h"
#include "mcunas/stream.h"
#include "mcunas/train.h"
#include "testassert.h"
#include "testutil.h"

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:H5D__write\n"; }

static const mn_shape SHAPE = {5, 4, 3};
#define CLASSES 7

static uint8_t pixel_of(size_t split, size_t i, size_t p) {
    return (uint8_t)((i * 7 + p * 13 + i / 251 + split * 101) & 255);
}
static int32_t label_of(size_t split, size_t i) { return (int32_t)((i * 31 + 5 + split) % CLASSES); }

static void write_cache3(const char *path, size_t n_train, size_t n_test, size_t n_val,
                         int chunk, int deflate) {
    const size_t px = mn_shape_count(SHAPE);
    mn_dataset_writer_options o = {SHAPE, CLASSES, NULL, "stream test", chunk, deflate, NULL};
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    uint8_t *img = malloc(100 * px);
    int32_t lab[100];
    for (int s = 0; s < MN_SPLITS; s++) {
        size_t n = s == 0 ? n_train : s == 1 ? n_test : n_val;
        for (size_t done = 0; done < n;) {
            size_t b = n - done < 100 ? n - done : 100;
            for (size_t i = 0; i < b; i++) {
                lab[i] = label_of((size_t)s, done + i);
                for (size_t p = 0; p < px; p++) img[i * px + p] = pixel_of((size_t)s, done + i, p);
            }
            assert_status(mn_dataset_writer_append(w, (mn_split)s, img, lab, b), MN_OK);
            done += b;
        }
    }
    free(img);
    assert_status(mn_dataset_writer_commit(w), MN_OK);
}

static void write_cache(const char *path, size_t n_train, size_t n_test, int chunk, int deflate) {
    write_cache3(path, n_train, n_test, 0, chunk, deflate);
}

/* Runs one pass and checks: every index of idx exactly once, with its own label and
 * pixels; returns the delivery order (caller frees). */
static uint32_t *check_pass(mn_stream *s, mn_split split, const uint32_t *idx, size_t n,
                            size_t split_count, int shuffle, uint64_t seed) {
    const size_t px = mn_shape_count(SHAPE);
    assert_status(mn_stream_begin(s, split, idx, n, shuffle, seed, 0), MN_OK);
    unsigned char *seen = calloc(split_count, 1), *want = calloc(split_count, 1);
    for (size_t i = 0; i < n; i++) want[idx ? idx[i] : i] = 1;
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    size_t got = 0;
    for (;;) {
        mn_batch b;
        assert_status(mn_stream_next(s, &b), MN_OK);
        if (!b.count) break;
        assert_true(b.count <= (size_t)mn_stream_batch(s));
        for (size_t k = 0; k < b.count; k++) {
            uint32_t j = b.index[k];
            assert_true(j < split_count);
            assert_true(want[j]);
            assert_false(seen[j]);
            seen[j] = 1;
            assert_int_equal(b.labels[k], label_of(split, j));
            for (size_t p = 0; p < px; p++)
                if (b.images[k * px + p] != pixel_of(split, j, p))
                    fail_msg("image %u pixel %zu: %d, want %d", j, p, b.images[k * px + p],
                             pixel_of(split, j, p));
            assert_true(got < n);
            order[got++] = j;
        }
    }
    assert_int_equal(got, n);
    /* The pass is over: more calls keep saying so. */
    mn_batch b;
    assert_status(mn_stream_next(s, &b), MN_OK);
    assert_int_equal(b.count, 0);
    free(seen);
    free(want);
    return order;
}

static int is_sorted(const uint32_t *a, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (a[i] < a[i - 1]) return 0;
    return 1;
}

static uint32_t *random_subset(size_t total, size_t n, uint64_t seed) {
    uint32_t *perm = malloc(total * sizeof *perm);
    for (size_t i = 0; i < total; i++) perm[i] = (uint32_t)i;
    mn_rng r;
    mn_rng_seed(&r, seed);
    mn_rng_shuffle(&r, perm, total);
    (void)n;
    return perm; /* the first n entries are the subset */
}

static void epoch_covers_every_index_once(int deflate, int force_streaming, size_t budget) {
    char *dir = mn_test_tmpdir("stream");
    char *path = mn_test_path(dir, "d.h5");
    const size_t n_train = 3001, n_test = 517;
    write_cache(path, n_train, n_test, 64, deflate);
    mn_stream_options o;
    mn_stream_options_default(&o);
    o.batch = 16;
    o.memory_budget = budget;
    o.force_streaming = force_streaming;
    mn_stream *s = NULL;
    assert_status(mn_stream_open(path, &o, &s), MN_OK);
    assert_int_equal(mn_stream_is_resident(s), !force_streaming);
    assert_true(mn_stream_memory_bytes(s) <= budget);
    assert_int_equal(mn_stream_info(s)->count[MN_SPLIT_TRAIN], n_train);
    assert_int_equal(mn_stream_info(s)->count[MN_SPLIT_TEST], n_test);

    uint32_t *perm = random_subset(n_train, 2100, 11);
    /* train subset shuffled, twice with one seed, once with another */
    uint32_t *a = check_pass(s, MN_SPLIT_TRAIN, perm, 2100, n_train, 1, 5);
    uint32_t *b = check_pass(s, MN_SPLIT_TRAIN, perm, 2100, n_train, 1, 5);
    uint32_t *c = check_pass(s, MN_SPLIT_TRAIN, perm, 2100, n_train, 1, 6);
    assert_memory_equal(a, b, 2100 * sizeof *a);
    assert_true(memcmp(a, c, 2100 * sizeof *a) != 0);
    assert_false(is_sorted(a, 2100));
    /* shuffled: the first 200 delivered are not a run of neighbours */
    uint32_t lo = a[0], hi = a[0];
    for (int i = 0; i < 200; i++) {
        lo = a[i] < lo ? a[i] : lo;
        hi = a[i] > hi ? a[i] : hi;
    }
    assert_true(hi - lo > 1000);
    free(a);
    free(b);
    free(c);
    /* validation subset in order, the whole test split, a pass abandoned half way */
    free(check_pass(s, MN_SPLIT_TRAIN, perm + 2100, n_train - 2100, n_train, 0, 0));
    free(check_pass(s, MN_SPLIT_TEST, NULL, n_test, n_test, 0, 0));
    assert_status(mn_stream_begin(s, MN_SPLIT_TRAIN, perm, 2100, 1, 9, 0), MN_OK);
    mn_batch bt;
    assert_status(mn_stream_next(s, &bt), MN_OK);
    free(check_pass(s, MN_SPLIT_TRAIN, NULL, n_train, n_train, 1, 3));
    /* an empty pass */
    free(check_pass(s, MN_SPLIT_TRAIN, perm, 0, n_train, 1, 3));
    /* bad passes */
    uint32_t bad[2] = {5, (uint32_t)n_train};
    assert_status(mn_stream_begin(s, MN_SPLIT_TRAIN, bad, 2, 1, 1, 0), MN_ERR_INVALID_ARG);
    assert_msg_has("outside /train");
    assert_status(mn_stream_next(s, &bt), MN_ERR_INVALID_ARG);
    free(perm);
    mn_stream_close(s);
    free(path);
    free(dir);
}

static void stream_resident(void **state) {
    (void)state;
    epoch_covers_every_index_once(0, 0, MN_STREAM_DEFAULT_BUDGET);
}

static void stream_streaming_small_budget(void **state) {
    (void)state;
    /* 60 bytes/image in 64-image chunks: ~2.3 MiB + blocks of a few hundred images, so a
     * pass spans many blocks */
    epoch_covers_every_index_once(0, 1, MN_STREAM_HDF5_OVERHEAD + 60000);
    epoch_covers_every_index_once(0, 1, MN_STREAM_DEFAULT_BUDGET);
}

static void stream_streaming_deflate(void **state) {
    (void)state;
    epoch_covers_every_index_once(3, 1, MN_STREAM_HDF5_OVERHEAD + 80000);
}

static void stream_budget_too_small(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("stream_budget");
    char *path = mn_test_path(dir, "d.h5");
    write_cache(path, 1000, 0, 256, 0);
    mn_stream_options o;
    mn_stream_options_default(&o);
    o.memory_budget = 1 << 20;
    mn_stream *s = NULL;
    assert_status(mn_stream_open(path, &o, &s), MN_ERR_BUDGET);
    assert_msg_has("d.h5: a memory budget of 1048576 bytes cannot stream this dataset");
    assert_null(s);
    /* the limit counts: 100 images stream in a budget 1000 do not */
    o.memory_budget = MN_STREAM_HDF5_OVERHEAD + 64 * 1024;
    o.limit = 100;
    assert_status(mn_stream_open(path, &o, &s), MN_OK);
    assert_true(mn_stream_is_resident(s));
    assert_int_equal(mn_stream_info(s)->count[MN_SPLIT_TRAIN], 100);
    assert_true(mn_stream_memory_bytes(s) <= o.memory_budget);
    mn_stream_close(s);
    free(path);
    free(dir);
}

/* A label that went bad in the file fails the pass from the reader thread, naming the
 * file and the index; a truncated file fails at open. */
static void stream_bad_files(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("stream_bad");
    char *path = mn_test_path(dir, "d.h5");
    write_cache(path, 1000, 0, 64, 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/train/labels", H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t off = 777, cnt = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    int32_t v = 99;
    assert_true(H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    H5Fclose(f);

    mn_stream_options o;
    mn_stream_options_default(&o);
    o.force_streaming = 1;
    mn_stream *s = NULL;
    assert_status(mn_stream_open(path, &o, &s), MN_OK);
    assert_status(mn_stream_begin(s, MN_SPLIT_TRAIN, NULL, 0, 1, 1, 0), MN_OK);
    mn_status st = MN_OK;
    for (;;) {
        mn_batch b;
        if ((st = mn_stream_next(s, &b)) || !b.count) break;
    }
    assert_int_equal(st, MN_ERR_FORMAT);
    assert_msg_has("d.h5: /train/labels[777] = 99 is outside [0, 7)");
    mn_stream_close(s);
    /* resident: the same error at open */
    o.force_streaming = 0;
    assert_status(mn_stream_open(path, &o, &s), MN_ERR_FORMAT);
    assert_msg_has("/train/labels[777] = 99");

    /* truncated: half the file */
    write_cache(path, 1000, 0, 64, 0);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(path, size / 2), 0);
    assert_true(mn_stream_open(path, &o, &s) != MN_OK);
    assert_msg_has("d.h5");
    assert_null(s);
    free(path);
    free(dir);
}

/* ---- augmentation ---- */

static void augment_flip_and_rotate(void **state) {
    (void)state;
    const mn_shape sh = {6, 6, 2};
    const size_t n = mn_shape_count(sh);
    uint8_t src[72], dst[72], back[72];
    for (size_t i = 0; i < n; i++) src[i] = (uint8_t)(i * 3 + 1);
    /* rotation by 0 is the identity; by 90 degrees a permutation of pixels:
     * dst(y, x) = src(x, W-1-y) for Keras's matrix (counter-clockwise on screen) */
    mn_rotate_image(src, dst, sh, 0.0);
    assert_memory_equal(src, dst, n);
    mn_rotate_image(src, dst, sh, M_PI / 2);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++)
            for (int c = 0; c < 2; c++)
                assert_int_equal(dst[(y * 6 + x) * 2 + c], src[(x * 6 + (5 - y)) * 2 + c]);
    mn_rotate_image(dst, back, sh, -M_PI / 2);
    assert_memory_equal(src, back, n);
    /* 'reflect' fill: a constant image stays constant under any rotation (a constant
     * fill would bring in zeros at the corners) */
    uint8_t flat[72], rot[72];
    memset(flat, 200, sizeof flat);
    mn_rotate_image(flat, rot, sh, 0.7);
    for (size_t i = 0; i < n; i++) assert_int_equal(rot[i], 200);
    /* flips: each seed either copies or mirrors, both occur, and a seed is repeatable */
    int flips = 0, copies = 0;
    for (uint64_t seed = 0; seed < 64; seed++) {
        mn_augment_image(src, dst, sh, MN_AUGMENT_FLIP, 0, seed);
        mn_augment_image(src, back, sh, MN_AUGMENT_FLIP, 0, seed);
        assert_memory_equal(dst, back, n);
        if (!memcmp(dst, src, n)) {
            copies++;
            continue;
        }
        flips++;
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                for (int c = 0; c < 2; c++)
                    assert_int_equal(dst[(y * 6 + x) * 2 + c], src[(y * 6 + 5 - x) * 2 + c]);
    }
    assert_true(flips > 10 && copies > 10);
    /* rotate: repeatable per seed, and angles stay within +-factor turns: with factor
     * 0.01 (3.6 degrees) a smooth ramp barely moves */
    uint8_t ramp[72];
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 6; x++)
            for (int c = 0; c < 2; c++) ramp[(y * 6 + x) * 2 + c] = (uint8_t)(100 + 10 * x);
    for (uint64_t seed = 0; seed < 32; seed++) {
        mn_augment_image(ramp, dst, sh, MN_AUGMENT_ROTATE, 0.01, seed);
        for (size_t i = 0; i < n; i++) assert_true(abs((int)dst[i] - (int)ramp[i]) <= 4);
    }
}

/* Augmented passes: still every index once, labels intact, repeatable per seed. */
static void stream_augmented_pass(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("stream_aug");
    char *path = mn_test_path(dir, "d.h5");
    write_cache(path, 500, 0, 64, 0);
    const size_t px = mn_shape_count(SHAPE);
    for (int force = 0; force < 2; force++) {
        mn_stream_options o;
        mn_stream_options_default(&o);
        o.force_streaming = force;
        o.batch = 7;
        mn_stream *s = NULL;
        assert_status(mn_stream_open(path, &o, &s), MN_OK);
        uint8_t *first = malloc(500 * px), *again = malloc(500 * px);
        for (int rep = 0; rep < 2; rep++) {
            assert_status(mn_stream_begin(s, MN_SPLIT_TRAIN, NULL, 0, 1, 42,
                                          MN_AUGMENT_FLIP | MN_AUGMENT_ROTATE), MN_OK);
            size_t got = 0;
            int changed = 0;
            for (;;) {
                mn_batch b;
                assert_status(mn_stream_next(s, &b), MN_OK);
                if (!b.count) break;
                for (size_t k = 0; k < b.count; k++) {
                    assert_int_equal(b.labels[k], label_of(0, b.index[k]));
                    memcpy((rep ? again : first) + (size_t)b.index[k] * px, b.images + k * px, px);
                    changed += b.images[k * px] != pixel_of(0, b.index[k], 0);
                }
                got += b.count;
            }
            assert_int_equal(got, 500);
            assert_true(changed > 100);
        }
        assert_memory_equal(first, again, 500 * px);
        free(first);
        free(again);
        mn_stream_close(s);
    }
    free(path);
    free(dir);
}

/* ---- training through the stream ---- */

static void make_data(const char *path, size_t n_train, size_t n_test) {
    const mn_shape sh = {8, 8, 1};
    mn_dataset_writer_options o = {sh, 3, NULL, "train test", 32, 0, NULL};
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    mn_rng r;
    mn_rng_seed(&r, 7);
    uint8_t img[64];
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < (s ? n_test : n_train); i++) {
            int32_t cls = (int32_t)mn_rng_below(&r, 3);
            for (int p = 0; p < 64; p++) img[p] = (uint8_t)(40 + 70 * cls + (int)mn_rng_below(&r, 30));
            assert_status(mn_dataset_writer_append(w, (mn_split)s, img, &cls, 1), MN_OK);
        }
    assert_status(mn_dataset_writer_commit(w), MN_OK);
}

static void train_once(const char *path, int force, size_t budget, int augment,
                       mn_train_result *res) {
    mn_backend *be = NULL;
    mn_backend_options bo = {1, 0};
    assert_status(mn_backend_create("cpu", &bo, &be), MN_OK);
    mn_arch arch;
    assert_status(mn_arch_build(&arch, 4, 1, MN_LAYOUT_NANONAS, (mn_shape){8, 8, 1}, 3), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 8;
    mn_net *net = NULL;
    assert_status(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_status(mn_net_init(net, 1), MN_OK);
    mn_stream_options so;
    mn_stream_options_default(&so);
    so.batch = 8;
    so.force_streaming = force;
    so.memory_budget = budget;
    mn_stream *s = NULL;
    assert_status(mn_stream_open(path, &so, &s), MN_OK);
    mn_train_options to;
    mn_train_options_default(&to);
    to.epochs = 3;
    to.adam.lr = 1e-2f;
    to.augment = augment;
    assert_status(mn_train_run_stream(net, s, &to, res), MN_OK);
    mn_stream_close(s);
    mn_net_destroy(net);
    mn_backend_destroy(be);
}

/* An optional /val split: read like the others, and training validates on it. */
static void val_split_validates(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("stream_val");
    char *path = mn_test_path(dir, "d.h5");
    write_cache3(path, 700, 90, 150, 64, 0);
    for (int force = 0; force < 2; force++) {
        mn_stream_options o;
        mn_stream_options_default(&o);
        o.force_streaming = force;
        mn_stream *s = NULL;
        assert_status(mn_stream_open(path, &o, &s), MN_OK);
        assert_int_equal(mn_stream_info(s)->count[MN_SPLIT_VAL], 150);
        free(check_pass(s, MN_SPLIT_VAL, NULL, 150, 150, 1, 2));
        free(check_pass(s, MN_SPLIT_TEST, NULL, 90, 90, 0, 0));
        mn_stream_close(s);
    }
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_VAL], 150);
    int32_t lab[150];
    assert_status(mn_dataset_read(ds, MN_SPLIT_VAL, 0, 150, NULL, lab), MN_OK);
    for (size_t i = 0; i < 150; i++) assert_int_equal(lab[i], label_of(2, i));
    assert_status(mn_dataset_read(ds, MN_SPLIT_VAL, 100, 51, NULL, lab), MN_ERR_INVALID_ARG);
    assert_msg_has("outside /val, which has 150 images");
    mn_dataset_close(ds);
    free(path);
    free(dir);
}

static void training_reads_through_the_stream(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("stream_train");
    char *path = mn_test_path(dir, "d.h5");
    make_data(path, 2000, 150);
    mn_train_result resident, again, streamed, aug;
    train_once(path, 0, MN_STREAM_DEFAULT_BUDGET, 0, &resident);
    train_once(path, 0, MN_STREAM_DEFAULT_BUDGET, 0, &again);
    train_once(path, 1, MN_STREAM_HDF5_OVERHEAD + 100000, 0, &streamed);
    train_once(path, 1, MN_STREAM_HDF5_OVERHEAD + 100000, MN_AUGMENT_FLIP, &aug);
    /* the split is the same whatever the source: 30% of 900 with split seed 11 */
    assert_int_equal(resident.val_count, 600);
    assert_int_equal(streamed.val_count, 600);
    assert_int_equal(resident.test_count, 150);
    assert_int_equal(streamed.test_count, 150);
    assert_true(resident.best_val_acc == again.best_val_acc);
    print_message("val acc: resident %.3f streamed %.3f augmented %.3f; test %.3f\n", resident.best_val_acc, streamed.best_val_acc, aug.best_val_acc, streamed.test_acc);
    assert_true(resident.best_val_acc > 0.9);
    assert_true(streamed.best_val_acc > 0.9);
    assert_true(aug.best_val_acc > 0.8);
    assert_true(streamed.test_acc > 0.9);

    /* with a /val split: all of /train trains, /val validates */
    char *vpath = mn_test_path(dir, "v.h5");
    {
        mn_dataset *ds = NULL;
        assert_status(mn_dataset_open(path, &ds), MN_OK);
        const mn_dataset_info *info = mn_dataset_get_info(ds);
        mn_dataset_writer_options o = {info->shape, 3, NULL, "val test", 32, 0, NULL};
        mn_dataset_writer *w = NULL;
        assert_status(mn_dataset_writer_create(vpath, &o, &w), MN_OK);
        uint8_t *img = malloc(2150 * 64);
        int32_t *lab = malloc(2150 * sizeof *lab);
        assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 0, 2000, img, lab), MN_OK);
        assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 0, 150, img + 2000 * 64, lab + 2000), MN_OK);
        assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 1700), MN_OK);
        assert_status(mn_dataset_writer_append(w, MN_SPLIT_VAL, img + 1700 * 64, lab + 1700, 300), MN_OK);
        assert_status(mn_dataset_writer_append(w, MN_SPLIT_TEST, img + 2000 * 64, lab + 2000, 150), MN_OK);
        assert_status(mn_dataset_writer_commit(w), MN_OK);
        free(img);
        free(lab);
        mn_dataset_close(ds);
    }
    mn_train_result withval;
    train_once(vpath, 1, MN_STREAM_HDF5_OVERHEAD + 100000, 0, &withval);
    assert_int_equal(withval.train_count, 1700);
    assert_int_equal(withval.val_count, 300);
    assert_int_equal(withval.test_count, 150);
    assert_true(withval.best_val_acc > 0.9);
    free(vpath);
    free(path);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stream_resident),
        cmocka_unit_test(stream_streaming_small_budget),
        cmocka_unit_test(stream_streaming_deflate),
        cmocka_unit_test(stream_budget_too_small),
        cmocka_unit_test(stream_bad_files),
        cmocka_unit_test(augment_flip_and_rotate),
        cmocka_unit_test(stream_augmented_pass),
        cmocka_unit_test(val_split_validates),
        cmocka_unit_test(training_reads_through_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
