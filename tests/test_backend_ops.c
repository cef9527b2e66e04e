/* Backend op tests in the style of ggml's test-backend-ops: for every backend built into
 * the binary and every op of mn_backend_ops, run the op on random data and compare with a
 * naive double-precision reference written here; backward ops are also compared with
 * central finite differences of that reference (so the reference's own gradient formulas
 * are checked too). Device tensors sit at non-zero byte offsets in many cases, are
 * surrounded by guard bytes, and outputs start as NaN bytes, so ignored offsets,
 * out-of-bounds writes, accumulation into outputs and skipped elements all show. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/backend_impl.h" /* test_unsupported_op builds tables with NULL entries */
#include "mcunas/backend.h"
#include "mcunas/status.h"
#include "testutil.h"

/* ---- tolerances ---- */

/* float32 has a unit roundoff of 6e-8; a few roundings per element plus reductions of up
 * to ~60 terms stay well below 1e-5 of max(1, |ref|). */
#define TOL_F32 1e-5
/* Reductions over more than ~64 terms (conv dW/db over every N*H*W position, 9C-long
 * dot products with C = 32, batch-norm statistics and their gradients over m rows):
 * float32 summation error grows like sqrt(terms) * roundoff * sum|terms|, which is
 * ~2e-5 of a mixed-sign result of a few hundred to a few thousand terms (1.8e-5 measured
 * for conv dW over 2048 positions on the CPU backend), so these get 1e-4. */
#define TOL_LONG 1e-4
/* The tolerance for a result that sums `terms` products. */
static double tol_for(size_t terms) { return terms > 64 ? TOL_LONG : TOL_F32; }
/* Elementwise ops with one or two float roundings (1/(1-rate) may be evaluated in float
 * or double, a u8 value times a scale). */
#define TOL_ELEM 1e-6
/* Central-difference step on the double reference, relative to max(1, |value|): small
 * enough to stay inside one linear piece of max pool / relu (inputs are built >= 1e-3
 * apart / away from 0), large enough that double rounding in the loss (~1e-14) is
 * negligible after dividing by 2h. */
#define FD_EPS 1e-5
/* Coordinates checked by finite differences per gradient (all of them when fewer). */
#define FD_SAMPLES 24

/* ---- global state: the backends under test ---- */

#define MAX_BACKENDS 8
static mn_backend *g_backends[MAX_BACKENDS];
/* Built-in backends that could not be created on this machine, with the reason. */
static char g_unavailable[MAX_BACKENDS][320];
static int g_nunavailable;
static int g_nbackends;

/* What the current check is about ("cpu conv3x3_forward n=1 ..."), printed on failure. */
static char g_what[256];

static void set_what(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_what(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_what, sizeof g_what, fmt, ap);
    va_end(ap);
}

static int verbose(void) {
    const char *v = getenv("MN_TEST_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

/* ---- host scratch memory, freed after each case ---- */

#define MAX_SCRATCH 512
static void *g_scratch[MAX_SCRATCH];
static int g_nscratch;

static void *scratch(size_t bytes) {
    assert_true(g_nscratch < MAX_SCRATCH);
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    g_scratch[g_nscratch++] = p;
    return p;
}

static void scratch_free_all(void) {
    for (int i = 0; i < g_nscratch; i++) free(g_scratch[i]);
    g_nscratch = 0;
}

static float *rand_floats(size_t n, uint64_t seed, float lo, float hi) {
    float *x = scratch(n * sizeof *x);
    mn_test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static double *to_double(const float *x, size_t n) {
    double *d = scratch(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static float *to_float(const double *x, size_t n) {
    float *f = scratch(n * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static double *new_doubles(size_t n) { return scratch(n * sizeof(double)); }
static float *new_floats(size_t n) { return scratch(n * sizeof(float)); }

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t rng_below(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

static double dot(const double *a, const double *b, size_t n) {
    double acc = 0;
    for (size_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* ---- checks that say what failed ---- */

#define CHECK_OK(expr) check_ok_at((expr), #expr, __FILE__, __LINE__)
static void check_ok_at(mn_status st, const char *expr, const char *file, int line) {
    if (st == MN_OK) return;
    print_error("[%s] %s -> %s: %s\n", g_what, expr, mn_status_name(st), mn_error_message());
    _fail(file, line);
}

/* max |got - ref| / max(floor, |ref|) <= tol; NaN counts as infinitely wrong. */
#define CHECK_CLOSE(name, got, ref, n, tol) \
    check_close_at((name), (got), (ref), (n), (tol), 1.0, __FILE__, __LINE__)
#define CHECK_CLOSE_REL(name, got, ref, n, tol, floor_) \
    check_close_at((name), (got), (ref), (n), (tol), (floor_), __FILE__, __LINE__)
static void check_close_at(const char *name, const float *got, const double *ref, size_t n,
                           double tol, double floor_, const char *file, int line) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / fmax(floor_, fabs(ref[i]));
        if (isnan(d)) d = INFINITY;
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    if (verbose()) print_message("[%s] %s: max err %.3g (tol %.1g)\n", g_what, name, worst, tol);
    if (worst <= tol) return;
    print_error("[%s] %s: max err %.3g > %.3g at [%zu] of %zu: got %.9g, want %.9g\n", g_what,
                name, worst, tol, at, n, (double)got[at], ref[at]);
    _fail(file, line);
}

typedef double (*loss_fn)(void *ctx);

/* Compares an analytic gradient `grad` (from the backend) of the scalar loss with central
 * differences of the double-precision reference loss, perturbing `param` (one of the
 * arrays the loss reads through `ctx`) at FD_SAMPLES random coordinates. */
#define CHECK_FD(name, loss, ctx, param, n, grad, tol, seed) \
    check_fd_at((name), (loss), (ctx), (param), (n), (grad), (tol), (seed), __FILE__, __LINE__)
static void check_fd_at(const char *name, loss_fn loss, void *ctx, double *param, size_t n,
                        const float *grad, double tol, uint64_t seed, const char *file,
                        int line) {
    uint64_t s = seed * 2654435761u + 1;
    size_t samples = n < FD_SAMPLES ? n : FD_SAMPLES;
    double worst = 0;
    for (size_t t = 0; t < samples; t++) {
        size_t i = n <= FD_SAMPLES ? t : rng_below(&s, n);
        double save = param[i];
        double h = FD_EPS * fmax(1.0, fabs(save));
        param[i] = save + h;
        double lp = loss(ctx);
        param[i] = save - h;
        double lm = loss(ctx);
        param[i] = save;
        double fd = (lp - lm) / (2 * h);
        double d = fabs((double)grad[i] - fd) / fmax(1.0, fabs(fd));
        if (isnan(d)) d = INFINITY;
        if (d > worst) worst = d;
        if (!(d <= tol)) {
            print_error("[%s] %s vs finite differences at [%zu] of %zu: got %.9g, fd %.9g "
                        "(err %.3g > %.3g)\n",
                        g_what, name, i, n, (double)grad[i], fd, d, tol);
            _fail(file, line);
        }
    }
    if (verbose())
        print_message("[%s] %s vs fd: max err %.3g over %zu coords\n", g_what, name, worst,
                      samples);
}

/* ---- device tensors with guard bytes ---- */

/* Bytes after each tensor that must stay untouched. */
#define GUARD_BYTES 64
/* Every device byte starts as 0xFF: outside the data it is the guard pattern; inside an
 * output it reads as float NaN, so an op that accumulates into its output or leaves
 * elements unwritten produces NaN and fails the comparison. */
#define POISON 0xFF

typedef struct dev {
    mn_backend *be;
    mn_buf *buf;
    size_t off;           /* where the data starts in buf */
    size_t bytes;         /* data bytes */
    size_t total;         /* bytes of buf */
    const void *snapshot; /* inputs: what was uploaded, checked unchanged on release */
} dev;

static void dev_sync(mn_backend *be) { CHECK_OK(mn_backend_sync(be)); }

static dev dev_alloc(mn_backend *be, size_t bytes, size_t off, size_t guard) {
    dev d = {be, NULL, off, bytes, off + bytes + guard, NULL};
    CHECK_OK(mn_buf_alloc(be, d.total, &d.buf));
    unsigned char *p = scratch(d.total);
    memset(p, POISON, d.total);
    CHECK_OK(mn_upload(be, mn_view_at(d.buf, 0), p, d.total));
    return d;
}

static mn_view dv(const dev *d) { return mn_view_at(d->buf, d->off); }

/* An output: data region left as NaN bytes. */
static dev dev_out(mn_backend *be, size_t bytes, size_t off) {
    return dev_alloc(be, bytes, off, GUARD_BYTES);
}

/* An in-out tensor (running statistics, Adam state): uploaded; the op may change it. */
static dev dev_inout(mn_backend *be, const void *src, size_t bytes, size_t off) {
    dev d = dev_alloc(be, bytes, off, GUARD_BYTES);
    CHECK_OK(mn_upload(be, dv(&d), src, bytes));
    return d;
}

/* An input: uploaded, and on release checked unchanged (ops must not write their inputs).
 * `src` must outlive the tensor. */
static dev dev_in(mn_backend *be, const void *src, size_t bytes, size_t off) {
    dev d = dev_inout(be, src, bytes, off);
    d.snapshot = src;
    return d;
}

static void dev_read(const dev *d, void *dst) {
    dev_sync(d->be);
    CHECK_OK(mn_download(d->be, dv(d), dst, d->bytes));
}

static float *dev_read_floats(const dev *d) {
    float *f = scratch(d->bytes);
    dev_read(d, f);
    return f;
}

/* Refills the data region with NaN bytes (before re-running an op into it). */
static void dev_poison(const dev *d) {
    unsigned char *p = scratch(d->bytes);
    memset(p, POISON, d->bytes);
    CHECK_OK(mn_upload(d->be, dv(d), p, d->bytes));
}

/* Checks the guard bytes around the data (and, for inputs, the data), then frees. */
static void dev_release(dev *d) {
    if (!d->buf) return;
    unsigned char *all = scratch(d->total);
    dev_sync(d->be);
    CHECK_OK(mn_download(d->be, mn_view_at(d->buf, 0), all, d->total));
    for (size_t i = 0; i < d->total; i++) {
        if (i >= d->off && i < d->off + d->bytes) continue;
        if (all[i] != POISON) {
            print_error("[%s] byte %zu of a buffer (data at %zu..%zu) was overwritten\n",
                        g_what, i, d->off, d->off + d->bytes);
            fail();
        }
    }
    if (d->snapshot && memcmp(all + d->off, d->snapshot, d->bytes) != 0) {
        print_error("[%s] an input tensor (data at offset %zu) was modified\n", g_what,
                    d->off);
        fail();
    }
    mn_buf_free(d->be, d->buf);
    d->buf = NULL;
}

/* A conv workspace of exactly conv3x3_workspace_bytes(shape) bytes, no offset and no
 * guard, so that (with the CPU backend's heap buffers) ASan reports any overrun; filled
 * with NaN bytes because ops may not assume zeroed scratch. */
static dev ws_alloc(mn_backend *be, const mn_conv_shape *s) {
    size_t bytes = mn_backend_conv3x3_workspace_bytes(be, s);
    dev d = {be, NULL, 0, bytes, bytes, NULL};
    if (bytes) d = dev_alloc(be, bytes, 0, 0);
    return d;
}

static mn_view ws_view(const dev *d) { return d->buf ? dv(d) : mn_view_none(); }

static mn_view opt_view(const dev *d, int present) { return present ? dv(d) : mn_view_none(); }

/* True when `be` implements `op`. The CPU backend is the reference implementation and must
 * implement every op; another backend may decline some, which is noted and skipped (the
 * unsupported-op test checks how declining is reported). */
static int backend_has(mn_backend *be, mn_op op) {
    if (mn_backend_supports(be, op)) return 1;
    if (strcmp(mn_backend_name(be), "cpu") == 0) {
        print_error("the cpu backend must implement %s\n", mn_op_name(op));
        fail();
    }
    print_message("note: backend '%s' does not implement %s; skipped\n", mn_backend_name(be),
                  mn_op_name(op));
    return 0;
}

/* ==================================================================================== */
/* conv3x3                                                                              */
/* ==================================================================================== */

typedef struct conv_case {
    mn_conv_shape s;
    size_t off; /* byte offset of the first tensor; others use multiples of it */
    int fd;     /* also check against finite differences (skipped where costly) */
} conv_case;

static const conv_case k_conv_cases[] = {
    {{1, 1, 1, 1, 1}, 0, 1},    /* every tap but the centre is padding */
    {{1, 7, 5, 1, 3}, 20, 1},   /* odd H, W; C = 1 */
    {{2, 4, 6, 3, 1}, 0, 1},    /* K = 1 */
    {{2, 5, 3, 2, 4}, 36, 1},   /* W < H, offsets */
    {{3, 12, 10, 5, 7}, 20, 1}, /* the larger one */
    /* One narrow side with a multiple of 8 on the other: the CPU backend's direct kernels
     * (a specialised and an unspecialised channel pair, interior blocks and edges). */
    {{2, 6, 9, 3, 16}, 20, 1},
    {{1, 5, 7, 1, 8}, 0, 1},
    {{2, 3, 6, 2, 24}, 36, 1},
    {{2, 7, 10, 3, 4}, 20, 1}, /* ... a multiple of 4 */
    {{1, 4, 9, 2, 12}, 0, 1},
    {{2, 40, 30, 3, 8}, 4, 0}, /* ... split into several chunks */
    /* A CIFAR-sized layer: enough work that a backend's threaded, tiled or chunked paths
     * run (the CPU backend splits its rows into eight chunks here).
     * Its finite differences would cost seconds and add nothing the small cases don't. */
    {{2, 32, 32, 32, 32}, 8, 0},
    /* Wide layers of small maps, which the CPU backend hands to oneDNN when built with it,
     * in chunks of whole images: four of 8x9 a chunk, so chunks of 4 and 1 here... */
    {{5, 8, 9, 16, 20}, 12, 0},
    /* ... and the smallest map it takes (6x6: one chunk of up to eight images). */
    {{3, 6, 6, 12, 10}, 0, 1},
};
#define N_CONV_CASES (sizeof k_conv_cases / sizeof k_conv_cases[0])

static size_t conv_x_len(const mn_conv_shape *s) { return (size_t)s->n * s->h * s->w * s->c; }
static size_t conv_y_len(const mn_conv_shape *s) { return (size_t)s->n * s->h * s->w * s->k; }
static size_t conv_w_len(const mn_conv_shape *s) { return (size_t)s->k * 9 * s->c; }

static size_t nhwc(const mn_conv_shape *s, int n, int h, int w, int ch, int nch) {
    return (((size_t)n * s->h + h) * s->w + w) * nch + ch;
}
static size_t ohwi(const mn_conv_shape *s, int k, int ky, int kx) {
    return (((size_t)k * 3 + ky) * 3 + kx) * s->c;
}

static void ref_conv_forward(const mn_conv_shape *s, const double *x, const double *wt,
                             const double *b, double *y) {
    for (int n = 0; n < s->n; n++)
        for (int oh = 0; oh < s->h; oh++)
            for (int ow = 0; ow < s->w; ow++)
                for (int k = 0; k < s->k; k++) {
                    double acc = b ? b[k] : 0.0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int ih = oh + ky - 1, iw = ow + kx - 1;
                            if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                            const double *xp = x + nhwc(s, n, ih, iw, 0, s->c);
                            const double *wp = wt + ohwi(s, k, ky, kx);
                            for (int c = 0; c < s->c; c++) acc += xp[c] * wp[c];
                        }
                    y[nhwc(s, n, oh, ow, k, s->k)] = acc;
                }
}

/* dx: every output position scatters dy * w back to the inputs it read. */
static void ref_conv_backward_data(const mn_conv_shape *s, const double *dy, const double *wt,
                                   double *dx) {
    memset(dx, 0, conv_x_len(s) * sizeof *dx);
    for (int n = 0; n < s->n; n++)
        for (int oh = 0; oh < s->h; oh++)
            for (int ow = 0; ow < s->w; ow++)
                for (int k = 0; k < s->k; k++) {
                    double g = dy[nhwc(s, n, oh, ow, k, s->k)];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int ih = oh + ky - 1, iw = ow + kx - 1;
                            if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                            double *xp = dx + nhwc(s, n, ih, iw, 0, s->c);
                            const double *wp = wt + ohwi(s, k, ky, kx);
                            for (int c = 0; c < s->c; c++) xp[c] += g * wp[c];
                        }
                }
}

static void ref_conv_backward_weights(const mn_conv_shape *s, const double *x, const double *dy,
                                      double *dw, double *db) {
    memset(dw, 0, conv_w_len(s) * sizeof *dw);
    memset(db, 0, (size_t)s->k * sizeof *db);
    for (int n = 0; n < s->n; n++)
        for (int oh = 0; oh < s->h; oh++)
            for (int ow = 0; ow < s->w; ow++)
                for (int k = 0; k < s->k; k++) {
                    double g = dy[nhwc(s, n, oh, ow, k, s->k)];
                    db[k] += g;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int ih = oh + ky - 1, iw = ow + kx - 1;
                            if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w) continue;
                            const double *xp = x + nhwc(s, n, ih, iw, 0, s->c);
                            double *wp = dw + ohwi(s, k, ky, kx);
                            for (int c = 0; c < s->c; c++) wp[c] += g * xp[c];
                        }
                }
}

/* L = sum(conv(x, w, b) * r) on the double reference. */
typedef struct conv_loss {
    const mn_conv_shape *s;
    double *x, *wt, *b;
    const double *r;
    double *y;
} conv_loss;

static double conv_loss_fn(void *p) {
    conv_loss *L = p;
    ref_conv_forward(L->s, L->x, L->wt, L->b, L->y);
    return dot(L->y, L->r, conv_y_len(L->s));
}

static void what_conv(mn_backend *be, const char *op, const conv_case *cc, const char *extra) {
    set_what("%s %s n=%d h=%d w=%d c=%d k=%d off=%zu%s", mn_backend_name(be), op, cc->s.n,
             cc->s.h, cc->s.w, cc->s.c, cc->s.k, cc->off, extra);
}

static void test_conv3x3_forward(void **state) {
    (void)state;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_CONV3X3_FORWARD)) continue;
        for (size_t ci = 0; ci < N_CONV_CASES; ci++)
            for (int bias = 0; bias <= 1; bias++) {
                const conv_case *cc = &k_conv_cases[ci];
                const mn_conv_shape *s = &cc->s;
                what_conv(be, "conv3x3_forward", cc, bias ? " bias" : " no-bias");
                size_t nx = conv_x_len(s), nw = conv_w_len(s), ny = conv_y_len(s);
                float *x = rand_floats(nx, 100 + ci, -1, 1);
                float *wt = rand_floats(nw, 200 + ci, -0.5f, 0.5f);
                float *b = rand_floats((size_t)s->k, 300 + ci, -1, 1);
                dev xd = dev_in(be, x, nx * 4, cc->off);
                dev wd = dev_in(be, wt, nw * 4, 2 * cc->off);
                dev bd = dev_in(be, b, (size_t)s->k * 4, 3 * cc->off);
                dev yd = dev_out(be, ny * 4, cc->off + 4 * (cc->off != 0));
                dev ws = ws_alloc(be, s);
                CHECK_OK(mn_backend_conv3x3_forward(be, s, dv(&xd), dv(&wd), opt_view(&bd, bias),
                                                    dv(&yd), ws_view(&ws)));
                float *y = dev_read_floats(&yd);
                double *yr = new_doubles(ny);
                ref_conv_forward(s, to_double(x, nx), to_double(wt, nw),
                                 bias ? to_double(b, (size_t)s->k) : NULL, yr);
                CHECK_CLOSE("y", y, yr, ny, tol_for(9 * (size_t)s->c)); /* 9C products */
                dev_release(&xd), dev_release(&wd), dev_release(&bd), dev_release(&yd);
                dev_release(&ws);
                scratch_free_all();
            }
    }
}

static void test_conv3x3_backward(void **state) {
    (void)state;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_data = backend_has(be, MN_OP_CONV3X3_BACKWARD_DATA);
        int has_weights = backend_has(be, MN_OP_CONV3X3_BACKWARD_WEIGHTS);
        for (size_t ci = 0; ci < N_CONV_CASES; ci++) {
            const conv_case *cc = &k_conv_cases[ci];
            const mn_conv_shape *s = &cc->s;
            size_t nx = conv_x_len(s), nw = conv_w_len(s), ny = conv_y_len(s);
            size_t nk = (size_t)s->k;
            float *x = rand_floats(nx, 400 + ci, -1, 1);
            float *wt = rand_floats(nw, 500 + ci, -0.5f, 0.5f);
            float *b = rand_floats(nk, 600 + ci, -1, 1);
            float *dy = rand_floats(ny, 700 + ci, -1, 1); /* = r, the loss weights */
            conv_loss L = {s, to_double(x, nx), to_double(wt, nw), to_double(b, nk),
                           to_double(dy, ny), new_doubles(ny)};
            if (has_data) {
                what_conv(be, "conv3x3_backward_data", cc, "");
                dev dyd = dev_in(be, dy, ny * 4, cc->off);
                dev wd = dev_in(be, wt, nw * 4, 2 * cc->off);
                dev dxd = dev_out(be, nx * 4, 3 * cc->off);
                dev ws = ws_alloc(be, s);
                CHECK_OK(mn_backend_conv3x3_backward_data(be, s, dv(&dyd), dv(&wd), dv(&dxd),
                                                          ws_view(&ws)));
                float *dx = dev_read_floats(&dxd);
                double *dxr = new_doubles(nx);
                ref_conv_backward_data(s, L.r, L.wt, dxr);
                double tol = tol_for(9 * nk); /* each dx sums 9K products */
                CHECK_CLOSE("dx", dx, dxr, nx, tol);
                if (cc->fd) CHECK_FD("dx", conv_loss_fn, &L, L.x, nx, dx, tol, ci);
                dev_release(&dyd), dev_release(&wd), dev_release(&dxd), dev_release(&ws);
            }
            if (has_weights)
                for (int with_db = 1; with_db >= 0; with_db--) {
                    what_conv(be, "conv3x3_backward_weights", cc, with_db ? " db" : " no-db");
                    dev xd = dev_in(be, x, nx * 4, cc->off);
                    dev dyd = dev_in(be, dy, ny * 4, 2 * cc->off);
                    dev dwd = dev_out(be, nw * 4, 3 * cc->off);
                    dev dbd = dev_out(be, nk * 4, cc->off + 4);
                    dev ws = ws_alloc(be, s);
                    CHECK_OK(mn_backend_conv3x3_backward_weights(be, s, dv(&xd), dv(&dyd), dv(&dwd),
                                                                 opt_view(&dbd, with_db),
                                                                 ws_view(&ws)));
                    float *dw = dev_read_floats(&dwd);
                    double *dwr = new_doubles(nw), *dbr = new_doubles(nk);
                    ref_conv_backward_weights(s, L.x, L.r, dwr, dbr);
                    /* dw and db sum over all N*H*W positions */
                    double tol = tol_for((size_t)s->n * s->h * s->w);
                    CHECK_CLOSE("dw", dw, dwr, nw, tol);
                    if (cc->fd) CHECK_FD("dw", conv_loss_fn, &L, L.wt, nw, dw, tol, 10 + ci);
                    if (with_db) {
                        float *db = dev_read_floats(&dbd);
                        CHECK_CLOSE("db", db, dbr, nk, tol);
                        if (cc->fd) CHECK_FD("db", conv_loss_fn, &L, L.b, nk, db, tol, 20 + ci);
                    }
                    dev_release(&xd), dev_release(&dyd), dev_release(&dwd);
                    dev_release(&dbd), dev_release(&ws);
                }
            scratch_free_all();
        }
    }
}

/* Same inputs, same backend (same threads), run twice with re-poisoned outputs and
 * workspace: outputs must be bit-identical (the header's determinism promise). Uses the
 * largest case, where work is split across threads and chunks. */
static void test_conv3x3_determinism(void **state) {
    (void)state;
    const conv_case *cc = &k_conv_cases[N_CONV_CASES - 1];
    const mn_conv_shape *s = &cc->s;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_CONV3X3_FORWARD) ||
            !backend_has(be, MN_OP_CONV3X3_BACKWARD_DATA) ||
            !backend_has(be, MN_OP_CONV3X3_BACKWARD_WEIGHTS))
            continue;
        what_conv(be, "conv3x3 determinism", cc, "");
        size_t nx = conv_x_len(s), nw = conv_w_len(s), ny = conv_y_len(s), nk = (size_t)s->k;
        float *x = rand_floats(nx, 800, -1, 1), *wt = rand_floats(nw, 801, -0.5f, 0.5f);
        float *b = rand_floats(nk, 802, -1, 1), *dy = rand_floats(ny, 803, -1, 1);
        dev xd = dev_in(be, x, nx * 4, 0), wd = dev_in(be, wt, nw * 4, 0);
        dev bd = dev_in(be, b, nk * 4, 0), dyd = dev_in(be, dy, ny * 4, 0);
        dev yd = dev_out(be, ny * 4, 0), dxd = dev_out(be, nx * 4, 0);
        dev dwd = dev_out(be, nw * 4, 0), dbd = dev_out(be, nk * 4, 0);
        dev ws = ws_alloc(be, s);
        float *first[4] = {0}, *second[4] = {0};
        for (int run = 0; run < 2; run++) {
            float **out = run ? second : first;
            dev_poison(&yd), dev_poison(&dxd), dev_poison(&dwd), dev_poison(&dbd);
            if (ws.buf) dev_poison(&ws);
            CHECK_OK(mn_backend_conv3x3_forward(be, s, dv(&xd), dv(&wd), dv(&bd), dv(&yd),
                                                ws_view(&ws)));
            CHECK_OK(mn_backend_conv3x3_backward_data(be, s, dv(&dyd), dv(&wd), dv(&dxd),
                                                      ws_view(&ws)));
            CHECK_OK(mn_backend_conv3x3_backward_weights(be, s, dv(&xd), dv(&dyd), dv(&dwd),
                                                         dv(&dbd), ws_view(&ws)));
            out[0] = dev_read_floats(&yd);
            out[1] = dev_read_floats(&dxd);
            out[2] = dev_read_floats(&dwd);
            out[3] = dev_read_floats(&dbd);
        }
        assert_memory_equal(first[0], second[0], ny * 4);
        assert_memory_equal(first[1], second[1], nx * 4);
        assert_memory_equal(first[2], second[2], nw * 4);
        assert_memory_equal(first[3], second[3], nk * 4);
        dev_release(&xd), dev_release(&wd), dev_release(&bd), dev_release(&dyd);
        dev_release(&yd), dev_release(&dxd), dev_release(&dwd), dev_release(&dbd);
        dev_release(&ws);
        scratch_free_all();
    }
}

/* ==================================================================================== */
/* maxpool2                                                                             */
/* ==================================================================================== */

typedef struct pool_case {
    int n, h, w, c;
    size_t off;
} pool_case;

static const pool_case k_pool_cases[] = {
    {1, 2, 2, 1, 0},   /* one window */
    {1, 3, 3, 1, 8},   /* last row and column dropped by the floor */
    {2, 7, 5, 3, 0},   /* odd H and W */
    {1, 5, 8, 2, 4},   /* odd H only */
    {3, 12, 10, 5, 12}, /* the larger one */
    {4, 16, 16, 8, 4},  /* enough work for a backend to use several threads */
};
#define N_POOL_CASES (sizeof k_pool_cases / sizeof k_pool_cases[0])

static size_t pool_x_len(const pool_case *p) { return (size_t)p->n * p->h * p->w * p->c; }
static size_t pool_y_len(const pool_case *p) {
    return (size_t)p->n * (p->h / 2) * (p->w / 2) * p->c;
}

/* y = max of each 2x2 window; when dy is given, dx gets dy at the first maximum of each
 * window in row-major order and 0 elsewhere. */
static void ref_maxpool(const pool_case *p, const double *x, double *y, const double *dy,
                        double *dx) {
    int oh_n = p->h / 2, ow_n = p->w / 2;
    if (dx) memset(dx, 0, pool_x_len(p) * sizeof *dx);
    for (int n = 0; n < p->n; n++)
        for (int oh = 0; oh < oh_n; oh++)
            for (int ow = 0; ow < ow_n; ow++)
                for (int c = 0; c < p->c; c++) {
                    size_t best = 0;
                    int have = 0;
                    for (int dyy = 0; dyy < 2; dyy++)
                        for (int dxx = 0; dxx < 2; dxx++) {
                            size_t i = (((size_t)n * p->h + 2 * oh + dyy) * p->w + 2 * ow + dxx) *
                                           p->c + c;
                            if (!have || x[i] > x[best]) best = i, have = 1;
                        }
                    size_t o = (((size_t)n * oh_n + oh) * ow_n + ow) * p->c + c;
                    y[o] = x[best];
                    if (dx) dx[best] = dy[o];
                }
}

typedef struct pool_loss {
    const pool_case *p;
    double *x;
    const double *r;
    double *y;
} pool_loss;

static double pool_loss_fn(void *v) {
    pool_loss *L = v;
    ref_maxpool(L->p, L->x, L->y, NULL, NULL);
    return dot(L->y, L->r, pool_y_len(L->p));
}

/* Distinct values, at least 4/count apart (>= 2e-3 here, far more than the FD step), in
 * random order, so no window has a tie and no FD step crosses one. */
static float *distinct_floats(size_t n, uint64_t seed) {
    float *x = new_floats(n);
    for (size_t i = 0; i < n; i++) x[i] = (float)(-2.0 + 4.0 * ((double)i + 0.5) / (double)n);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(&s, i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    return x;
}

static void what_pool(mn_backend *be, const char *op, const pool_case *p, const char *extra) {
    set_what("%s %s n=%d h=%d w=%d c=%d off=%zu%s", mn_backend_name(be), op, p->n, p->h, p->w,
             p->c, p->off, extra);
}

static void test_maxpool2(void **state) {
    (void)state;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_fwd = backend_has(be, MN_OP_MAXPOOL2_FORWARD);
        int has_bwd = backend_has(be, MN_OP_MAXPOOL2_BACKWARD);
        for (size_t ci = 0; ci < N_POOL_CASES; ci++) {
            const pool_case *p = &k_pool_cases[ci];
            size_t nx = pool_x_len(p), ny = pool_y_len(p);
            float *x = distinct_floats(nx, 900 + ci);
            float *dy = rand_floats(ny, 950 + ci, -1, 1);
            pool_loss L = {p, to_double(x, nx), to_double(dy, ny), new_doubles(ny)};
            double *yr = new_doubles(ny), *dxr = new_doubles(nx);
            ref_maxpool(p, L.x, yr, L.r, dxr);
            dev xd = dev_in(be, x, nx * 4, p->off);
            if (has_fwd) {
                what_pool(be, "maxpool2_forward", p, "");
                dev yd = dev_out(be, ny * 4, 2 * p->off);
                CHECK_OK(mn_backend_maxpool2_forward(be, p->n, p->h, p->w, p->c, dv(&xd), dv(&yd)));
                CHECK_CLOSE("y", dev_read_floats(&yd), yr, ny, 0.0); /* a max is exact */
                dev_release(&yd);
            }
            if (has_bwd) {
                what_pool(be, "maxpool2_backward", p, "");
                float *y = to_float(yr, ny); /* exactly the forward's result */
                dev yd = dev_in(be, y, ny * 4, 2 * p->off);
                dev dyd = dev_in(be, dy, ny * 4, 3 * p->off);
                dev dxd = dev_out(be, nx * 4, p->off + 4);
                CHECK_OK(mn_backend_maxpool2_backward(be, p->n, p->h, p->w, p->c, dv(&xd), dv(&yd),
                                                      dv(&dyd), dv(&dxd)));
                float *dx = dev_read_floats(&dxd);
                CHECK_CLOSE("dx", dx, dxr, nx, 0.0); /* copies of dy or zeros */
                CHECK_FD("dx", pool_loss_fn, &L, L.x, nx, dx, TOL_F32, ci);
                dev_release(&yd), dev_release(&dyd), dev_release(&dxd);
            }
            dev_release(&xd);
            scratch_free_all();
        }
    }
}

/* Ties: small integers make most windows hold equal maxima; the gradient must go to the
 * first of them in row-major order (the header's rule), exactly once. */
static void test_maxpool2_ties(void **state) {
    (void)state;
    const pool_case p = {2, 7, 9, 3, 16};
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_MAXPOOL2_BACKWARD)) continue;
        what_pool(be, "maxpool2_backward", &p, " ties");
        size_t nx = pool_x_len(&p), ny = pool_y_len(&p);
        float *x = new_floats(nx);
        uint64_t s = 12345;
        for (size_t i = 0; i < nx; i++) x[i] = (float)(rng_below(&s, 3)); /* 0, 1 or 2 */
        /* a few windows of four equal values, whatever the draw */
        for (size_t i = 0; i < (size_t)p.c * 2; i++) x[i] = 1.0f;
        float *dy = rand_floats(ny, 77, 0.5f, 1.5f);
        double *yr = new_doubles(ny), *dxr = new_doubles(nx);
        ref_maxpool(&p, to_double(x, nx), yr, to_double(dy, ny), dxr);
        dev xd = dev_in(be, x, nx * 4, p.off);
        dev yd = dev_in(be, to_float(yr, ny), ny * 4, 0);
        dev dyd = dev_in(be, dy, ny * 4, p.off);
        dev dxd = dev_out(be, nx * 4, 2 * p.off);
        CHECK_OK(mn_backend_maxpool2_backward(be, p.n, p.h, p.w, p.c, dv(&xd), dv(&yd), dv(&dyd),
                                              dv(&dxd)));
        CHECK_CLOSE("dx", dev_read_floats(&dxd), dxr, nx, 0.0);
        dev_release(&xd), dev_release(&yd), dev_release(&dyd), dev_release(&dxd);
        scratch_free_all();
    }
}

/* ==================================================================================== */
/* batchnorm                                                                            */
/* ==================================================================================== */

typedef struct bn_case {
    int m, c;
    size_t off;
} bn_case;

static const bn_case k_bn_cases[] = {
    {2, 1, 0},    /* smallest m with an unbiased variance */
    {12, 1, 8},   /* C = 1 */
    {35, 3, 0},   /* N=1, 7x5 */
    {6, 4, 4},    /* few rows, several channels */
    {360, 5, 16}, /* N=3, 12x10, C=5 */
    {1024, 40, 8}, /* N=4, 16x16: enough work for several threads */
};
#define N_BN_CASES (sizeof k_bn_cases / sizeof k_bn_cases[0])

/* Training-mode batch norm in double: batch mean, biased variance, invstd; y. */
static void ref_bn_train(int m, int c, const double *x, const double *gamma, const double *beta,
                         double eps, double *y, double *mean, double *invstd, double *var) {
    for (int j = 0; j < c; j++) {
        double s = 0, ss = 0;
        for (int i = 0; i < m; i++) s += x[(size_t)i * c + j];
        double mu = s / m;
        for (int i = 0; i < m; i++) {
            double d = x[(size_t)i * c + j] - mu;
            ss += d * d;
        }
        mean[j] = mu;
        var[j] = ss / m;
        invstd[j] = 1.0 / sqrt(ss / m + eps);
        for (int i = 0; i < m; i++)
            y[(size_t)i * c + j] = gamma[j] * (x[(size_t)i * c + j] - mu) * invstd[j] + beta[j];
    }
}

/* The closed-form batch-norm gradient given the saved mean and invstd. */
static void ref_bn_backward(int m, int c, const double *x, const double *dy, const double *gamma,
                            const double *mean, const double *invstd, double *dx, double *dgamma,
                            double *dbeta) {
    for (int j = 0; j < c; j++) {
        double sdy = 0, sdyx = 0;
        for (int i = 0; i < m; i++) {
            size_t k = (size_t)i * c + j;
            double xh = (x[k] - mean[j]) * invstd[j];
            sdy += dy[k];
            sdyx += dy[k] * xh;
        }
        dbeta[j] = sdy;
        dgamma[j] = sdyx;
        for (int i = 0; i < m; i++) {
            size_t k = (size_t)i * c + j;
            double xh = (x[k] - mean[j]) * invstd[j];
            dx[k] = gamma[j] * invstd[j] / m * (m * dy[k] - sdy - xh * sdyx);
        }
    }
}

typedef struct bn_loss {
    int m, c;
    double *x, *gamma, *beta;
    double eps;
    const double *r;
    double *y, *mean, *invstd, *var;
} bn_loss;

static double bn_loss_fn(void *v) {
    bn_loss *L = v;
    ref_bn_train(L->m, L->c, L->x, L->gamma, L->beta, L->eps, L->y, L->mean, L->invstd, L->var);
    return dot(L->y, L->r, (size_t)L->m * L->c);
}

/* Per-channel data with a non-zero mean and unit-ish spread. */
static float *bn_input(int m, int c, uint64_t seed) {
    float *x = rand_floats((size_t)m * c, seed, -1.5f, 1.5f);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < c; j++) x[(size_t)i * c + j] += 0.25f * (float)(j + 1);
    return x;
}

static void what_bn(mn_backend *be, const char *op, const bn_case *b) {
    set_what("%s %s m=%d c=%d off=%zu", mn_backend_name(be), op, b->m, b->c, b->off);
}

static void test_batchnorm_train_infer(void **state) {
    (void)state;
    const float momentum = 0.9f, eps = 1e-3f;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_train = backend_has(be, MN_OP_BATCHNORM_TRAIN);
        int has_infer = backend_has(be, MN_OP_BATCHNORM_INFER);
        for (size_t ci = 0; ci < N_BN_CASES; ci++) {
            const bn_case *bc = &k_bn_cases[ci];
            int m = bc->m, c = bc->c;
            size_t nx = (size_t)m * c, nc = (size_t)c, off = bc->off;
            float *x = bn_input(m, c, 1000 + ci);
            float *gamma = rand_floats(nc, 1010 + ci, 0.5f, 1.5f);
            float *beta = rand_floats(nc, 1020 + ci, -0.5f, 0.5f);
            float *rmean = rand_floats(nc, 1030 + ci, -0.2f, 0.2f);
            float *rvar = rand_floats(nc, 1040 + ci, 0.5f, 1.5f);
            dev xd = dev_in(be, x, nx * 4, off), gd = dev_in(be, gamma, nc * 4, 2 * off);
            dev bd = dev_in(be, beta, nc * 4, 3 * off);
            if (has_train) {
                what_bn(be, "batchnorm_train", bc);
                dev rmd = dev_inout(be, rmean, nc * 4, off + 4);
                dev rvd = dev_inout(be, rvar, nc * 4, off + 8);
                dev yd = dev_out(be, nx * 4, off + 12), smd = dev_out(be, nc * 4, off);
                dev sid = dev_out(be, nc * 4, 2 * off);
                CHECK_OK(mn_backend_batchnorm_train(be, m, c, dv(&xd), dv(&gd), dv(&bd), dv(&rmd),
                                                    dv(&rvd), momentum, eps, dv(&yd), dv(&smd),
                                                    dv(&sid)));
                double *yr = new_doubles(nx), *mean = new_doubles(nc), *invstd = new_doubles(nc);
                double *var = new_doubles(nc), *rmr = new_doubles(nc), *rvr = new_doubles(nc);
                ref_bn_train(m, c, to_double(x, nx), to_double(gamma, nc), to_double(beta, nc),
                             eps, yr, mean, invstd, var);
                for (size_t j = 0; j < nc; j++) {
                    double mom = momentum;
                    rmr[j] = mom * rmean[j] + (1 - mom) * mean[j];
                    rvr[j] = mom * rvar[j] + (1 - mom) * var[j] * m / (m - 1); /* unbiased */
                }
                /* statistics are reductions over m rows (up to 360) */
                CHECK_CLOSE("y", dev_read_floats(&yd), yr, nx, TOL_LONG);
                CHECK_CLOSE("save_mean", dev_read_floats(&smd), mean, nc, TOL_LONG);
                CHECK_CLOSE_REL("save_invstd", dev_read_floats(&sid), invstd, nc, TOL_LONG,
                                1e-30);
                CHECK_CLOSE("running_mean", dev_read_floats(&rmd), rmr, nc, TOL_LONG);
                CHECK_CLOSE_REL("running_var", dev_read_floats(&rvd), rvr, nc, TOL_LONG, 1e-30);
                dev_release(&rmd), dev_release(&rvd), dev_release(&yd), dev_release(&smd);
                dev_release(&sid);
            }
            if (has_infer) {
                what_bn(be, "batchnorm_infer", bc);
                dev rmd = dev_in(be, rmean, nc * 4, off + 4);
                dev rvd = dev_in(be, rvar, nc * 4, off + 8);
                dev yd = dev_out(be, nx * 4, off + 12);
                CHECK_OK(mn_backend_batchnorm_infer(be, m, c, dv(&xd), dv(&gd), dv(&bd), dv(&rmd),
                                                    dv(&rvd), eps, dv(&yd)));
                double *yr = new_doubles(nx);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < c; j++) {
                        size_t k = (size_t)i * c + j;
                        yr[k] = (double)gamma[j] * (x[k] - (double)rmean[j]) /
                                    sqrt((double)rvar[j] + (double)eps) +
                                beta[j];
                    }
                CHECK_CLOSE("y", dev_read_floats(&yd), yr, nx, TOL_F32);
                dev_release(&rmd), dev_release(&rvd), dev_release(&yd);
            }
            dev_release(&xd), dev_release(&gd), dev_release(&bd);
            scratch_free_all();
        }
    }
}

static void test_batchnorm_backward(void **state) {
    (void)state;
    const float eps = 1e-3f;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_BATCHNORM_BACKWARD)) continue;
        for (size_t ci = 0; ci < N_BN_CASES; ci++) {
            const bn_case *bc = &k_bn_cases[ci];
            int m = bc->m, c = bc->c;
            size_t nx = (size_t)m * c, nc = (size_t)c, off = bc->off;
            what_bn(be, "batchnorm_backward", bc);
            float *x = bn_input(m, c, 1100 + ci);
            float *gamma = rand_floats(nc, 1110 + ci, 0.5f, 1.5f);
            float *beta = rand_floats(nc, 1120 + ci, -0.5f, 0.5f);
            float *dy = rand_floats(nx, 1130 + ci, -1, 1);
            bn_loss L = {m, c, to_double(x, nx), to_double(gamma, nc), to_double(beta, nc), eps,
                         to_double(dy, nx), new_doubles(nx), new_doubles(nc), new_doubles(nc),
                         new_doubles(nc)};
            bn_loss_fn(&L); /* fills L.mean and L.invstd */
            double *mean = new_doubles(nc), *invstd = new_doubles(nc);
            memcpy(mean, L.mean, nc * sizeof *mean);
            memcpy(invstd, L.invstd, nc * sizeof *invstd);
            /* the saved statistics the backward consumes: the reference's, rounded */
            float *smean = to_float(mean, nc), *sinvstd = to_float(invstd, nc);
            dev xd = dev_in(be, x, nx * 4, off), dyd = dev_in(be, dy, nx * 4, 2 * off);
            dev gd = dev_in(be, gamma, nc * 4, 3 * off), smd = dev_in(be, smean, nc * 4, off + 4);
            dev sid = dev_in(be, sinvstd, nc * 4, off + 8);
            dev dxd = dev_out(be, nx * 4, off + 12), dgd = dev_out(be, nc * 4, off);
            dev dbd = dev_out(be, nc * 4, 2 * off);
            CHECK_OK(mn_backend_batchnorm_backward(be, m, c, dv(&xd), dv(&dyd), dv(&gd), dv(&smd),
                                                   dv(&sid), dv(&dxd), dv(&dgd), dv(&dbd)));
            float *dx = dev_read_floats(&dxd), *dgamma = dev_read_floats(&dgd);
            float *dbeta = dev_read_floats(&dbd);
            double *dxr = new_doubles(nx), *dgr = new_doubles(nc), *dbr = new_doubles(nc);
            ref_bn_backward(m, c, L.x, L.r, L.gamma, mean, invstd, dxr, dgr, dbr);
            /* sums over m rows, and dx subtracts two of them from m*dy */
            CHECK_CLOSE("dx", dx, dxr, nx, TOL_LONG);
            CHECK_CLOSE("dgamma", dgamma, dgr, nc, TOL_LONG);
            CHECK_CLOSE("dbeta", dbeta, dbr, nc, TOL_LONG);
            CHECK_FD("dx", bn_loss_fn, &L, L.x, nx, dx, TOL_LONG, ci);
            CHECK_FD("dgamma", bn_loss_fn, &L, L.gamma, nc, dgamma, TOL_LONG, ci);
            CHECK_FD("dbeta", bn_loss_fn, &L, L.beta, nc, dbeta, TOL_LONG, ci);
            dev_release(&xd), dev_release(&dyd), dev_release(&gd), dev_release(&smd);
            dev_release(&sid), dev_release(&dxd), dev_release(&dgd), dev_release(&dbd);
            scratch_free_all();
        }
    }
}

/* ==================================================================================== */
/* relu                                                                                 */
/* ==================================================================================== */

typedef struct relu_loss {
    size_t n;
    double *x;
    const double *r;
} relu_loss;

static double relu_loss_fn(void *v) {
    relu_loss *L = v;
    double acc = 0;
    for (size_t i = 0; i < L->n; i++) acc += (L->x[i] > 0 ? L->x[i] : 0) * L->r[i];
    return acc;
}

/* Values with |x| in [0.1, 2) and random sign: no element sits at the kink. */
static float *away_from_zero(size_t n, uint64_t seed) {
    float *x = rand_floats(n, seed, 0.1f, 2.0f);
    uint64_t s = seed + 99;
    for (size_t i = 0; i < n; i++)
        if (rng_next(&s) & 1) x[i] = -x[i];
    return x;
}

static void test_relu(void **state) {
    (void)state;
    /* 70001: odd and large enough for a backend to split it across threads */
    static const size_t counts[] = {1, 1027, 70001};
    static const size_t offs[] = {4, 0, 8};
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_fwd = backend_has(be, MN_OP_RELU_FORWARD);
        int has_bwd = backend_has(be, MN_OP_RELU_BACKWARD);
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++)
            for (int in_place = 0; in_place <= 1; in_place++) {
                size_t n = counts[ci], off = offs[ci];
                float *x = away_from_zero(n, 1200 + ci);
                float *dy = rand_floats(n, 1210 + ci, -1, 1);
                relu_loss L = {n, to_double(x, n), to_double(dy, n)};
                double *yr = new_doubles(n), *dxr = new_doubles(n);
                for (size_t i = 0; i < n; i++) {
                    yr[i] = x[i] > 0 ? x[i] : 0;
                    dxr[i] = yr[i] > 0 ? dy[i] : 0;
                }
                if (has_fwd) {
                    set_what("%s relu_forward count=%zu off=%zu%s", mn_backend_name(be), n, off,
                             in_place ? " in-place" : "");
                    dev xd = in_place ? dev_inout(be, x, n * 4, off) : dev_in(be, x, n * 4, off);
                    dev yd = in_place ? xd : dev_out(be, n * 4, off + 8);
                    CHECK_OK(mn_backend_relu_forward(be, n, dv(&xd), dv(&yd)));
                    CHECK_CLOSE("y", dev_read_floats(&yd), yr, n, 0.0);
                    dev_release(&xd);
                    if (!in_place) dev_release(&yd);
                }
                if (has_bwd) {
                    set_what("%s relu_backward count=%zu off=%zu%s", mn_backend_name(be), n, off,
                             in_place ? " in-place" : "");
                    float *y = to_float(yr, n);
                    dev yd = dev_in(be, y, n * 4, off + 12);
                    dev dyd = in_place ? dev_inout(be, dy, n * 4, off) : dev_in(be, dy, n * 4, off);
                    dev dxd = in_place ? dyd : dev_out(be, n * 4, 2 * off);
                    CHECK_OK(mn_backend_relu_backward(be, n, dv(&yd), dv(&dyd), dv(&dxd)));
                    float *dx = dev_read_floats(&dxd);
                    CHECK_CLOSE("dx", dx, dxr, n, 0.0);
                    CHECK_FD("dx", relu_loss_fn, &L, L.x, n, dx, TOL_F32, ci);
                    dev_release(&yd), dev_release(&dyd);
                    if (!in_place) dev_release(&dxd);
                }
                scratch_free_all();
            }
    }
}

/* ==================================================================================== */
/* global average pool                                                                  */
/* ==================================================================================== */

static const pool_case k_gap_cases[] = {
    {1, 1, 1, 1, 0},
    {2, 7, 5, 3, 8},
    {1, 4, 4, 1, 4},
    {3, 12, 10, 5, 12},
    {4, 16, 16, 8, 0}, /* enough work for several threads */
};
#define N_GAP_CASES (sizeof k_gap_cases / sizeof k_gap_cases[0])

static void ref_gap(const pool_case *p, const double *x, double *y) {
    size_t hw = (size_t)p->h * p->w;
    for (int n = 0; n < p->n; n++)
        for (int c = 0; c < p->c; c++) {
            double acc = 0;
            for (size_t i = 0; i < hw; i++) acc += x[((size_t)n * hw + i) * p->c + c];
            y[(size_t)n * p->c + c] = acc / (double)hw;
        }
}

typedef struct gap_loss {
    const pool_case *p;
    double *x;
    const double *r;
    double *y;
} gap_loss;

static double gap_loss_fn(void *v) {
    gap_loss *L = v;
    ref_gap(L->p, L->x, L->y);
    return dot(L->y, L->r, (size_t)L->p->n * L->p->c);
}

static void test_gap(void **state) {
    (void)state;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_fwd = backend_has(be, MN_OP_GAP_FORWARD);
        int has_bwd = backend_has(be, MN_OP_GAP_BACKWARD);
        for (size_t ci = 0; ci < N_GAP_CASES; ci++) {
            const pool_case *p = &k_gap_cases[ci];
            size_t nx = pool_x_len(p), ny = (size_t)p->n * p->c, hw = (size_t)p->h * p->w;
            float *x = rand_floats(nx, 1300 + ci, -1, 3);
            float *dy = rand_floats(ny, 1310 + ci, -1, 1);
            gap_loss L = {p, to_double(x, nx), to_double(dy, ny), new_doubles(ny)};
            if (has_fwd) {
                what_pool(be, "gap_forward", p, "");
                dev xd = dev_in(be, x, nx * 4, p->off), yd = dev_out(be, ny * 4, 2 * p->off);
                CHECK_OK(mn_backend_gap_forward(be, p->n, p->h, p->w, p->c, dv(&xd), dv(&yd)));
                double *yr = new_doubles(ny);
                ref_gap(p, L.x, yr);
                /* a mean of <= 120 terms: the error stays ~1e-6 of the values' scale */
                CHECK_CLOSE("y", dev_read_floats(&yd), yr, ny, TOL_F32);
                dev_release(&xd), dev_release(&yd);
            }
            if (has_bwd) {
                what_pool(be, "gap_backward", p, "");
                dev dyd = dev_in(be, dy, ny * 4, p->off), dxd = dev_out(be, nx * 4, 3 * p->off);
                CHECK_OK(mn_backend_gap_backward(be, p->n, p->h, p->w, p->c, dv(&dyd), dv(&dxd)));
                float *dx = dev_read_floats(&dxd);
                double *dxr = new_doubles(nx);
                for (size_t i = 0; i < nx; i++) {
                    size_t n = i / (hw * p->c), c = i % p->c;
                    dxr[i] = L.r[n * p->c + c] / (double)hw;
                }
                CHECK_CLOSE_REL("dx", dx, dxr, nx, TOL_ELEM, 1e-30);
                CHECK_FD("dx", gap_loss_fn, &L, L.x, nx, dx, TOL_F32, ci);
                dev_release(&dyd), dev_release(&dxd);
            }
            scratch_free_all();
        }
    }
}

/* ==================================================================================== */
/* dropout                                                                              */
/* ==================================================================================== */

typedef struct dropout_loss {
    size_t n;
    double *x;
    const double *mask, *r;
} dropout_loss;

static double dropout_loss_fn(void *v) {
    dropout_loss *L = v;
    double acc = 0;
    for (size_t i = 0; i < L->n; i++) acc += L->x[i] * L->mask[i] * L->r[i];
    return acc;
}

static void test_dropout(void **state) {
    (void)state;
    static const struct {
        size_t count;
        float rate;
        uint64_t seed;
        size_t off;
    } cases[] = {
        {1027, 0.3f, 42, 8},
        {1027, 0.5f, 0xDEADBEEFCAFEull, 0},
        {64, 0.0f, 7, 4}, /* rate 0: everything kept, mask 1 */
        {1, 0.25f, 3, 0},
        {70001, 0.2f, 99, 12}, /* enough work for several threads */
    };
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_fwd = backend_has(be, MN_OP_DROPOUT_FORWARD);
        int has_bwd = backend_has(be, MN_OP_DROPOUT_BACKWARD);
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            size_t n = cases[ci].count, off = cases[ci].off;
            float rate = cases[ci].rate;
            uint64_t seed = cases[ci].seed;
            float *x = rand_floats(n, 1400 + ci, -2, 2);
            float *dy = rand_floats(n, 1410 + ci, -1, 1);
            double *maskr = new_doubles(n), *yr = new_doubles(n), *dxr = new_doubles(n);
            size_t kept = 0;
            for (size_t i = 0; i < n; i++) {
                int keep = mn_dropout_keep(seed, i, rate);
                kept += (size_t)keep;
                maskr[i] = keep ? 1.0 / (1.0 - (double)rate) : 0.0;
                yr[i] = x[i] * maskr[i];
                dxr[i] = dy[i] * maskr[i];
            }
            /* the hash itself: roughly 1-rate of the elements kept */
            if (n > 1000) assert_true(fabs((double)kept / n - (1.0 - rate)) < 0.06);
            if (has_fwd) {
                set_what("%s dropout_forward count=%zu rate=%g off=%zu", mn_backend_name(be), n,
                         (double)rate, off);
                dev xd = dev_in(be, x, n * 4, off), md = dev_out(be, n * 4, 2 * off);
                dev yd = dev_out(be, n * 4, off + 4);
                CHECK_OK(mn_backend_dropout_forward(be, n, rate, seed, dv(&xd), dv(&md), dv(&yd)));
                float *mask = dev_read_floats(&md);
                for (size_t i = 0; i < n; i++)
                    if ((mask[i] == 0) != (maskr[i] == 0)) {
                        print_error("[%s] mask[%zu] = %g but mn_dropout_keep says %s\n", g_what,
                                    i, (double)mask[i], maskr[i] == 0 ? "drop" : "keep");
                        fail();
                    }
                /* 1/(1-rate) may be formed in float or double: an ulp apart */
                CHECK_CLOSE_REL("mask", mask, maskr, n, TOL_ELEM, 1e-30);
                CHECK_CLOSE_REL("y", dev_read_floats(&yd), yr, n, TOL_ELEM, 1e-30);
                dev_release(&xd), dev_release(&md), dev_release(&yd);
            }
            if (has_bwd) {
                set_what("%s dropout_backward count=%zu rate=%g off=%zu", mn_backend_name(be), n,
                         (double)rate, off);
                float *mask = to_float(maskr, n);
                dev md = dev_in(be, mask, n * 4, off), dyd = dev_in(be, dy, n * 4, 2 * off);
                dev dxd = dev_out(be, n * 4, off + 4);
                CHECK_OK(mn_backend_dropout_backward(be, n, dv(&md), dv(&dyd), dv(&dxd)));
                float *dx = dev_read_floats(&dxd);
                CHECK_CLOSE_REL("dx", dx, dxr, n, TOL_ELEM, 1e-30);
                dropout_loss L = {n, to_double(x, n), maskr, to_double(dy, n)};
                CHECK_FD("dx", dropout_loss_fn, &L, L.x, n, dx, TOL_F32, ci);
                dev_release(&md), dev_release(&dyd), dev_release(&dxd);
            }
            scratch_free_all();
        }
    }
}

/* ==================================================================================== */
/* dense                                                                                */
/* ==================================================================================== */

typedef struct dense_case {
    int n, in, out;
    size_t off;
} dense_case;

static const dense_case k_dense_cases[] = {
    {1, 1, 1, 0}, {2, 7, 5, 8}, {3, 40, 10, 4}, {4, 17, 3, 0}, {1, 5, 1, 12},
    {64, 128, 10, 4}, /* enough work for several threads; y sums 128 products */
};
#define N_DENSE_CASES (sizeof k_dense_cases / sizeof k_dense_cases[0])

static void ref_dense(const dense_case *d, const double *x, const double *wt, const double *b,
                      double *y) {
    for (int n = 0; n < d->n; n++)
        for (int o = 0; o < d->out; o++) {
            double acc = b[o];
            for (int i = 0; i < d->in; i++)
                acc += x[(size_t)n * d->in + i] * wt[(size_t)o * d->in + i];
            y[(size_t)n * d->out + o] = acc;
        }
}

typedef struct dense_loss {
    const dense_case *d;
    double *x, *wt, *b;
    const double *r;
    double *y;
} dense_loss;

static double dense_loss_fn(void *v) {
    dense_loss *L = v;
    ref_dense(L->d, L->x, L->wt, L->b, L->y);
    return dot(L->y, L->r, (size_t)L->d->n * L->d->out);
}

static void what_dense(mn_backend *be, const char *op, const dense_case *d, const char *extra) {
    set_what("%s %s n=%d in=%d out=%d off=%zu%s", mn_backend_name(be), op, d->n, d->in, d->out,
             d->off, extra);
}

static void test_dense(void **state) {
    (void)state;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        int has_fwd = backend_has(be, MN_OP_DENSE_FORWARD);
        int has_bwd = backend_has(be, MN_OP_DENSE_BACKWARD);
        for (size_t ci = 0; ci < N_DENSE_CASES; ci++) {
            const dense_case *d = &k_dense_cases[ci];
            size_t nx = (size_t)d->n * d->in, nw = (size_t)d->out * d->in;
            size_t ny = (size_t)d->n * d->out, nb = (size_t)d->out, off = d->off;
            float *x = rand_floats(nx, 1500 + ci, -1, 1);
            float *wt = rand_floats(nw, 1510 + ci, -0.5f, 0.5f);
            float *b = rand_floats(nb, 1520 + ci, -1, 1);
            float *dy = rand_floats(ny, 1530 + ci, -1, 1);
            dense_loss L = {d, to_double(x, nx), to_double(wt, nw), to_double(b, nb),
                            to_double(dy, ny), new_doubles(ny)};
            dev xd = dev_in(be, x, nx * 4, off), wd = dev_in(be, wt, nw * 4, 2 * off);
            if (has_fwd) {
                what_dense(be, "dense_forward", d, "");
                dev bd = dev_in(be, b, nb * 4, 3 * off), yd = dev_out(be, ny * 4, off + 4);
                CHECK_OK(mn_backend_dense_forward(be, d->n, d->in, d->out, dv(&xd), dv(&wd),
                                                  dv(&bd), dv(&yd)));
                double *yr = new_doubles(ny);
                ref_dense(d, L.x, L.wt, L.b, yr);
                CHECK_CLOSE("y", dev_read_floats(&yd), yr, ny, tol_for((size_t)d->in));
                dev_release(&bd), dev_release(&yd);
            }
            if (has_bwd)
                for (int with_dx = 1; with_dx >= 0; with_dx--) {
                    what_dense(be, "dense_backward", d, with_dx ? "" : " no-dx");
                    dev dyd = dev_in(be, dy, ny * 4, 3 * off);
                    dev dxd = dev_out(be, nx * 4, off + 4), dwd = dev_out(be, nw * 4, off + 8);
                    dev dbd = dev_out(be, nb * 4, off + 12);
                    CHECK_OK(mn_backend_dense_backward(be, d->n, d->in, d->out, dv(&xd), dv(&wd),
                                                       dv(&dyd), opt_view(&dxd, with_dx), dv(&dwd),
                                                       dv(&dbd)));
                    double *dxr = new_doubles(nx), *dwr = new_doubles(nw), *dbr = new_doubles(nb);
                    for (int n = 0; n < d->n; n++)
                        for (int o = 0; o < d->out; o++) {
                            double g = L.r[(size_t)n * d->out + o];
                            dbr[o] += g;
                            for (int i = 0; i < d->in; i++) {
                                dxr[(size_t)n * d->in + i] += g * L.wt[(size_t)o * d->in + i];
                                dwr[(size_t)o * d->in + i] += g * L.x[(size_t)n * d->in + i];
                            }
                        }
                    float *dw = dev_read_floats(&dwd), *db = dev_read_floats(&dbd);
                    /* dw, db sum over the batch; dx over the outputs */
                    double tol_w = tol_for((size_t)d->n), tol_x = tol_for((size_t)d->out);
                    CHECK_CLOSE("dw", dw, dwr, nw, tol_w);
                    CHECK_CLOSE("db", db, dbr, nb, tol_w);
                    CHECK_FD("dw", dense_loss_fn, &L, L.wt, nw, dw, tol_w, ci);
                    CHECK_FD("db", dense_loss_fn, &L, L.b, nb, db, tol_w, ci);
                    if (with_dx) {
                        float *dx = dev_read_floats(&dxd);
                        CHECK_CLOSE("dx", dx, dxr, nx, tol_x);
                        CHECK_FD("dx", dense_loss_fn, &L, L.x, nx, dx, tol_x, ci);
                    }
                    dev_release(&dyd), dev_release(&dxd), dev_release(&dwd), dev_release(&dbd);
                }
            dev_release(&xd), dev_release(&wd);
            scratch_free_all();
        }
    }
}

/* ==================================================================================== */
/* softmax cross-entropy                                                                */
/* ==================================================================================== */

static void ref_softmax_xent(int n, int classes, const double *logits, const int32_t *labels,
                             double scale, double *probs, double *loss, double *dlogits) {
    for (int i = 0; i < n; i++) {
        const double *z = logits + (size_t)i * classes;
        double mx = z[0], sum = 0;
        for (int j = 1; j < classes; j++) mx = fmax(mx, z[j]);
        for (int j = 0; j < classes; j++) sum += exp(z[j] - mx);
        loss[i] = log(sum) + mx - z[labels[i]];
        for (int j = 0; j < classes; j++) {
            double p = exp(z[j] - mx) / sum;
            if (probs) probs[(size_t)i * classes + j] = p;
            if (dlogits) dlogits[(size_t)i * classes + j] = (p - (j == labels[i])) * scale;
        }
    }
}

/* L = grad_scale * sum(loss): dlogits is its gradient. */
typedef struct xent_loss {
    int n, classes;
    double *logits;
    const int32_t *labels;
    double scale;
    double *loss;
} xent_loss;

static double xent_loss_fn(void *v) {
    xent_loss *L = v;
    ref_softmax_xent(L->n, L->classes, L->logits, L->labels, L->scale, NULL, L->loss, NULL);
    double acc = 0;
    for (int i = 0; i < L->n; i++) acc += L->loss[i];
    return acc * L->scale;
}

static void test_softmax_xent(void **state) {
    (void)state;
    static const struct {
        int n, classes;
        float shift; /* added to every logit */
        size_t off;
    } cases[] = {
        {1, 1, 0, 0},   /* one class: p = 1, loss 0, gradient 0 */
        {1, 2, 0, 4},
        {3, 10, 0, 8},
        {5, 7, 0, 0},
        /* exp(500) overflows float: a softmax that does not subtract the row max fails */
        {4, 6, 500, 12},
        {256, 10, 0, 8}, /* enough work for several threads */
    };
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_SOFTMAX_XENT)) continue;
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
            for (int with_grad = 1; with_grad >= 0; with_grad--) {
                int n = cases[ci].n, classes = cases[ci].classes;
                size_t nl = (size_t)n * classes, nn = (size_t)n, off = cases[ci].off;
                set_what("%s softmax_xent n=%d classes=%d shift=%g off=%zu%s", mn_backend_name(be),
                         n, classes, (double)cases[ci].shift, off,
                         with_grad ? "" : " no-dlogits");
                float *logits = rand_floats(nl, 1600 + ci, -5, 5);
                for (size_t i = 0; i < nl; i++) logits[i] += cases[ci].shift;
                int32_t *labels = scratch(nn * sizeof *labels);
                uint64_t s = 1700 + ci;
                for (size_t i = 0; i < nn; i++) labels[i] = (int32_t)rng_below(&s, (size_t)classes);
                float scale = 1.0f / (float)n;
                dev ld = dev_in(be, logits, nl * 4, off), lbd = dev_in(be, labels, nn * 4, 2 * off);
                dev pd = dev_out(be, nl * 4, off + 4), lsd = dev_out(be, nn * 4, off + 8);
                dev gd = dev_out(be, nl * 4, 3 * off);
                CHECK_OK(mn_backend_softmax_xent(be, n, classes, dv(&ld), dv(&lbd), scale, dv(&pd),
                                                 dv(&lsd), opt_view(&gd, with_grad)));
                xent_loss L = {n, classes, to_double(logits, nl), labels, scale, new_doubles(nn)};
                double *pr = new_doubles(nl), *lr = new_doubles(nn), *gr = new_doubles(nl);
                ref_softmax_xent(n, classes, L.logits, labels, scale, pr, lr, gr);
                CHECK_CLOSE("probs", dev_read_floats(&pd), pr, nl, TOL_F32);
                CHECK_CLOSE("loss", dev_read_floats(&lsd), lr, nn, TOL_F32);
                if (with_grad) {
                    float *g = dev_read_floats(&gd);
                    CHECK_CLOSE("dlogits", g, gr, nl, TOL_F32);
                    CHECK_FD("dlogits", xent_loss_fn, &L, L.logits, nl, g, TOL_F32, ci);
                }
                dev_release(&ld), dev_release(&lbd), dev_release(&pd), dev_release(&lsd);
                dev_release(&gd);
                scratch_free_all();
            }
    }
}

/* ==================================================================================== */
/* adam                                                                                 */
/* ==================================================================================== */

static void test_adam_step(void **state) {
    (void)state;
    /* 70001: enough work for a backend to split it across threads */
    static const size_t counts[] = {1027, 70001}, offs[] = {12, 0};
    const int steps = 5;
    /* eps this large makes sqrt(v)+eps distinguishable from sqrt(v+eps) or from eps
     * applied after bias correction */
    const float lr = 0.01f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-3f;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_ADAM_STEP)) continue;
        for (size_t ci = 0; ci < 2; ci++) {
            const size_t n = counts[ci], off = offs[ci];
            float *p0 = rand_floats(n, 1800, -1, 1);
            double *p = to_double(p0, n), *m = new_doubles(n), *v = new_doubles(n);
            float *zeros = new_floats(n);
            dev pd = dev_inout(be, p0, n * 4, off), md = dev_inout(be, zeros, n * 4, 2 * off);
            dev vd = dev_inout(be, zeros, n * 4, 3 * off);
            for (int t = 1; t <= steps; t++) {
                set_what("%s adam_step count=%zu off=%zu step=%d", mn_backend_name(be), n, off, t);
                float *g = rand_floats(n, 1810 + (uint64_t)t, -1, 1);
                for (size_t i = 0; i < n; i += 97) g[i] = 0; /* v stays 0: the update must be 0 */
                dev gd = dev_in(be, g, n * 4, off + 4);
                CHECK_OK(mn_backend_adam_step(be, n, dv(&pd), dv(&gd), dv(&md), dv(&vd), lr, beta1,
                                              beta2, eps, t));
                double b1 = beta1, b2 = beta2;
                double lr_t = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
                for (size_t i = 0; i < n; i++) {
                    m[i] = b1 * m[i] + (1 - b1) * g[i];
                    v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
                    p[i] -= lr_t * m[i] / (sqrt(v[i]) + eps);
                }
                CHECK_CLOSE("param", dev_read_floats(&pd), p, n, TOL_F32);
                /* m and v are much smaller than 1, so the default floor of 1 would hide
                 * errors: m (~0.1, a sum of mixed-sign terms that can cancel to ~0) is judged
                 * relative to 1e-2, v (a sum of squares, no cancellation) purely relatively */
                CHECK_CLOSE_REL("m", dev_read_floats(&md), m, n, TOL_F32, 1e-2);
                CHECK_CLOSE_REL("v", dev_read_floats(&vd), v, n, TOL_F32, 1e-30);
                dev_release(&gd);
            }
            dev_release(&pd), dev_release(&md), dev_release(&vd);
            scratch_free_all();
        }
    }
}

/* ==================================================================================== */
/* scale_u8                                                                             */
/* ==================================================================================== */

static void test_scale_u8(void **state) {
    (void)state;
    static const size_t counts[] = {1027, 70001}; /* the second: enough for threads */
    const float scale = 1.0f / 255.0f;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        if (!backend_has(be, MN_OP_SCALE_U8)) continue;
        for (size_t ci = 0; ci < 2; ci++) {
            const size_t n = counts[ci];
            const size_t off = ci == 0 ? 3 : 0; /* 3: a u8 view at an odd byte offset */
            set_what("%s scale_u8 count=%zu off=%zu", mn_backend_name(be), n, off);
            uint8_t *x = scratch(n);
            uint64_t s = 1900 + off;
            for (size_t i = 0; i < n; i++) x[i] = i < 256 ? (uint8_t)i : (uint8_t)rng_next(&s);
            dev xd = dev_in(be, x, n, off), yd = dev_out(be, n * 4, off ? 8 : 0);
            CHECK_OK(mn_backend_scale_u8(be, n, dv(&xd), scale, dv(&yd)));
            double *yr = new_doubles(n);
            for (size_t i = 0; i < n; i++) yr[i] = (double)x[i] * (double)scale;
            CHECK_CLOSE_REL("y", dev_read_floats(&yd), yr, n, TOL_ELEM, 1e-30);
            dev_release(&xd), dev_release(&yd);
            scratch_free_all();
        }
    }
}

/* ==================================================================================== */
/* the CPU backend's thread count                                                      */
/* ==================================================================================== */

/* Thread counts compared: 1 (the reference) to this. */
#define MAX_THREADS_COMPARED 4

/* The outputs of one case on one backend, downloaded (scratch memory). */
typedef struct op_outputs {
    const char *name[8];
    float *data[8];
    size_t n[8];
    int count;
} op_outputs;

static void keep_output(op_outputs *o, const char *name, const dev *d) {
    assert_true(o->count < 8);
    o->name[o->count] = name;
    o->n[o->count] = d->bytes / sizeof(float);
    o->data[o->count++] = dev_read_floats(d);
}

/* conv3x3 forward, backward_data and backward_weights on inputs made from `seed`. */
static void conv_outputs(mn_backend *be, const mn_conv_shape *s, uint64_t seed,
                         op_outputs *o) {
    size_t nx = conv_x_len(s), nw = conv_w_len(s), ny = conv_y_len(s), nk = (size_t)s->k;
    float *x = rand_floats(nx, seed, -1, 1), *wt = rand_floats(nw, seed + 1, -0.5f, 0.5f);
    float *b = rand_floats(nk, seed + 2, -1, 1), *dy = rand_floats(ny, seed + 3, -1, 1);
    dev xd = dev_in(be, x, nx * 4, 0), wd = dev_in(be, wt, nw * 4, 0);
    dev bd = dev_in(be, b, nk * 4, 0), dyd = dev_in(be, dy, ny * 4, 0);
    dev yd = dev_out(be, ny * 4, 0), dxd = dev_out(be, nx * 4, 0);
    dev dwd = dev_out(be, nw * 4, 0), dbd = dev_out(be, nk * 4, 0);
    dev ws = ws_alloc(be, s);
    CHECK_OK(mn_backend_conv3x3_forward(be, s, dv(&xd), dv(&wd), dv(&bd),
                     dv(&yd), ws_view(&ws)));
    CHECK_OK(mn_backend_conv3x3_backward_data(be, s, dv(&dyd),
                     dv(&wd), dv(&dxd), ws_view(&ws)));
    CHECK_OK(mn_backend_conv3x3_backward_weights(be, s, dv(&xd),
                     dv(&dyd), dv(&dwd), dv(&dbd), ws_view(&ws)));
    keep_output(o, "conv3x3_forward y", &yd);
    keep_output(o, "conv3x3_backward_data dx", &dxd);
    keep_output(o, "conv3x3_backward_weights dw", &dwd);
    keep_output(o, "conv3x3_backward_weights db", &dbd);
    dev_release(&xd), dev_release(&wd), dev_release(&bd), dev_release(&dyd);
    dev_release(&yd), dev_release(&dxd), dev_release(&dwd), dev_release(&dbd);
    dev_release(&ws);
}

/* batchnorm_train (with its running statistics) and batchnorm_backward. */
static void bn_outputs(mn_backend *be, int m, int c, uint64_t seed, op_outputs *o) {
    size_t nx = (size_t)m * c, nc = (size_t)c;
    float *x = bn_input(m, c, seed), *dy = rand_floats(nx, seed + 1, -1, 1);
    float *gamma = rand_floats(nc, seed + 2, 0.5f, 1.5f);
    float *beta = rand_floats(nc, seed + 3, -0.5f, 0.5f);
    float *rmean = rand_floats(nc, seed + 4, -0.2f, 0.2f);
    float *rvar = rand_floats(nc, seed + 5, 0.5f, 1.5f);
    dev xd = dev_in(be, x, nx * 4, 0), dyd = dev_in(be, dy, nx * 4, 0);
    dev gd = dev_in(be, gamma, nc * 4, 0), bd = dev_in(be, beta, nc * 4, 0);
    dev rmd = dev_inout(be, rmean, nc * 4, 0), rvd = dev_inout(be, rvar, nc * 4, 0);
    dev yd = dev_out(be, nx * 4, 0), smd = dev_out(be, nc * 4, 0), sid = dev_out(be, nc * 4, 0);
    dev dxd = dev_out(be, nx * 4, 0), dgd = dev_out(be, nc * 4, 0), dbd = dev_out(be, nc * 4, 0);
    CHECK_OK(mn_backend_batchnorm_train(be, m, c, dv(&xd), dv(&gd),
                     dv(&bd), dv(&rmd), dv(&rvd), 0.9f, 1e-3f, dv(&yd), dv(&smd), dv(&sid)));
    CHECK_OK(mn_backend_batchnorm_backward(be, m, c, dv(&xd),
                     dv(&dyd), dv(&gd), dv(&smd), dv(&sid), dv(&dxd), dv(&dgd), dv(&dbd)));
    keep_output(o, "batchnorm_train y", &yd);
    keep_output(o, "batchnorm_train save_mean", &smd);
    keep_output(o, "batchnorm_train save_invstd", &sid);
    keep_output(o, "batchnorm_train running_mean", &rmd);
    keep_output(o, "batchnorm_train running_var", &rvd);
    keep_output(o, "batchnorm_backward dx", &dxd);
    keep_output(o, "batchnorm_backward dgamma", &dgd);
    keep_output(o, "batchnorm_backward dbeta", &dbd);
    dev_release(&xd), dev_release(&dyd), dev_release(&gd), dev_release(&bd);
    dev_release(&rmd), dev_release(&rvd), dev_release(&yd), dev_release(&smd);
    dev_release(&sid), dev_release(&dxd), dev_release(&dgd), dev_release(&dbd);
}

/* dense_forward and dense_backward. */
static void dense_outputs(mn_backend *be, const dense_case *d, uint64_t seed, op_outputs *o) {
    size_t nx = (size_t)d->n * d->in, nw = (size_t)d->out * d->in;
    size_t ny = (size_t)d->n * d->out, nb = (size_t)d->out;
    float *x = rand_floats(nx, seed, -1, 1), *wt = rand_floats(nw, seed + 1, -0.5f, 0.5f);
    float *b = rand_floats(nb, seed + 2, -1, 1), *dy = rand_floats(ny, seed + 3, -1, 1);
    dev xd = dev_in(be, x, nx * 4, 0), wd = dev_in(be, wt, nw * 4, 0);
    dev bd = dev_in(be, b, nb * 4, 0), dyd = dev_in(be, dy, ny * 4, 0);
    dev yd = dev_out(be, ny * 4, 0), dxd = dev_out(be, nx * 4, 0);
    dev dwd = dev_out(be, nw * 4, 0), dbd = dev_out(be, nb * 4, 0);
    CHECK_OK(mn_backend_dense_forward(be, d->n, d->in, d->out, dv(&xd),
                     dv(&wd), dv(&bd), dv(&yd)));
    CHECK_OK(mn_backend_dense_backward(be, d->n, d->in, d->out, dv(&xd),
                     dv(&wd), dv(&dyd), dv(&dxd), dv(&dwd), dv(&dbd)));
    keep_output(o, "dense_forward y", &yd);
    keep_output(o, "dense_backward dx", &dxd);
    keep_output(o, "dense_backward dw", &dwd);
    keep_output(o, "dense_backward db", &dbd);
    dev_release(&xd), dev_release(&wd), dev_release(&bd), dev_release(&dyd);
    dev_release(&yd), dev_release(&dxd), dev_release(&dwd), dev_release(&dbd);
}

/* Every output of `got` has the bits of the same output of `ref`. */
static void check_same_bits(const op_outputs *ref, const op_outputs *got, int threads) {
    assert_int_equal(ref->count, got->count);
    for (int i = 0; i < ref->count; i++) {
        if (memcmp(ref->data[i], got->data[i], ref->n[i] * sizeof(float)) == 0) continue;
        size_t at = 0;
        while (memcmp(&ref->data[i][at], &got->data[i][at], sizeof(float)) == 0) at++;
        print_error("[%s] %s: %d threads give %.9g at [%zu] of %zu, 1 thread %.9g\n", g_what,
                    ref->name[i], threads, (double)got->data[i][at], at, ref->n[i],
                    (double)ref->data[i][at]);
        fail();
    }
}

/* The CPU backend splits every reduction by the shape, never by the thread count, so 1, 2,
 * 3 and 4 threads give the same bits. The shapes make several chunks whose row counts
 * 2, 3 and 4 threads do not divide evenly (N*H = 69, 45, 120, 64 rows), one with a single
 * image, one whose chunks are walked in several im2col pieces (C = 128), and one that
 * oneDNN (where built) runs in chunks of two images, the last of one. */
static void test_cpu_results_ignore_thread_count(void **state) {
    (void)state;
    static const mn_conv_shape convs[] = {
        {3, 23, 23, 6, 9}, {1, 45, 37, 8, 12}, {3, 40, 8, 128, 2}, {2, 32, 32, 32, 32},
        {7, 12, 12, 16, 24}};
    static const int bns[][2] = {{12345, 7}, {4099, 16}, {1024, 40}};
    static const dense_case denses[] = {{64, 256, 40, 0}, {37, 300, 33, 0}, {5, 512, 96, 0}};
    mn_backend *be[MAX_THREADS_COMPARED];
    for (int t = 0; t < MAX_THREADS_COMPARED; t++) {
        mn_backend_options opts = {t + 1, 0};
        be[t] = NULL;
        CHECK_OK(mn_backend_create("cpu", &opts, &be[t]));
    }
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        const mn_conv_shape *s = &convs[i];
        op_outputs out[MAX_THREADS_COMPARED] = {0};
        set_what("cpu conv3x3 n=%d h=%d w=%d c=%d k=%d", s->n, s->h, s->w, s->c, s->k);
        for (int t = 0; t < MAX_THREADS_COMPARED; t++)
            conv_outputs(be[t], s, 2000 + i, &out[t]);
        for (int t = 1; t < MAX_THREADS_COMPARED; t++) check_same_bits(&out[0], &out[t], t + 1);
        scratch_free_all();
    }
    for (size_t i = 0; i < sizeof bns / sizeof bns[0]; i++) {
        op_outputs out[MAX_THREADS_COMPARED] = {0};
        set_what("cpu batchnorm m=%d c=%d", bns[i][0], bns[i][1]);
        for (int t = 0; t < MAX_THREADS_COMPARED; t++)
            bn_outputs(be[t], bns[i][0], bns[i][1], 2100 + i, &out[t]);
        for (int t = 1; t < MAX_THREADS_COMPARED; t++) check_same_bits(&out[0], &out[t], t + 1);
        scratch_free_all();
    }
    for (size_t i = 0; i < sizeof denses / sizeof denses[0]; i++) {
        const dense_case *d = &denses[i];
        op_outputs out[MAX_THREADS_COMPARED] = {0};
        set_what("cpu dense n=%d in=%d out=%d", d->n, d->in, d->out);
        for (int t = 0; t < MAX_THREADS_COMPARED; t++)
            dense_outputs(be[t], d, 2200 + i, &out[t]);
        for (int t = 1; t < MAX_THREADS_COMPARED; t++) check_same_bits(&out[0], &out[t], t + 1);
        scratch_free_all();
    }
    for (int t = 0; t < MAX_THREADS_COMPARED; t++) {
        mn_backend_mem mem;
        mn_backend_mem_info(be[t], &mem);
        assert_int_equal(mem.allocated_bytes, 0);
        mn_backend_destroy(be[t]);
    }
}

/* ==================================================================================== */
/* errors                                                                               */
/* ==================================================================================== */

/* Clears the table entry of `op`, whichever it is. */
static void null_op(mn_backend_ops *o, mn_op op) {
    switch (op) {
#define MN_BACKEND_OP(fn, OP_ID, params, args)                                            \
    case OP_ID: o->fn = NULL; break;
#include "mcunas/backend_ops.def"
    case MN_OP_COUNT: break;
    }
}

/* Calls `op` through its wrapper with placeholder arguments; only used on a table whose
 * entry for `op` is NULL, so nothing is ever executed. */
static mn_status call_op(mn_backend *be, mn_op op) {
    const mn_conv_shape s = {1, 1, 1, 1, 1};
    mn_view z = mn_view_none();
    switch (op) {
    case MN_OP_CONV3X3_FORWARD: return mn_backend_conv3x3_forward(be, &s, z, z, z, z, z);
    case MN_OP_CONV3X3_BACKWARD_DATA: return mn_backend_conv3x3_backward_data(be, &s, z, z, z, z);
    case MN_OP_CONV3X3_BACKWARD_WEIGHTS:
        return mn_backend_conv3x3_backward_weights(be, &s, z, z, z, z, z);
    case MN_OP_MAXPOOL2_FORWARD: return mn_backend_maxpool2_forward(be, 1, 2, 2, 1, z, z);
    case MN_OP_MAXPOOL2_BACKWARD:
        return mn_backend_maxpool2_backward(be, 1, 2, 2, 1, z, z, z, z);
    case MN_OP_BATCHNORM_TRAIN:
        return mn_backend_batchnorm_train(be, 2, 1, z, z, z, z, z, 0.9f, 1e-3f, z, z, z);
    case MN_OP_BATCHNORM_INFER:
        return mn_backend_batchnorm_infer(be, 2, 1, z, z, z, z, z, 1e-3f, z);
    case MN_OP_BATCHNORM_BACKWARD:
        return mn_backend_batchnorm_backward(be, 2, 1, z, z, z, z, z, z, z, z);
    case MN_OP_RELU_FORWARD: return mn_backend_relu_forward(be, 1, z, z);
    case MN_OP_RELU_BACKWARD: return mn_backend_relu_backward(be, 1, z, z, z);
    case MN_OP_GAP_FORWARD: return mn_backend_gap_forward(be, 1, 1, 1, 1, z, z);
    case MN_OP_GAP_BACKWARD: return mn_backend_gap_backward(be, 1, 1, 1, 1, z, z);
    case MN_OP_DROPOUT_FORWARD: return mn_backend_dropout_forward(be, 1, 0.5f, 1, z, z, z);
    case MN_OP_DROPOUT_BACKWARD: return mn_backend_dropout_backward(be, 1, z, z, z);
    case MN_OP_DENSE_FORWARD: return mn_backend_dense_forward(be, 1, 1, 1, z, z, z, z);
    case MN_OP_DENSE_BACKWARD: return mn_backend_dense_backward(be, 1, 1, 1, z, z, z, z, z, z);
    case MN_OP_SOFTMAX_XENT: return mn_backend_softmax_xent(be, 1, 2, z, z, 1.0f, z, z, z);
    case MN_OP_ADAM_STEP:
        return mn_backend_adam_step(be, 1, z, z, z, z, 1e-3f, 0.9f, 0.999f, 1e-7f, 1);
    case MN_OP_SCALE_U8: return mn_backend_scale_u8(be, 1, z, 1.0f, z);
    case MN_OP_COUNT: break;
    }
    return MN_OK;
}

/* A backend that leaves an op out: a test-only backend whose table is a copy of a real
 * backend's (backend_impl.h) under another name, with that one entry NULL. For every op,
 * mn_backend_supports says no, and the op's wrapper returns MN_ERR_UNSUPPORTED with a
 * message naming the op and the backend, while the other ops are unaffected. */
static void test_unsupported_op(void **state) {
    (void)state;
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        for (int op = 0; op < MN_OP_COUNT; op++) {
            mn_backend_ops fake_ops = *be->ops;
            fake_ops.name = "fakebackend";
            null_op(&fake_ops, (mn_op)op);
            mn_backend fake = *be;
            fake.ops = &fake_ops;
            set_what("%s without %s", mn_backend_name(be), mn_op_name((mn_op)op));
            assert_string_not_equal(mn_op_name((mn_op)op), "unknown-op");
            assert_false(mn_backend_supports(&fake, (mn_op)op));
            mn_error_clear();
            assert_int_equal(call_op(&fake, (mn_op)op), MN_ERR_UNSUPPORTED);
            const char *msg = mn_error_message();
            if (!strstr(msg, mn_op_name((mn_op)op)) || !strstr(msg, "fakebackend")) {
                print_error("[%s] message does not name op and backend: '%s'\n", g_what, msg);
                fail();
            }
            /* mn_backend_unsupported, as the net uses it, says the same */
            char want[256];
            snprintf(want, sizeof want, "%s", msg);
            assert_int_equal(mn_backend_unsupported(&fake, (mn_op)op), MN_ERR_UNSUPPORTED);
            assert_string_equal(mn_error_message(), want);
            /* the other ops are still reported as supported */
            for (int other = 0; other < MN_OP_COUNT; other++)
                if (other != op)
                    assert_int_equal(mn_backend_supports(&fake, (mn_op)other),
                                     mn_backend_supports(be, (mn_op)other));
        }
    }
    assert_string_equal(mn_op_name(MN_OP_COUNT), "unknown-op");
    assert_string_equal(mn_op_name(MN_OP_CONV3X3_FORWARD), "conv3x3_forward");
    assert_string_equal(mn_op_name(MN_OP_SCALE_U8), "scale_u8");
}

/* mn_backend_create refuses a table without one of the required (non-op) entries; the
 * check, run on every real backend's table and on copies with each entry removed. */
static void test_required_entries(void **state) {
    (void)state;
    static const char *const required[] = {"destroy", "buf_alloc", "buf_free",
                                           "upload",  "download",  "fill",
                                           "sync",    "mem_info",  "conv3x3_workspace_bytes"};
    for (int bi = 0; bi < g_nbackends; bi++) {
        mn_backend *be = g_backends[bi];
        assert_int_equal(mn_backend_check_table(be), MN_OK);
        for (size_t r = 0; r < sizeof required / sizeof required[0]; r++) {
            mn_backend_ops fake_ops = *be->ops;
            fake_ops.name = "fakebackend";
            switch (r) {
            case 0: fake_ops.destroy = NULL; break;
            case 1: fake_ops.buf_alloc = NULL; break;
            case 2: fake_ops.buf_free = NULL; break;
            case 3: fake_ops.upload = NULL; break;
            case 4: fake_ops.download = NULL; break;
            case 5: fake_ops.fill = NULL; break;
            case 6: fake_ops.sync = NULL; break;
            case 7: fake_ops.mem_info = NULL; break;
            default: fake_ops.conv3x3_workspace_bytes = NULL; break;
            }
            mn_backend fake = *be;
            fake.ops = &fake_ops;
            mn_error_clear();
            assert_int_equal(mn_backend_check_table(&fake), MN_ERR_BACKEND);
            const char *msg = mn_error_message();
            if (!strstr(msg, required[r]) || !strstr(msg, "fakebackend")) {
                print_error("message for a table without %s: '%s'\n", required[r], msg);
                fail();
            }
        }
    }
}

/* Splits mn_backend_available() into names (trimming spaces). */
static int backend_names(char names[][32], int max) {
    const char *p = mn_backend_available();
    int count = 0;
    assert_non_null(p);
    while (*p && count < max) {
        while (*p == ' ' || *p == ',') p++;
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ') len--;
        if (len) {
            assert_true(len < 32);
            memcpy(names[count], p, len);
            names[count][len] = '\0';
            count++;
        }
        p += strcspn(p, ",");
    }
    return count;
}

static void test_create_unknown_backend(void **state) {
    (void)state;
    mn_backend_options opts = {2, 0};
    mn_backend *be = (mn_backend *)&opts; /* must be reset to NULL */
    mn_error_clear();
    assert_int_equal(mn_backend_create("nope", &opts, &be), MN_ERR_UNSUPPORTED);
    assert_null(be);
    const char *msg = mn_error_message();
    assert_non_null(strstr(msg, "nope"));
    char names[MAX_BACKENDS][32];
    int n = backend_names(names, MAX_BACKENDS);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++)
        if (!strstr(msg, names[i])) {
            print_error("message '%s' does not list available backend '%s'\n", msg, names[i]);
            fail();
        }
}

/* The registry's descriptions agree with mn_backend_available; each built backend with
 * devices lists them (indices 0..n-1, and device 0 is the one a created backend reports
 * in mem_info); the others refuse with a message naming the backend. */
static void test_list_devices(void **state) {
    (void)state;
    char names[MAX_BACKENDS][32];
    int n = backend_names(names, MAX_BACKENDS), built = 0;
    const mn_backend_desc *d;
    assert_null(mn_backend_describe(-1));
    for (int i = 0; (d = mn_backend_describe(i)); i++) {
        assert_non_null(d->name);
        assert_non_null(d->title);
        mn_device_info *devs = (mn_device_info *)&built; /* must be reset to NULL */
        int count = -1;
        mn_error_clear();
        mn_status st = mn_backend_list_devices(d->name, &devs, &count);
        if (!d->built) {
            /* listed after the built-in ones, and refused with the reason */
            assert_true(i >= n);
            assert_non_null(d->note);
            assert_int_equal(st, MN_ERR_UNSUPPORTED);
            assert_non_null(strstr(mn_error_message(), d->name));
            assert_non_null(strstr(mn_error_message(), "not built"));
            assert_null(devs);
            assert_int_equal(count, 0);
            continue;
        }
        assert_true(i < n);
        assert_string_equal(d->name, names[i]);
        built++;
        if (!d->has_devices) {
            assert_int_equal(st, MN_ERR_UNSUPPORTED);
            assert_non_null(strstr(mn_error_message(), d->name));
            assert_null(devs);
            assert_int_equal(count, 0);
            continue;
        }
        CHECK_OK(st);
        assert_non_null(d->note); /* what to do when no device is found */
        assert_true(count >= 0);
        assert_true(count == 0 || devs != NULL);
        for (int k = 0; k < count; k++) {
            assert_int_equal(devs[k].index, k);
            assert_true(devs[k].name[0] != '\0');
            assert_true(strcmp(devs[k].type, "gpu") == 0 || strcmp(devs[k].type, "cpu") == 0 ||
                        strcmp(devs[k].type, "accelerator") == 0 ||
                        strcmp(devs[k].type, "other") == 0);
        }
        for (int b = 0; b < g_nbackends && count > 0; b++) {
            if (strcmp(mn_backend_name(g_backends[b]), d->name) != 0) continue;
            mn_backend_mem mem;
            mn_backend_mem_info(g_backends[b], &mem); /* created on device 0 */
            assert_int_equal(mem.device_total_bytes, devs[0].global_mem_bytes);
            assert_int_equal(mem.max_alloc_bytes, devs[0].max_alloc_bytes);
        }
        free(devs);
    }
    assert_int_equal(built, n);
    mn_device_info *devs = NULL;
    int count = 0;
    mn_error_clear();
    assert_int_equal(mn_backend_list_devices("nope", &devs, &count), MN_ERR_UNSUPPORTED);
    assert_non_null(strstr(mn_error_message(), "nope"));
}

/* ==================================================================================== */

static int create_backends(void **state) {
    (void)state;
    char names[MAX_BACKENDS][32];
    int n = backend_names(names, MAX_BACKENDS);
    int have_cpu = 0;
    for (int i = 0; i < n; i++) {
        mn_backend_options opts = {2, 0};
        mn_backend *be = NULL;
        mn_status st = mn_backend_create(names[i], &opts, &be);
        if (st != MN_OK) {
            /* a built-in GPU backend may find no device on this machine; the CPU one and
             * any other failure are errors */
            print_message("backend '%s' not created: %s: %s\n", names[i], mn_status_name(st),
                          mn_error_message());
            if (strcmp(names[i], "cpu") == 0 ||
                (st != MN_ERR_UNSUPPORTED && st != MN_ERR_BACKEND))
                return -1;
            if (g_nunavailable < MAX_BACKENDS)
                snprintf(g_unavailable[g_nunavailable++], sizeof g_unavailable[0], "%s: %s",
                         names[i], mn_error_message());
            continue;
        }
        if (!be || strcmp(mn_backend_name(be), names[i]) != 0) {
            print_error("backend '%s' created with a wrong name\n", names[i]);
            return -1;
        }
        have_cpu |= strcmp(names[i], "cpu") == 0;
        g_backends[g_nbackends++] = be;
        print_message("testing backend '%s' (threads %d)\n", names[i], mn_backend_threads(be));
    }
    return have_cpu ? 0 : -1;
}

/* Says which built-in backends found no device here (a GPU backend on a machine without
 * one), and why, as a skip: their ops were not tested. */
static void test_gpu_backends_present(void **state) {
    (void)state;
    if (!g_nunavailable) return;
    for (int i = 0; i < g_nunavailable; i++)
        print_message("SKIPPED backend %s\n", g_unavailable[i]);
    skip();
}

/* Every test frees its buffers, so each backend's allocation count must be back to 0. */
static int destroy_backends(void **state) {
    (void)state;
    int rc = 0;
    for (int i = 0; i < g_nbackends; i++) {
        mn_backend *be = g_backends[i];
        mn_backend_mem mem;
        mn_backend_mem_info(be, &mem);
        if (mem.allocated_bytes != 0) {
            print_error("backend '%s' still reports %zu bytes allocated\n", mn_backend_name(be),
                        mem.allocated_bytes);
            rc = -1;
        }
        mn_backend_destroy(be);
        g_backends[i] = NULL;
    }
    g_nbackends = 0;
    return rc;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv3x3_forward),
        cmocka_unit_test(test_conv3x3_backward),
        cmocka_unit_test(test_conv3x3_determinism),
        cmocka_unit_test(test_maxpool2),
        cmocka_unit_test(test_maxpool2_ties),
        cmocka_unit_test(test_batchnorm_train_infer),
        cmocka_unit_test(test_batchnorm_backward),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_adam_step),
        cmocka_unit_test(test_scale_u8),
        cmocka_unit_test(test_cpu_results_ignore_thread_count),
        cmocka_unit_test(test_unsupported_op),
        cmocka_unit_test(test_required_entries),
        cmocka_unit_test(test_create_unknown_backend),
        cmocka_unit_test(test_list_devices),
        cmocka_unit_test(test_gpu_backends_present),
    };
    return cmocka_run_group_tests(tests, create_backends, destroy_backends);
}
