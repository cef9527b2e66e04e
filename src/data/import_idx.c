/* Importer of MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST, ...) into a cache.
 *
 * IDX: a big-endian header, magic 0x00000803 for uint8 images [N, rows, cols] or
 * 0x00000801 for uint8 labels [N], each dimension a uint32, then the raw bytes. The files
 * usually ship gzip-compressed; zlib's gzopen/gzread look at the gzip magic bytes and read
 * either form transparently.
 *
 * The import streams: memory stays at one block of images whatever N is. The class count
 * must be known before the cache is created, so the (small) label files are read twice:
 * once to validate them and find the largest label, then alongside the images. */
#include "mcunas/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MN_IDX_IMAGES_MAGIC 0x00000803u
#define MN_IDX_LABELS_MAGIC 0x00000801u
/* Images per append: large enough to amortise HDF5's per-call cost, small enough that the
 * block stays within MN_IDX_BLOCK_BYTES for large images. */
#define MN_IDX_BLOCK_IMAGES 4096
#define MN_IDX_BLOCK_BYTES ((size_t)16 << 20)
/* A side longer than this is a corrupt header, not an image; it also keeps H*W in int. */
#define MN_IDX_MAX_SIDE 32768u

typedef struct mn_idx_file {
    const char *path;
    gzFile gz;
    int images;          /* 1: image file, 0: label file */
    uint32_t n, rows, cols;
    size_t item_bytes;   /* rows*cols for images, 1 for labels */
    size_t items_read;   /* items consumed so far, for truncation messages */
} mn_idx_file;

static const char *mn_idx_kind(int images) { return images ? "images" : "labels"; }

static void mn_idx_close(mn_idx_file *f) {
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Reads up to `len` bytes; *got is what arrived. Errors of the stream itself (corrupt
 * gzip data, a failing disk) are returned; an early end is left to the caller, who knows
 * what was expected. */
static mn_status mn_idx_read(mn_idx_file *f, void *buf, size_t len, size_t *got) {
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > (1u << 30)) want = 1u << 30; /* gzread takes an unsigned, returns int */
        int n = gzread(f->gz, p + *got, (unsigned)want);
        if (n > 0) {
            *got += (size_t)n;
            continue;
        }
        int errnum = Z_OK;
        const char *msg = gzerror(f->gz, &errnum);
        /* Z_BUF_ERROR is zlib's "unexpected end of file" of a truncated gzip stream:
         * reported like a truncated raw file by the caller. */
        if (n < 0 && errnum == Z_ERRNO)
            return mn_error_set(MN_ERR_IO, "%s: read error: %s", f->path, strerror(errno));
        if (n < 0 && errnum != Z_BUF_ERROR) {
            /* zlib prefixes its message with the path; drop that, we name the file too. */
            size_t plen = strlen(f->path);
            if (msg && strncmp(msg, f->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
                msg += plen + 2;
            return mn_error_set(MN_ERR_FORMAT, "%s: corrupt gzip data: %s", f->path,
                                msg ? msg : "unknown error");
        }
        break;
    }
    return MN_OK;
}

static uint32_t mn_be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Opens an IDX file and validates its header: magic, dimensions. */
static mn_status mn_idx_open(mn_idx_file *f, const char *path, int images) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->images = images;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "out of memory");
    gzbuffer(f->gz, 1u << 18); /* default 8 KiB input buffer makes many small reads */

    unsigned char hdr[16];
    const size_t hdr_len = images ? 16 : 8;
    size_t got;
    mn_status st = mn_idx_read(f, hdr, hdr_len, &got);
    if (st != MN_OK) return st;
    const uint32_t want = images ? MN_IDX_IMAGES_MAGIC : MN_IDX_LABELS_MAGIC;
    if (got >= 4 && mn_be32(hdr) != want) {
        const uint32_t other = images ? MN_IDX_LABELS_MAGIC : MN_IDX_IMAGES_MAGIC;
        return mn_error_set(MN_ERR_FORMAT,
                            "%s: bad magic 0x%08x, expected 0x%08x (IDX uint8 %s)%s", path,
                            (unsigned)mn_be32(hdr), (unsigned)want, mn_idx_kind(images),
                            mn_be32(hdr) == other
                                ? (images ? "; this looks like a label file"
                                          : "; this looks like an image file")
                                : "");
    }
    if (got < hdr_len)
        return mn_error_set(MN_ERR_FORMAT,
                            "%s: truncated header: expected %zu bytes, the file has %zu", path,
                            hdr_len, got);
    f->n = mn_be32(hdr + 4);
    if (f->n == 0)
        return mn_error_set(MN_ERR_FORMAT, "%s: the header declares no %s", path,
                            mn_idx_kind(images));
    f->item_bytes = 1;
    if (images) {
        f->rows = mn_be32(hdr + 8);
        f->cols = mn_be32(hdr + 12);
        if (f->rows == 0 || f->cols == 0 || f->rows > MN_IDX_MAX_SIDE ||
            f->cols > MN_IDX_MAX_SIDE)
            return mn_error_set(MN_ERR_FORMAT, "%s: implausible image size %ux%u in the header",
                                path, (unsigned)f->rows, (unsigned)f->cols);
        f->item_bytes = (size_t)f->rows * f->cols;
    }
    return MN_OK;
}

/* Reads the next `count` items, failing with a message that says what the header promised
 * when the file ends early. */
static mn_status mn_idx_next(mn_idx_file *f, void *buf, size_t count) {
    size_t got;
    mn_status st = mn_idx_read(f, buf, count * f->item_bytes, &got);
    if (st != MN_OK) return st;
    if (got < count * f->item_bytes) {
        size_t complete = f->items_read + got / f->item_bytes;
        if (f->images)
            return mn_error_set(MN_ERR_FORMAT,
                                "%s: truncated: the header declares %u images of %ux%u "
                                "(%llu bytes of pixels) but the data ends after %zu of them",
                                f->path, (unsigned)f->n, (unsigned)f->rows, (unsigned)f->cols,
                                (unsigned long long)f->n * f->item_bytes, complete);
        return mn_error_set(MN_ERR_FORMAT,
                            "%s: truncated: the header declares %u labels but the data ends "
                            "after %zu of them",
                            f->path, (unsigned)f->n, complete);
    }
    f->items_read += count;
    return MN_OK;
}

/* After the last declared item: anything more means the header does not describe the data
 * (wrong dimensions, two files concatenated), which would silently shift every image. */
static mn_status mn_idx_expect_end(mn_idx_file *f) {
    unsigned char extra;
    size_t got;
    mn_status st = mn_idx_read(f, &extra, 1, &got);
    if (st != MN_OK) return st;
    if (got != 0)
        return mn_error_set(MN_ERR_FORMAT, "%s: has data after the %u %s its header declares",
                            f->path, (unsigned)f->n, mn_idx_kind(f->images));
    return MN_OK;
}

/* Pass 1 over a label file, through a handle of its own: checks it is complete and that
 * every label is below `bound` (the number of class names given, or no bound); raises
 * *max_label to the largest label. */
static mn_status mn_idx_scan_labels(const char *path, int bound, int *max_label) {
    mn_idx_file f;
    unsigned char buf[65536];
    mn_status st = mn_idx_open(&f, path, 0);
    while (st == MN_OK && f.items_read < f.n) {
        size_t base = f.items_read;
        size_t b = f.n - f.items_read < sizeof buf ? f.n - f.items_read : sizeof buf;
        if ((st = mn_idx_next(&f, buf, b)) != MN_OK) break;
        for (size_t i = 0; i < b; i++) {
            if (buf[i] >= bound) {
                st = mn_error_set(MN_ERR_FORMAT,
                                  "%s: label %zu is %d, but only %d class names were given",
                                  path, base + i, buf[i], bound);
                break;
            }
            if (buf[i] > *max_label) *max_label = buf[i];
        }
    }
    if (st == MN_OK) st = mn_idx_expect_end(&f);
    mn_idx_close(&f);
    return st;
}

/* Streams the first `n` image/label pairs of two open IDX files into one split. */
static mn_status mn_idx_stream(mn_idx_file *img, mn_idx_file *lab, size_t n,
                               mn_dataset_writer *w, mn_split split,
                               const mn_import_idx_options *o) {
    size_t block = MN_IDX_BLOCK_BYTES / img->item_bytes;
    if (block > MN_IDX_BLOCK_IMAGES) block = MN_IDX_BLOCK_IMAGES;
    if (block == 0) block = 1;
    uint8_t *pixels = malloc(block * img->item_bytes);
    uint8_t *raw = malloc(block);
    int32_t *labels = malloc(block * sizeof *labels);
    char what[32];
    snprintf(what, sizeof what, "%s images", mn_split_name(split));
    mn_status st = MN_OK;
    if (!pixels || !raw || !labels)
        st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for a block of %zu images", img->path,
                          block);
    if (st == MN_OK && o->progress) o->progress(o->progress_user, what, 0, n);
    for (size_t done = 0; st == MN_OK && done < n;) {
        size_t b = n - done < block ? n - done : block;
        if ((st = mn_idx_next(img, pixels, b)) != MN_OK) break;
        if ((st = mn_idx_next(lab, raw, b)) != MN_OK) break;
        for (size_t i = 0; i < b; i++) labels[i] = raw[i];
        if ((st = mn_dataset_writer_append(w, split, pixels, labels, b)) != MN_OK) break;
        done += b;
        if (o->progress) o->progress(o->progress_user, what, done, n);
    }
    free(labels);
    free(raw);
    free(pixels);
    return st;
}

static mn_status mn_check_import_options(const mn_import_idx_options *o) {
    if (!o) return mn_error_set(MN_ERR_INVALID_ARG, "mn_import_idx: NULL options");
    if (!o->train_images || !o->train_labels)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "mn_import_idx: train images and labels are required");
    if (!o->output) return mn_error_set(MN_ERR_INVALID_ARG, "mn_import_idx: no output path");
    if (!o->test_images != !o->test_labels)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "mn_import_idx: test images and labels go together (got %s only)",
                            o->test_images ? o->test_images : o->test_labels);
    if (o->n_class_names < 0 || o->n_class_names > MN_DATASET_MAX_CLASSES ||
        (o->n_class_names > 0 && !o->class_names))
        return mn_error_set(MN_ERR_INVALID_ARG, "mn_import_idx: invalid class names (%d)",
                            o->n_class_names);
    return MN_OK;
}

/* Checks that an image file and its label file describe the same number of items. */
static mn_status mn_check_pair(const mn_idx_file *img, const mn_idx_file *lab) {
    if (img->n != lab->n)
        return mn_error_set(MN_ERR_FORMAT, "%s has %u images but %s has %u labels", img->path,
                            (unsigned)img->n, lab->path, (unsigned)lab->n);
    return MN_OK;
}

mn_status mn_import_idx(const mn_import_idx_options *o) {
    mn_status st = mn_check_import_options(o);
    if (st != MN_OK) return st;
    const int has_test = o->test_images != NULL;
    mn_idx_file img[2], lab[2];
    memset(img, 0, sizeof img);
    memset(lab, 0, sizeof lab);
    mn_dataset_writer *w = NULL;
    char source[1024];

    /* 1. Headers of all files first: mismatches fail before any long pass. */
    if ((st = mn_idx_open(&img[0], o->train_images, 1)) != MN_OK ||
        (st = mn_idx_open(&lab[0], o->train_labels, 0)) != MN_OK ||
        (st = mn_check_pair(&img[0], &lab[0])) != MN_OK)
        goto done;
    if (has_test) {
        if ((st = mn_idx_open(&img[1], o->test_images, 1)) != MN_OK ||
            (st = mn_idx_open(&lab[1], o->test_labels, 0)) != MN_OK ||
            (st = mn_check_pair(&img[1], &lab[1])) != MN_OK)
            goto done;
        if (img[1].rows != img[0].rows || img[1].cols != img[0].cols) {
            st = mn_error_set(MN_ERR_FORMAT, "%s has %ux%u images but %s has %ux%u",
                              o->test_images, (unsigned)img[1].rows, (unsigned)img[1].cols,
                              o->train_images, (unsigned)img[0].rows, (unsigned)img[0].cols);
            goto done;
        }
    }

    /* 2. The class count, from every label of both splits (not only the first `limit`),
     * so that a limited import has the same classes as the full one. */
    int max_label = -1;
    const int bound = o->n_class_names > 0 ? o->n_class_names : INT_MAX;
    if ((st = mn_idx_scan_labels(o->train_labels, bound, &max_label)) != MN_OK) goto done;
    if (has_test && (st = mn_idx_scan_labels(o->test_labels, bound, &max_label)) != MN_OK)
        goto done;
    const int classes = o->n_class_names > 0 ? o->n_class_names : max_label + 1;

    /* 3. Stream the images. */
    const size_t n_train = o->limit && o->limit < img[0].n ? o->limit : img[0].n;
    if (o->limit)
        snprintf(source, sizeof source, "IDX import of %s (first %zu of %u)%s%s",
                 o->train_images, n_train, (unsigned)img[0].n, has_test ? " and " : "",
                 has_test ? o->test_images : "");
    else
        snprintf(source, sizeof source, "IDX import of %s%s%s", o->train_images,
                 has_test ? " and " : "", has_test ? o->test_images : "");
    mn_dataset_writer_options wo = {
        .shape = {(int)img[0].rows, (int)img[0].cols, 1},
        .classes = classes,
        .class_names = o->n_class_names > 0 ? o->class_names : NULL,
        .source = source,
        .stop = o->stop,
    };
    if ((st = mn_dataset_writer_create(o->output, &wo, &w)) != MN_OK) goto done;
    for (int s = 0; s < 1 + has_test; s++) {
        /* lab[s] is still just past its header: the scan read the file through a handle
         * of its own. */
        const size_t n = s == 0 ? n_train : img[s].n;
        if ((st = mn_idx_stream(&img[s], &lab[s], n, w, (mn_split)s, o)) != MN_OK) goto done;
        /* Test files are read whole; check they end where their headers say. A limited
         * train import stops early and, by design, never reads the rest. */
        if (n == img[s].n && ((st = mn_idx_expect_end(&img[s])) != MN_OK ||
                              (st = mn_idx_expect_end(&lab[s])) != MN_OK))
            goto done;
    }
    st = mn_dataset_writer_commit(w);
    w = NULL; /* commit frees the writer, on failure too */

done:
    if (w) mn_dataset_writer_abort(w);
    for (int s = 0; s < 2; s++) {
        mn_idx_close(&img[s]);
        mn_idx_close(&lab[s]);
    }
    return st;
}
