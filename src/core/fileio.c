/* Publishing files whole (fileio.h). */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

mn_status mn_file_tmp_name(const char *path, char *tmp, size_t size) {
    if ((size_t)snprintf(tmp, size, "%s.tmp", path) >= size)
        return mn_error_set(MN_ERR_INVALID_ARG, "path too long: %s", path);
    return MN_OK;
}

/* Makes a rename in `path`'s folder durable. A failure leaves a whole file under one of the
 * two names, so it is not an error. */
static void sync_folder(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static mn_status rename_synced(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return mn_error_set(MN_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    sync_folder(path);
    return MN_OK;
}

mn_status mn_file_write_atomic(const char *path, const void *data, size_t size) {
    char tmp[MN_FILE_PATH_MAX];
    mn_status st = mn_file_tmp_name(path, tmp, sizeof tmp);
    if (st) return st;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return mn_error_set(MN_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = size;
    int e = 0; /* the first failure's reason */
    while (left && !e) {
        ssize_t n = write(fd, p, left);
        if (n > 0) p += n, left -= (size_t)n;
        else if (n < 0 && errno != EINTR) e = errno;
        else if (n == 0) e = EIO;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        remove(tmp);
        return mn_error_set(MN_ERR_IO, "cannot write %s: %s", tmp, strerror(e));
    }
    return rename_synced(tmp, path);
}

mn_status mn_file_publish_memstream(FILE *f, char **buf, size_t *size, const char *path) {
    int bad = ferror(f); /* glibc's memstream fails a write it cannot grow for, fclose not */
    if (fclose(f) != 0) bad = 1;
    mn_status st = bad ? mn_error_set(MN_ERR_NOMEM, "no memory to build %s", path)
                       : mn_file_write_atomic(path, *buf ? *buf : "", *size);
    free(*buf);
    *buf = NULL;
    return st;
}

mn_status mn_file_publish(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    int e = fd < 0 ? errno : fsync(fd) != 0 ? errno : 0;
    if (fd >= 0) close(fd);
    if (e) {
        remove(tmp);
        return mn_error_set(MN_ERR_IO, "cannot sync %s: %s", tmp, strerror(e));
    }
    return rename_synced(tmp, path);
}
