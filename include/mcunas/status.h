/* Status codes and the per-thread error context.
 * Library functions return an mn_status and, on failure, leave a message naming what is
 * wrong and where (file, index, field) that the caller reads with mn_error_message(). */
#ifndef MCUNAS_STATUS_H
#define MCUNAS_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mn_status {
    MN_OK = 0,
    MN_ERR_INVALID_ARG,  /* a caller passed a value outside the documented domain */
    MN_ERR_NOMEM,        /* an allocation failed */
    MN_ERR_IO,           /* a file could not be opened, read or written */
    MN_ERR_FORMAT,       /* a file's content is not what its format requires */
    MN_ERR_INFEASIBLE,   /* an architecture cannot exist (e.g. too deep for its input) */
    MN_ERR_UNSUPPORTED,  /* a backend declines an op or a configuration */
    MN_ERR_BACKEND,      /* a backend call failed at run time */
    MN_ERR_BUDGET,       /* a plan exceeds a memory budget */
    MN_ERR_INTERRUPTED   /* the user asked to stop */
} mn_status;

/* Short stable name of a status ("invalid-argument", ...). */
const char *mn_status_name(mn_status status);

/* Records a formatted message for this thread and returns `status`, so that
 * `return mn_error_set(MN_ERR_IO, "cannot open %s", path);` reads naturally. */
mn_status mn_error_set(mn_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
mn_status mn_error_setv(mn_status status, const char *fmt, va_list ap);

/* Prepends context ("while reading x.h5: ") to the current message; returns `status`. */
mn_status mn_error_prefix(mn_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message recorded by this thread ("" when none). */
const char *mn_error_message(void);
void mn_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
