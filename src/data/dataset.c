/* Reader of the dataset cache (layout: docs/dataset-format.md).
 * Open validates everything that can be checked without reading the pixels, so that a
 * training run fails at start-up with a precise message instead of mid-epoch; labels are
 * validated as they are read because checking them at open would cost a full pass. */
#include "mcunas/dataset.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/h5util.h"
#include "data/dataset_names.h"

/* Chunk cache of an image dataset: four chunks, at least 8 MiB, at most 256 MiB. HDF5's
 * default (1 MiB) holds one chunk of 256 images of 32x32x3 (786 KiB): a batch that
 * straddles a chunk boundary, or any read of a compressed file, would then fetch (and
 * inflate) the same chunk again on every call. */
#define MN_READ_CACHE_MIN ((size_t)8 << 20)
#define MN_READ_CACHE_MAX ((size_t)256 << 20)

typedef struct mn_split_handles {
    hid_t images, labels; /* -1 when the split is absent */
} mn_split_handles;

struct mn_dataset {
    char *path;
    hid_t file;
    mn_dataset_info info;
    char **class_names; /* info.classes entries, or NULL when the file has none */
    mn_split_handles split[MN_SPLITS];
    size_t cache_bytes; /* image chunk cache; SIZE_MAX: sized by mn_image_cache */
};

const char *mn_split_name(mn_split split) {
    switch (split) {
    case MN_SPLIT_TRAIN: return "train";
    case MN_SPLIT_TEST: return "test";
    case MN_SPLIT_VAL: return "val";
    }
    return "unknown";
}

/* Validates rank, dtype and dims of one dataset. `want` holds the expected trailing dims
 * (all but the first); dims[0] comes back in *n. */
static mn_status mn_check_dataset(const char *path, const char *obj, hid_t dset, int rank,
                                  const hsize_t *want, int is_images, hsize_t *n) {
    char tn[64];
    hsize_t dims[H5S_MAX_RANK];
    mn_status st = MN_OK;
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    if (type < 0 || space < 0) {
        st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot inspect %s", path, obj);
        goto done;
    }
    mn_h5_type_name(type, tn, sizeof tn);
    if (is_images) {
        if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) != 1 ||
            H5Tget_sign(type) != H5T_SGN_NONE) {
            st = mn_error_set(MN_ERR_FORMAT, "%s: %s has type %s, expected uint8", path, obj, tn);
            goto done;
        }
    } else if (H5Tget_class(type) != H5T_INTEGER) {
        st = mn_error_set(MN_ERR_FORMAT, "%s: %s has type %s, expected an integer type", path,
                          obj, tn);
        goto done;
    }
    int r = H5Sget_simple_extent_ndims(space);
    if (r != rank) {
        st = mn_error_set(MN_ERR_FORMAT, "%s: %s has rank %d, expected %d", path, obj, r, rank);
        goto done;
    }
    if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot read the shape of %s", path, obj);
        goto done;
    }
    for (int i = 1; i < rank; i++) {
        if (dims[i] != want[i - 1]) {
            st = mn_error_set(MN_ERR_FORMAT,
                              "%s: %s has shape [%llu,%llu,%llu,%llu] but the file's attributes "
                              "say %llux%llux%llu images",
                              path, obj, (unsigned long long)dims[0], (unsigned long long)dims[1],
                              (unsigned long long)dims[2], (unsigned long long)dims[3],
                              (unsigned long long)want[0], (unsigned long long)want[1],
                              (unsigned long long)want[2]);
            goto done;
        }
    }
    *n = dims[0];
done:
    mn_h5_close(space);
    mn_h5_close(type);
    return st;
}

/* The smallest prime >= n: HDF5 advises a prime number of hash slots. */
static size_t mn_next_prime(size_t n) {
    if (n < 3) return 3;
    for (n |= 1;; n += 2) {
        int prime = 1;
        for (size_t d = 3; d * d <= n && prime; d += 2) prime = n % d != 0;
        if (prime) return n;
    }
}

/* Chunk cache for an image dataset: 4 chunks within [MIN, MAX] bytes, and about 100 hash
 * slots per chunk that fits (HDF5's advice against collisions). */
static void mn_image_cache(hid_t file, const char *obj, size_t *bytes, size_t *slots) {
    double chunk = 0;
    hid_t dset = mn_h5_dopen(file, obj, H5P_DEFAULT);
    hid_t dcpl = dset < 0 ? -1 : H5Dget_create_plist(dset);
    hid_t type = dset < 0 ? -1 : H5Dget_type(dset);
    hsize_t dims[H5S_MAX_RANK];
    int rank = dcpl < 0 || H5Pget_layout(dcpl) != H5D_CHUNKED
                   ? -1
                   : H5Pget_chunk(dcpl, H5S_MAX_RANK, dims);
    if (rank > 0 && type >= 0) {
        chunk = (double)H5Tget_size(type);
        for (int i = 0; i < rank; i++) chunk *= (double)dims[i];
    }
    mn_h5_close(type);
    mn_h5_close(dcpl);
    mn_h5_close(dset);
    *bytes = MN_READ_CACHE_MIN;
    if (4 * chunk > (double)MN_READ_CACHE_MAX) *bytes = MN_READ_CACHE_MAX;
    else if (4 * chunk > (double)*bytes) *bytes = (size_t)(4 * chunk);
    size_t fit = chunk >= 1 ? (size_t)((double)*bytes / chunk) : 64; /* contiguous: unused */
    *slots = mn_next_prime(100 * (fit ? fit : 1));
}

static mn_status mn_open_split(mn_dataset *ds, mn_split split, int required) {
    const char *name = mn_split_name(split);
    const char *path = ds->path;
    char group[16], img_obj[32], lab_obj[32];
    snprintf(group, sizeof group, "/%s", name);
    snprintf(img_obj, sizeof img_obj, "/%s/images", name);
    snprintf(lab_obj, sizeof lab_obj, "/%s/labels", name);

    htri_t has = H5Lexists(ds->file, group, H5P_DEFAULT);
    if (has < 0) return mn_h5_fail(MN_ERR_FORMAT, "%s: cannot look up %s", path, group);
    if (has == 0) {
        if (required) return mn_error_set(MN_ERR_FORMAT, "%s: missing group %s", path, group);
        return MN_OK;
    }
    const char *objs[2] = {img_obj, lab_obj};
    for (int i = 0; i < 2; i++) {
        has = H5Lexists(ds->file, objs[i], H5P_DEFAULT);
        if (has <= 0) return mn_error_set(MN_ERR_FORMAT, "%s: missing dataset %s", path, objs[i]);
    }

    /* The cache is sized from the chunk, known only once the dataset is open, and set
     * only when opening: so open, look, and open again with the cache. */
    size_t cache_bytes, cache_slots;
    mn_image_cache(ds->file, img_obj, &cache_bytes, &cache_slots);
    if (ds->cache_bytes != SIZE_MAX) {
        cache_bytes = ds->cache_bytes;
        cache_slots = 101;
    }
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl < 0 || H5Pset_chunk_cache(dapl, cache_slots, cache_bytes, 0.75) < 0) {
        mn_status st = mn_h5_fail(MN_ERR_IO, "%s: cannot set up the chunk cache for %s", path,
                                  img_obj);
        mn_h5_close(dapl);
        return st;
    }
    ds->split[split].images = mn_h5_dopen(ds->file, img_obj, dapl);
    mn_status st = MN_OK;
    if (ds->split[split].images < 0)
        st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot open %s", path, img_obj);
    H5Pclose(dapl);
    if (st != MN_OK) return st;
    ds->split[split].labels = mn_h5_dopen(ds->file, lab_obj, H5P_DEFAULT);
    if (ds->split[split].labels < 0)
        return mn_h5_fail(MN_ERR_FORMAT, "%s: cannot open %s", path, lab_obj);

    const mn_shape s = ds->info.shape;
    const hsize_t hwc[3] = {(hsize_t)s.h, (hsize_t)s.w, (hsize_t)s.c};
    hsize_t n_img = 0, n_lab = 0;
    st = mn_check_dataset(path, img_obj, ds->split[split].images, 4, hwc, 1, &n_img);
    if (st != MN_OK) return st;
    st = mn_check_dataset(path, lab_obj, ds->split[split].labels, 1, NULL, 0, &n_lab);
    if (st != MN_OK) return st;
    if (n_lab != n_img)
        return mn_error_set(MN_ERR_FORMAT, "%s: %s has %llu entries but %s has %llu", path,
                            lab_obj, (unsigned long long)n_lab, img_obj,
                            (unsigned long long)n_img);
    ds->info.count[split] = (size_t)n_img;
    return MN_OK;
}

/* Reads the optional /class_names dataset: rank 1, `classes` strings, fixed or variable. */
static mn_status mn_read_class_names(mn_dataset *ds) {
    const char *path = ds->path, *obj = MN_H5_CLASS_NAMES;
    htri_t has = H5Lexists(ds->file, obj, H5P_DEFAULT);
    if (has < 0) return mn_h5_fail(MN_ERR_FORMAT, "%s: cannot look up %s", path, obj);
    if (has == 0) return MN_OK;

    mn_status st = MN_OK;
    hid_t dset = mn_h5_dopen(ds->file, obj, H5P_DEFAULT);
    hid_t ftype = dset < 0 ? -1 : H5Dget_type(dset);
    hid_t space = dset < 0 ? -1 : H5Dget_space(dset);
    hid_t mtype = -1;
    char *fixed = NULL;
    char **vlen = NULL;
    hsize_t n = 0;
    const size_t classes = (size_t)ds->info.classes;
    if (dset < 0 || ftype < 0 || space < 0) {
        st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot open %s", path, obj);
        goto done;
    }
    if (H5Tget_class(ftype) != H5T_STRING) {
        char tn[64];
        mn_h5_type_name(ftype, tn, sizeof tn);
        st = mn_error_set(MN_ERR_FORMAT, "%s: %s has type %s, expected strings", path, obj, tn);
        goto done;
    }
    if (H5Sget_simple_extent_ndims(space) != 1 || H5Sget_simple_extent_dims(space, &n, NULL) < 0 ||
        n != classes) {
        st = mn_error_set(MN_ERR_FORMAT, "%s: %s must hold one name per class (%zu)", path, obj,
                          classes);
        goto done;
    }
    ds->class_names = calloc(classes, sizeof *ds->class_names);
    mtype = H5Tcopy(H5T_C_S1);
    if (!ds->class_names || mtype < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) {
        st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for %s", path, obj);
        goto done;
    }
    if (H5Tis_variable_str(ftype) > 0) {
        vlen = calloc(classes, sizeof *vlen);
        if (!vlen || H5Tset_size(mtype, H5T_VARIABLE) < 0) {
            st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for %s", path, obj);
            goto done;
        }
        if (H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, vlen) < 0) {
            st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot read %s", path, obj);
            goto done;
        }
        for (size_t i = 0; i < classes; i++) {
            ds->class_names[i] = strdup(vlen[i] ? vlen[i] : "");
            if (!ds->class_names[i]) st = mn_error_set(MN_ERR_NOMEM, "%s: no memory", path);
        }
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, vlen);
    } else {
        const size_t size = H5Tget_size(ftype) + 1; /* room for a terminator */
        fixed = calloc(classes, size);
        if (!fixed || H5Tset_size(mtype, size) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLTERM) < 0) {
            st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for %s", path, obj);
            goto done;
        }
        if (H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed) < 0) {
            st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot read %s", path, obj);
            goto done;
        }
        for (size_t i = 0; i < classes; i++) {
            fixed[i * size + size - 1] = '\0';
            ds->class_names[i] = strdup(fixed + i * size);
            if (!ds->class_names[i]) st = mn_error_set(MN_ERR_NOMEM, "%s: no memory", path);
        }
    }
done:
    free(vlen);
    free(fixed);
    mn_h5_close(mtype);
    mn_h5_close(space);
    mn_h5_close(ftype);
    mn_h5_close(dset);
    return st;
}

/* Root attributes: format marker and version first, so that a file of another kind or a
 * newer version is reported as such rather than as a missing attribute. */
static mn_status mn_read_root_attrs(mn_dataset *ds) {
    const char *path = ds->path;
    char *format = NULL, *source = NULL;
    int v = 0;
    mn_status st = mn_h5_read_str_attr(ds->file, path, "format", &format);
    if (st != MN_OK) {
        if (st == MN_ERR_FORMAT && H5Aexists(ds->file, "format") == 0)
            return mn_error_set(MN_ERR_FORMAT,
                                "%s: not an mcunas dataset (the root has no 'format' attribute)",
                                path);
        return st;
    }
    if (strcmp(format, MN_H5_FORMAT_NAME) != 0) {
        st = mn_error_set(MN_ERR_FORMAT, "%s: attribute 'format' is '%s', expected '%s'", path,
                          format, MN_H5_FORMAT_NAME);
        free(format);
        return st;
    }
    free(format);

    if ((st = mn_h5_read_int_attr(ds->file, path, "format_version", &v)) != MN_OK) return st;
    if (v > MN_DATASET_FORMAT_VERSION)
        return mn_error_set(MN_ERR_UNSUPPORTED,
                            "%s: format_version %d is newer than this build reads (version %d); "
                            "upgrade mcunas or re-import the dataset",
                            path, v, MN_DATASET_FORMAT_VERSION);
    if (v < 1) return mn_error_set(MN_ERR_FORMAT, "%s: invalid format_version %d", path, v);
    ds->info.format_version = v;

    if ((st = mn_h5_read_int_attr(ds->file, path, "classes", &ds->info.classes)) != MN_OK)
        return st;
    if (ds->info.classes < 1 || ds->info.classes > MN_DATASET_MAX_CLASSES)
        return mn_error_set(MN_ERR_FORMAT, "%s: attribute 'classes' = %d is outside [1, %d]",
                            path, ds->info.classes, MN_DATASET_MAX_CLASSES);
    const char *dim_names[3] = {"height", "width", "channels"};
    int *dims[3] = {&ds->info.shape.h, &ds->info.shape.w, &ds->info.shape.c};
    for (int i = 0; i < 3; i++) {
        if ((st = mn_h5_read_int_attr(ds->file, path, dim_names[i], dims[i])) != MN_OK) return st;
        if (*dims[i] < 1)
            return mn_error_set(MN_ERR_FORMAT, "%s: attribute '%s' = %d must be positive", path,
                                dim_names[i], *dims[i]);
    }
    /* 'source' is informational: absent is fine, present must be a string. */
    if (H5Aexists(ds->file, "source") > 0) {
        if ((st = mn_h5_read_str_attr(ds->file, path, "source", &source)) != MN_OK) return st;
        snprintf(ds->info.source, sizeof ds->info.source, "%s", source);
        free(source);
    }
    return MN_OK;
}

mn_status mn_dataset_open(const char *path, mn_dataset **out) {
    return mn_dataset_open_cached(path, SIZE_MAX, out);
}

mn_status mn_dataset_open_cached(const char *path, size_t cache_bytes, mn_dataset **out) {
    if (!path || !out) return mn_error_set(MN_ERR_INVALID_ARG, "mn_dataset_open: NULL argument");
    *out = NULL;
    mn_h5_quiet();

    /* Check plain-file access first: HDF5 would report a missing file as "not HDF5". */
    struct stat sb;
    FILE *probe = fopen(path, "rb");
    if (!probe) return mn_error_set(MN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int is_dir = fstat(fileno(probe), &sb) == 0 && S_ISDIR(sb.st_mode);
    fclose(probe);
    if (is_dir) return mn_error_set(MN_ERR_IO, "%s: is a directory", path);
    htri_t is_h5 = H5Fis_hdf5(path);
    if (is_h5 < 0) return mn_h5_fail(MN_ERR_IO, "%s: cannot read", path);
    if (is_h5 == 0) return mn_error_set(MN_ERR_FORMAT, "%s: not an HDF5 file", path);

    mn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return mn_error_set(MN_ERR_NOMEM, "%s: no memory to open", path);
    }
    for (int i = 0; i < MN_SPLITS; i++) ds->split[i].images = ds->split[i].labels = -1;
    ds->cache_bytes = cache_bytes;
    ds->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    mn_status st;
    if (ds->file < 0) {
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot open as HDF5", path);
    } else if ((st = mn_read_root_attrs(ds)) == MN_OK && (st = mn_read_class_names(ds)) == MN_OK &&
               (st = mn_open_split(ds, MN_SPLIT_TRAIN, 1)) == MN_OK) {
        if ((st = mn_open_split(ds, MN_SPLIT_TEST, 0)) == MN_OK) st = mn_open_split(ds, MN_SPLIT_VAL, 0);
    }
    if (st != MN_OK) {
        mn_dataset_close(ds);
        return st;
    }
    *out = ds;
    return MN_OK;
}

void mn_dataset_close(mn_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < MN_SPLITS; i++) {
        mn_h5_close(ds->split[i].images);
        mn_h5_close(ds->split[i].labels);
    }
    mn_h5_close(ds->file);
    if (ds->class_names)
        for (int i = 0; i < ds->info.classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    free(ds->path);
    free(ds);
}

const mn_dataset_info *mn_dataset_get_info(const mn_dataset *ds) { return ds ? &ds->info : NULL; }

const char *mn_dataset_class_name(const mn_dataset *ds, int i) {
    if (!ds || !ds->class_names || i < 0 || i >= ds->info.classes) return "";
    return ds->class_names[i] ? ds->class_names[i] : "";
}

/* Reads rows [start, start+count) of a dataset whose rows are `row` elements of `mtype`. */
static mn_status mn_read_rows(const mn_dataset *ds, hid_t dset, const char *obj, int rank,
                              size_t start, size_t count, hid_t mtype, void *buf) {
    mn_status st = MN_OK;
    const mn_shape s = ds->info.shape;
    hsize_t off[4] = {(hsize_t)start, 0, 0, 0};
    hsize_t cnt[4] = {(hsize_t)count, (hsize_t)s.h, (hsize_t)s.w, (hsize_t)s.c};
    hid_t fspace = H5Dget_space(dset);
    hid_t mspace = H5Screate_simple(rank, cnt, NULL);
    if (fspace < 0 || mspace < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
        H5Dread(dset, mtype, mspace, fspace, H5P_DEFAULT, buf) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot read %s [%zu, %zu)", ds->path, obj, start,
                        start + count);
    mn_h5_close(mspace);
    mn_h5_close(fspace);
    return st;
}

mn_status mn_dataset_read(mn_dataset *ds, mn_split split, size_t start, size_t count,
                          uint8_t *images, int32_t *labels) {
    if (!ds) return mn_error_set(MN_ERR_INVALID_ARG, "mn_dataset_read: NULL dataset");
    if ((unsigned)split >= MN_SPLITS)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: invalid split %d", ds->path, (int)split);
    const char *name = mn_split_name(split);
    if (ds->split[split].images < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: has no %s split", ds->path, name);
    const size_t n = ds->info.count[split];
    if (start > n || count > n - start)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: range [%zu, %zu) is outside /%s, which has %zu images",
                            ds->path, start, start + count, name, n);
    if (count == 0) return MN_OK;
    mn_h5_quiet();

    char obj[32];
    mn_status st;
    if (images) {
        snprintf(obj, sizeof obj, "/%s/images", name);
        st = mn_read_rows(ds, ds->split[split].images, obj, 4, start, count, H5T_NATIVE_UINT8,
                          images);
        if (st != MN_OK) return st;
    }
    if (labels) {
        snprintf(obj, sizeof obj, "/%s/labels", name);
        /* HDF5 converts any stored integer width to int32, clipping out-of-range values,
         * which then fail the range check below like any other bad label. */
        st = mn_read_rows(ds, ds->split[split].labels, obj, 1, start, count, H5T_NATIVE_INT32,
                          labels);
        if (st != MN_OK) return st;
        for (size_t i = 0; i < count; i++) {
            if (labels[i] < 0 || labels[i] >= ds->info.classes)
                return mn_error_set(MN_ERR_FORMAT, "%s: %s[%zu] = %d is outside [0, %d)",
                                    ds->path, obj, start + i, (int)labels[i], ds->info.classes);
        }
    }
    return MN_OK;
}

mn_status mn_dataset_storage_info(mn_dataset *ds, mn_split split, mn_dataset_storage *out) {
    memset(out, 0, sizeof *out);
    if (!ds || (unsigned)split >= MN_SPLITS)
        return mn_error_set(MN_ERR_INVALID_ARG, "mn_dataset_storage_info: bad argument");
    if (ds->split[split].images < 0) return MN_OK;
    mn_h5_quiet();
    hid_t dcpl = H5Dget_create_plist(ds->split[split].images);
    if (dcpl < 0)
        return mn_h5_fail(MN_ERR_FORMAT, "%s: cannot inspect /%s/images", ds->path,
                          mn_split_name(split));
    hsize_t dims[H5S_MAX_RANK];
    if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, H5S_MAX_RANK, dims) >= 1)
        out->chunk_images = (size_t)dims[0];
    int nf = H5Pget_nfilters(dcpl);
    out->compressed = nf > 0;
    H5Pclose(dcpl);
    out->stored_bytes = (unsigned long long)H5Dget_storage_size(ds->split[split].images) +
                        (unsigned long long)H5Dget_storage_size(ds->split[split].labels);
    return MN_OK;
}
