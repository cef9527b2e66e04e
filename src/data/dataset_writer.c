/* Streaming writer of the dataset cache (layout: docs/dataset-format.md).
 * Everything goes to "<path>.tmp"; commit closes, fsyncs and renames it over `path`, so a
 * reader never sees a half-written cache and a crash or failure leaves any previous file at
 * `path` untouched. Every failure path removes the temporary file. */
#include "mcunas/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/h5util.h"
#include "data/dataset_names.h"

/* HDF5 refuses chunks of 4 GiB or more. */
#define MN_MAX_CHUNK_BYTES ((uint64_t)0xFFFFFFFFu)

typedef struct mn_writer_split {
    hid_t group, images, labels; /* -1 until the split is first appended to */
    size_t count;
} mn_writer_split;

struct mn_dataset_writer {
    char *path, *tmp;
    hid_t file;
    mn_shape shape;
    int classes;
    int chunk_images;
    int deflate_level;
    int failed; /* an append failed: commit must refuse rather than publish a partial file */
    volatile int *stop;
    mn_writer_split split[MN_SPLITS];
};

/* Closes every HDF5 handle of the writer, the file last. */
static void mn_writer_close_all(mn_dataset_writer *w) {
    for (int i = 0; i < MN_SPLITS; i++) {
        w->split[i].images = mn_h5_close(w->split[i].images);
        w->split[i].labels = mn_h5_close(w->split[i].labels);
        w->split[i].group = mn_h5_close(w->split[i].group);
    }
    w->file = mn_h5_close(w->file);
}

/* On a failure: diverts further writes, removes the temporary file's name and marks the
 * writer failed. The handles stay open until the caller's abort or commit frees w, but no
 * .tmp is left behind even by a caller that forgets to. */
static void mn_writer_discard(mn_dataset_writer *w) {
    if (!w->failed) mn_h5_divert(w->file);
    w->failed = 1;
    if (w->tmp) remove(w->tmp);
    free(w->tmp);
    w->tmp = NULL;
}

void mn_dataset_writer_abort(mn_dataset_writer *w) {
    if (!w) return;
    mn_writer_close_all(w); /* close first: the name can then be removed cleanly */
    if (w->tmp) remove(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w);
}

/* Ends the writer on a failure: closes, removes the temporary file and frees w, keeping
 * the current message. An I/O failure may recur on the close, so writes are diverted
 * first (mn_h5_divert). */
static mn_status mn_writer_fail(mn_dataset_writer *w, mn_status st) {
    if (st == MN_ERR_IO) mn_writer_discard(w);
    mn_dataset_writer_abort(w);
    return st;
}

static mn_status mn_write_class_names(mn_dataset_writer *w, const char *const *names) {
    mn_status st = MN_OK;
    hsize_t n = (hsize_t)w->classes;
    for (int i = 0; i < w->classes; i++)
        if (!names[i])
            return mn_error_set(MN_ERR_INVALID_ARG, "%s: class name %d is NULL", w->path, i);
    /* A dataset rather than an attribute: attributes are limited to 64 KiB in the default
     * file format, which MN_DATASET_MAX_CLASSES names could exceed. Variable-length UTF-8
     * strings are what h5py writes for str and reads back as str. */
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t dset = -1;
    if (type < 0 || space < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
        H5Tset_cset(type, H5T_CSET_UTF8) < 0 ||
        (dset = H5Dcreate2(w->file, MN_H5_CLASS_NAMES, type, space, H5P_DEFAULT, H5P_DEFAULT,
                           H5P_DEFAULT)) < 0 ||
        H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot write %s to %s", w->path, MN_H5_CLASS_NAMES,
                        w->tmp);
    mn_h5_close(dset);
    mn_h5_close(space);
    mn_h5_close(type);
    return st;
}

static mn_status mn_check_options(const char *path, const mn_dataset_writer_options *o) {
    if (o->shape.h < 1 || o->shape.w < 1 || o->shape.c < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: image shape %dx%dx%d must be positive",
                            path, o->shape.h, o->shape.w, o->shape.c);
    if (o->classes < 1 || o->classes > MN_DATASET_MAX_CLASSES)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: classes = %d is outside [1, %d]", path,
                            o->classes, MN_DATASET_MAX_CLASSES);
    if (o->chunk_images < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: chunk_images = %d is negative", path,
                            o->chunk_images);
    if (o->deflate_level < 0 || o->deflate_level > 9)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: deflate_level = %d is outside [0, 9]", path,
                            o->deflate_level);
    uint64_t chunk = o->chunk_images ? (uint64_t)o->chunk_images : MN_DATASET_DEFAULT_CHUNK;
    uint64_t bytes = chunk * (uint64_t)o->shape.h * (uint64_t)o->shape.w * (uint64_t)o->shape.c;
    if (bytes > MN_MAX_CHUNK_BYTES)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: a chunk of %llu images of %dx%dx%d is %llu bytes, over HDF5's "
                            "4 GiB limit; use fewer images per chunk",
                            path, (unsigned long long)chunk, o->shape.h, o->shape.w, o->shape.c,
                            (unsigned long long)bytes);
    if (o->deflate_level > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
        return mn_error_set(MN_ERR_UNSUPPORTED, "%s: this HDF5 build has no deflate filter",
                            path);
    return MN_OK;
}

mn_status mn_dataset_writer_create(const char *path, const mn_dataset_writer_options *opts,
                                   mn_dataset_writer **out) {
    if (!path || !opts || !out)
        return mn_error_set(MN_ERR_INVALID_ARG, "mn_dataset_writer_create: NULL argument");
    *out = NULL;
    mn_h5_quiet();
    mn_status st = mn_check_options(path, opts);
    if (st != MN_OK) return st;

    mn_dataset_writer *w = calloc(1, sizeof *w);
    const size_t len = strlen(path);
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(len + 5))) {
        if (w) free(w->path);
        free(w);
        return mn_error_set(MN_ERR_NOMEM, "%s: no memory for a writer", path);
    }
    mn_file_tmp_name(path, w->tmp, len + 5); /* the buffer fits it exactly */
    w->file = -1;
    for (int i = 0; i < MN_SPLITS; i++) w->split[i].group = w->split[i].images = w->split[i].labels = -1;
    w->shape = opts->shape;
    w->classes = opts->classes;
    w->chunk_images = opts->chunk_images ? opts->chunk_images : MN_DATASET_DEFAULT_CHUNK;
    w->deflate_level = opts->deflate_level;
    w->stop = opts->stop;

    /* H5F_CLOSE_STRONG: closing the file closes anything still open in it, so that commit
     * never renames a file whose data HDF5 has not yet flushed. A stale .tmp from a crashed
     * run is simply truncated. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* sec2 (HDF5's default POSIX driver) named explicitly: mn_h5_divert relies on its
     * handle being the file descriptor. */
    if (fapl >= 0 && H5Pset_fapl_sec2(fapl) >= 0 &&
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0)
        w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (w->file < 0) st = mn_h5_fail(MN_ERR_IO, "%s: cannot create %s", path, w->tmp);
    mn_h5_close(fapl);
    if (st != MN_OK) return mn_writer_fail(w, st);
    if ((st = mn_h5_write_str_attr(w->file, w->tmp, "format", MN_H5_FORMAT_NAME)) != MN_OK ||
        (st = mn_h5_write_int_attr(w->file, w->tmp, "format_version",
                                   MN_DATASET_FORMAT_VERSION)) != MN_OK ||
        (st = mn_h5_write_int_attr(w->file, w->tmp, "classes", w->classes)) != MN_OK ||
        (st = mn_h5_write_int_attr(w->file, w->tmp, "height", w->shape.h)) != MN_OK ||
        (st = mn_h5_write_int_attr(w->file, w->tmp, "width", w->shape.w)) != MN_OK ||
        (st = mn_h5_write_int_attr(w->file, w->tmp, "channels", w->shape.c)) != MN_OK ||
        (st = mn_h5_write_str_attr(w->file, w->tmp, "source",
                                   opts->source ? opts->source : "")) != MN_OK)
        return mn_writer_fail(w, st);
    if (opts->class_names && (st = mn_write_class_names(w, opts->class_names)) != MN_OK)
        return mn_writer_fail(w, st);
    *out = w;
    return MN_OK;
}

/* Creates one extendible dataset of a split: [0, trailing...] growing along dim 0, chunked
 * by whole images so that a range read touches only the chunks that hold it. */
static mn_status mn_create_rows(mn_dataset_writer *w, hid_t group, const char *obj, hid_t ftype,
                                int rank, const hsize_t *row_dims, size_t row_bytes, hid_t *out) {
    hsize_t dims[4] = {0}, maxdims[4] = {H5S_UNLIMITED}, chunk[4] = {(hsize_t)w->chunk_images};
    for (int i = 1; i < rank; i++) dims[i] = maxdims[i] = chunk[i] = row_dims[i - 1];
    mn_status st = MN_OK;
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    /* Fill values are never read (every row is written before commit), so skip writing
     * them; no timestamps, so the same input gives the same bytes. The writer's chunk
     * cache holds a couple of chunks, so appends not aligned to chunks do not write a
     * partial chunk twice (and, when compressed, do not re-deflate it). */
    size_t chunk_bytes = row_bytes * (size_t)w->chunk_images;
    size_t cache = chunk_bytes * 2 > ((size_t)16 << 20) ? chunk_bytes * 2 : ((size_t)16 << 20);
    const char *name = strrchr(obj, '/') + 1;
    *out = -1;
    if (space < 0 || dcpl < 0 || dapl < 0 || H5Pset_chunk(dcpl, rank, chunk) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0 ||
        (w->deflate_level > 0 && H5Pset_deflate(dcpl, (unsigned)w->deflate_level) < 0) ||
        H5Pset_chunk_cache(dapl, 521, cache, 1.0) < 0 ||
        (*out = H5Dcreate2(group, name, ftype, space, H5P_DEFAULT, dcpl, dapl)) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot create %s in %s", w->path, obj, w->tmp);
    mn_h5_close(dapl);
    mn_h5_close(dcpl);
    mn_h5_close(space);
    return st;
}

static mn_status mn_writer_open_split(mn_dataset_writer *w, mn_split split) {
    mn_writer_split *s = &w->split[split];
    const char *name = mn_split_name(split);
    const hsize_t hwc[3] = {(hsize_t)w->shape.h, (hsize_t)w->shape.w, (hsize_t)w->shape.c};
    char obj[32];
    mn_status st;
    s->group = H5Gcreate2(w->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (s->group < 0)
        return mn_h5_fail(MN_ERR_IO, "%s: cannot create /%s in %s", w->path, name, w->tmp);
    snprintf(obj, sizeof obj, "/%s/images", name);
    st = mn_create_rows(w, s->group, obj, H5T_STD_U8LE, 4, hwc, mn_shape_count(w->shape),
                        &s->images);
    if (st != MN_OK) return st;
    snprintf(obj, sizeof obj, "/%s/labels", name);
    return mn_create_rows(w, s->group, obj, H5T_STD_I32LE, 1, NULL, sizeof(int32_t), &s->labels);
}

/* Grows dataset `obj` of the split to n + count rows and writes `buf` into the new rows. */
static mn_status mn_append_rows(mn_dataset_writer *w, hid_t dset, const char *obj, int rank,
                                size_t n, size_t count, hid_t mtype, const void *buf) {
    const mn_shape sh = w->shape;
    hsize_t size[4] = {(hsize_t)(n + count), (hsize_t)sh.h, (hsize_t)sh.w, (hsize_t)sh.c};
    hsize_t off[4] = {(hsize_t)n, 0, 0, 0};
    hsize_t cnt[4] = {(hsize_t)count, (hsize_t)sh.h, (hsize_t)sh.w, (hsize_t)sh.c};
    mn_status st = MN_OK;
    hid_t fspace = -1, mspace = -1;
    if (H5Dset_extent(dset, size) < 0 || (fspace = H5Dget_space(dset)) < 0 ||
        (mspace = H5Screate_simple(rank, cnt, NULL)) < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
        H5Dwrite(dset, mtype, mspace, fspace, H5P_DEFAULT, buf) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot append %zu rows to %s in %s", w->path, count, obj,
                        w->tmp);
    mn_h5_close(mspace);
    mn_h5_close(fspace);
    return st;
}

mn_status mn_dataset_writer_append(mn_dataset_writer *w, mn_split split,
                                   const uint8_t *images, const int32_t *labels, size_t count) {
    if (!w) return mn_error_set(MN_ERR_INVALID_ARG, "mn_dataset_writer_append: NULL writer");
    if ((unsigned)split >= MN_SPLITS)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: invalid split %d", w->path, (int)split);
    if (count == 0) return MN_OK;
    if (!images || !labels)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: append to %s needs images and labels",
                            w->path, mn_split_name(split));
    if (w->failed)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: an earlier append failed; abort the writer",
                            w->path);
    if (w->stop && *w->stop)
        return mn_error_set(MN_ERR_INTERRUPTED, "%s: stopped before it was complete", w->path);
    mn_h5_quiet();
    mn_writer_split *s = &w->split[split];
    const char *name = mn_split_name(split);
    /* Check before writing, so a bad label never reaches the file. Not a failure of the
     * writer: nothing was written, the caller may fix the batch and go on. */
    for (size_t i = 0; i < count; i++)
        if (labels[i] < 0 || labels[i] >= w->classes)
            return mn_error_set(MN_ERR_INVALID_ARG,
                                "%s: %s label %zu (image %zu of the split) = %d is outside "
                                "[0, %d)",
                                w->path, name, i, s->count + i, (int)labels[i], w->classes);
    char img_obj[32], lab_obj[32];
    snprintf(img_obj, sizeof img_obj, "/%s/images", name);
    snprintf(lab_obj, sizeof lab_obj, "/%s/labels", name);
    mn_status st = MN_OK;
    if ((s->images < 0 && (st = mn_writer_open_split(w, split)) != MN_OK) ||
        (st = mn_append_rows(w, s->images, img_obj, 4, s->count, count, H5T_NATIVE_UINT8,
                             images)) != MN_OK ||
        (st = mn_append_rows(w, s->labels, lab_obj, 1, s->count, count, H5T_NATIVE_INT32,
                             labels)) != MN_OK) {
        mn_writer_discard(w); /* a partly written batch cannot be undone: give up the file */
        return st;
    }
    s->count += count;
    return MN_OK;
}

mn_status mn_dataset_writer_commit(mn_dataset_writer *w) {
    if (!w) return mn_error_set(MN_ERR_INVALID_ARG, "mn_dataset_writer_commit: NULL writer");
    mn_h5_quiet();
    if (w->failed)
        return mn_writer_fail(w, mn_error_set(MN_ERR_INVALID_ARG,
                                              "%s: not committed: an earlier append failed",
                                              w->path));
    if (w->stop && *w->stop)
        return mn_writer_fail(w, mn_error_set(MN_ERR_INTERRUPTED,
                                              "%s: stopped before it was complete; not written",
                                              w->path));
    if (w->split[MN_SPLIT_TRAIN].count == 0)
        return mn_writer_fail(w, mn_error_set(MN_ERR_INVALID_ARG,
                                              "%s: not committed: no training images were "
                                              "appended",
                                              w->path));
    /* Flushing with everything still open is where the cached chunks and the metadata
     * reach the disk; a failure here (e.g. a full disk) is survivable, see
     * mn_h5_divert. The close that follows has little left to write. */
    if (H5Fflush(w->file, H5F_SCOPE_LOCAL) < 0) {
        mn_status st = mn_h5_fail(MN_ERR_IO, "%s: cannot finish writing %s", w->path, w->tmp);
        mn_writer_discard(w);
        return mn_writer_fail(w, st);
    }
    for (int i = 0; i < MN_SPLITS; i++) {
        w->split[i].images = mn_h5_close(w->split[i].images);
        w->split[i].labels = mn_h5_close(w->split[i].labels);
        w->split[i].group = mn_h5_close(w->split[i].group);
    }
    herr_t rc = H5Fclose(w->file);
    w->file = -1;
    if (rc < 0)
        return mn_writer_fail(w, mn_h5_fail(MN_ERR_IO, "%s: cannot finish writing %s", w->path,
                                            w->tmp));
    mn_status st = mn_file_publish(w->tmp, w->path);
    if (st) return mn_writer_fail(w, mn_error_prefix(st, "%s: ", w->path));
    free(w->tmp);
    w->tmp = NULL;
    mn_dataset_writer_abort(w); /* tmp is gone from w, so this only frees */
    return MN_OK;
}
