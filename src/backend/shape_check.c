#include "backend/shape_check.h"

mn_status mn_backend_dims(const char *op, const char *names, const int *dims, int n,
                          int allow_zero, size_t *out) {
    size_t p = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i] < (allow_zero ? 0 : 1))
            return mn_error_set(MN_ERR_INVALID_ARG,
                                "%s: dimension %d of (%s) is %d, must be %s", op, i, names,
                                dims[i], allow_zero ? ">= 0" : ">= 1");
        if (__builtin_mul_overflow(p, (size_t)dims[i], &p))
            return mn_error_set(MN_ERR_INVALID_ARG, "%s: the size of (%s) overflows", op,
                                names);
    }
    *out = p;
    return MN_OK;
}

mn_status mn_backend_pool_dims(const char *op, int n, int h, int w, int c, size_t *nx,
                               size_t *ny) {
    int dims[4] = {n, h, w, c};
    mn_status st = mn_backend_dims(op, "n, h, w, c", dims, 4, 0, nx);
    if (st) return st;
    *ny = (size_t)n * (size_t)(h / 2) * (size_t)(w / 2) * (size_t)c;
    return MN_OK;
}
