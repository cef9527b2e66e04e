/* CPU backend: the op table, construction, host memory and argument checks. */
#include "cpu_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Below this much work (in rough flops) a loop runs on the calling thread only. */
#define MN_CPU_SERIAL_WORK ((size_t)1 << 15)

/* ---- argument checks ---- */

mn_status mn_cpu_view(const char *op, const char *arg, mn_view v, size_t bytes,
                      size_t align, void **out) {
    *out = NULL;
    if (!v.buf)
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument '%s' is absent", op, arg);
    if (v.offset > v.buf->size || bytes > v.buf->size - v.offset)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument '%s' needs %zu bytes at offset %zu but its buffer "
                            "holds %zu",
                            op, arg, bytes, v.offset, v.buf->size);
    if (align > 1 && v.offset % align != 0)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "%s: argument '%s' offset %zu is not a multiple of %zu", op, arg,
                            v.offset, align);
    *out = (char *)v.buf->data + v.offset;
    return MN_OK;
}

mn_status mn_cpu_view_opt(const char *op, const char *arg, mn_view v, size_t bytes,
                          size_t align, void **out) {
    *out = NULL;
    if (!v.buf) return MN_OK;
    return mn_cpu_view(op, arg, v, bytes, align, out);
}

static mn_status mn_cpu_float_bytes(const char *op, const char *arg, size_t count,
                                    size_t *bytes) {
    if (__builtin_mul_overflow(count, sizeof(float), bytes))
        return mn_error_set(MN_ERR_INVALID_ARG, "%s: argument '%s' of %zu floats overflows",
                            op, arg, count);
    return MN_OK;
}

mn_status mn_cpu_fview(const char *op, const char *arg, mn_view v, size_t count,
                       float **out) {
    size_t bytes;
    void *p;
    *out = NULL;
    MN_CPU_TRY(mn_cpu_float_bytes(op, arg, count, &bytes));
    MN_CPU_TRY(mn_cpu_view(op, arg, v, bytes, sizeof(float), &p));
    *out = p;
    return MN_OK;
}

mn_status mn_cpu_fview_opt(const char *op, const char *arg, mn_view v, size_t count,
                           float **out) {
    size_t bytes;
    void *p;
    *out = NULL;
    MN_CPU_TRY(mn_cpu_float_bytes(op, arg, count, &bytes));
    MN_CPU_TRY(mn_cpu_view_opt(op, arg, v, bytes, sizeof(float), &p));
    *out = p;
    return MN_OK;
}

void mn_cpu_blas_serial(void) { omp_set_num_threads(1); }

int mn_cpu_slots(const mn_backend *be, size_t items, size_t cost) {
    size_t work;
    if (items == 0) return 1;
    if (__builtin_mul_overflow(items, cost, &work)) work = SIZE_MAX;
    if (work < MN_CPU_SERIAL_WORK || be->threads <= 1) return 1;
    return items < (size_t)be->threads ? (int)items : be->threads;
}

int mn_cpu_chunks(size_t items, size_t cost, size_t min_work) {
    size_t work, limit;
    if (__builtin_mul_overflow(items, cost, &work)) work = SIZE_MAX;
    limit = min_work ? work / min_work : items;
    if (limit > items) limit = items;
    if (limit >= MN_CPU_CHUNKS_MAX) return MN_CPU_CHUNKS_MAX;
    if (limit < 4) return limit < 2 ? 1 : 2; /* not 3: two threads would split it 2:1 */
    int p = 4;
    while ((size_t)(2 * p) <= limit) p *= 2;
    return (size_t)(3 * p / 2) <= limit ? 3 * p / 2 : p;
}

int mn_cpu_team(const mn_backend *be, int chunks, size_t work) {
    if (work < MN_CPU_SERIAL_WORK || be->threads <= 1 || chunks <= 1) return 1;
    return chunks < be->threads ? chunks : be->threads;
}

/* ---- memory ---- */

static mn_cpu *mn_cpu_impl(mn_backend *be) { return (mn_cpu *)be->impl; }

static mn_status mn_cpu_buf_alloc(mn_backend *be, size_t bytes, mn_buf **out) {
    mn_cpu *cpu = mn_cpu_impl(be);
    size_t rounded;
    *out = NULL;
    /* aligned_alloc wants a multiple of the alignment; a zero-byte buffer still gets a
     * valid pointer so that views of it are uniform. */
    if (bytes > SIZE_MAX - MN_CPU_ALIGN)
        return mn_error_set(MN_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
    rounded = (bytes + MN_CPU_ALIGN - 1) / MN_CPU_ALIGN * MN_CPU_ALIGN;
    if (rounded == 0) rounded = MN_CPU_ALIGN;
    mn_buf *buf = malloc(sizeof *buf);
    if (!buf) return mn_error_set(MN_ERR_NOMEM, "cpu: cannot allocate a buffer handle");
    buf->data = aligned_alloc(MN_CPU_ALIGN, rounded);
    if (!buf->data) {
        free(buf);
        return mn_error_set(MN_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
    }
    memset(buf->data, 0, rounded);
    buf->size = bytes;
    size_t now = atomic_fetch_add(&cpu->allocated, bytes) + bytes;
    size_t peak = atomic_load(&cpu->peak);
    while (now > peak && !atomic_compare_exchange_weak(&cpu->peak, &peak, now)) {
    }
    *out = buf;
    return MN_OK;
}

static void mn_cpu_buf_free(mn_backend *be, mn_buf *buf) {
    if (!buf) return;
    atomic_fetch_sub(&mn_cpu_impl(be)->allocated, buf->size);
    free(buf->data);
    free(buf);
}

static mn_status mn_cpu_upload(mn_backend *be, mn_view dst, const void *src, size_t bytes) {
    void *p;
    MN_CPU_TRY(mn_cpu_view("upload", "dst", dst, bytes, 1, &p));
    if (bytes && !src)
        return mn_error_set(MN_ERR_INVALID_ARG, "upload: argument 'src' is NULL");
    if (bytes) memcpy(p, src, bytes);
    return MN_OK;
}

static mn_status mn_cpu_download(mn_backend *be, mn_view src, void *dst, size_t bytes) {
    void *p;
    MN_CPU_TRY(mn_cpu_view("download", "src", src, bytes, 1, &p));
    if (bytes && !dst)
        return mn_error_set(MN_ERR_INVALID_ARG, "download: argument 'dst' is NULL");
    if (bytes) memcpy(dst, p, bytes);
    return MN_OK;
}

/* dst[0..count) = value. */
static mn_status mn_cpu_fill(mn_backend *be, mn_view dst, float value, size_t count) {
    float *p;
    MN_CPU_TRY(mn_cpu_fview("fill", "dst", dst, count, &p));
    int slots = mn_cpu_slots(be, count, 1);
#pragma omp parallel for num_threads(slots) schedule(static)
    for (size_t i = 0; i < count; i++) p[i] = value;
    return MN_OK;
}

/* Every op completes before it returns. */
static mn_status mn_cpu_sync(mn_backend *be) { return MN_OK; }

static void mn_cpu_mem_info(mn_backend *be, mn_backend_mem *out) {
    mn_cpu *cpu = mn_cpu_impl(be);
    out->allocated_bytes = atomic_load(&cpu->allocated);
    out->peak_allocated_bytes = atomic_load(&cpu->peak);
    out->device_total_bytes = cpu->phys_bytes;
    out->max_alloc_bytes = 0;
    out->shares_host_memory = 1;
}

/* ---- table and lifetime ---- */

static void mn_cpu_destroy(mn_backend *be) {
    if (!be) return;
    if (be->impl) mn_cpu_dnnl_destroy(mn_cpu_impl(be)->dnnl);
    free(be->impl);
    free(be);
}

static const mn_backend_ops mn_cpu_ops = {
    .name = "cpu",
    .destroy = mn_cpu_destroy,
    .buf_alloc = mn_cpu_buf_alloc,
    .buf_free = mn_cpu_buf_free,
    .upload = mn_cpu_upload,
    .download = mn_cpu_download,
    .fill = mn_cpu_fill,
    .sync = mn_cpu_sync,
    .mem_info = mn_cpu_mem_info,
    .conv3x3_workspace_bytes = mn_cpu_conv3x3_workspace_bytes,
#define MN_BACKEND_OP(fn, OP_ID, params, args) .fn = mn_cpu_##fn,
#include "mcunas/backend_ops.def"
};

static size_t mn_cpu_phys_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (size_t)pages * (size_t)page;
}

/* The kernels MCUNAS_CPU_CONV asks for (the best built when it is unset or empty). */
static mn_status mn_cpu_kernels_chosen(mn_cpu_kernels *out) {
    static const char *const names[] = {"im2col", "direct", "dnnl"};
    const char *v = getenv("MCUNAS_CPU_CONV");
    *out = MN_CPU_KERNELS_BEST;
    if (!v || !*v) return MN_OK;
    for (int i = 0; i <= (int)MN_CPU_KERNELS_BEST; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (mn_cpu_kernels)i;
            return MN_OK;
        }
    return mn_error_set(MN_ERR_INVALID_ARG,
                        "cpu: MCUNAS_CPU_CONV='%s' is not one of im2col, direct%s", v,
                        MN_CPU_KERNELS_BEST == MN_CPU_KERNELS_DNNL
                            ? ", dnnl"
                            : " (this build has no oneDNN)");
}

static mn_status mn_cpu_create(const mn_backend_options *opts, mn_backend **out) {
    int threads = opts ? opts->threads : 0;
    mn_cpu_kernels kernels;
    *out = NULL;
    MN_CPU_TRY(mn_cpu_kernels_chosen(&kernels));
    if (threads < 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "cpu: threads must be >= 0 (got %d)",
                            threads);
    if (threads == 0) threads = omp_get_max_threads();
    if (threads < 1) threads = 1;
    mn_backend *be = calloc(1, sizeof *be);
    mn_cpu *cpu = calloc(1, sizeof *cpu);
    if (!be || !cpu) {
        free(be);
        free(cpu);
        return mn_error_set(MN_ERR_NOMEM, "cpu: cannot allocate the backend");
    }
    atomic_init(&cpu->allocated, 0);
    atomic_init(&cpu->peak, 0);
    cpu->phys_bytes = mn_cpu_phys_bytes();
    cpu->kernels = kernels;
    if (kernels == MN_CPU_KERNELS_DNNL) {
        mn_status st = mn_cpu_dnnl_create(&cpu->dnnl);
        if (st != MN_OK) {
            free(be);
            free(cpu);
            return st;
        }
    }
    be->ops = &mn_cpu_ops;
    be->threads = threads;
    be->impl = cpu;
    *out = be;
    return MN_OK;
}

const mn_backend_reg mn_backend_cpu_reg = {mn_cpu_create, NULL};
