/* Visual Wake Words from COCO: labels from instances_*.json (person / no person by the
 * 0.5% area rule), the minival split from an id list, images through the shared image
 * writer (import_images.c).
 *
 * A COCO annotation file is hundreds of MB, mostly segmentation polygons; parsed whole
 * into a JSON tree it would need gigabytes. The top-level object is therefore scanned
 * here by hand and only each element of "images" and "annotations" is parsed by jansson,
 * one at a time: memory holds one element plus what is kept per image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "data/import_images.h"
#include "mcunas/dataset.h"
#include "mcunas/rng.h"

typedef struct vww_image {
    long long id;
    long long width, height;
    uint32_t source, index; /* which file, and where in its "images" */
    char *path;
    uint8_t person, split;
} vww_image;

/* A person annotation, kept until every image is known (annotations may come first). */
typedef struct vww_person {
    long long image_id;
    double area;
    uint32_t source, index;
} vww_person;

typedef struct vww_state {
    const mn_import_vww_options *o;
    int source;
    vww_image *images;
    size_t n_images, cap_images;
    vww_person *persons;
    size_t n_persons, cap_persons;
} vww_state;

static int grow(void **p, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 1;
    size_t c = *cap ? 2 * *cap : 1024;
    void *q = realloc(*p, c * elem);
    if (!q) return 0;
    *p = q;
    *cap = c;
    return 1;
}

/* ---- fields of one element ---- */

static mn_status get_int(const char *file, const char *array, size_t i, json_t *o,
                         const char *field, long long *out) {
    json_t *v = json_object_get(o, field);
    if (!v) return mn_error_set(MN_ERR_FORMAT, "%s: %s[%zu].%s: missing", file, array, i, field);
    if (!json_is_integer(v))
        return mn_error_set(MN_ERR_FORMAT, "%s: %s[%zu].%s: not an integer", file, array, i, field);
    *out = (long long)json_integer_value(v);
    return MN_OK;
}

static mn_status on_image(vww_state *s, size_t i, json_t *o) {
    const char *file = s->o->annotations[s->source];
    vww_image im = {0};
    mn_status st;
    if ((st = get_int(file, "images", i, o, "id", &im.id)) ||
        (st = get_int(file, "images", i, o, "width", &im.width)) ||
        (st = get_int(file, "images", i, o, "height", &im.height)))
        return st;
    if (im.width < 1 || im.height < 1)
        return mn_error_set(MN_ERR_FORMAT, "%s: images[%zu]: size %lldx%lld is not positive", file,
                            i, im.width, im.height);
    json_t *name = json_object_get(o, "file_name");
    if (!name) return mn_error_set(MN_ERR_FORMAT, "%s: images[%zu].file_name: missing", file, i);
    if (!json_is_string(name) || !json_string_length(name))
        return mn_error_set(MN_ERR_FORMAT, "%s: images[%zu].file_name: not a file name", file, i);
    const char *dir = s->o->image_dirs[s->source];
    size_t len = strlen(dir) + json_string_length(name) + 2;
    if (!grow((void **)&s->images, &s->cap_images, s->n_images, sizeof *s->images) ||
        !(im.path = malloc(len)))
        return mn_error_set(MN_ERR_NOMEM, "%s: no memory for the image list", file);
    snprintf(im.path, len, "%s/%s", dir, json_string_value(name));
    im.source = (uint32_t)s->source;
    im.index = (uint32_t)i;
    im.split = MN_SPLIT_TRAIN;
    s->images[s->n_images++] = im;
    return MN_OK;
}

static mn_status on_annotation(vww_state *s, size_t i, json_t *o) {
    const char *file = s->o->annotations[s->source];
    long long image_id = 0, category = 0;
    mn_status st;
    if ((st = get_int(file, "annotations", i, o, "image_id", &image_id)) ||
        (st = get_int(file, "annotations", i, o, "category_id", &category)))
        return st;
    json_t *area = json_object_get(o, "area");
    if (!area) return mn_error_set(MN_ERR_FORMAT, "%s: annotations[%zu].area: missing", file, i);
    if (!json_is_number(area))
        return mn_error_set(MN_ERR_FORMAT, "%s: annotations[%zu].area: not a number", file, i);
    if (category != 1) return MN_OK; /* COCO category 1 is "person" */
    if (!grow((void **)&s->persons, &s->cap_persons, s->n_persons, sizeof *s->persons))
        return mn_error_set(MN_ERR_NOMEM, "%s: no memory for the annotations", file);
    s->persons[s->n_persons++] =
        (vww_person){image_id, json_number_value(area), (uint32_t)s->source, (uint32_t)i};
    return MN_OK;
}

/* ---- the top-level scan ---- */

static int next_char(FILE *f) {
    int ch;
    do ch = getc(f);
    while (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r');
    return ch;
}

static mn_status syntax(const char *file, FILE *f, const char *what) {
    long at = ftell(f);
    if (feof(f)) return mn_error_set(MN_ERR_FORMAT, "%s: ends early (%s)", file, what);
    if (ferror(f)) return mn_error_set(MN_ERR_IO, "%s: read error: %s", file, strerror(errno));
    return mn_error_set(MN_ERR_FORMAT, "%s: byte %ld: %s", file, at > 0 ? at - 1 : 0, what);
}

/* Reads a string whose opening quote was read; keeps the first key_size - 1 bytes. */
static int read_string(FILE *f, char *key, size_t key_size) {
    size_t n = 0;
    for (;;) {
        int ch = getc(f);
        if (ch == EOF) return 0;
        if (ch == '"') break;
        if (ch == '\\' && (ch = getc(f)) == EOF) return 0;
        if (n + 1 < key_size) key[n++] = (char)ch;
    }
    key[n] = '\0';
    return 1;
}

/* Skips one value of a key this importer does not read ("info", "licenses", ...); its
 * syntax is checked only as far as the nesting of brackets and strings goes. */
static int skip_value(FILE *f) {
    char scratch[1];
    int ch = next_char(f);
    if (ch == '"') return read_string(f, scratch, sizeof scratch);
    if (ch == '{' || ch == '[') {
        for (int depth = 1; depth;) {
            ch = getc(f);
            if (ch == EOF) return 0;
            if (ch == '"' && !read_string(f, scratch, sizeof scratch)) return 0;
            if (ch == '{' || ch == '[') depth++;
            if (ch == '}' || ch == ']') depth--;
        }
        return 1;
    }
    if (ch == EOF || ch == ',' || ch == '}' || ch == ']') return 0;
    /* a number, true, false or null: runs to the next separator */
    do ch = getc(f);
    while (ch != EOF && ch != ',' && ch != '}' && ch != ']' && ch != ' ' && ch != '\t' &&
           ch != '\n' && ch != '\r');
    return ch != EOF && ungetc(ch, f) != EOF;
}

/* Parses each element of the array whose '[' comes next with jansson and hands it on. */
static mn_status scan_array(vww_state *s, FILE *f, const char *key, long size) {
    const char *file = s->o->annotations[s->source];
    char what[128];
    if (next_char(f) != '[') {
        snprintf(what, sizeof what, "\"%s\" is not an array", key);
        return syntax(file, f, what);
    }
    int is_images = !strcmp(key, "images");
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    char phase[300];
    snprintf(phase, sizeof phase, "reading %s, bytes", base);
    for (size_t i = 0;; i++) {
        int ch = next_char(f);
        if (ch == ']' && i == 0) break;
        if (ch == EOF || ungetc(ch, f) == EOF) {
            snprintf(what, sizeof what, "%s[%zu]", key, i);
            return syntax(file, f, what);
        }
        long at = ftell(f);
        json_error_t je;
        json_t *v = json_loadf(f, JSON_DISABLE_EOF_CHECK, &je);
        if (!v)
            return mn_error_set(MN_ERR_FORMAT, "%s: %s[%zu]: byte %ld: %s", file, key, i,
                                at + (long)je.position, je.text);
        mn_status st;
        if (!json_is_object(v))
            st = mn_error_set(MN_ERR_FORMAT, "%s: %s[%zu]: not an object", file, key, i);
        else
            st = is_images ? on_image(s, i, v) : on_annotation(s, i, v);
        json_decref(v);
        if (st) return st;
        if (s->o->progress && i % 4096 == 4095)
            s->o->progress(s->o->progress_user, phase, (size_t)ftell(f), (size_t)size);
        ch = next_char(f);
        if (ch == ']') break;
        if (ch != ',') {
            snprintf(what, sizeof what, "expected ',' or ']' after %s[%zu]", key, i);
            return syntax(file, f, what);
        }
    }
    return MN_OK;
}

static mn_status read_annotations(vww_state *s) {
    const char *file = s->o->annotations[s->source];
    FILE *f = fopen(file, "rb");
    if (!f) return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
    struct stat sb;
    long size = fstat(fileno(f), &sb) == 0 ? (long)sb.st_size : 0;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    mn_status st = MN_OK;
    int seen_images = 0, seen_annotations = 0;
    if (next_char(f) != '{') st = syntax(file, f, "not a JSON object");
    for (int first = 1; !st; first = 0) {
        int ch = next_char(f);
        if (ch == '}' && first) break;
        char key[64];
        if (ch != '"' || !read_string(f, key, sizeof key)) {
            st = syntax(file, f, "expected a key");
            break;
        }
        if (next_char(f) != ':') {
            st = syntax(file, f, "expected ':'");
            break;
        }
        if (!strcmp(key, "images") || !strcmp(key, "annotations")) {
            int *seen = !strcmp(key, "images") ? &seen_images : &seen_annotations;
            if ((*seen)++) {
                st = mn_error_set(MN_ERR_FORMAT, "%s: \"%s\" appears twice", file, key);
                break;
            }
            st = scan_array(s, f, key, size);
        } else if (!skip_value(f)) {
            st = syntax(file, f, "a value");
        }
        if (st) break;
        ch = next_char(f);
        if (ch == '}') break;
        if (ch != ',') st = syntax(file, f, "expected ',' or '}' after a value");
    }
    if (!st && next_char(f) != EOF) st = syntax(file, f, "data after the JSON object");
    if (!st && !seen_images)
        st = mn_error_set(MN_ERR_FORMAT, "%s: images: missing (not a COCO instances file?)", file);
    if (!st && !seen_annotations)
        st = mn_error_set(MN_ERR_FORMAT, "%s: annotations: missing (not a COCO instances file?)", file);
    fclose(f);
    if (!st && s->o->progress) {
        const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
        char phase[300];
        snprintf(phase, sizeof phase, "reading %s, bytes", base);
        s->o->progress(s->o->progress_user, phase, (size_t)size, (size_t)size);
    }
    return st;
}

/* ---- labels and splits ---- */

static int cmp_image_id(const void *a, const void *b) {
    long long x = ((const vww_image *)a)->id, y = ((const vww_image *)b)->id;
    return (x > y) - (x < y);
}

static vww_image *find_image(vww_state *s, long long id) {
    vww_image key = {.id = id};
    return bsearch(&key, s->images, s->n_images, sizeof key, cmp_image_id);
}

static mn_status apply_persons(vww_state *s) {
    for (size_t i = 1; i < s->n_images; i++)
        if (s->images[i].id == s->images[i - 1].id) {
            const vww_image *a = &s->images[i - 1], *b = &s->images[i];
            return mn_error_set(MN_ERR_FORMAT, "%s: images[%u].id: %lld is also %s's images[%u]",
                                s->o->annotations[b->source], (unsigned)b->index, b->id,
                                s->o->annotations[a->source], (unsigned)a->index);
        }
    for (size_t i = 0; i < s->n_persons; i++) {
        const vww_person *p = &s->persons[i];
        vww_image *im = find_image(s, p->image_id);
        if (!im || im->source != p->source)
            return mn_error_set(MN_ERR_FORMAT, "%s: annotations[%u].image_id: %lld is not in its images",
                                s->o->annotations[p->source], (unsigned)p->index, p->image_id);
        /* "exceeds 0.5%", computed as the build scripts do: area / (height * width) */
        if (p->area / ((double)im->height * (double)im->width) > MN_VWW_PERSON_AREA_FRACTION)
            im->person = 1;
    }
    return MN_OK;
}

static mn_status apply_minival(vww_state *s, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char line[256];
    mn_status st = MN_OK;
    size_t n = 0;
    for (size_t ln = 1; !st && fgets(line, sizeof line, f); ln++) {
        char *p = line, *end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\n' || *p == '\r' || *p == '\0') continue;
        errno = 0;
        long long id = strtoll(p, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (end == p || *end || errno) {
            st = mn_error_set(MN_ERR_FORMAT, "%s: line %zu: not an image id", path, ln);
            break;
        }
        vww_image *im = find_image(s, id);
        if (!im)
            st = mn_error_set(MN_ERR_FORMAT, "%s: line %zu: image id %lld is in none of the annotation files",
                              path, ln, id);
        else if (im->split == MN_SPLIT_TEST)
            st = mn_error_set(MN_ERR_FORMAT, "%s: line %zu: image id %lld is listed twice", path, ln, id);
        else
            im->split = MN_SPLIT_TEST, n++;
    }
    if (!st && ferror(f)) st = mn_error_set(MN_ERR_IO, "%s: read error", path);
    if (!st && n == 0) st = mn_error_set(MN_ERR_FORMAT, "%s: no image ids", path);
    fclose(f);
    return st;
}

mn_status mn_import_vww(const mn_import_vww_options *o) {
    if (!o || !o->output || o->n_sources < 1 || !o->annotations || !o->image_dirs)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "import vww: annotation files, their image folders and the output are required");
    if (o->skipped) *o->skipped = 0;
    if (o->width < 1 || o->height < 1)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "import vww: a size is required (COCO images differ in size)");
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return mn_error_set(MN_ERR_INVALID_ARG, "import vww: channels must be 1 or 3 (got %d)", o->channels);
    vww_state s = {.o = o};
    mn_status st = MN_OK;
    for (int i = 0; i < o->n_sources && !st; i++) {
        s.source = i;
        if (!o->annotations[i] || !o->image_dirs[i])
            st = mn_error_set(MN_ERR_INVALID_ARG, "import vww: annotation file %d lacks its image folder", i);
        else
            st = read_annotations(&s);
    }
    if (!st && s.n_images == 0)
        st = mn_error_set(MN_ERR_FORMAT, "%s: no images", o->annotations[0]);
    if (!st && s.n_images > UINT32_MAX)
        st = mn_error_set(MN_ERR_FORMAT, "import vww: %zu images, more than 2^32 - 1", s.n_images);
    if (!st) {
        qsort(s.images, s.n_images, sizeof *s.images, cmp_image_id);
        st = apply_persons(&s);
    }
    free(s.persons);
    if (!st && o->minival_ids) st = apply_minival(&s, o->minival_ids);

    /* The writer takes path/label/split items in an order: training images shuffled
     * (seeded, so --limit is a random sample), then test images by id. */
    mn_image_item *items = NULL;
    uint32_t *order = NULL;
    size_t count[MN_SPLITS] = {0, 0, 0};
    if (!st) {
        items = malloc(s.n_images * sizeof *items);
        order = malloc(s.n_images * sizeof *order);
        if (!items || !order) st = mn_error_set(MN_ERR_NOMEM, "import vww: no memory for the image list");
    }
    if (!st) {
        size_t k = 0;
        for (size_t i = 0; i < s.n_images; i++) {
            items[i] = (mn_image_item){s.images[i].path, s.images[i].person, s.images[i].split};
            if (items[i].split == MN_SPLIT_TRAIN) order[k++] = (uint32_t)i;
        }
        mn_rng r;
        mn_rng_seed(&r, o->seed);
        mn_rng_shuffle(&r, order, k);
        if (o->limit && o->limit < k) k = o->limit;
        count[MN_SPLIT_TRAIN] = k;
        for (size_t i = 0; i < s.n_images; i++)
            if (items[i].split == MN_SPLIT_TEST) order[k++] = (uint32_t)i;
        count[MN_SPLIT_TEST] = k - count[MN_SPLIT_TRAIN];
        if (count[MN_SPLIT_TRAIN] == 0)
            st = mn_error_set(MN_ERR_FORMAT, "%s: every image is in the minival list; no training images",
                              o->minival_ids);
    }
    mn_dataset_writer *wr = NULL;
    const int channels = o->channels ? o->channels : 3;
    if (!st) {
        static const char *const names[2] = {"no-person", "person"};
        mn_dataset_writer_options wo;
        memset(&wo, 0, sizeof wo);
        wo.shape = (mn_shape){o->height, o->width, channels};
        wo.classes = 2;
        wo.class_names = names;
        char source[256];
        snprintf(source, sizeof source, "vww from COCO %s%s", o->annotations[0],
                 o->n_sources > 1 ? " and more" : "");
        wo.source = source;
        wo.stop = o->stop;
        st = mn_dataset_writer_create(o->output, &wo, &wr);
    }
    if (!st) {
        mn_image_write_options io = {o->width, o->height, channels, 0, o->skip_bad, o->skipped,
                                     o->progress, o->progress_user};
        st = mn_import_images_write(wr, items, order, count, &io);
    }
    free(items);
    free(order);
    for (size_t i = 0; i < s.n_images; i++) free(s.images[i].path);
    free(s.images);
    if (st) {
        mn_dataset_writer_abort(wr);
        return st;
    }
    return mn_dataset_writer_commit(wr);
}
