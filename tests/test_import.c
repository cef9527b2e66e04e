/* Importers beyond IDX: CIFAR-10/100 binary batches and image folders (PNG, JPEG, PGM),
 * resizing, the contact sheet, and every bad-input case. Fixtures are written here (CIFAR
 * records by hand, images with stb_image_write). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "mcunas/dataset.h"
#include "testassert.h"
#include "testutil.h"

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:H5D__write\n"; }

/* snprintf into a path buffer; a path that does not fit fails the test. */
#define PATHF(buf, ...) assert_true(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf)

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* No output and no temporary file. */
static void assert_no_output(const char *out) {
    char tmp[1200];
    PATHF(tmp, "%s.tmp", out);
    assert_false(file_exists(out));
    assert_false(file_exists(tmp));
}

static void mkdirs(const char *a, const char *b, const char *c) {
    char p[1200];
    PATHF(p, "%s", a);
    mkdir(p, 0755);
    if (b) {
        PATHF(p, "%s/%s", a, b);
        mkdir(p, 0755);
    }
    if (b && c) {
        PATHF(p, "%s/%s/%s", a, b, c);
        mkdir(p, 0755);
    }
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* ---- CIFAR ---- */

static uint8_t cifar_px(int file, size_t rec, size_t p) {
    return (uint8_t)(file * 71 + rec * 13 + p * 7 + p / 1024 * 3);
}

/* Records of `label_bytes` labels then 3072 bytes of planes; labels from the record index. */
static void write_cifar(const char *path, int file, size_t n, int label_bytes, int bad_label_at) {
    const size_t rec = (size_t)label_bytes + 3072;
    uint8_t *buf = malloc(n * rec);
    for (size_t r = 0; r < n; r++) {
        uint8_t *q = buf + r * rec;
        if (label_bytes == 1) {
            q[0] = (uint8_t)((r + (size_t)file) % 10);
        } else {
            q[0] = (uint8_t)((r + (size_t)file) % 20);
            q[1] = (uint8_t)((r * 7 + (size_t)file) % 100);
        }
        if ((int)r == bad_label_at) q[label_bytes - 1] = 200;
        for (size_t p = 0; p < 3072; p++) q[label_bytes + p] = cifar_px(file, r, p);
    }
    write_file(path, buf, n * rec);
    free(buf);
}

/* Image i of a split comes from (file, record); checks labels and HWC pixels exactly. */
static void check_cifar_image(const uint8_t *img, int32_t label, int file, size_t rec,
                              int want_label) {
    assert_int_equal(label, want_label);
    for (int p = 0; p < 1024; p++)
        for (int ch = 0; ch < 3; ch++)
            if (img[3 * p + ch] != cifar_px(file, rec, (size_t)ch * 1024 + (size_t)p))
                fail_msg("file %d record %zu pixel %d channel %d", file, rec, p, ch);
}

static void cifar10_round_trip(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("cifar10");
    char *out = mn_test_path(dir, "c.h5");
    const size_t sizes[3] = {37, 20, 11};
    char p[1200];
    for (int f = 0; f < 2; f++) {
        PATHF(p, "%s/data_batch_%d.bin", dir, f + 1);
        write_cifar(p, f, sizes[f], 1, -1);
    }
    PATHF(p, "%s/test_batch.bin", dir);
    write_cifar(p, 2, sizes[2], 1, -1);
    PATHF(p, "%s/batches.meta.txt", dir);
    const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    write_file(p, names, strlen(names));

    mn_import_cifar_options o = {dir, out, 0, 0, NULL, NULL, NULL};
    assert_status(mn_import_cifar(&o), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->classes, 10);
    assert_int_equal(info->shape.h, 32);
    assert_int_equal(info->shape.c, 3);
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 57);
    assert_int_equal(info->count[MN_SPLIT_TEST], 11);
    assert_string_equal(mn_dataset_class_name(ds, 9), "truck");
    uint8_t *img = malloc(57 * 3072);
    int32_t lab[57];
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 0, 57, img, lab), MN_OK);
    for (size_t i = 0; i < 57; i++) {
        int f = i < 37 ? 0 : 1;
        size_t r = i < 37 ? i : i - 37;
        check_cifar_image(img + i * 3072, lab[i], f, r, (int)((r + (size_t)f) % 10));
    }
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 0, 11, img, lab), MN_OK);
    for (size_t r = 0; r < 11; r++) check_cifar_image(img + r * 3072, lab[r], 2, r, (int)((r + 2) % 10));
    mn_dataset_close(ds);

    /* --limit across files */
    o.limit = 40;
    assert_status(mn_import_cifar(&o), MN_OK);
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 40);
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 39, 1, img, lab), MN_OK);
    check_cifar_image(img, lab[0], 1, 2, 3);
    mn_dataset_close(ds);
    remove(out);

    /* CIFAR-100 options on CIFAR-10 */
    o.coarse = 1;
    assert_status(mn_import_cifar(&o), MN_ERR_INVALID_ARG);
    assert_no_output(out);

    /* a truncated batch: named, with the incomplete record; nothing written */
    o.coarse = 0;
    o.limit = 0;
    PATHF(p, "%s/data_batch_2.bin", dir);
    assert_int_equal(truncate(p, 20 * 3073 - 100), 0);
    assert_status(mn_import_cifar(&o), MN_ERR_FORMAT);
    assert_msg_has("data_batch_2.bin: truncated");
    assert_msg_has("record 19 is incomplete");
    assert_no_output(out);
    /* a label outside the classes */
    write_cifar(p, 1, 20, 1, 13);
    assert_status(mn_import_cifar(&o), MN_ERR_FORMAT);
    assert_msg_has("data_batch_2.bin: record 13 has the label 200, outside [0, 10)");
    assert_no_output(out);
    /* an empty or missing folder */
    o.dir = out;
    assert_status(mn_import_cifar(&o), MN_ERR_IO);
    assert_msg_has("c.h5: cannot open");
    char *empty = mn_test_tmpdir("cifar_empty");
    o.dir = empty;
    assert_status(mn_import_cifar(&o), MN_ERR_IO);
    assert_msg_has("no CIFAR batches here");
    free(img);
    free(empty);
    free(out);
    free(dir);
}

static void cifar100_fine_and_coarse(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("cifar100");
    char *out = mn_test_path(dir, "c.h5");
    char p[1200];
    PATHF(p, "%s/train.bin", dir);
    write_cifar(p, 0, 25, 2, -1);
    PATHF(p, "%s/test.bin", dir);
    write_cifar(p, 1, 9, 2, -1);
    for (int coarse = 0; coarse < 2; coarse++) {
        mn_import_cifar_options o = {dir, out, coarse, 0, NULL, NULL, NULL};
        assert_status(mn_import_cifar(&o), MN_OK);
        mn_dataset *ds = NULL;
        assert_status(mn_dataset_open(out, &ds), MN_OK);
        assert_int_equal(mn_dataset_get_info(ds)->classes, coarse ? 20 : 100);
        uint8_t img[25 * 3072];
        int32_t lab[25];
        assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 0, 25, img, lab), MN_OK);
        for (size_t r = 0; r < 25; r++)
            check_cifar_image(img + r * 3072, lab[r], 0, r, coarse ? (int)(r % 20) : (int)((r * 7) % 100));
        assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 0, 9, img, lab), MN_OK);
        for (size_t r = 0; r < 9; r++)
            check_cifar_image(img + r * 3072, lab[r], 1, r, coarse ? (int)((r + 1) % 20) : (int)((r * 7 + 1) % 100));
        mn_dataset_close(ds);
    }
    /* a fine label >= 100 */
    PATHF(p, "%s/train.bin", dir);
    write_cifar(p, 0, 25, 2, 4);
    mn_import_cifar_options o = {dir, out, 0, 0, NULL, NULL, NULL};
    assert_status(mn_import_cifar(&o), MN_ERR_FORMAT);
    assert_msg_has("train.bin: record 4 has fine label 200, outside [0, 100)");
    free(out);
    free(dir);
}

/* ---- folders ---- */

static void fixture_pixels(uint8_t *px, int w, int h, int c, int cls, int i) {
    for (int p = 0; p < w * h * c; p++) px[p] = (uint8_t)(cls * 60 + i * 17 + p * 5 + (p % c) * 40);
}

static void write_pgm(const char *path, const uint8_t *px, int w, int h) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "P5\n%d %d\n255\n", w, h);
    fwrite(px, 1, (size_t)w * (size_t)h, f);
    fclose(f);
}

/* root/<class>/img<i>.<ext> for 3 classes of n images each, 6x5 pixels. */
static void write_folder(const char *root, const char *ext, int channels, int n) {
    static const char *const classes[3] = {"cat", "dog", "person"};
    mkdirs(root, NULL, NULL);
    uint8_t px[6 * 5 * 3];
    char p[1200];
    for (int k = 0; k < 3; k++) {
        mkdirs(root, classes[k], NULL);
        for (int i = 0; i < n; i++) {
            PATHF(p, "%s/%s/img%02d.%s", root, classes[k], i, ext);
            fixture_pixels(px, 6, 5, channels, k, i);
            if (!strcmp(ext, "png")) assert_true(stbi_write_png(p, 6, 5, channels, px, 6 * channels));
            else if (!strcmp(ext, "jpg")) assert_true(stbi_write_jpg(p, 6, 5, channels, px, 95));
            else if (!strcmp(ext, "bmp")) assert_true(stbi_write_bmp(p, 6, 5, channels, px));
            else write_pgm(p, px, 6, 5);
        }
    }
}

/* Every fixture image appears exactly once in the split, with its class; `decoded` tells
 * whether to compare with the fixture's pixels (lossless) or with stb's decoding of the
 * file (JPEG). */
static void check_folder_split(mn_dataset *ds, mn_split split, const char *root, const char *ext,
                               int channels, int n) {
    static const char *const classes[3] = {"cat", "dog", "person"};
    const size_t ib = (size_t)6 * 5 * (size_t)channels;
    const size_t count = mn_dataset_get_info(ds)->count[split];
    assert_int_equal(count, 3 * (size_t)n);
    uint8_t *img = malloc(count * ib);
    int32_t *lab = malloc(count * sizeof *lab);
    int *used = calloc(count, sizeof *used);
    assert_status(mn_dataset_read(ds, split, 0, count, img, lab), MN_OK);
    uint8_t want[6 * 5 * 3];
    char p[1200];
    for (int k = 0; k < 3; k++) {
        assert_string_equal(mn_dataset_class_name(ds, k), classes[k]);
        for (int i = 0; i < n; i++) {
            if (!strcmp(ext, "jpg")) {
                PATHF(p, "%s/%s/img%02d.%s", root, classes[k], i, ext);
                int w, h, c;
                uint8_t *d = stbi_load(p, &w, &h, &c, channels);
                assert_non_null(d);
                memcpy(want, d, ib);
                stbi_image_free(d);
            } else {
                fixture_pixels(want, 6, 5, channels, k, i);
            }
            int hits = 0;
            for (size_t j = 0; j < count; j++)
                if (!memcmp(img + j * ib, want, ib)) {
                    hits++;
                    assert_int_equal(lab[j], k);
                    used[j]++;
                }
            if (hits != 1) fail_msg("%s image %d of class %d found %d times", ext, i, k, hits);
        }
    }
    for (size_t j = 0; j < count; j++) assert_int_equal(used[j], 1);
    free(img);
    free(lab);
    free(used);
}

static void folder_round_trips(void **state) {
    (void)state;
    static const char *const exts[4] = {"png", "jpg", "bmp", "pgm"};
    static const int chans[4] = {3, 3, 3, 1};
    for (int e = 0; e < 4; e++) {
        char *dir = mn_test_tmpdir(exts[e]);
        char *root = mn_test_path(dir, "images");
        char *out = mn_test_path(dir, "f.h5");
        write_folder(root, exts[e], chans[e], 7);
        mn_import_folder_options o;
        memset(&o, 0, sizeof o);
        o.dir = root;
        o.output = out;
        o.seed = 1;
        assert_status(mn_import_folder(&o), MN_OK);
        mn_dataset *ds = NULL;
        assert_status(mn_dataset_open(out, &ds), MN_OK);
        const mn_dataset_info *info = mn_dataset_get_info(ds);
        assert_int_equal(info->classes, 3);
        assert_int_equal(info->shape.h, 5);
        assert_int_equal(info->shape.w, 6);
        assert_int_equal(info->shape.c, chans[e]);
        assert_int_equal(info->count[MN_SPLIT_TEST], 0);
        check_folder_split(ds, MN_SPLIT_TRAIN, root, exts[e], chans[e], 7);
        mn_dataset_close(ds);
        free(root);
        free(out);
        free(dir);
    }
}

static void folder_train_test_layout_and_split(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("vww");
    char *root = mn_test_path(dir, "vww");
    char *out = mn_test_path(dir, "f.h5");
    char sub[1200];
    mkdirs(root, NULL, NULL);
    PATHF(sub, "%s/train", root);
    write_folder(sub, "png", 3, 6);
    PATHF(sub, "%s/test", root);
    write_folder(sub, "png", 3, 2);
    PATHF(sub, "%s/val", root);
    write_folder(sub, "png", 3, 3);
    mn_import_folder_options o;
    memset(&o, 0, sizeof o);
    o.dir = root;
    o.output = out;
    assert_status(mn_import_folder(&o), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    PATHF(sub, "%s/train", root);
    check_folder_split(ds, MN_SPLIT_TRAIN, sub, "png", 3, 6);
    PATHF(sub, "%s/test", root);
    check_folder_split(ds, MN_SPLIT_TEST, sub, "png", 3, 2);
    PATHF(sub, "%s/val", root);
    check_folder_split(ds, MN_SPLIT_VAL, sub, "png", 3, 3);
    mn_dataset_close(ds);
    /* a test fraction with a test/ folder is contradictory */
    o.test_split = 0.2;
    assert_status(mn_import_folder(&o), MN_ERR_INVALID_ARG);

    /* one folder, a seeded test split: 30 images, 0.2 -> 6 test; same seed same split */
    char *flat = mn_test_path(dir, "flat");
    write_folder(flat, "png", 3, 10);
    o.dir = flat;
    o.test_split = 0.2;
    o.seed = 5;
    assert_status(mn_import_folder(&o), MN_OK);
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 24);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TEST], 6);
    uint8_t a[6 * 90], b[6 * 90];
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 0, 6, a, NULL), MN_OK);
    mn_dataset_close(ds);
    assert_status(mn_import_folder(&o), MN_OK);
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    assert_status(mn_dataset_read(ds, MN_SPLIT_TEST, 0, 6, b, NULL), MN_OK);
    assert_memory_equal(a, b, sizeof a);
    mn_dataset_close(ds);
    /* --limit: 10 training images, test split untouched */
    o.limit = 10;
    assert_status(mn_import_folder(&o), MN_OK);
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 10);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TEST], 6);
    mn_dataset_close(ds);
    free(flat);
    free(root);
    free(out);
    free(dir);
}

static void resize_filters(void **state) {
    (void)state;
    /* shrinking averages areas: 4x4 -> 2x2 gives block means, 3x1 -> 2x1 fractional */
    uint8_t src[16], dst[16];
    for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i * 10);
    mn_resize_image(src, 4, 4, 1, dst, 2, 2);
    assert_int_equal(dst[0], (0 + 10 + 40 + 50) / 4);
    assert_int_equal(dst[3], (100 + 110 + 140 + 150) / 4);
    uint8_t row[3] = {0, 90, 180}, two[2];
    mn_resize_image(row, 3, 1, 1, two, 2, 1);
    /* output 0 covers input [0, 1.5): (0 * 1 + 90 * 0.5) / 1.5 = 30 */
    assert_int_equal(two[0], 30);
    assert_int_equal(two[1], 150);
    /* growing is bilinear with aligned centres: 2 -> 4 */
    uint8_t g[2] = {0, 200}, four[4];
    mn_resize_image(g, 2, 1, 1, four, 4, 1);
    assert_int_equal(four[0], 0);
    assert_int_equal(four[1], 50);
    assert_int_equal(four[2], 150);
    assert_int_equal(four[3], 200);
    /* a constant image stays constant either way; channels stay apart */
    uint8_t flat[7 * 9 * 3], out[4 * 13 * 3];
    for (int i = 0; i < 7 * 9; i++) flat[3 * i] = 10, flat[3 * i + 1] = 128, flat[3 * i + 2] = 250;
    mn_resize_image(flat, 7, 9, 3, out, 13, 4);
    for (int i = 0; i < 13 * 4; i++) {
        assert_int_equal(out[3 * i], 10);
        assert_int_equal(out[3 * i + 1], 128);
        assert_int_equal(out[3 * i + 2], 250);
    }
}

static void folder_resize_and_channels(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("folder_resize");
    char *root = mn_test_path(dir, "img");
    char *out = mn_test_path(dir, "f.h5");
    write_folder(root, "png", 3, 3);
    /* a bigger image of another size in class 'dog': only works with a size */
    uint8_t big[12 * 10 * 3];
    memset(big, 77, sizeof big);
    char p[1200];
    PATHF(p, "%s/dog/zbig.png", root);
    assert_true(stbi_write_png(p, 12, 10, 3, big, 36));
    mn_import_folder_options o;
    memset(&o, 0, sizeof o);
    o.dir = root;
    o.output = out;
    assert_status(mn_import_folder(&o), MN_ERR_FORMAT);
    assert_msg_has("but the first image is");
    assert_msg_has("pass a size (--size WxH)");
    assert_no_output(out);
    o.width = 3;
    o.height = 2;
    o.channels = 1;
    assert_status(mn_import_folder(&o), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->shape.h, 2);
    assert_int_equal(info->shape.w, 3);
    assert_int_equal(info->shape.c, 1);
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 10);
    uint8_t img[10 * 6];
    int32_t lab[10];
    assert_status(mn_dataset_read(ds, MN_SPLIT_TRAIN, 0, 10, img, lab), MN_OK);
    int found = 0;
    for (int i = 0; i < 10; i++) {
        int flat = 1;
        for (int j = 0; j < 6; j++) flat &= img[i * 6 + j] == 77;
        if (flat) {
            found++;
            assert_int_equal(lab[i], 1);
        }
    }
    assert_int_equal(found, 1);
    mn_dataset_close(ds);
    free(root);
    free(out);
    free(dir);
}

/* A 16-bit PNM (maxval above 255) is refused, naming the file, or skipped with skip_bad:
 * stb_image 2.27 keeps each sample's low byte, and converting its channels read past its
 * buffer (found by fuzz_image). */
static void folder_16bit_pnm(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("folder_pnm16");
    char *root = mn_test_path(dir, "img");
    char *out = mn_test_path(dir, "p.h5");
    write_folder(root, "pgm", 1, 2);
    char p[1200];
    PATHF(p, "%s/dog/wide.pgm", root);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fprintf(f, "P5\n6 5\n65535\n");
    for (int i = 0; i < 2 * 6 * 5; i++) fputc(i, f);
    fclose(f);
    mn_import_folder_options o;
    memset(&o, 0, sizeof o);
    o.dir = root;
    o.output = out;
    o.channels = 3; /* another channel count than the file's: stb_image's overread */
    assert_status(mn_import_folder(&o), MN_ERR_FORMAT);
    assert_msg_has(p);
    assert_msg_has("16-bit PNM");
    assert_no_output(out);
    size_t skipped = 0;
    o.skip_bad = 1;
    o.skipped = &skipped;
    assert_status(mn_import_folder(&o), MN_OK);
    assert_int_equal(skipped, 1);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->count[MN_SPLIT_TRAIN] + info->count[MN_SPLIT_TEST], 6);
    mn_dataset_close(ds);
    free(root);
    free(out);
    free(dir);
}

static void folder_bad_inputs(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("folder_bad");
    char *root = mn_test_path(dir, "img");
    char *out = mn_test_path(dir, "f.h5");
    mn_import_folder_options o;
    memset(&o, 0, sizeof o);
    o.dir = root;
    o.output = out;
    /* a missing folder */
    assert_status(mn_import_folder(&o), MN_ERR_IO);
    assert_msg_has("img: cannot open");
    /* no class folders */
    mkdirs(root, NULL, NULL);
    assert_status(mn_import_folder(&o), MN_ERR_FORMAT);
    assert_msg_has("no class folders");
    write_folder(root, "png", 3, 4);
    /* an empty class */
    mkdirs(root, "zebra", NULL);
    assert_status(mn_import_folder(&o), MN_ERR_FORMAT);
    assert_msg_has("zebra: class 'zebra' has no images");
    assert_no_output(out);
    char p[1200];
    PATHF(p, "%s/zebra", root);
    rmdir(p);
    /* a corrupt image: stops, names the file, writes nothing; an earlier output survives */
    assert_status(mn_import_folder(&o), MN_OK);
    PATHF(p, "%s/dog/broken.png", root);
    write_file(p, "\x89PNG\r\n\x1a\nnot really", 18);
    assert_status(mn_import_folder(&o), MN_ERR_FORMAT);
    assert_msg_has("dog/broken.png: cannot decode");
    assert_true(file_exists(out));
    remove(out);
    assert_status(mn_import_folder(&o), MN_ERR_FORMAT);
    assert_no_output(out);
    /* a truncated JPEG and an empty file, skipped and counted */
    uint8_t px[6 * 5 * 3];
    fixture_pixels(px, 6, 5, 3, 0, 0);
    PATHF(p, "%s/cat/cut.jpg", root);
    assert_true(stbi_write_jpg(p, 6, 5, 3, px, 90));
    assert_int_equal(truncate(p, 40), 0);
    PATHF(p, "%s/person/empty.bmp", root);
    write_file(p, "", 0);
    size_t skipped = 0;
    o.skip_bad = 1;
    o.skipped = &skipped;
    assert_status(mn_import_folder(&o), MN_OK);
    assert_int_equal(skipped, 3);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 12);
    mn_dataset_close(ds);
    /* bad arguments */
    o.channels = 2;
    assert_status(mn_import_folder(&o), MN_ERR_INVALID_ARG);
    o.channels = 0;
    o.width = 5;
    assert_status(mn_import_folder(&o), MN_ERR_INVALID_ARG);
    free(root);
    free(out);
    free(dir);
}

static void preview_and_counts(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("preview");
    char *root = mn_test_path(dir, "img");
    char *out = mn_test_path(dir, "f.h5");
    char *png = mn_test_path(dir, "sheet.png");
    write_folder(root, "png", 3, 5);
    mn_import_folder_options o;
    memset(&o, 0, sizeof o);
    o.dir = root;
    o.output = out;
    o.test_split = 0.4;
    assert_status(mn_import_folder(&o), MN_OK);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(out, &ds), MN_OK);
    size_t tr[3], te[3];
    assert_status(mn_dataset_class_counts(ds, MN_SPLIT_TRAIN, tr), MN_OK);
    assert_status(mn_dataset_class_counts(ds, MN_SPLIT_TEST, te), MN_OK);
    for (int k = 0; k < 3; k++) assert_int_equal(tr[k] + te[k], 5);
    assert_int_equal(te[0] + te[1] + te[2], 6);
    assert_status(mn_dataset_preview(ds, png, 4, 100), MN_OK);
    mn_dataset_close(ds);
    int w, h, c;
    uint8_t *sheet = stbi_load(png, &w, &h, &c, 3);
    assert_non_null(sheet);
    /* 6x5 images scaled by 8 (to >= 48): 4 columns, 3 rows, 2-pixel gaps */
    assert_int_equal(w, 4 * (48 + 2) + 2);
    assert_int_equal(h, 3 * (40 + 2) + 2);
    stbi_image_free(sheet);
    free(png);
    free(root);
    free(out);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cifar10_round_trip),
        cmocka_unit_test(cifar100_fine_and_coarse),
        cmocka_unit_test(folder_round_trips),
        cmocka_unit_test(folder_train_test_layout_and_split),
        cmocka_unit_test(resize_filters),
        cmocka_unit_test(folder_resize_and_channels),
        cmocka_unit_test(folder_16bit_pnm),
        cmocka_unit_test(folder_bad_inputs),
        cmocka_unit_test(preview_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
