/* CIFAR-10 / CIFAR-100 binary batches -> dataset cache (docs/dataset-format.md). Records
 * stream in blocks; planes (CHW) become NHWC. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mcunas/dataset.h"

#define CIFAR_PIXELS 3072
#define CIFAR_BLOCK 1024

typedef struct cifar_file {
    char path[1200];
    size_t records;
    mn_split split;
} cifar_file;

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Reads up to `max` names, one a line, into a malloc'd array (*names NULL, *n 0 when the
 * file is absent). */
static mn_status read_names(const char *path, int max, char ***names, int *n) {
    *n = 0;
    *names = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return MN_OK;
    char **v = calloc((size_t)max, sizeof *v);
    mn_status st = v ? MN_OK : mn_error_set(MN_ERR_NOMEM, "%s: no memory for %d class names", path, max);
    char line[256];
    while (!st && *n < max && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (!len) continue;
        if (!(v[*n] = strdup(line)))
            st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for class name %d", path, *n);
        else
            (*n)++;
    }
    fclose(f);
    *names = v;
    return st;
}

static void free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

mn_status mn_import_cifar(const mn_import_cifar_options *o) {
    if (!o || !o->dir || !o->output)
        return mn_error_set(MN_ERR_INVALID_ARG, "import cifar: the folder and the output are required");
    struct stat sb;
    if (stat(o->dir, &sb) != 0)
        return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", o->dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return mn_error_set(MN_ERR_IO, "%s: not a folder", o->dir);

    cifar_file files[7];
    int n_files = 0, label_bytes, classes;
    const char *names_file;
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/train.bin", o->dir);
    if (exists(probe)) { /* CIFAR-100 */
        label_bytes = 2;
        classes = o->coarse ? 20 : 100;
        names_file = o->coarse ? "coarse_label_names.txt" : "fine_label_names.txt";
        snprintf(files[0].path, sizeof files[0].path, "%s/train.bin", o->dir);
        files[0].split = MN_SPLIT_TRAIN;
        snprintf(files[1].path, sizeof files[1].path, "%s/test.bin", o->dir);
        files[1].split = MN_SPLIT_TEST;
        n_files = exists(files[1].path) ? 2 : 1;
    } else {
        snprintf(probe, sizeof probe, "%s/data_batch_1.bin", o->dir);
        if (!exists(probe))
            return mn_error_set(MN_ERR_IO,
                                "%s: no CIFAR batches here (expected data_batch_1.bin ... and "
                                "test_batch.bin for CIFAR-10, or train.bin and test.bin for "
                                "CIFAR-100)",
                                o->dir);
        if (o->coarse)
            return mn_error_set(MN_ERR_INVALID_ARG, "%s: coarse labels exist only in CIFAR-100", o->dir);
        label_bytes = 1;
        classes = 10;
        names_file = "batches.meta.txt";
        for (int i = 1; i <= 5; i++) {
            snprintf(files[n_files].path, sizeof files[n_files].path, "%s/data_batch_%d.bin", o->dir, i);
            files[n_files].split = MN_SPLIT_TRAIN;
            if (exists(files[n_files].path)) n_files++;
        }
        snprintf(files[n_files].path, sizeof files[n_files].path, "%s/test_batch.bin", o->dir);
        files[n_files].split = MN_SPLIT_TEST;
        if (exists(files[n_files].path)) n_files++;
    }
    const size_t rec = (size_t)label_bytes + CIFAR_PIXELS;
    size_t total[2] = {0, 0};
    for (int i = 0; i < n_files; i++) {
        if (stat(files[i].path, &sb) != 0)
            return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", files[i].path, strerror(errno));
        size_t size = (size_t)sb.st_size;
        if (size == 0) return mn_error_set(MN_ERR_FORMAT, "%s: empty file", files[i].path);
        if (size % rec)
            return mn_error_set(MN_ERR_FORMAT,
                                "%s: truncated or not a CIFAR-%d batch: %zu bytes is not a whole "
                                "number of %zu-byte records (record %zu is incomplete)",
                                files[i].path, label_bytes == 1 ? 10 : 100, size, rec, size / rec);
        files[i].records = size / rec;
        total[files[i].split] += files[i].records;
    }

    char path_names[1200];
    snprintf(path_names, sizeof path_names, "%s/%s", o->dir, names_file);
    int n_names = 0;
    char **names = NULL;
    mn_status st = read_names(path_names, classes, &names, &n_names);
    if (st) {
        free_names(names, n_names);
        return st;
    }
    mn_dataset_writer_options wo;
    memset(&wo, 0, sizeof wo);
    wo.shape = (mn_shape){32, 32, 3};
    wo.classes = classes;
    wo.class_names = n_names == classes ? (const char *const *)names : NULL;
    wo.stop = o->stop;
    wo.source = label_bytes == 1 ? "CIFAR-10" : o->coarse ? "CIFAR-100 (coarse labels)" : "CIFAR-100 (fine labels)";
    mn_dataset_writer *w = NULL;
    st = mn_dataset_writer_create(o->output, &wo, &w);
    free_names(names, n_names);
    if (st) return st;

    uint8_t *raw = malloc(CIFAR_BLOCK * rec), *img = malloc(CIFAR_BLOCK * CIFAR_PIXELS);
    int32_t *lab = malloc(CIFAR_BLOCK * sizeof *lab);
    if (!raw || !img || !lab) st = mn_error_set(MN_ERR_NOMEM, "import cifar: no memory for a block");
    size_t want_train = o->limit && o->limit < total[0] ? o->limit : total[0];
    size_t done[2] = {0, 0};
    for (int i = 0; i < n_files && !st; i++) {
        mn_split sp = files[i].split;
        size_t want = sp == MN_SPLIT_TRAIN ? want_train : total[1];
        if (done[sp] >= want) continue;
        FILE *f = fopen(files[i].path, "rb");
        if (!f) {
            st = mn_error_set(MN_ERR_IO, "%s: cannot open: %s", files[i].path, strerror(errno));
            break;
        }
        for (size_t r = 0; r < files[i].records && done[sp] < want && !st;) {
            size_t n = files[i].records - r;
            if (n > CIFAR_BLOCK) n = CIFAR_BLOCK;
            if (n > want - done[sp]) n = want - done[sp];
            if (fread(raw, rec, n, f) != n) {
                st = mn_error_set(MN_ERR_IO, "%s: read failed at record %zu: %s", files[i].path, r,
                                  ferror(f) ? strerror(errno) : "unexpected end of file");
                break;
            }
            for (size_t k = 0; k < n; k++) {
                const uint8_t *q = raw + k * rec;
                int label = label_bytes == 1 ? q[0] : o->coarse ? q[0] : q[1];
                if (label >= classes) {
                    st = mn_error_set(MN_ERR_FORMAT, "%s: record %zu has %s label %d, outside [0, %d)",
                                      files[i].path, r + k,
                                      label_bytes == 1 ? "the" : o->coarse ? "coarse" : "fine",
                                      label, classes);
                    break;
                }
                lab[k] = label;
                const uint8_t *planes = q + label_bytes;
                uint8_t *d = img + k * CIFAR_PIXELS;
                for (int p = 0; p < 1024; p++) {
                    d[3 * p] = planes[p];
                    d[3 * p + 1] = planes[1024 + p];
                    d[3 * p + 2] = planes[2048 + p];
                }
            }
            if (!st) st = mn_dataset_writer_append(w, sp, img, lab, n);
            r += n;
            done[sp] += n;
            if (!st && o->progress)
                o->progress(o->progress_user, sp == MN_SPLIT_TRAIN ? "train images" : "test images",
                            done[sp], want);
        }
        fclose(f);
    }
    free(raw);
    free(img);
    free(lab);
    if (st) {
        mn_dataset_writer_abort(w);
        return st;
    }
    return mn_dataset_writer_commit(w);
}
