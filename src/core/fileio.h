/* The one way mcunas publishes a file: written under "<path>.tmp", synced to the disk,
 * renamed over `path`, the folder synced, so that a reader, or a machine that loses power
 * or is killed, sees the old file or the whole new one, never part of it. */
#ifndef MN_CORE_FILEIO_H
#define MN_CORE_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "mcunas/status.h"

/* The longest path (with ".tmp") the writers take. */
#define MN_FILE_PATH_MAX 4096

/* "<path>.tmp" into `tmp` (`size` bytes); MN_ERR_INVALID_ARG when the path is too long. */
mn_status mn_file_tmp_name(const char *path, char *tmp, size_t size);

/* Writes `size` bytes of `data` as `path`. On failure no .tmp is left and the message names
 * the file and the reason (e.g. "No space left on device"). */
mn_status mn_file_write_atomic(const char *path, const void *data, size_t size);

/* For a file printed with stdio: closes `f`, a stream made by open_memstream(buf, size),
 * and writes what was printed to it as `path` (mn_file_write_atomic); frees *buf. A stream
 * that failed (no memory to grow) publishes nothing: MN_ERR_NOMEM. */
mn_status mn_file_publish_memstream(FILE *f, char **buf, size_t *size, const char *path);

/* The last steps for a temporary file another library wrote and closed (HDF5): syncs `tmp`,
 * renames it over `path`, syncs the folder. On failure `tmp` is removed. */
mn_status mn_file_publish(const char *tmp, const char *path);

#endif
