/* The dataset cache: writer, reader, IDX import, and every way a bad file must fail
 * (status and a message naming the file). Fixtures are generated here, raw and gzip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mcunas/dataset.h"
#include "testassert.h"
#include "testutil.h"

/* HDF5 1.10 leaks the chunk buffer of an H5Dwrite that fails in the OS (the failure tests
 * below provoke exactly that). Only allocations made inside H5D__write are exempted from
 * LeakSanitizer; the library never owns memory allocated there. The slow unwinder is
 * needed to see that frame: libhdf5 has no frame pointers. (Both hooks only matter in
 * -DMN_SANITIZE=ON builds.) */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:H5D__write\n"; }
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

/* ---- helpers ---------------------------------------------------------------------- */

/* Fails the test, printing the library's message, unless it contains `needle`. */
/* assert_int_equal on a status, printing the message when it differs. */
static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Entries of `dir` whose name ends in ".tmp". */
static int count_tmp_files(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len >= 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) n++;
    }
    closedir(d);
    return n;
}

/* Removes the (flat) directory made by mn_test_tmpdir. */
static void remove_dir(char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = mn_test_path(dir, e->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

/* The output path does not exist and nothing ends in .tmp: the atomicity promise. */
static void assert_no_output(const char *dir, const char *out) {
    assert_false(file_exists(out));
    assert_int_equal(count_tmp_files(dir), 0);
}

/* Deterministic fixture content. */
static uint8_t pixel_of(size_t image, size_t p) {
    return (uint8_t)(image * 31u + p * 7u + (image >> 3) + (p * p >> 2));
}
static uint8_t label_of(size_t image, int classes) {
    return (uint8_t)((image * 7u + 3u + image / 11u) % (unsigned)classes);
}

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Writes bytes raw or gzip-compressed. */
static void write_bytes(const char *path, int gz, const void *data, size_t len) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
    }
}

typedef struct idx_spec {
    uint32_t magic;     /* 0: the right one for the kind */
    uint32_t n;         /* declared count */
    size_t n_data;      /* items actually written (truncation / trailing data) */
    uint32_t rows, cols;
    int classes;
    size_t first;       /* fixture index of the first item (for a test split) */
    int gz;
} idx_spec;

/* An IDX image file of s->n_data images declared as s->n. */
static void write_idx_images(const char *path, const idx_spec *s) {
    const size_t px = (size_t)s->rows * s->cols;
    size_t len = 16 + s->n_data * px;
    unsigned char *b = malloc(len);
    assert_non_null(b);
    put_be32(b, s->magic ? s->magic : 0x00000803u);
    put_be32(b + 4, s->n);
    put_be32(b + 8, s->rows);
    put_be32(b + 12, s->cols);
    for (size_t i = 0; i < s->n_data; i++)
        for (size_t p = 0; p < px; p++) b[16 + i * px + p] = pixel_of(s->first + i, p);
    write_bytes(path, s->gz, b, len);
    free(b);
}

static void write_idx_labels(const char *path, const idx_spec *s) {
    size_t len = 8 + s->n_data;
    unsigned char *b = malloc(len);
    assert_non_null(b);
    put_be32(b, s->magic ? s->magic : 0x00000801u);
    put_be32(b + 4, s->n);
    for (size_t i = 0; i < s->n_data; i++) b[8 + i] = label_of(s->first + i, s->classes);
    write_bytes(path, s->gz, b, len);
    free(b);
}

/* A good fixture set in dir: train (n_train of rows x cols) and test (n_test). */
typedef struct fixture {
    char *dir, *train_images, *train_labels, *test_images, *test_labels, *out;
    size_t n_train, n_test;
    uint32_t rows, cols;
    int classes;
} fixture;

static void fixture_make(fixture *f, const char *tag, int gz, size_t n_train, size_t n_test) {
    memset(f, 0, sizeof *f);
    f->dir = mn_test_tmpdir(tag);
    assert_non_null(f->dir);
    const char *ext = gz ? ".gz" : "";
    char name[64];
    snprintf(name, sizeof name, "train-images%s", ext);
    f->train_images = mn_test_path(f->dir, name);
    snprintf(name, sizeof name, "train-labels%s", ext);
    f->train_labels = mn_test_path(f->dir, name);
    snprintf(name, sizeof name, "test-images%s", ext);
    f->test_images = mn_test_path(f->dir, name);
    snprintf(name, sizeof name, "test-labels%s", ext);
    f->test_labels = mn_test_path(f->dir, name);
    f->out = mn_test_path(f->dir, "cache.h5");
    f->n_train = n_train;
    f->n_test = n_test;
    f->rows = 6;
    f->cols = 5;
    f->classes = 10;
    idx_spec s = {0, (uint32_t)n_train, n_train, f->rows, f->cols, f->classes, 0, gz};
    write_idx_images(f->train_images, &s);
    write_idx_labels(f->train_labels, &s);
    s = (idx_spec){0, (uint32_t)n_test, n_test, f->rows, f->cols, f->classes, 100000, gz};
    write_idx_images(f->test_images, &s);
    write_idx_labels(f->test_labels, &s);
}

static void fixture_free(fixture *f) {
    free(f->train_images);
    free(f->train_labels);
    free(f->test_images);
    free(f->test_labels);
    free(f->out);
    remove_dir(f->dir);
}

static mn_import_idx_options fixture_options(const fixture *f) {
    mn_import_idx_options o = {
        .train_images = f->train_images,
        .train_labels = f->train_labels,
        .test_images = f->test_images,
        .test_labels = f->test_labels,
        .output = f->out,
    };
    return o;
}

/* Reads a whole split back and compares it with the fixture content. */
static void assert_split_matches(mn_dataset *ds, mn_split split, size_t n, size_t first,
                                 int classes) {
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    const size_t px = mn_shape_count(info->shape);
    assert_int_equal(info->count[split], n);
    uint8_t *img = malloc(n * px);
    int32_t *lab = malloc(n * sizeof *lab);
    assert_non_null(img);
    assert_non_null(lab);
    assert_status(mn_dataset_read(ds, split, 0, n, img, lab), MN_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lab[i], label_of(first + i, classes));
        for (size_t p = 0; p < px; p++)
            if (img[i * px + p] != pixel_of(first + i, p)) {
                print_error("%s image %zu pixel %zu: %u != %u\n", mn_split_name(split), i, p,
                            img[i * px + p], pixel_of(first + i, p));
                fail();
            }
    }
    free(img);
    free(lab);
}

/* ---- writer and reader ------------------------------------------------------------ */

static void split_names(void **state) {
    (void)state;
    assert_string_equal(mn_split_name(MN_SPLIT_TRAIN), "train");
    assert_string_equal(mn_split_name(MN_SPLIT_TEST), "test");
}

/* Writes images of shape 5x4x3 with pixel_of/label_of content in appends of odd sizes. */
static void write_cache(const char *path, int chunk, int deflate, size_t n_train,
                        size_t n_test, const char *const *names) {
    const mn_shape shape = {5, 4, 3};
    const size_t px = mn_shape_count(shape);
    mn_dataset_writer_options o = {shape, 7, names, "unit test", chunk, deflate, NULL};
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    const size_t steps[] = {100, 1, 150, 49, 333};
    size_t done = 0;
    uint8_t *img = malloc(333 * px);
    int32_t lab[333];
    for (int s = 0; s < 2; s++) {
        size_t n = s ? n_test : n_train, first = s ? 100000 : 0;
        done = 0;
        for (int k = 0; done < n; k = (k + 1) % 5) {
            size_t b = steps[k] < n - done ? steps[k] : n - done;
            for (size_t i = 0; i < b; i++) {
                lab[i] = label_of(first + done + i, 7);
                for (size_t p = 0; p < px; p++) img[i * px + p] = pixel_of(first + done + i, p);
            }
            assert_status(mn_dataset_writer_append(w, (mn_split)s, img, lab, b), MN_OK);
            done += b;
        }
    }
    free(img);
    assert_status(mn_dataset_writer_commit(w), MN_OK);
}

/* The writer's output has the layout docs/dataset-format.md documents, seen with raw
 * HDF5 calls as any other tool would see it. */
static void assert_int_attr(hid_t loc, const char *name, int want) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_true(H5Tequal(t, H5T_STD_I32LE) > 0);
    int v = -1;
    assert_true(H5Aread(a, H5T_NATIVE_INT, &v) >= 0);
    assert_int_equal(v, want);
    H5Tclose(t);
    H5Aclose(a);
}

static void assert_rows_layout(hid_t f, const char *obj, hid_t type, int rank,
                               const hsize_t *chunk, size_t n, int deflate) {
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d), dcpl = H5Dget_create_plist(d);
    assert_true(H5Tequal(t, type) > 0);
    hsize_t dims[4], maxdims[4], cdims[4];
    assert_int_equal(H5Sget_simple_extent_dims(sp, dims, maxdims), rank);
    assert_int_equal(dims[0], n);
    assert_true(maxdims[0] == H5S_UNLIMITED);
    assert_int_equal(H5Pget_layout(dcpl), H5D_CHUNKED);
    assert_int_equal(H5Pget_chunk(dcpl, 4, cdims), rank);
    for (int i = 0; i < rank; i++) assert_int_equal(cdims[i], chunk[i]);
    assert_int_equal(H5Pget_nfilters(dcpl), deflate ? 1 : 0);
    if (deflate) {
        unsigned flags, level = 0;
        size_t nvals = 1;
        assert_int_equal(H5Pget_filter2(dcpl, 0, &flags, &nvals, &level, 0, NULL, NULL),
                         H5Z_FILTER_DEFLATE);
        assert_int_equal(level, deflate);
    }
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
}

static void assert_layout(const char *path, int chunk, int deflate) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen(f, "format", H5P_DEFAULT), t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    char fmt[64] = "";
    assert_int_equal(H5Tget_size(t), strlen("mcunas-dataset") + 1);
    assert_true(H5Aread(a, t, fmt) >= 0);
    assert_string_equal(fmt, "mcunas-dataset");
    H5Tclose(t);
    H5Aclose(a);
    assert_int_attr(f, "format_version", MN_DATASET_FORMAT_VERSION);
    assert_int_attr(f, "classes", 7);
    assert_int_attr(f, "height", 5);
    assert_int_attr(f, "width", 4);
    assert_int_attr(f, "channels", 3);
    assert_true(H5Aexists(f, "source") > 0);
    const hsize_t ichunk[4] = {(hsize_t)chunk, 5, 4, 3}, lchunk[1] = {(hsize_t)chunk};
    assert_rows_layout(f, "/train/images", H5T_STD_U8LE, 4, ichunk, 300, deflate);
    assert_rows_layout(f, "/train/labels", H5T_STD_I32LE, 1, lchunk, 300, deflate);
    assert_rows_layout(f, "/test/images", H5T_STD_U8LE, 4, ichunk, 70, deflate);
    assert_rows_layout(f, "/test/labels", H5T_STD_I32LE, 1, lchunk, 70, deflate);
    hid_t d = H5Dopen2(f, "/class_names", H5P_DEFAULT);
    assert_true(d >= 0);
    t = H5Dget_type(d);
    assert_true(H5Tis_variable_str(t) > 0);
    assert_int_equal(H5Tget_cset(t), H5T_CSET_UTF8);
    hid_t sp = H5Dget_space(d);
    assert_int_equal(H5Sget_simple_extent_npoints(sp), 7);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    assert_true(H5Fclose(f) >= 0);
}

static void check_roundtrip(int deflate) {
    char *dir = mn_test_tmpdir("ds-roundtrip");
    char *path = mn_test_path(dir, "rt.h5");
    static const char *const names[7] = {"zero", "one", "two", "three", "four", "five", "six"};
    write_cache(path, 64, deflate, 300, 70, names);
    assert_int_equal(count_tmp_files(dir), 0);
    assert_layout(path, 64, deflate);

    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->shape.h, 5);
    assert_int_equal(info->shape.w, 4);
    assert_int_equal(info->shape.c, 3);
    assert_int_equal(info->classes, 7);
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 300);
    assert_int_equal(info->count[MN_SPLIT_TEST], 70);
    assert_int_equal(info->format_version, MN_DATASET_FORMAT_VERSION);
    assert_string_equal(info->source, "unit test");
    for (int i = 0; i < 7; i++) assert_string_equal(mn_dataset_class_name(ds, i), names[i]);
    assert_string_equal(mn_dataset_class_name(ds, 7), "");
    assert_string_equal(mn_dataset_class_name(ds, -1), "");
    assert_split_matches(ds, MN_SPLIT_TRAIN, 300, 0, 7);
    assert_split_matches(ds, MN_SPLIT_TEST, 70, 100000, 7);

    /* Ranges inside one chunk, across chunk boundaries (64), at the ends. */
    const size_t ranges[][2] = {{0, 1}, {63, 2}, {60, 70}, {128, 128}, {250, 50}, {299, 1},
                                {10, 0}, {300, 0}};
    const size_t px = 60;
    uint8_t img[301 * 60];
    int32_t lab[300];
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        size_t start = ranges[r][0], n = ranges[r][1];
        memset(img, 0xAA, sizeof img);
        assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, start, n, img, lab), MN_OK);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(lab[i], label_of(start + i, 7));
            for (size_t p = 0; p < px; p++)
                assert_int_equal(img[i * px + p], pixel_of(start + i, p));
        }
        /* Nothing written past the range. */
        assert_int_equal(img[n * px], 0xAA);
    }
    /* Either buffer may be NULL. */
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 5, 3, NULL, lab), MN_OK);
    assert_int_equal(lab[2], label_of(7, 7));
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 69, 1, img, NULL), MN_OK);
    assert_int_equal(img[59], pixel_of(100069, 59));

    /* Out of range: the message names the file and the split. */
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 290, 11, img, lab), MN_ERR_INVALID_ARG);
    assert_msg_has(path);
    assert_msg_has("/train");
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 71, 0, img, lab), MN_ERR_INVALID_ARG);
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, SIZE_MAX, 2, img, lab),
                  MN_ERR_INVALID_ARG);
    assert_status(mn_dataset_read(ds, (mn_split)2, 0, 1, img, lab), MN_ERR_INVALID_ARG);
    mn_dataset_close(ds);
    free(path);
    remove_dir(dir);
}

static void writer_roundtrip(void **state) {
    (void)state;
    check_roundtrip(0);
}

static void writer_roundtrip_deflate(void **state) {
    (void)state;
    check_roundtrip(6);
}

static void writer_train_only(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("ds-trainonly");
    char *path = mn_test_path(dir, "t.h5");
    write_cache(path, 0, 0, 600, 0, NULL); /* default chunk (256), no names */
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TEST], 0);
    assert_string_equal(mn_dataset_class_name(ds, 0), "");
    assert_split_matches(ds, MN_SPLIT_TRAIN, 600, 0, 7);
    uint8_t img[60];
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 0, 1, img, NULL), MN_ERR_INVALID_ARG);
    assert_msg_has(path);
    assert_msg_has("test");
    mn_dataset_close(ds);
    free(path);
    remove_dir(dir);
}

static void writer_abort_leaves_nothing(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("ds-abort");
    char *path = mn_test_path(dir, "a.h5");
    mn_dataset_writer_options o = {{2, 2, 1}, 3, NULL, NULL, 4, 0, NULL};
    uint8_t img[8 * 4] = {0};
    int32_t lab[8] = {0, 1, 2, 0, 1, 2, 0, 1};

    /* Abort after appends. */
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 8), MN_OK);
    assert_int_equal(count_tmp_files(dir), 1); /* work in progress lives in .tmp only */
    assert_false(file_exists(path));
    mn_dataset_writer_abort(w);
    assert_no_output(dir, path);

    /* Commit without training images refuses and cleans up. */
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TEST, img, lab, 8), MN_OK);
    assert_status(mn_dataset_writer_commit(w), MN_ERR_INVALID_ARG);
    assert_msg_has(path);
    assert_no_output(dir, path);

    /* A bad label is refused before it is written, naming it; the writer stays usable. */
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 8), MN_OK);
    int32_t bad[3] = {0, 3, 1};
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, bad, 3), MN_ERR_INVALID_ARG);
    assert_msg_has(path);
    assert_msg_has("image 9");
    assert_status(mn_dataset_writer_commit(w), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 8);
    mn_dataset_close(ds);
    assert_int_equal(count_tmp_files(dir), 0);

    /* Commit replaces an existing file whole; an aborted rewrite leaves it untouched. */
    o.classes = 5;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 2), MN_OK);
    mn_dataset_writer_abort(w);
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->classes, 3);
    mn_dataset_close(ds);
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 2), MN_OK);
    assert_status(mn_dataset_writer_commit(w), MN_OK);
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->classes, 5);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 2);
    mn_dataset_close(ds);
    assert_int_equal(count_tmp_files(dir), 0);

    /* Bad options and an unwritable place. */
    mn_dataset_writer_options bad_o = o;
    bad_o.shape.h = 0;
    assert_status(mn_dataset_writer_create(path, &bad_o, &w), MN_ERR_INVALID_ARG);
    assert_null(w);
    bad_o = o;
    bad_o.classes = MN_DATASET_MAX_CLASSES + 1;
    assert_status(mn_dataset_writer_create(path, &bad_o, &w), MN_ERR_INVALID_ARG);
    bad_o = o;
    bad_o.deflate_level = 10;
    assert_status(mn_dataset_writer_create(path, &bad_o, &w), MN_ERR_INVALID_ARG);
    char *nowhere = mn_test_path(dir, "no-such-dir/x.h5");
    assert_status(mn_dataset_writer_create(nowhere, &o, &w), MN_ERR_IO);
    assert_msg_has(nowhere);
    free(nowhere);
    free(path);
    remove_dir(dir);
}

/* Write failures at the OS level, standing in for a full disk: RLIMIT_FSIZE makes writes
 * past `limit` bytes fail with EFBIG. The SIGXFSZ handler lifts the limit again, so exactly
 * the first offending write fails, as when a disk fills and space is then freed. */
static struct rlimit saved_fsize;

static void lift_fsize_limit(int sig) {
    (void)sig;
    setrlimit(RLIMIT_FSIZE, &saved_fsize);
}

static int arm_write_failure(rlim_t limit) {
    if (getrlimit(RLIMIT_FSIZE, &saved_fsize) != 0) return 0;
    if (saved_fsize.rlim_max != RLIM_INFINITY && saved_fsize.rlim_max < limit) return 0;
    signal(SIGXFSZ, lift_fsize_limit);
    struct rlimit small = saved_fsize;
    small.rlim_cur = limit;
    return setrlimit(RLIMIT_FSIZE, &small) == 0;
}

static void disarm_write_failure(void) {
    setrlimit(RLIMIT_FSIZE, &saved_fsize);
    signal(SIGXFSZ, SIG_DFL);
}

/* An append that fails in the OS fails with MN_ERR_IO naming the file, removes the .tmp at
 * once, and leaves the writer refusing everything but abort/commit, which publish nothing.
 * Under the sanitizers this also checks HDF5 is left in a state it can exit from. */
static void writer_append_io_failure(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("ds-efbig");
    char *path = mn_test_path(dir, "big.h5");
    mn_dataset_writer_options o = {{32, 32, 1}, 2, NULL, NULL, 16, 0, NULL};
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    static uint8_t img[1000 * 1024];
    static int32_t lab[1000];
    if (!arm_write_failure(64 * 1024)) {
        mn_dataset_writer_abort(w);
        free(path);
        remove_dir(dir);
        skip();
    }
    mn_status st = MN_OK;
    /* 40 MB, past the writer's chunk cache, so the failure shows in an append. */
    for (int k = 0; k < 40 && st == MN_OK; k++)
        st = mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 1000);
    disarm_write_failure();
    assert_status(st, MN_ERR_IO);
    assert_msg_has(path);
    assert_int_equal(count_tmp_files(dir), 0); /* gone at the failure, before abort */
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 1), MN_ERR_INVALID_ARG);
    assert_status(mn_dataset_writer_commit(w), MN_ERR_INVALID_ARG); /* refuses, frees */
    assert_no_output(dir, path);
    free(path);
    remove_dir(dir);
}

/* Appends that all fit in the chunk cache, then a commit whose flush fails. */
static void writer_commit_io_failure(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("ds-efbig-commit");
    char *path = mn_test_path(dir, "big.h5");
    char *tmp = mn_test_path(dir, "big.h5.tmp");
    mn_dataset_writer_options o = {{32, 32, 1}, 2, NULL, NULL, 16, 0, NULL};
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    static uint8_t img[100 * 1024];
    static int32_t lab[100];
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 100), MN_OK);
    struct stat sb;
    assert_int_equal(stat(tmp, &sb), 0);
    if (!arm_write_failure((rlim_t)sb.st_size + 1)) {
        mn_dataset_writer_abort(w);
        free(tmp);
        free(path);
        remove_dir(dir);
        skip();
    }
    mn_status st = mn_dataset_writer_commit(w);
    disarm_write_failure();
    assert_status(st, MN_ERR_IO);
    assert_msg_has(path);
    assert_no_output(dir, path);
    free(tmp);
    free(path);
    remove_dir(dir);
}

/* The disk fills and stays full: the writer's descriptor is pointed at /dev/full, where
 * every write fails with ENOSPC. The append fails with MN_ERR_IO, nothing is left, and
 * (checked by the process exiting cleanly, under the sanitizers too) HDF5 is left in a
 * state it can shut down from. */
static int fd_of(const char *path) {
    char *real = realpath(path, NULL);
    assert_non_null(real);
    int found = -1;
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        free(real);
        return -1;
    }
    for (struct dirent *e; (e = readdir(d)) && found < 0;) {
        char link[300], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (strcmp(target, real) == 0) found = atoi(e->d_name);
    }
    closedir(d);
    free(real);
    return found;
}

static void writer_disk_stays_full(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("ds-full");
    char *path = mn_test_path(dir, "full.h5");
    char *tmp = mn_test_path(dir, "full.h5.tmp");
    mn_dataset_writer_options o = {{32, 32, 1}, 2, NULL, NULL, 16, 0, NULL};
    mn_dataset_writer *w = NULL;
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    static uint8_t img[1000 * 1024];
    static int32_t lab[1000];
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 1000), MN_OK);
    int fd = fd_of(tmp), full = open("/dev/full", O_WRONLY);
    if (fd < 0 || full < 0) {
        if (full >= 0) close(full);
        mn_dataset_writer_abort(w);
        free(tmp);
        free(path);
        remove_dir(dir);
        skip();
    }
    assert_true(dup2(full, fd) == fd);
    close(full);
    mn_status st = MN_OK;
    for (int k = 0; k < 40 && st == MN_OK; k++)
        st = mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 1000);
    assert_status(st, MN_ERR_IO);
    assert_msg_has(path);
    assert_msg_has("No space left on device");
    mn_dataset_writer_abort(w);
    assert_no_output(dir, path);

    /* The same at commit: everything fits in the chunk cache, the flush meets a full disk. */
    assert_status(mn_dataset_writer_create(path, &o, &w), MN_OK);
    assert_status(mn_dataset_writer_append(w, MN_SPLIT_TRAIN, img, lab, 100), MN_OK);
    fd = fd_of(tmp);
    full = open("/dev/full", O_WRONLY);
    assert_true(fd >= 0 && full >= 0);
    assert_true(dup2(full, fd) == fd);
    close(full);
    assert_status(mn_dataset_writer_commit(w), MN_ERR_IO);
    assert_msg_has(path);
    assert_no_output(dir, path);
    free(tmp);
    free(path);
    remove_dir(dir);
}

/* ---- IDX import ------------------------------------------------------------------- */

typedef struct progress_log {
    size_t calls, train_done, train_total, test_done, test_total;
    int backwards;
} progress_log;

static void on_progress(void *user, const char *what, size_t done, size_t total) {
    progress_log *p = user;
    p->calls++;
    size_t *d = strstr(what, "train") ? &p->train_done : &p->test_done;
    if (done < *d) p->backwards = 1;
    *d = done;
    *(strstr(what, "train") ? &p->train_total : &p->test_total) = total;
}

static void check_import(int gz) {
    fixture f;
    /* 9000 > 2 blocks of 4096 images, and not a multiple of the 256-image chunk. */
    fixture_make(&f, gz ? "ds-import-gz" : "ds-import-raw", gz, 9000, 1234);
    mn_import_idx_options o = fixture_options(&f);
    progress_log log = {0};
    o.progress = on_progress;
    o.progress_user = &log;
    assert_status(mn_import_idx(&o), MN_OK);
    assert_int_equal(count_tmp_files(f.dir), 0);
    assert_true(log.calls >= 5);
    assert_false(log.backwards);
    assert_int_equal(log.train_done, 9000);
    assert_int_equal(log.train_total, 9000);
    assert_int_equal(log.test_done, 1234);
    assert_int_equal(log.test_total, 1234);

    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->shape.h, 6);
    assert_int_equal(info->shape.w, 5);
    assert_int_equal(info->shape.c, 1);
    assert_int_equal(info->classes, 10);
    assert_non_null(strstr(info->source, "train-images"));
    assert_split_matches(ds, MN_SPLIT_TRAIN, 9000, 0, 10);
    assert_split_matches(ds, MN_SPLIT_TEST, 1234, 100000, 10);
    mn_dataset_close(ds);
    fixture_free(&f);
}

static void import_raw(void **state) {
    (void)state;
    check_import(0);
}

static void import_gzip(void **state) {
    (void)state;
    check_import(1);
}

static void import_limit_and_names(void **state) {
    (void)state;
    fixture f;
    fixture_make(&f, "ds-limit", 1, 2000, 300);
    mn_import_idx_options o = fixture_options(&f);
    static const char *const names[10] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    o.limit = 777;
    o.class_names = names;
    o.n_class_names = 10;
    assert_status(mn_import_idx(&o), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    assert_split_matches(ds, MN_SPLIT_TRAIN, 777, 0, 10); /* the first 777 */
    assert_split_matches(ds, MN_SPLIT_TEST, 300, 100000, 10); /* test whole */
    assert_string_equal(mn_dataset_class_name(ds, 9), "j");
    assert_non_null(strstr(mn_dataset_get_info(ds)->source, "first 777"));
    mn_dataset_close(ds);

    /* A limit past the end imports everything; no test files is fine. */
    o.limit = 1000000;
    o.test_images = o.test_labels = NULL;
    o.class_names = NULL;
    o.n_class_names = 0;
    assert_status(mn_import_idx(&o), MN_OK);
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 2000);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TEST], 0);
    mn_dataset_close(ds);

    /* Fewer class names than the labels need: the label file and index are named. */
    remove(f.out);
    o = fixture_options(&f);
    o.class_names = names;
    o.n_class_names = 4;
    assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
    assert_msg_has(f.train_labels);
    assert_msg_has("label 2 is 7"); /* label_of: 3, 0, 7, ...: index 2 is the first >= 4 */
    assert_no_output(f.dir, f.out);
    fixture_free(&f);
}

/* Each broken input fails with the expected status, names the file, leaves no output. */
static void import_bad_inputs(void **state) {
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        fixture f;
        fixture_make(&f, "ds-bad", gz, 500, 100);
        mn_import_idx_options o = fixture_options(&f);
        char *bad = mn_test_path(f.dir, gz ? "bad.gz" : "bad");
        idx_spec s = {0, 500, 500, 6, 5, 10, 0, gz};

        /* Wrong magic: a label file given as images. */
        o.train_images = f.train_labels;
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(f.train_labels);
        assert_msg_has("magic");
        assert_no_output(f.dir, f.out);
        o = fixture_options(&f);

        /* Corrupted magic. */
        s.magic = 0x00000C03u;
        write_idx_images(bad, &s);
        o.train_images = bad;
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has("0x00000c03");
        assert_no_output(f.dir, f.out);
        s.magic = 0;

        /* Truncated image data: the header says 500, the file holds 321 and a bit. */
        s.n_data = 321;
        write_idx_images(bad, &s);
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has("truncated");
        assert_msg_has("500 images of 6x5");
        assert_msg_has("after 321");
        assert_no_output(f.dir, f.out);
        s.n_data = 500;

        /* Truncated header. */
        write_bytes(bad, gz, "\0\0\x08\x03\0\0", 6);
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has("header");
        assert_no_output(f.dir, f.out);

        /* Trailing data past the declared images. */
        s.n = 499;
        write_idx_images(bad, &s);
        o.train_labels = mn_test_path(f.dir, "labels499");
        idx_spec ls = s;
        ls.n_data = 499;
        write_idx_labels(o.train_labels, &ls);
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has("after the 499 images");
        assert_no_output(f.dir, f.out);
        free((char *)o.train_labels);
        o.train_labels = f.train_labels;
        s.n = 500;

        /* Image/label count mismatch: both files named. */
        s.n = s.n_data = 499;
        write_idx_images(bad, &s);
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has(f.train_labels);
        assert_msg_has("499 images");
        assert_msg_has("500 labels");
        assert_no_output(f.dir, f.out);
        s.n = s.n_data = 500;
        o = fixture_options(&f);

        /* Truncated label file. */
        s.n_data = 200;
        write_idx_labels(bad, &s);
        o.train_labels = bad;
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has("500 labels");
        assert_no_output(f.dir, f.out);
        s.n_data = 500;
        o = fixture_options(&f);

        /* Test images of another size than train. */
        s.n = s.n_data = 100;
        s.rows = 7;
        write_idx_images(bad, &s);
        o.test_images = bad;
        assert_status(mn_import_idx(&o), MN_ERR_FORMAT);
        assert_msg_has(bad);
        assert_msg_has("7x5");
        assert_no_output(f.dir, f.out);
        s.rows = 6;
        s.n = s.n_data = 500;
        o = fixture_options(&f);

        /* A missing file. */
        char *missing = mn_test_path(f.dir, "no-such-file.gz");
        o.test_labels = missing;
        assert_status(mn_import_idx(&o), MN_ERR_IO);
        assert_msg_has(missing);
        assert_no_output(f.dir, f.out);
        free(missing);
        o = fixture_options(&f);

        /* Test images without test labels. */
        o.test_labels = NULL;
        assert_status(mn_import_idx(&o), MN_ERR_INVALID_ARG);
        assert_no_output(f.dir, f.out);
        o = fixture_options(&f);

        if (gz) {
            /* A gzip stream cut short, and one with damaged compressed bytes. */
            FILE *in = fopen(f.train_images, "rb");
            assert_non_null(in);
            unsigned char buf[1 << 16];
            size_t len = fread(buf, 1, sizeof buf, in);
            fclose(in);
            assert_true(len > 200 && len < sizeof buf);
            write_bytes(bad, 0, buf, len / 2);
            o.train_images = bad;
            mn_status st = mn_import_idx(&o);
            assert_true(st == MN_ERR_FORMAT);
            assert_msg_has(bad);
            assert_no_output(f.dir, f.out);
            for (size_t i = len / 3; i < len / 3 + 16; i++) buf[i] ^= 0x5A;
            write_bytes(bad, 0, buf, len);
            st = mn_import_idx(&o);
            assert_true(st == MN_ERR_FORMAT);
            assert_msg_has(bad);
            assert_no_output(f.dir, f.out);
            o = fixture_options(&f);
        }

        /* A failing import leaves an earlier good output in place. */
        assert_status(mn_import_idx(&o), MN_OK);
        o.train_images = bad; /* still broken */
        assert_true(mn_import_idx(&o) != MN_OK);
        assert_int_equal(count_tmp_files(f.dir), 0);
        mn_dataset *ds = NULL;
        assert_status(mn_dataset_open(f.out, &ds), MN_OK);
        assert_split_matches(ds, MN_SPLIT_TRAIN, 500, 0, 10);
        mn_dataset_close(ds);

        free(bad);
        fixture_free(&f);
    }
}

/* ---- HDF5 files written with raw calls, as another tool would -------------------- */

typedef struct raw_spec {
    const char *format;      /* NULL: no format attribute */
    int version;
    int classes;
    int h, w, c;             /* attributes */
    int img_rank;            /* 4, or 3 for the wrong-rank case */
    hid_t img_type, lab_type;
    hsize_t n_img, n_lab;
    hsize_t img_dims[3];     /* trailing dims actually stored */
    int bad_label_at;        /* -1: none; else that label is `classes` */
    int no_train;
} raw_spec;

static raw_spec raw_default(void) {
    raw_spec s = {"mcunas-dataset", 1, 4, 3, 2, 1, 4, H5T_STD_U8LE, H5T_STD_I64LE, 10, 10,
                  {3, 2, 1}, -1, 0};
    return s;
}

static void raw_attr_int(hid_t loc, const char *name, int v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
}

/* Contiguous, fixed-size datasets and a variable-length UTF-8 'format' (what h5py writes):
 * the reader must not depend on how our writer lays things out. */
static void write_raw(const char *path, const raw_spec *s) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    if (s->format) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(H5Awrite(a, t, &s->format) >= 0);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
    }
    raw_attr_int(f, "format_version", s->version);
    raw_attr_int(f, "classes", s->classes);
    raw_attr_int(f, "height", s->h);
    raw_attr_int(f, "width", s->w);
    raw_attr_int(f, "channels", s->c);
    if (!s->no_train) {
        hid_t g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t dims[4] = {s->n_img, s->img_dims[0], s->img_dims[1], s->img_dims[2]};
        size_t px = (size_t)(s->img_dims[0] * s->img_dims[1] * s->img_dims[2]);
        double *pix = malloc(s->n_img * px * sizeof *pix);
        for (size_t i = 0; i < s->n_img * px; i++) pix[i] = (double)pixel_of(i / px, i % px);
        hid_t sp = H5Screate_simple(s->img_rank, dims, NULL);
        hid_t d = H5Dcreate2(g, "images", s->img_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0);
        assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, pix) >= 0);
        H5Dclose(d);
        H5Sclose(sp);
        free(pix);
        double lab[64];
        for (hsize_t i = 0; i < s->n_lab; i++)
            lab[i] = (int)i == s->bad_label_at ? s->classes
                                               : label_of(i, s->classes > 0 ? s->classes : 1);
        sp = H5Screate_simple(1, &s->n_lab, NULL);
        d = H5Dcreate2(g, "labels", s->lab_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0);
        assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab) >= 0);
        H5Dclose(d);
        H5Sclose(sp);
        H5Gclose(g);
    }
    assert_true(H5Fclose(f) >= 0);
}

/* Opening `s` fails with `want`, naming the file and `needle`. */
static void expect_open_fails(const char *path, const raw_spec *s, mn_status want,
                              const char *needle) {
    write_raw(path, s);
    mn_dataset *ds = (mn_dataset *)1;
    assert_status(mn_dataset_open(path, &ds), want);
    assert_null(ds);
    assert_msg_has(path);
    assert_msg_has(needle);
}

static void reader_rejects_bad_files(void **state) {
    (void)state;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char *dir = mn_test_tmpdir("ds-badh5");
    char *path = mn_test_path(dir, "x.h5");
    mn_dataset *ds = NULL;

    /* The well-formed raw file reads (int64 labels, contiguous layout, vlen 'format'). */
    raw_spec s = raw_default();
    write_raw(path, &s);
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_split_matches(ds, MN_SPLIT_TRAIN, 10, 0, 4);
    mn_dataset_close(ds);

    /* label >= classes: open succeeds (labels are checked as read); reading names it. */
    s.bad_label_at = 5;
    write_raw(path, &s);
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    uint8_t img[10 * 6];
    int32_t lab[10];
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 0, 5, img, lab), MN_OK);
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 2, 8, img, lab), MN_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("/train/labels[5] = 4");
    mn_dataset_close(ds);
    s = raw_default();

    s.img_type = H5T_IEEE_F32LE;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "/train/images has type float32, expected uint8");
    s.img_type = H5T_STD_I8LE;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "/train/images has type int8");
    s = raw_default();
    s.lab_type = H5T_IEEE_F64LE;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "/train/labels has type float64");
    s = raw_default();
    s.img_rank = 3;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "/train/images has rank 3, expected 4");
    s = raw_default();
    s.n_lab = 9;
    expect_open_fails(path, &s, MN_ERR_FORMAT,
                      "/train/labels has 9 entries but /train/images has 10");
    s = raw_default();
    s.img_dims[0] = 2;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "/train/images has shape [10,2,2,1]");
    s = raw_default();
    s.version = MN_DATASET_FORMAT_VERSION + 1;
    expect_open_fails(path, &s, MN_ERR_UNSUPPORTED, "format_version 2 is newer");
    assert_msg_has("version 1");
    s.version = 0;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "format_version");
    s = raw_default();
    s.format = "something-else";
    expect_open_fails(path, &s, MN_ERR_FORMAT, "something-else");
    s.format = NULL;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "not an mcunas dataset");
    s = raw_default();
    s.classes = 0;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "classes");
    s = raw_default();
    s.no_train = 1;
    expect_open_fails(path, &s, MN_ERR_FORMAT, "missing group /train");

    /* Not HDF5 at all, missing, a directory. */
    write_bytes(path, 0, "hello, world\n", 13);
    assert_status(mn_dataset_open(path, &ds), MN_ERR_FORMAT);
    assert_msg_has(path);
    assert_msg_has("not an HDF5 file");
    char *missing = mn_test_path(dir, "missing.h5");
    assert_status(mn_dataset_open(missing, &ds), MN_ERR_IO);
    assert_msg_has(missing);
    free(missing);
    assert_status(mn_dataset_open(dir, &ds), MN_ERR_IO);
    assert_msg_has(dir);
    free(path);
    remove_dir(dir);
}

/* A chunk dimension of 0. In the layout our writer uses, HDF5 refuses it while decoding; in
 * the one fuzz_dataset found (tests/fuzz/regressions/dataset/), HDF5 1.10 divides by it while
 * opening /train/labels (SIGFPE in H5D__chunk_set_info). Both opens fail with a message
 * naming the file and the dataset instead of ending the process, and a good file still opens
 * after them. The layout message stores the chunk's dimensions and then the element size as
 * 32-bit little-endian words: {37, 5, 4, 3, 1} for the images written here. */
static void reader_survives_zero_chunk_dimensions(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("ds-chunk0");
    char *path = mn_test_path(dir, "c.h5");
    write_cache(path, 37, 0, 50, 10, NULL);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    const long size = ftell(f);
    unsigned char *bytes = malloc((size_t)size);
    rewind(f);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    const unsigned char dims[20] = {37, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0};
    int patched = 0;
    for (long i = 0; i + 20 <= size; i++)
        if (!memcmp(bytes + i, dims, sizeof dims)) bytes[i] = 0, patched++;
    assert_int_equal(patched, 2); /* train and test images */
    rewind(f);
    assert_int_equal(fwrite(bytes, 1, (size_t)size, f), (size_t)size);
    assert_int_equal(fclose(f), 0);
    free(bytes);
    mn_dataset *ds = (mn_dataset *)1;
    assert_status(mn_dataset_open(path, &ds), MN_ERR_FORMAT);
    assert_null(ds);
    assert_msg_has(path);
    assert_msg_has("/train/images");
    assert_msg_has("chunk dimension must be positive");
    /* twice each: the handler stays in place and a fault leaves SIGFPE unblocked */
    const char *fuzzed = MN_TEST_SOURCE_DIR "/fuzz/regressions/dataset/layout-divides-by-zero.h5";
    for (int k = 0; k < 2; k++) {
        assert_status(mn_dataset_open(fuzzed, &ds), MN_ERR_FORMAT);
        assert_null(ds);
        assert_msg_has(fuzzed);
        assert_msg_has("/train/labels");
        assert_msg_has("corrupt storage layout");
    }
    write_cache(path, 37, 0, 50, 10, NULL);
    assert_status(mn_dataset_open(path, &ds), MN_OK);
    assert_split_matches(ds, MN_SPLIT_TRAIN, 50, 0, 7);
    mn_dataset_close(ds);
    free(path);
    remove_dir(dir);
}

/* ---- the real thing --------------------------------------------------------------- */

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static void import_fashion_mnist(void **state) {
    (void)state;
    const char *files[4] = {FMNIST "train-images-idx3-ubyte.gz",
                            FMNIST "train-labels-idx1-ubyte.gz",
                            FMNIST "t10k-images-idx3-ubyte.gz",
                            FMNIST "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++)
        if (!file_exists(files[i])) {
            print_message("skipping: %s is absent\n", files[i]);
            skip();
        }
    char *dir = mn_test_tmpdir("ds-fmnist");
    char *out = mn_test_path(dir, "fmnist.h5");
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                          "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};
    mn_import_idx_options o = {files[0], files[1], files[2], files[3], out, 1000, names, 10,
                               NULL, NULL, NULL};
    assert_status(mn_import_idx(&o), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->shape.h, 28);
    assert_int_equal(info->shape.w, 28);
    assert_int_equal(info->shape.c, 1);
    assert_int_equal(info->classes, 10);
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 1000);
    assert_int_equal(info->count[MN_SPLIT_TEST], 10000);
    assert_string_equal(mn_dataset_class_name(ds, 9), "Ankle boot");

    /* Compare with the gzip files decoded independently here. */
    uint8_t *img = malloc(1000 * 784), *ref = malloc(1000 * 784 + 16);
    int32_t lab[1000];
    unsigned char lref[1000 + 8];
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 0, 1000, img, lab), MN_OK);
    gzFile g = gzopen(files[0], "rb");
    assert_int_equal(gzread(g, ref, 1000 * 784 + 16), 1000 * 784 + 16);
    gzclose(g);
    g = gzopen(files[1], "rb");
    assert_int_equal(gzread(g, lref, 1008), 1008);
    gzclose(g);
    assert_memory_equal(img, ref + 16, 1000 * 784);
    int counts[10] = {0};
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(lab[i], lref[8 + i]);
        counts[lab[i]]++;
    }
    assert_int_equal(lab[0], 9); /* the first training image is an ankle boot */
    for (int c = 0; c < 10; c++) assert_true(counts[c] > 50); /* roughly balanced */
    /* The last test image reads too. */
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 9999, 1, img, lab), MN_OK);
    free(img);
    free(ref);
    mn_dataset_close(ds);
    remove(out);
    free(out);
    remove_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_names),
        cmocka_unit_test(writer_roundtrip),
        cmocka_unit_test(writer_roundtrip_deflate),
        cmocka_unit_test(writer_train_only),
        cmocka_unit_test(writer_abort_leaves_nothing),
        cmocka_unit_test(writer_append_io_failure),
        cmocka_unit_test(writer_commit_io_failure),
        cmocka_unit_test(writer_disk_stays_full),
        cmocka_unit_test(import_raw),
        cmocka_unit_test(import_gzip),
        cmocka_unit_test(import_limit_and_names),
        cmocka_unit_test(import_bad_inputs),
        cmocka_unit_test(reader_rejects_bad_files),
        cmocka_unit_test(reader_survives_zero_chunk_dimensions),
        cmocka_unit_test(import_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
