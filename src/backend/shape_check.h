/* Shape checks every backend applies the same way before touching memory (private to
 * src/backend/): one implementation, so the backends refuse the same inputs with the same
 * messages. */
#ifndef MN_BACKEND_SHAPE_CHECK_H
#define MN_BACKEND_SHAPE_CHECK_H

#include <stddef.h>

#include "mcunas/status.h"

/* *out = product of the ints in `dims` (n of them); fails with a message naming the op and
 * the dimension when any is < 1 (or < 0 when allow_zero) or the product overflows size_t. */
mn_status mn_backend_dims(const char *op, const char *names, const int *dims, int n,
                          int allow_zero, size_t *out);

/* Checks n, h, w, c >= 1 and gives the element counts of x [N,H,W,C] and of y, x pooled
 * 2x2 with stride 2 (floor). */
mn_status mn_backend_pool_dims(const char *op, int n, int h, int w, int c, size_t *nx,
                               size_t *ny);

#endif
