/* Private to src/deploy/: the one way its files reach the disk. */
#ifndef MN_DEPLOY_IO_H
#define MN_DEPLOY_IO_H

#include <stddef.h>

#include "mcunas/status.h"

/* Writes "<path>.tmp" and renames it to path, so a reader never sees half a file. */
mn_status mn_deploy_write_atomic(const char *path, const void *data, size_t size);

#endif
