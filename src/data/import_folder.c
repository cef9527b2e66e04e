/* Image folders (one subfolder per class, optionally under train/ and test/) -> dataset
 * cache. The files are listed here and decoded by the shared image writer
 * (import_images.c): on all cores, a block at a time, only one block in memory. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/import_images.h"
#include "mcunas/dataset.h"
#include "mcunas/rng.h"

typedef struct list {
    mn_image_item *items;
    size_t n, cap;
} list;

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int has_image_ext(const char *name) {
    static const char *const exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm",
                                       ".pnm", ".gif", ".tga"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (!strcasecmp(dot, exts[i])) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of the entries of `dir` that are folders (want_dirs) or image files. */
static mn_status list_dir(const char *dir, int want_dirs, char ***out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    char path[4096];
    mn_status st = MN_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (want_dirs ? !is_dir(path) : (is_dir(path) || !has_image_ext(e->d_name))) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) {
                st = mn_error_set(MN_ERR_NOMEM, "%s: no memory to list", dir);
                break;
            }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) {
            st = mn_error_set(MN_ERR_NOMEM, "%s: no memory to list", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (st) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return st;
    }
    if (n) qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return MN_OK;
}

static void free_strs(char **s, size_t n) {
    if (!s) return;
    for (size_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* Adds every image of root/<class>/ with the class's label. */
static mn_status add_split(list *l, const char *root, char **classes, size_t n_classes,
                           uint8_t split) {
    char dir[4096];
    for (size_t c = 0; c < n_classes; c++) {
        snprintf(dir, sizeof dir, "%s/%s", root, classes[c]);
        if (!is_dir(dir)) {
            if (split != MN_SPLIT_TRAIN) continue; /* a test or val split may lack a class */
            return mn_error_set(MN_ERR_IO, "%s: missing class folder", dir);
        }
        char **files = NULL;
        size_t nf = 0;
        mn_status st = list_dir(dir, 0, &files, &nf);
        if (st) return st;
        if (nf == 0 && split == MN_SPLIT_TRAIN) {
            free_strs(files, nf);
            return mn_error_set(MN_ERR_FORMAT, "%s: class '%s' has no images (.png, .jpg, .bmp, .pgm, ...)",
                                dir, classes[c]);
        }
        for (size_t i = 0; i < nf && !st; i++) {
            if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 1024;
                mn_image_item *grown = realloc(l->items, cap * sizeof *grown);
                if (!grown) {
                    st = mn_error_set(MN_ERR_NOMEM, "no memory for the file list");
                    break;
                }
                l->items = grown;
                l->cap = cap;
            }
            size_t len = strlen(dir) + strlen(files[i]) + 2;
            char *p = malloc(len);
            if (!p) {
                st = mn_error_set(MN_ERR_NOMEM, "no memory for the file list");
                break;
            }
            snprintf(p, len, "%s/%s", dir, files[i]);
            l->items[l->n++] = (mn_image_item){p, (int32_t)c, split};
        }
        free_strs(files, nf);
        if (st) return st;
    }
    return MN_OK;
}

/* ---- resizing ---- */

/* Weights of one axis: for each output position, a span of input positions with weights
 * summing to 1. Area averaging when shrinking (each output covers in/out inputs,
 * fractional at the ends), bilinear with half-pixel centres when growing. */
typedef struct axis {
    int *first, *count;
    float *w; /* count[i] weights from w + i * span */
    int span;
} axis;

static int axis_make(axis *a, int in, int out) {
    a->span = out < in ? (int)ceil((double)in / out) + 2 : 2;
    a->first = malloc((size_t)out * sizeof(int));
    a->count = malloc((size_t)out * sizeof(int));
    a->w = calloc((size_t)out * (size_t)a->span, sizeof(float));
    if (!a->first || !a->count || !a->w) return 0;
    for (int i = 0; i < out; i++) {
        float *w = a->w + (size_t)i * (size_t)a->span;
        if (out < in) {
            double scale = (double)in / out, lo = i * scale, hi = (i + 1) * scale;
            int f = (int)floor(lo), l = (int)ceil(hi);
            if (l > in) l = in;
            a->first[i] = f;
            a->count[i] = l - f;
            for (int j = f; j < l; j++) {
                double cover = fmin(hi, j + 1) - fmax(lo, j);
                w[j - f] = (float)(cover / scale);
            }
        } else {
            double x = (i + 0.5) * in / out - 0.5;
            if (x < 0) x = 0;
            if (x > in - 1) x = in - 1;
            int f = (int)floor(x);
            double t = x - f;
            a->first[i] = f;
            if (f + 1 < in && t > 0) {
                a->count[i] = 2;
                w[0] = (float)(1 - t);
                w[1] = (float)t;
            } else {
                a->count[i] = 1;
                w[0] = 1;
            }
        }
    }
    return 1;
}

static void axis_free(axis *a) {
    free(a->first);
    free(a->count);
    free(a->w);
}

void mn_resize_image(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh) {
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * (size_t)sh * (size_t)c);
        return;
    }
    axis ax = {0}, ay = {0};
    float *tmp = malloc((size_t)dw * (size_t)sh * (size_t)c * sizeof(float));
    if (!tmp || !axis_make(&ax, sw, dw) || !axis_make(&ay, sh, dh)) {
        /* allocation failure: nearest neighbour needs no memory */
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
                memcpy(dst + ((size_t)y * dw + x) * c,
                       src + ((size_t)(y * sh / dh) * sw + (size_t)(x * sw / dw)) * c, (size_t)c);
    } else {
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < dw; x++)
                for (int k = 0; k < c; k++) {
                    float v = 0;
                    const float *w = ax.w + (size_t)x * (size_t)ax.span;
                    for (int j = 0; j < ax.count[x]; j++)
                        v += w[j] * src[((size_t)y * sw + (size_t)(ax.first[x] + j)) * c + k];
                    tmp[((size_t)y * dw + x) * c + k] = v;
                }
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++)
                for (int k = 0; k < c; k++) {
                    float v = 0;
                    const float *w = ay.w + (size_t)y * (size_t)ay.span;
                    for (int j = 0; j < ay.count[y]; j++)
                        v += w[j] * tmp[((size_t)(ay.first[y] + j) * dw + x) * c + k];
                    v = v < 0 ? 0 : v > 255 ? 255 : v;
                    dst[((size_t)y * dw + x) * c + k] = (uint8_t)lrintf(v);
                }
    }
    axis_free(&ax);
    axis_free(&ay);
    free(tmp);
}

mn_status mn_import_folder(const mn_import_folder_options *o) {
    if (!o || !o->dir || !o->output)
        return mn_error_set(MN_ERR_INVALID_ARG, "import folder: the folder and the output are required");
    if (o->skipped) *o->skipped = 0;
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return mn_error_set(MN_ERR_INVALID_ARG, "import folder: channels must be 1 or 3 (got %d)", o->channels);
    if (o->width < 0 || o->height < 0 || (!o->width != !o->height))
        return mn_error_set(MN_ERR_INVALID_ARG, "import folder: give both width and height, or neither");
    if (!(o->test_split >= 0 && o->test_split < 1))
        return mn_error_set(MN_ERR_INVALID_ARG, "import folder: test split must be in [0, 1) (got %g)",
                            o->test_split);
    struct stat sb;
    if (stat(o->dir, &sb) != 0)
        return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", o->dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return mn_error_set(MN_ERR_IO, "%s: not a folder", o->dir);

    char train_root[4096], test_root[4096];
    snprintf(train_root, sizeof train_root, "%s/train", o->dir);
    snprintf(test_root, sizeof test_root, "%s/test", o->dir);
    int split_layout = is_dir(train_root);
    if (!split_layout) snprintf(train_root, sizeof train_root, "%s", o->dir);
    if (split_layout && o->test_split > 0 && is_dir(test_root))
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: has a test/ folder; a test split fraction applies only without one",
                            o->dir);

    char **classes = NULL;
    size_t n_classes = 0;
    mn_status st = list_dir(train_root, 1, &classes, &n_classes);
    if (st) return st;
    if (n_classes == 0) {
        free_strs(classes, n_classes);
        return mn_error_set(MN_ERR_FORMAT, "%s: no class folders (one subfolder per class)", train_root);
    }
    if (n_classes > MN_DATASET_MAX_CLASSES) {
        free_strs(classes, n_classes);
        return mn_error_set(MN_ERR_FORMAT, "%s: %zu class folders, more than %d", train_root,
                            n_classes, MN_DATASET_MAX_CLASSES);
    }
    list l = {0};
    st = add_split(&l, train_root, classes, n_classes, MN_SPLIT_TRAIN);
    for (int sp = MN_SPLIT_TEST; sp <= MN_SPLIT_VAL && !st && split_layout; sp++) {
        /* test/ and val/ must not hold classes that train/ lacks */
        char root[4096];
        snprintf(root, sizeof root, "%s/%s", o->dir, mn_split_name((mn_split)sp));
        if (!is_dir(root)) continue;
        char **tc = NULL;
        size_t ntc = 0;
        st = list_dir(root, 1, &tc, &ntc);
        for (size_t i = 0; i < ntc && !st; i++)
            if (!bsearch(&tc[i], classes, n_classes, sizeof *classes, cmp_str))
                st = mn_error_set(MN_ERR_FORMAT, "%s/%s: a %s class that train/ does not have",
                                  root, tc[i], mn_split_name((mn_split)sp));
        free_strs(tc, ntc);
        if (!st) st = add_split(&l, root, classes, n_classes, (uint8_t)sp);
    }
    uint32_t *order = NULL;
    size_t n_train = 0, n_test = 0, n_val = 0;
    if (!st) {
        /* Seeded: which images are test (without test/), and the training images' order
         * (so that the first N of the cache, and --limit, are a random sample). */
        order = malloc((l.n ? l.n : 1) * sizeof *order);
        if (!order) st = mn_error_set(MN_ERR_NOMEM, "no memory for the file order");
    }
    if (!st) {
        mn_rng r;
        mn_rng_seed(&r, o->seed);
        for (size_t i = 0; i < l.n; i++) order[i] = (uint32_t)i;
        mn_rng_shuffle(&r, order, l.n);
        if (!split_layout && o->test_split > 0) {
            size_t nt = (size_t)((double)l.n * o->test_split + 0.5);
            for (size_t i = 0; i < nt; i++) l.items[order[i]].split = MN_SPLIT_TEST;
        }
        /* order: training images (shuffled), then test, then val images (by class) */
        size_t k = 0;
        for (size_t i = 0; i < l.n; i++)
            if (l.items[order[i]].split == MN_SPLIT_TRAIN) order[k++] = order[i];
        n_train = k;
        for (size_t i = 0; i < l.n; i++)
            if (l.items[i].split == MN_SPLIT_TEST) order[k++] = (uint32_t)i;
        n_test = k - n_train;
        for (size_t i = 0; i < l.n; i++)
            if (l.items[i].split == MN_SPLIT_VAL) order[k++] = (uint32_t)i;
        n_val = k - n_train - n_test;
        if (o->limit && o->limit < n_train) {
            memmove(order + o->limit, order + n_train, (n_test + n_val) * sizeof *order);
            n_train = o->limit;
        }
        if (n_train == 0) st = mn_error_set(MN_ERR_FORMAT, "%s: no training images", o->dir);
    }
    /* The shape: given, or the first training image's. */
    int w = o->width, h = o->height, c = o->channels, exact = !o->width;
    if (!st) st = mn_import_images_probe(l.items, order, n_train, o->skip_bad, o->dir, &w, &h, &c);

    mn_dataset_writer *wr = NULL;
    if (!st) {
        mn_dataset_writer_options wo;
        memset(&wo, 0, sizeof wo);
        wo.shape = (mn_shape){h, w, c};
        wo.classes = (int)n_classes;
        wo.class_names = (const char *const *)classes;
        wo.stop = o->stop;
        char source[512];
        snprintf(source, sizeof source, "folder %s", o->dir);
        wo.source = source;
        st = mn_dataset_writer_create(o->output, &wo, &wr);
    }
    if (!st) {
        const size_t count[MN_SPLITS] = {n_train, n_test, n_val};
        mn_image_write_options io = {w, h, c, exact, o->skip_bad, o->skipped, o->progress,
                                     o->progress_user};
        st = mn_import_images_write(wr, l.items, order, count, &io);
    }
    free(order);
    for (size_t i = 0; i < l.n; i++) free(l.items[i].path);
    free(l.items);
    free_strs(classes, n_classes);
    if (st) {
        mn_dataset_writer_abort(wr);
        return st;
    }
    return mn_dataset_writer_commit(wr);
}
