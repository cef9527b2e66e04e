/* Private HDF5 helpers shared by every HDF5 file libmcunas reads or writes: the dataset
 * cache (src/data) and the weight files (src/nn/weights.c). They exist so that every HDF5
 * failure becomes an mn_status plus a message that names the file and the object, and so
 * that all files agree on how attributes are typed. */
#ifndef MN_CORE_H5UTIL_H
#define MN_CORE_H5UTIL_H

#include <hdf5.h>

#include "mcunas/status.h"

/* Turns off HDF5's automatic error printing: library code never prints, and failures are
 * turned into messages instead. Called at every public entry point that touches HDF5,
 * because the setting belongs to the (per-thread, in thread-safe builds) default stack. */
void mn_h5_quiet(void);

/* Like mn_error_set, but appends the most specific entry of HDF5's error stack (if any),
 * e.g. "... (HDF5: unable to extend file properly)", so disk-full and permission problems
 * are not reduced to "write failed". Call it right after the failing HDF5 call, before
 * any other API call clears the stack. */
mn_status mn_h5_fail(mn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* H5Dopen2, except that a dataset whose storage layout makes HDF5 divide by zero fails to
 * open instead of ending the process. HDF5 1.10.8 refuses a chunk dimension of 0 in the
 * layout our writer uses, but not in every layout a file may hold: there it raises SIGFPE
 * in H5D__chunk_set_info (tests/fuzz/regressions/dataset/). While the call runs, a SIGFPE in this thread jumps back here; the open
 * then fails with "corrupt storage layout" on HDF5's error stack (mn_h5_fail reports it).
 * A division fault changes no memory; what HDF5 had half built for the open is leaked
 * (about 16 KB, once per such file; the file itself still closes). The handler is in place
 * only during such calls; another thread's SIGFPE then goes to the handler that was there. */
hid_t mn_h5_dopen(hid_t loc, const char *name, hid_t dapl);

/* Closes an id of any kind if it is valid; returns -1 for resetting the variable. */
hid_t mn_h5_close(hid_t id);

/* For a file being written that has failed (a full disk, an I/O error) and is about to be
 * discarded: HDF5 1.10 does not survive a failing H5Fclose (the file's id stays registered
 * over freed memory and the library crashes in its exit handler; HDFGroup/hdf5#2257, fixed
 * in 1.14), and the close would write the remaining dirty metadata and chunks and fail
 * again. So the sec2 driver's descriptor is re-pointed at an anonymous in-memory file:
 * those last writes succeed and vanish, and the close completes. (The close reads nothing
 * back in practice: the metadata of a file, a cache's chunk index included, stay in HDF5's
 * metadata cache.) */
void mn_h5_divert(hid_t file);

/* Scalar attributes as the format defines them: fixed-length NUL-terminated ASCII strings
 * and int32 little-endian integers. `path` only names the file in messages. */
mn_status mn_h5_write_str_attr(hid_t loc, const char *path, const char *name, const char *value);
mn_status mn_h5_write_int_attr(hid_t loc, const char *path, const char *name, int value);

/* Reads a string attribute written either fixed-length (ours) or variable-length (h5py's
 * default) into a malloc'd string. MN_ERR_FORMAT when absent or not a string. */
mn_status mn_h5_read_str_attr(hid_t loc, const char *path, const char *name, char **out);
/* Reads a scalar (or single-element) integer attribute of any width into an int.
 * MN_ERR_FORMAT when absent, not an integer, not one element or out of int range. */
mn_status mn_h5_read_int_attr(hid_t loc, const char *path, const char *name, int *out);

/* "uint8", "int32", "float64", "string", ... for messages about the wrong dtype. */
void mn_h5_type_name(hid_t type, char *buf, size_t size);

#endif
