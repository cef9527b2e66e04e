#include "core/h5util.h"

#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mn_h5_quiet(void) {
    /* HDF5's own atexit handler closes what is still open; a file whose H5Fclose failed
     * (a full disk) stays in its table and crashes that handler (HDF5 1.10). Every file we
     * open we close or fail to close ourselves, so the handler has nothing to do for us.
     * Effective only before the library's first use, which this is. */
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* Where a SIGFPE in this thread returns to while mn_h5_dopen runs; NULL otherwise. */
static _Thread_local sigjmp_buf *fpe_return;
/* Our handler is in place only while some thread is inside mn_h5_dopen (the program, or a
 * test framework, may install and restore its own between calls); the first to enter
 * installs it, the last to leave puts back the one that was there before. */
static pthread_mutex_t fpe_lock = PTHREAD_MUTEX_INITIALIZER;
static int fpe_users;
static struct sigaction fpe_before;

static void on_fpe(int sig, siginfo_t *info, void *uc) {
    if (fpe_return) siglongjmp(*fpe_return, 1);
    /* another thread's fault: as if our handler were not there */
    if (fpe_before.sa_flags & SA_SIGINFO) {
        fpe_before.sa_sigaction(sig, info, uc);
    } else if (fpe_before.sa_handler != SIG_DFL && fpe_before.sa_handler != SIG_IGN) {
        fpe_before.sa_handler(sig);
    } else {
        /* Returning runs the faulting instruction again, which now ends the process with
         * the default action (a division fault cannot be ignored and go on). */
        signal(SIGFPE, SIG_DFL);
    }
}

static void fpe_guard(int enter) {
    pthread_mutex_lock(&fpe_lock);
    if (enter && fpe_users++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fpe;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGFPE, &sa, &fpe_before);
    } else if (!enter && --fpe_users == 0) {
        sigaction(SIGFPE, &fpe_before, NULL);
    }
    pthread_mutex_unlock(&fpe_lock);
}

hid_t mn_h5_dopen(hid_t loc, const char *name, hid_t dapl) {
    fpe_guard(1);
    sigjmp_buf here;
    if (sigsetjmp(here, 1)) { /* 1: the signal mask as it was, SIGFPE not blocked */
        fpe_return = NULL;
        fpe_guard(0);
        H5Eclear2(H5E_DEFAULT);
        H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_DATASET, H5E_BADVALUE,
                 "corrupt storage layout: a chunk dimension of 0");
        return H5I_INVALID_HID;
    }
    fpe_return = &here;
    const hid_t id = H5Dopen2(loc, name, dapl);
    fpe_return = NULL;
    fpe_guard(0);
    return id;
}

/* Keeps the first (most specific, walking upward) description on the stack. HDF5's
 * system-call failures read "file write failed: time = ..., filename = ..., errno = 28,
 * error message = 'No space left on device', buf = ..."; those are reduced to
 * "file write failed: No space left on device". */
static herr_t mn_h5_first_error(unsigned n, const H5E_error2_t *err, void *data) {
    char *buf = data;
    if (n != 0 || !err || !err->desc) return 0;
    const char *d = err->desc;
    const char *colon = strchr(d, ':');
    const char *sys = strstr(d, "error message = '");
    if (colon && sys) {
        sys += strlen("error message = '");
        const char *end = strchr(sys, '\'');
        int len = end ? (int)(end - sys) : (int)strlen(sys);
        snprintf(buf, 256, "%.*s: %.*s", (int)(colon - d), d, len, sys);
    } else {
        snprintf(buf, 256, "%s", d);
    }
    return 0;
}

mn_status mn_h5_fail(mn_status status, const char *fmt, ...) {
    char detail[256] = "";
    char msg[768];
    va_list ap;
    /* Read HDF5's stack before anything else can clear it. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, mn_h5_first_error, detail);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (detail[0]) return mn_error_set(status, "%s (HDF5: %s)", msg, detail);
    return mn_error_set(status, "%s", msg);
}

void mn_h5_divert(hid_t file) {
    void *handle = NULL;
    if (file < 0 || H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || !handle) return;
    int fd = *(int *)handle;
    int sink = memfd_create("mcunas-discard", MFD_CLOEXEC);
    if (sink < 0) return;
    if (fd >= 0) dup2(sink, fd);
    close(sink);
}

hid_t mn_h5_close(hid_t id) {
    if (id < 0) return -1;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
    }
    return -1;
}

mn_status mn_h5_write_str_attr(hid_t loc, const char *path, const char *name, const char *value) {
    mn_status st = MN_OK;
    hid_t type = -1, space = -1, attr = -1;
    /* Fixed-length, NUL-terminated: readable by every HDF5 tool and by h5py as bytes. */
    type = H5Tcopy(H5T_C_S1);
    space = H5Screate(H5S_SCALAR);
    if (type < 0 || space < 0 || H5Tset_size(type, strlen(value) + 1) < 0 ||
        H5Tset_strpad(type, H5T_STR_NULLTERM) < 0) {
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot create the type of attribute '%s'", path, name);
        goto done;
    }
    attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, type, value) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot write attribute '%s'", path, name);
done:
    mn_h5_close(attr);
    mn_h5_close(space);
    mn_h5_close(type);
    return st;
}

mn_status mn_h5_write_int_attr(hid_t loc, const char *path, const char *name, int value) {
    mn_status st = MN_OK;
    int32_t v = (int32_t)value;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = space < 0 ? -1
                           : H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, H5T_NATIVE_INT32, &v) < 0)
        st = mn_h5_fail(MN_ERR_IO, "%s: cannot write attribute '%s'", path, name);
    mn_h5_close(attr);
    mn_h5_close(space);
    return st;
}

/* Opens attribute `name` of `loc`, checking it exists and holds exactly one element. */
static mn_status mn_h5_open_attr(hid_t loc, const char *path, const char *name, hid_t *out) {
    *out = -1;
    htri_t exists = H5Aexists(loc, name);
    if (exists < 0) return mn_h5_fail(MN_ERR_IO, "%s: cannot look up attribute '%s'", path, name);
    if (exists == 0) return mn_error_set(MN_ERR_FORMAT, "%s: missing attribute '%s'", path, name);
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr < 0) return mn_h5_fail(MN_ERR_IO, "%s: cannot open attribute '%s'", path, name);
    hid_t space = H5Aget_space(attr);
    hssize_t n = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    mn_h5_close(space);
    if (n != 1) {
        H5Aclose(attr);
        return mn_error_set(MN_ERR_FORMAT, "%s: attribute '%s' has %lld elements, expected 1",
                            path, name, (long long)n);
    }
    *out = attr;
    return MN_OK;
}

mn_status mn_h5_read_str_attr(hid_t loc, const char *path, const char *name, char **out) {
    *out = NULL;
    hid_t attr, ftype = -1, mtype = -1;
    mn_status st = mn_h5_open_attr(loc, path, name, &attr);
    if (st != MN_OK) return st;
    ftype = H5Aget_type(attr);
    if (ftype < 0 || H5Tget_class(ftype) != H5T_STRING) {
        char tn[64];
        mn_h5_type_name(ftype, tn, sizeof tn);
        st = mn_error_set(MN_ERR_FORMAT, "%s: attribute '%s' has type %s, expected a string",
                          path, name, tn);
        goto done;
    }
    /* The memory type keeps the file's character set: HDF5 refuses ASCII<->UTF-8. */
    mtype = H5Tcopy(H5T_C_S1);
    if (mtype < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) goto fail;
    if (H5Tis_variable_str(ftype) > 0) {
        char *s = NULL;
        if (H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Aread(attr, mtype, &s) < 0) goto fail;
        *out = strdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t size = H5Tget_size(ftype);
        /* One byte more than stored, NUL-terminated, so any padding converts safely. */
        if (size == 0 || H5Tset_size(mtype, size + 1) < 0 ||
            H5Tset_strpad(mtype, H5T_STR_NULLTERM) < 0)
            goto fail;
        char *s = calloc(1, size + 1);
        if (!s) {
            st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for attribute '%s'", path, name);
            goto done;
        }
        if (H5Aread(attr, mtype, s) < 0) {
            free(s);
            goto fail;
        }
        s[size] = '\0';
        *out = s;
    }
    if (!*out) st = mn_error_set(MN_ERR_NOMEM, "%s: no memory for attribute '%s'", path, name);
    goto done;
fail:
    st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot read string attribute '%s'", path, name);
done:
    mn_h5_close(mtype);
    mn_h5_close(ftype);
    mn_h5_close(attr);
    return st;
}

mn_status mn_h5_read_int_attr(hid_t loc, const char *path, const char *name, int *out) {
    hid_t attr, ftype;
    long long v = 0;
    mn_status st = mn_h5_open_attr(loc, path, name, &attr);
    if (st != MN_OK) return st;
    ftype = H5Aget_type(attr);
    if (ftype < 0 || H5Tget_class(ftype) != H5T_INTEGER) {
        char tn[64];
        mn_h5_type_name(ftype, tn, sizeof tn);
        st = mn_error_set(MN_ERR_FORMAT, "%s: attribute '%s' has type %s, expected an integer",
                          path, name, tn);
    } else if (H5Aread(attr, H5T_NATIVE_LLONG, &v) < 0) {
        st = mn_h5_fail(MN_ERR_FORMAT, "%s: cannot read integer attribute '%s'", path, name);
    } else if (v < INT_MIN || v > INT_MAX) {
        /* HDF5 clips an out-of-range uint64 to LLONG_MAX, which lands here too. */
        st = mn_error_set(MN_ERR_FORMAT, "%s: attribute '%s' = %lld is out of range", path,
                          name, v);
    } else {
        *out = (int)v;
    }
    mn_h5_close(ftype);
    mn_h5_close(attr);
    return st;
}

void mn_h5_type_name(hid_t type, char *buf, size_t size) {
    if (type < 0) {
        snprintf(buf, size, "(unknown)");
        return;
    }
    size_t bits = H5Tget_size(type) * 8;
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(buf, size, "%s%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int", bits);
        break;
    case H5T_FLOAT: snprintf(buf, size, "float%zu", bits); break;
    case H5T_STRING: snprintf(buf, size, "string"); break;
    case H5T_COMPOUND: snprintf(buf, size, "compound"); break;
    case H5T_ENUM: snprintf(buf, size, "enum"); break;
    case H5T_ARRAY: snprintf(buf, size, "array"); break;
    case H5T_VLEN: snprintf(buf, size, "vlen"); break;
    case H5T_BITFIELD: snprintf(buf, size, "bitfield%zu", bits); break;
    case H5T_OPAQUE: snprintf(buf, size, "opaque"); break;
    case H5T_REFERENCE: snprintf(buf, size, "reference"); break;
    default: snprintf(buf, size, "(unknown)"); break;
    }
}
