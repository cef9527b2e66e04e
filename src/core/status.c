#include "mcunas/status.h"

#include <stdio.h>
#include <string.h>

/* One message per thread: OpenMP workers and the CLI thread never clobber each other. */
static _Thread_local char mn_error_text[1024];

const char *mn_status_name(mn_status status) {
    switch (status) {
    case MN_OK: return "ok";
    case MN_ERR_INVALID_ARG: return "invalid-argument";
    case MN_ERR_NOMEM: return "out-of-memory";
    case MN_ERR_IO: return "io-error";
    case MN_ERR_FORMAT: return "format-error";
    case MN_ERR_INFEASIBLE: return "infeasible";
    case MN_ERR_UNSUPPORTED: return "unsupported";
    case MN_ERR_BACKEND: return "backend-error";
    case MN_ERR_BUDGET: return "over-budget";
    case MN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown-status";
}

mn_status mn_error_setv(mn_status status, const char *fmt, va_list ap) {
    vsnprintf(mn_error_text, sizeof mn_error_text, fmt, ap);
    return status;
}

mn_status mn_error_set(mn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mn_error_setv(status, fmt, ap);
    va_end(ap);
    return status;
}

mn_status mn_error_prefix(mn_status status, const char *fmt, ...) {
    char prefix[512];
    char old[sizeof mn_error_text];
    char joined[sizeof prefix + sizeof old];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, mn_error_text, sizeof old);
    snprintf(joined, sizeof joined, "%s%s", prefix, old);
    /* Keep the head of the message when it must be cut: it says what failed. */
    memcpy(mn_error_text, joined, sizeof mn_error_text - 1);
    mn_error_text[sizeof mn_error_text - 1] = '\0';
    return status;
}

const char *mn_error_message(void) { return mn_error_text; }

void mn_error_clear(void) { mn_error_text[0] = '\0'; }
