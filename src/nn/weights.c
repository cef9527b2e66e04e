/* Saving and loading trained parameters. */
#include "mcunas/weights.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/h5util.h"

#define MN_WEIGHTS_FORMAT_NAME "mcunas-weights"

static mn_status write_floats(hid_t file, const char *path, const char *name, const float *v,
                              size_t count) {
    hsize_t dims[1] = {count};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    mn_status st = MN_OK;
    if (ds < 0 || (count && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0))
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot write %s", path, name);
    /* A small dataset's values wait in HDF5's sieve buffer until the close writes them: its
     * failure (an I/O error, a full disk) is the write's. */
    if (ds >= 0 && H5Dclose(ds) < 0 && !st) st = mn_h5_fail(MN_ERR_IO, "%s: cannot write %s", path, name);
    mn_h5_close(space);
    return st;
}

mn_status mn_weights_save(const char *path, mn_net *net) {
    mn_h5_quiet();
    const mn_arch *a = mn_net_arch(net);
    const mn_net_plan *p = mn_net_get_plan(net);
    float *trainable = malloc((p->trainable + 1) * sizeof(float));
    float *state = malloc((p->state + 1) * sizeof(float));
    char tmp[MN_FILE_PATH_MAX];
    mn_status st = mn_file_tmp_name(path, tmp, sizeof tmp);
    if (st) goto done;
    if (!trainable || !state) {
        st = mn_error_set(MN_ERR_NOMEM, "no memory to save %zu parameters", p->trainable);
        goto done;
    }
    if ((st = mn_net_get_params(net, trainable, state))) goto done;
    /* sec2 named, not left to the default: mn_h5_divert takes its handle for the file's
     * descriptor. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = -1;
    if (fapl >= 0 && H5Pset_fapl_sec2(fapl) >= 0) file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) st = mn_h5_fail(MN_ERR_IO, "%s: cannot create file", tmp);
    mn_h5_close(fapl);
    if (st) {
        remove(tmp); /* created, then its first write failed */
        goto done;
    }
    if (!(st = mn_h5_write_str_attr(file, path, "format", MN_WEIGHTS_FORMAT_NAME)) &&
        !(st = mn_h5_write_int_attr(file, path, "format_version", MN_WEIGHTS_FORMAT_VERSION)) &&
        !(st = mn_h5_write_int_attr(file, path, "k", a->k)) &&
        !(st = mn_h5_write_int_attr(file, path, "cells", a->cells)) &&
        !(st = mn_h5_write_str_attr(file, path, "layout", mn_layout_name(a->layout))) &&
        !(st = mn_h5_write_int_attr(file, path, "height", a->input.h)) &&
        !(st = mn_h5_write_int_attr(file, path, "width", a->input.w)) &&
        !(st = mn_h5_write_int_attr(file, path, "channels", a->input.c)) &&
        !(st = mn_h5_write_int_attr(file, path, "classes", a->classes)) &&
        !(st = write_floats(file, path, "trainable", trainable, p->trainable)))
        st = write_floats(file, path, "state", state, p->state);
    /* The metadata reach the disk here; after a failure the rest is thrown away
     * (mn_h5_divert), since a failing H5Fclose brings HDF5 1.10 down at exit. */
    if (!st && H5Fflush(file, H5F_SCOPE_LOCAL) < 0) st = mn_h5_fail(MN_ERR_IO, "%s: cannot write %s", path, tmp);
    if (st) mn_h5_divert(file);
    if (H5Fclose(file) < 0 && !st) st = mn_h5_fail(MN_ERR_IO, "%s: cannot close %s", path, tmp);
    if (!st) st = mn_file_publish(tmp, path);
    if (st) remove(tmp);
done:
    free(trainable);
    free(state);
    return st;
}

static mn_status open_checked(const char *path, hid_t *out) {
    mn_h5_quiet();
    *out = -1;
    if (H5Fis_hdf5(path) <= 0) {
        FILE *f = fopen(path, "rb");
        if (!f) return mn_error_set(MN_ERR_IO, "%s: cannot open weight file", path);
        fclose(f);
        return mn_error_set(MN_ERR_FORMAT, "%s: not an HDF5 weight file", path);
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return mn_h5_fail(MN_ERR_IO, "%s: cannot open weight file", path);
    char *format = NULL;
    int version = 0;
    mn_status st = mn_h5_read_str_attr(file, path, "format", &format);
    if (!st && strcmp(format, MN_WEIGHTS_FORMAT_NAME) != 0)
        st = mn_error_set(MN_ERR_FORMAT, "%s: format is '%s', expected '%s'", path, format,
                          MN_WEIGHTS_FORMAT_NAME);
    free(format);
    if (!st) st = mn_h5_read_int_attr(file, path, "format_version", &version);
    if (!st && version != MN_WEIGHTS_FORMAT_VERSION)
        st = mn_error_set(MN_ERR_FORMAT, "%s: weight format version %d; this build reads %d",
                          path, version, MN_WEIGHTS_FORMAT_VERSION);
    if (st) {
        H5Fclose(file);
        return st;
    }
    *out = file;
    return MN_OK;
}

static mn_status read_arch(hid_t file, const char *path, mn_arch *arch) {
    int k, cells, h, w, c, classes;
    char *layout_name = NULL;
    mn_layout layout;
    mn_status st;
    if ((st = mn_h5_read_int_attr(file, path, "k", &k)) ||
        (st = mn_h5_read_int_attr(file, path, "cells", &cells)) ||
        (st = mn_h5_read_int_attr(file, path, "height", &h)) ||
        (st = mn_h5_read_int_attr(file, path, "width", &w)) ||
        (st = mn_h5_read_int_attr(file, path, "channels", &c)) ||
        (st = mn_h5_read_int_attr(file, path, "classes", &classes)) ||
        (st = mn_h5_read_str_attr(file, path, "layout", &layout_name)))
        return st;
    st = mn_layout_parse(layout_name, &layout);
    free(layout_name);
    if (!st) st = mn_arch_build(arch, k, cells, layout, (mn_shape){h, w, c}, classes);
    if (st) return mn_error_prefix(st, "%s: ", path);
    return MN_OK;
}

mn_status mn_weights_read_arch(const char *path, mn_arch *arch) {
    hid_t file;
    mn_status st = open_checked(path, &file);
    if (st) return st;
    st = read_arch(file, path, arch);
    H5Fclose(file);
    return st;
}

static mn_status read_floats(hid_t file, const char *path, const char *name, float *v,
                             size_t count) {
    hid_t ds = mn_h5_dopen(file, name, H5P_DEFAULT);
    if (ds < 0) return mn_h5_fail(MN_ERR_FORMAT, "%s: cannot open dataset /%s", path, name);
    hid_t space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    hid_t type = H5Dget_type(ds);
    mn_status st = MN_OK;
    if (H5Tget_class(type) != H5T_FLOAT)
        st = mn_error_set(MN_ERR_FORMAT, "%s: /%s is not a float array", path, name);
    else if (n < 0 || (size_t)n != count)
        st = mn_error_set(MN_ERR_FORMAT, "%s: /%s has %lld values, the architecture needs %zu",
                          path, name, (long long)n, count);
    else if (count && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot read /%s", path, name);
    mn_h5_close(type);
    mn_h5_close(space);
    mn_h5_close(ds);
    return st;
}

mn_status mn_weights_load(const char *path, mn_net *net) {
    hid_t file;
    mn_status st = open_checked(path, &file);
    if (st) return st;
    mn_arch file_arch;
    const mn_arch *a = mn_net_arch(net);
    st = read_arch(file, path, &file_arch);
    char want[96], got[96];
    if (!st && (file_arch.k != a->k || file_arch.cells != a->cells ||
                file_arch.layout != a->layout || file_arch.classes != a->classes ||
                file_arch.input.h != a->input.h || file_arch.input.w != a->input.w ||
                file_arch.input.c != a->input.c))
        st = mn_error_set(MN_ERR_INVALID_ARG, "%s: holds %s but the network is %s", path,
                          mn_arch_describe(&file_arch, got, sizeof got),
                          mn_arch_describe(a, want, sizeof want));
    const mn_net_plan *p = mn_net_get_plan(net);
    float *trainable = NULL, *state = NULL;
    if (!st) {
        trainable = malloc((p->trainable + 1) * sizeof(float));
        state = malloc((p->state + 1) * sizeof(float));
        if (!trainable || !state) st = mn_error_set(MN_ERR_NOMEM, "no memory for parameters");
    }
    if (!st) st = read_floats(file, path, "trainable", trainable, p->trainable);
    if (!st) st = read_floats(file, path, "state", state, p->state);
    H5Fclose(file);
    if (!st) st = mn_net_set_params(net, trainable, state);
    free(trainable);
    free(state);
    return st;
}
