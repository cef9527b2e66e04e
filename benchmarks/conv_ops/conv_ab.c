/* One 3x3 convolution shape, its three ops timed on two CPU backends in one process whose
 * kernels differ (MCUNAS_CPU_CONV=A and =B when each backend is made), calls alternated A,
 * B, A, B... so that a drift in the machine's speed hits both alike. Prints each op's median
 * time per side and the median of the per-pair ratios B/A.
 *
 *   conv_ab N H W C K THREADS A B [PAIRS]     (PAIRS default 41) */
#include "mcunas/backend.h"
#include "mcunas/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct side {
    mn_backend *be;
    mn_buf *x, *y, *w, *b, *dw, *ws;
} side;

static void die(const char *what) {
    fprintf(stderr, "conv_ab: %s: %s\n", what, mn_error_message());
    exit(1);
}

static void side_make(side *p, const char *kernels, const mn_conv_shape *s, int threads) {
    mn_backend_options o = {threads, 0};
    setenv("MCUNAS_CPU_CONV", kernels, 1);
    if (mn_backend_create("cpu", &o, &p->be) != MN_OK) die(kernels);
    const size_t px = (size_t)s->n * s->h * s->w, wn = 9 * (size_t)s->c * s->k;
    if (mn_buf_alloc(p->be, px * s->c * 4, &p->x) || mn_buf_alloc(p->be, px * s->k * 4, &p->y) ||
        mn_buf_alloc(p->be, wn * 4, &p->w) || mn_buf_alloc(p->be, wn * 4, &p->dw) ||
        mn_buf_alloc(p->be, (size_t)s->k * 4, &p->b) ||
        mn_buf_alloc(p->be, mn_backend_conv3x3_workspace_bytes(p->be, s) + 8, &p->ws))
        die("allocation");
    /* Inputs that are not all zero (buffers start zeroed). */
    mn_backend_fill(p->be, mn_view_at(p->x, 0), 0.5f, px * s->c);
    mn_backend_fill(p->be, mn_view_at(p->y, 0), -0.25f, px * s->k);
    mn_backend_fill(p->be, mn_view_at(p->w, 0), 0.1f, wn);
}

static double side_run(side *p, const mn_conv_shape *s, int op) {
    double t = now();
    mn_status st;
    if (op == 0)
        st = mn_backend_conv3x3_forward(p->be, s, mn_view_at(p->x, 0), mn_view_at(p->w, 0),
                                        mn_view_at(p->b, 0), mn_view_at(p->y, 0),
                                        mn_view_at(p->ws, 0));
    else if (op == 1)
        st = mn_backend_conv3x3_backward_data(p->be, s, mn_view_at(p->y, 0),
                                              mn_view_at(p->w, 0), mn_view_at(p->x, 0),
                                              mn_view_at(p->ws, 0));
    else
        st = mn_backend_conv3x3_backward_weights(p->be, s, mn_view_at(p->x, 0),
                                                 mn_view_at(p->y, 0), mn_view_at(p->dw, 0),
                                                 mn_view_at(p->b, 0), mn_view_at(p->ws, 0));
    if (st != MN_OK) die("op");
    return now() - t;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: conv_ab N H W C K THREADS A B [PAIRS]\n");
        return 2;
    }
    mn_conv_shape s = {atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                       atoi(argv[5])};
    const int threads = atoi(argv[6]), pairs = argc > 9 ? atoi(argv[9]) : 41;
    if (pairs < 1 || pairs > 1000) return 2;
    side a, b;
    side_make(&a, argv[7], &s, threads);
    side_make(&b, argv[8], &s, threads);
    static const char *names[3] = {"forward", "backward_data", "backward_weights"};
    double *ta = malloc(sizeof(double) * (size_t)pairs * 3);
    double *tb = ta + pairs, *r = tb + pairs;
    printf("%dx%dx%d->%d batch %d, %d thread(s), %s vs %s:", s.h, s.w, s.c, s.k, s.n, threads,
           argv[7], argv[8]);
    for (int op = 0; op < 3; op++) {
        for (int i = 0; i < 3; i++) side_run(&a, &s, op), side_run(&b, &s, op);
        for (int i = 0; i < pairs; i++) {
            ta[i] = side_run(&a, &s, op);
            tb[i] = side_run(&b, &s, op);
            r[i] = tb[i] / ta[i];
        }
        qsort(ta, (size_t)pairs, sizeof *ta, by_value);
        qsort(tb, (size_t)pairs, sizeof *tb, by_value);
        qsort(r, (size_t)pairs, sizeof *r, by_value);
        printf("  %s %.3f / %.3f ms (%.2f)", names[op], ta[pairs / 2] * 1e3,
               tb[pairs / 2] * 1e3, r[pairs / 2]);
    }
    printf("\n");
    free(ta);
    return 0;
}
