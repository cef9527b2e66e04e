/* Visual Wake Words from COCO: a generated COCO-format fixture (two annotation files, tiny
 * PNG/JPEG images written with stb_image_write, a minival id list) -> the expected
 * person / no-person label of every image and the counts per split; and the bad inputs,
 * whose messages must name the file and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <stb/stb_image_write.h>

#include "mcunas/dataset.h"
#include "testassert.h"
#include "testutil.h"

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:H5D__write\n"; }

#define PATHF(buf, ...) assert_true(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf)

/* Every fixture image is 40 x 25 = 1000 pixels, so the 0.5% threshold is an area of 5. */
#define IMG_W 40
#define IMG_H 25
#define N_IMAGES 10

/* Image id i is filled with grey 20 i, so a decoded image tells which id it was. */
static const int expect_person[N_IMAGES + 1] = {
    -1,
    1, /* 1: a person of area 50 */
    0, /* 2: a person of area 4.9, under 0.5% */
    0, /* 3: a person of area exactly 5: not more than 0.5% */
    0, /* 4: no annotations */
    1, /* 5: a crowd annotation of persons, area 100: counts (the build scripts ignore iscrowd) */
    0, /* 6: a dog (category 18) of area 500 */
    1, /* 7: persons of area 2 and 6: one is enough */
    1, /* 8 (minival): a person of area 40 */
    0, /* 9 (minival): no annotations */
    0, /* 10 (minival): a person of area 1 */
};

typedef struct fixture {
    char *dir, *ann_a, *ann_b, *img_a, *img_b, *minival, *out;
} fixture;

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void write_image(const char *dir, int id) {
    uint8_t px[IMG_W * IMG_H * 3];
    memset(px, 20 * id, sizeof px);
    char p[1200];
    /* JPEG for one image: a flat grey survives JPEG within a level or two */
    if (id == 7) {
        PATHF(p, "%s/COCO_%012d.jpg", dir, id);
        assert_true(stbi_write_jpg(p, IMG_W, IMG_H, 3, px, 95));
    } else {
        PATHF(p, "%s/COCO_%012d.png", dir, id);
        assert_true(stbi_write_png(p, IMG_W, IMG_H, 3, px, IMG_W * 3));
    }
}

/* An "images" element as COCO writes it. */
static void image_json(char *buf, size_t size, int id) {
    snprintf(buf, size,
             "{\"license\": 3, \"file_name\": \"COCO_%012d.%s\", \"coco_url\": \"http://x/y\","
             " \"height\": %d, \"width\": %d, \"date_captured\": \"2013-11-14 11:18:45\", \"id\": %d}",
             id, id == 7 ? "jpg" : "png", IMG_H, IMG_W, id);
}

static void fixture_make(fixture *f, const char *tag) {
    f->dir = mn_test_tmpdir(tag);
    f->ann_a = mn_test_path(f->dir, "instances_train2014.json");
    f->ann_b = mn_test_path(f->dir, "instances_val2014.json");
    f->img_a = mn_test_path(f->dir, "train2014");
    f->img_b = mn_test_path(f->dir, "val2014");
    f->minival = mn_test_path(f->dir, "mscoco_minival_ids.txt");
    f->out = mn_test_path(f->dir, "vww.h5");
    assert_int_equal(mkdir(f->img_a, 0755), 0);
    assert_int_equal(mkdir(f->img_b, 0755), 0);
    for (int id = 1; id <= N_IMAGES; id++) write_image(id <= 6 ? f->img_a : f->img_b, id);

    /* File A in COCO's order (info, images, licenses, annotations, categories), with the
     * segmentation polygons and boxes a real file has. */
    char im[N_IMAGES + 1][400];
    for (int id = 1; id <= N_IMAGES; id++) image_json(im[id], sizeof im[id], id);
    char *a = malloc(1 << 16);
    assert_non_null(a);
    snprintf(a, 1 << 16,
             "{\"info\": {\"description\": \"a {tricky} \\\"string\\\" [\", \"year\": 2014},\n"
             " \"images\": [%s, %s, %s,\n %s, %s, %s],\n"
             " \"licenses\": [{\"url\": \"http://x\", \"id\": 1, \"name\": \"by\"}],\n"
             " \"type\": \"instances\", \"version\": 1.0, \"flag\": true, \"none\": null,\n"
             " \"annotations\": [\n"
             "  {\"segmentation\": [[1.0, 2.0, 3.5, 4.0, 5.0, 6.0]], \"area\": 50.0, \"iscrowd\": 0,"
             " \"image_id\": 1, \"bbox\": [1, 2, 10, 10], \"category_id\": 1, \"id\": 100},\n"
             "  {\"segmentation\": [[1, 2, 3, 4]], \"area\": 4.9, \"iscrowd\": 0, \"image_id\": 2,"
             " \"bbox\": [1, 2, 3, 4], \"category_id\": 1, \"id\": 101},\n"
             "  {\"segmentation\": [[1, 2, 3, 4]], \"area\": 5, \"iscrowd\": 0, \"image_id\": 3,"
             " \"bbox\": [1, 2, 3, 4], \"category_id\": 1, \"id\": 102},\n"
             "  {\"segmentation\": {\"counts\": [5, 10, 85], \"size\": [25, 40]}, \"area\": 100,"
             " \"iscrowd\": 1, \"image_id\": 5, \"bbox\": [0, 0, 20, 10], \"category_id\": 1, \"id\": 103},\n"
             "  {\"segmentation\": [[1, 2, 3, 4]], \"area\": 500.0, \"iscrowd\": 0, \"image_id\": 6,"
             " \"bbox\": [0, 0, 30, 20], \"category_id\": 18, \"id\": 104}\n"
             " ],\n"
             " \"categories\": [{\"supercategory\": \"person\", \"id\": 1, \"name\": \"person\"}]}\n",
             im[1], im[2], im[3], im[4], im[5], im[6]);
    write_text(f->ann_a, a);
    /* File B: annotations before images, no whitespace. */
    snprintf(a, 1 << 16,
             "{\"annotations\":[{\"area\":2,\"iscrowd\":0,\"image_id\":7,\"category_id\":1,\"id\":200},"
             "{\"area\":6.0,\"iscrowd\":0,\"image_id\":7,\"category_id\":1,\"id\":201},"
             "{\"area\":40,\"iscrowd\":0,\"image_id\":8,\"category_id\":1,\"id\":202},"
             "{\"area\":1,\"iscrowd\":0,\"image_id\":10,\"category_id\":1,\"id\":203}],"
             "\"images\":[%s,%s,%s,%s],\"categories\":[]}",
             im[7], im[8], im[9], im[10]);
    write_text(f->ann_b, a);
    free(a);
    write_text(f->minival, "8\n9\n\n10\n");
}

static void fixture_free(fixture *f) {
    free(f->dir);
    free(f->ann_a);
    free(f->ann_b);
    free(f->img_a);
    free(f->img_b);
    free(f->minival);
    free(f->out);
}

static void options(mn_import_vww_options *o, const fixture *f, const char **ann,
                    const char **dirs) {
    ann[0] = f->ann_a;
    ann[1] = f->ann_b;
    dirs[0] = f->img_a;
    dirs[1] = f->img_b;
    memset(o, 0, sizeof *o);
    o->annotations = ann;
    o->image_dirs = dirs;
    o->n_sources = 2;
    o->minival_ids = f->minival;
    o->output = f->out;
    o->width = 8;
    o->height = 6;
    o->seed = 1;
}

/* Checks every image of a split against its id's expected label; returns the ids seen. */
static unsigned check_split(mn_dataset *ds, mn_split sp, size_t n, int channels) {
    size_t ib = 8 * 6 * (size_t)channels;
    uint8_t *img = malloc(n * ib + 1);
    int32_t *lab = malloc((n + 1) * sizeof *lab);
    assert_non_null(img);
    assert_non_null(lab);
    assert_status(mn_dataset_read(ds, sp, 0, n, img, lab), MN_OK);
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        int id = (img[i * ib] + 10) / 20;
        assert_in_range(id, 1, N_IMAGES);
        for (size_t k = 0; k < ib; k++) assert_in_range(img[i * ib + k], 20 * id - 3, 20 * id + 3);
        assert_int_equal(lab[i], expect_person[id]);
        assert_false(seen & (1u << id));
        seen |= 1u << id;
    }
    free(img);
    free(lab);
    return seen;
}

static void labels_and_splits(void **state) {
    (void)state;
    fixture f;
    fixture_make(&f, "vww_labels");
    mn_import_vww_options o;
    const char *ann[2], *dirs[2];
    options(&o, &f, ann, dirs);
    assert_status(mn_import_vww(&o), MN_OK);

    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    assert_int_equal(info->classes, 2);
    assert_string_equal(mn_dataset_class_name(ds, 0), "no-person");
    assert_string_equal(mn_dataset_class_name(ds, 1), "person");
    assert_int_equal(info->shape.h, 6);
    assert_int_equal(info->shape.w, 8);
    assert_int_equal(info->shape.c, 3);
    /* train: ids 1-7 (3 persons); test: the minival ids 8, 9, 10 (1 person); no val */
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 7);
    assert_int_equal(info->count[MN_SPLIT_TEST], 3);
    assert_int_equal(info->count[MN_SPLIT_VAL], 0);
    assert_int_equal(check_split(ds, MN_SPLIT_TRAIN, 7, 3), 0xFEu);
    assert_int_equal(check_split(ds, MN_SPLIT_TEST, 3, 3), 0x700u);
    size_t counts[2];
    assert_status(mn_dataset_class_counts(ds, MN_SPLIT_TRAIN, counts), MN_OK);
    assert_int_equal(counts[0], 4);
    assert_int_equal(counts[1], 3);
    assert_status(mn_dataset_class_counts(ds, MN_SPLIT_TEST, counts), MN_OK);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1], 1);
    mn_dataset_close(ds);

    /* grey, a seeded random 3 of the training images, the test split whole */
    o.channels = 1;
    o.limit = 3;
    assert_status(mn_import_vww(&o), MN_OK);
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    info = mn_dataset_get_info(ds);
    assert_int_equal(info->shape.c, 1);
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 3);
    assert_int_equal(info->count[MN_SPLIT_TEST], 3);
    unsigned seen = check_split(ds, MN_SPLIT_TRAIN, 3, 1);
    assert_int_equal(seen & ~0xFEu, 0);
    assert_int_equal(check_split(ds, MN_SPLIT_TEST, 3, 1), 0x700u);
    mn_dataset_close(ds);

    /* without a minival list every image is training */
    o.limit = 0;
    o.minival_ids = NULL;
    assert_status(mn_import_vww(&o), MN_OK);
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    info = mn_dataset_get_info(ds);
    assert_int_equal(info->count[MN_SPLIT_TRAIN], 10);
    assert_int_equal(info->count[MN_SPLIT_TEST], 0);
    assert_int_equal(check_split(ds, MN_SPLIT_TRAIN, 10, 1), 0x7FEu);
    mn_dataset_close(ds);
    fixture_free(&f);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Writes `text` as annotation file A, runs the import and checks the status and message;
 * no output is left behind. */
static void expect_bad(fixture *f, const char *text, mn_status want, const char *msg) {
    write_text(f->ann_a, text);
    mn_import_vww_options o;
    const char *ann[2], *dirs[2];
    options(&o, f, ann, dirs);
    o.n_sources = 1;
    o.minival_ids = NULL;
    assert_status(mn_import_vww(&o), want);
    assert_msg_has("instances_train2014.json: ");
    assert_msg_has(msg);
    char tmp[1200];
    PATHF(tmp, "%s.tmp", f->out);
    assert_false(file_exists(f->out));
    assert_false(file_exists(tmp));
}

static void bad_inputs(void **state) {
    (void)state;
    fixture f;
    fixture_make(&f, "vww_bad");
    mn_import_vww_options o;
    const char *ann[2], *dirs[2];
    char missing_img[1200];
    PATHF(missing_img, "%s/COCO_%012d.png", f.img_a, 2);

    /* an annotation file that does not exist */
    options(&o, &f, ann, dirs);
    ann[1] = "no/such/instances_val2014.json";
    assert_status(mn_import_vww(&o), MN_ERR_IO);
    assert_msg_has("no/such/instances_val2014.json: cannot open");
    /* no size */
    options(&o, &f, ann, dirs);
    o.width = o.height = 0;
    assert_status(mn_import_vww(&o), MN_ERR_INVALID_ARG);
    assert_msg_has("size");

    /* an image file that is missing: named by its path */
    options(&o, &f, ann, dirs);
    assert_int_equal(remove(missing_img), 0);
    assert_status(mn_import_vww(&o), MN_ERR_FORMAT);
    assert_msg_has(missing_img);
    assert_msg_has("cannot open");
    assert_false(file_exists(f.out));
    /* ... skipped and counted with skip_bad */
    size_t skipped = 0;
    o.skip_bad = 1;
    o.skipped = &skipped;
    assert_status(mn_import_vww(&o), MN_OK);
    assert_int_equal(skipped, 1);
    remove(f.out);

    /* minival ids: not a number, not an image, listed twice */
    options(&o, &f, ann, dirs);
    write_text(f.minival, "8\nnine\n");
    assert_status(mn_import_vww(&o), MN_ERR_FORMAT);
    assert_msg_has("mscoco_minival_ids.txt: line 2: not an image id");
    write_text(f.minival, "8\n12345\n");
    assert_status(mn_import_vww(&o), MN_ERR_FORMAT);
    assert_msg_has("mscoco_minival_ids.txt: line 2: image id 12345 is in none of the annotation files");
    write_text(f.minival, "8\n9\n8\n");
    assert_status(mn_import_vww(&o), MN_ERR_FORMAT);
    assert_msg_has("mscoco_minival_ids.txt: line 3: image id 8 is listed twice");
    assert_false(file_exists(f.out));

    /* malformed JSON, naming the element */
    const char *img1 = "{\"id\": 1, \"width\": 40, \"height\": 25, \"file_name\": \"COCO_000000000001.png\"}";
    char text[2048];
    expect_bad(&f, "", MN_ERR_FORMAT, "not a JSON object");
    expect_bad(&f, "[1, 2]", MN_ERR_FORMAT, "not a JSON object");
    snprintf(text, sizeof text, "{\"images\": [%s, {\"id\": 2,, }], \"annotations\": []}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "images[1]: byte ");
    snprintf(text, sizeof text, "{\"images\": [%s], \"annotations\": [", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "annotations[0]");
    snprintf(text, sizeof text, "{\"images\": [%s] \"annotations\": []}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "expected ',' or '}'");
    expect_bad(&f, "{\"info\": {\"a\": [1, 2}", MN_ERR_FORMAT, "ends early");
    snprintf(text, sizeof text, "{\"images\": [%s], \"annotations\": []} x", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "data after the JSON object");
    expect_bad(&f, "{\"images\": {}, \"annotations\": []}", MN_ERR_FORMAT, "\"images\" is not an array");
    expect_bad(&f, "{\"images\": [3], \"annotations\": []}", MN_ERR_FORMAT, "images[0]");
    /* missing arrays and fields, wrong types */
    expect_bad(&f, "{\"annotations\": []}", MN_ERR_FORMAT, "images: missing");
    snprintf(text, sizeof text, "{\"images\": [%s]}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "annotations: missing");
    expect_bad(&f, "{\"images\": [{\"id\": 1, \"width\": 40, \"file_name\": \"a.png\"}], \"annotations\": []}",
               MN_ERR_FORMAT, "images[0].height: missing");
    expect_bad(&f, "{\"images\": [{\"id\": \"1\", \"width\": 40, \"height\": 25, \"file_name\": \"a.png\"}], \"annotations\": []}",
               MN_ERR_FORMAT, "images[0].id: not an integer");
    expect_bad(&f, "{\"images\": [{\"id\": 1, \"width\": 40, \"height\": 25}], \"annotations\": []}",
               MN_ERR_FORMAT, "images[0].file_name: missing");
    expect_bad(&f, "{\"images\": [{\"id\": 1, \"width\": 0, \"height\": 25, \"file_name\": \"a.png\"}], \"annotations\": []}",
               MN_ERR_FORMAT, "images[0]: size 0x25 is not positive");
    snprintf(text, sizeof text,
             "{\"images\": [%s], \"annotations\": [{\"image_id\": 1, \"category_id\": 1, \"area\": 9},"
             " {\"image_id\": 1, \"category_id\": 1}]}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "annotations[1].area: missing");
    snprintf(text, sizeof text,
             "{\"images\": [%s], \"annotations\": [{\"image_id\": 1, \"category_id\": 1, \"area\": \"9\"}]}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "annotations[0].area: not a number");
    snprintf(text, sizeof text,
             "{\"images\": [%s], \"annotations\": [{\"image_id\": 1, \"area\": 9}]}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "annotations[0].category_id: missing");
    snprintf(text, sizeof text,
             "{\"images\": [%s], \"annotations\": [{\"image_id\": 7, \"category_id\": 1, \"area\": 9}]}", img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "annotations[0].image_id: 7 is not in its images");
    snprintf(text, sizeof text, "{\"images\": [%s, %s], \"annotations\": []}", img1, img1);
    expect_bad(&f, text, MN_ERR_FORMAT, "images[1].id: 1 is also");
    fixture_free(&f);
}

/* The command line: the import as the README shows it, and a failure's exit code and
 * message. */
static void cli(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    fixture f;
    fixture_make(&f, "vww_cli");
    char cmd[8192];
    PATHF(cmd,
          "'%s' import vww --annotations '%s' --images '%s' --annotations '%s' --images '%s'"
          " --minival-ids '%s' --size 8x6 --channels 3 --quiet -o '%s'",
          bin, f.ann_a, f.img_a, f.ann_b, f.img_b, f.minival, f.out);
    assert_int_equal(system(cmd), 0);
    mn_dataset *ds = NULL;
    assert_status(mn_dataset_open(f.out, &ds), MN_OK);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TRAIN], 7);
    assert_int_equal(mn_dataset_get_info(ds)->count[MN_SPLIT_TEST], 3);
    mn_dataset_close(ds);
    /* no --size: a usage error */
    PATHF(cmd, "'%s' import vww --annotations '%s' --images '%s' -o '%s' 2>/dev/null", bin,
          f.ann_a, f.img_a, f.out);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 2);
    /* bad data: exit 1, the message names the file and field */
    write_text(f.ann_a, "{\"images\": [{\"id\": 1}], \"annotations\": []}");
    char *err = mn_test_path(f.dir, "stderr.txt");
    PATHF(cmd, "'%s' import vww --annotations '%s' --images '%s' --size 8x6 -o '%s' 2>'%s'", bin,
          f.ann_a, f.img_a, f.out, err);
    rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 1);
    FILE *e = fopen(err, "r");
    assert_non_null(e);
    char line[1024] = "";
    assert_non_null(fgets(line, sizeof line, e));
    fclose(e);
    assert_non_null(strstr(line, "instances_train2014.json: images[0].width: missing"));
    free(err);
    fixture_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_and_splits),
        cmocka_unit_test(bad_inputs),
        cmocka_unit_test(cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
