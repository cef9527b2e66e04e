/* Row-major SGEMM through CLBlast's C API.
 *
 * CLBlast runs small GEMMs with one "direct" kernel and larger ones with an "indirect"
 * path that first copies (pads, transposes) its operands into a temporary buffer. Left
 * to itself it creates that buffer on every call and frees it when the call returns,
 * before the queued work has run, so unsynchronised calls pile buffers up (15 GB seen on
 * PoCL). Here the buffer is always ours: CLBlastSgemmWithTempBuffer gets a region of the
 * caller's conv workspace (a sub-buffer), or, for the dense layer's GEMMs, which take no
 * workspace, a buffer made for the call, counted in mem_info and released after the
 * queue has finished the GEMM. CLBlastSGemmTempBufferSize says how much is needed. */
#include "ocl_internal.h"

#include <stdlib.h>
#include <string.h>

/* CLBlastSGemmTempBufferSize reports bytes (measured on 1.5.3: 1024^3 with every
 * operand copied gives 12582912 = 3 x 1024^2 floats, and a buffer of exactly that many
 * bytes runs). */
#ifndef MN_OCL_TEMP_UNIT
#define MN_OCL_TEMP_UNIT 1
#endif

static CLBlastTranspose mn_ocl_tr(int t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

/* Leading dimensions of row-major operands: A is m x k (k x m transposed), B k x n. */
static size_t mn_ocl_lda(int ta, size_t m, size_t k) { return ta ? m : k; }
static size_t mn_ocl_ldb(int tb, size_t k, size_t n) { return tb ? k : n; }

static mn_status mn_ocl_temp_size(mn_ocl *o, int ta, int tb, size_t m, size_t n, size_t k,
                                  size_t ao, size_t lda, size_t bo, size_t ldb, size_t co,
                                  size_t ldc, size_t *bytes) {
    size_t elems = 0;
    /* The size depends on the shape, the leading dimensions and whether each offset is 0. */
    const size_t key[11] = {(size_t)ta, (size_t)tb, m, n, k, ao != 0, lda, bo != 0, ldb,
                            co != 0, ldc};
    *bytes = 0;
    for (int i = 0; i < MN_OCL_TEMP_MEMO; i++)
        if (o->memo[i].used && memcmp(o->memo[i].key, key, sizeof key) == 0) {
            *bytes = o->memo[i].bytes;
            return MN_OK;
        }
    CLBlastStatusCode st = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, mn_ocl_tr(ta),
                                                      mn_ocl_tr(tb), m, n, k, ao, lda, bo, ldb,
                                                      co, ldc, &o->queue, &elems);
    if (st != CLBlastSuccess)
        return mn_error_set(MN_ERR_BACKEND,
                            "opencl: CLBlastSGemmTempBufferSize(%zux%zux%zu) failed: status %d",
                            m, n, k, (int)st);
    *bytes = elems * MN_OCL_TEMP_UNIT;
    mn_ocl_temp_memo *e = &o->memo[o->memo_next];
    o->memo_next = (o->memo_next + 1) % MN_OCL_TEMP_MEMO;
    memcpy(e->key, key, sizeof key);
    e->bytes = *bytes;
    e->used = 1;
    return MN_OK;
}

void mn_ocl_gemm_configure(mn_ocl *o) {
    /* MN_OCL_GEMM_INDIRECT=1 makes CLBlast take its indirect path (the one that needs a
     * temp buffer) for every size, so that tests exercise it on devices whose tuned
     * threshold keeps small GEMMs direct (PoCL: every shape mcunas uses). */
    const char *e = getenv("MN_OCL_GEMM_INDIRECT");
    if (!e || strcmp(e, "1") != 0) return;
    const char *names[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    const size_t values[] = {0};
    CLBlastOverrideParameters(o->device, "GemmRoutine", CLBlastPrecisionSingle, 1, names,
                              values);
}

size_t mn_ocl_gemm_temp_bound(mn_ocl *o, int ta, int tb, size_t m, size_t n, size_t k) {
    size_t bytes = 0;
    /* Non-zero offsets make CLBlast copy every operand, the most it ever needs. */
    if (mn_ocl_temp_size(o, ta, tb, m, n, k, 1, mn_ocl_lda(ta, m, k), 1, mn_ocl_ldb(tb, k, n),
                         1, n, &bytes) == MN_OK)
        return bytes;
    /* CLBlast could not say: every operand padded to multiples of 128 */
    size_t mp = (m + 127) / 128 * 128, np = (n + 127) / 128 * 128, kp = (k + 127) / 128 * 128;
    return (mp * kp + kp * np + mp * np) * sizeof(float);
}

mn_status mn_ocl_gemm(mn_ocl *o, const char *op, int ta, int tb, size_t m, size_t n,
                      size_t k, mn_ocl_arg_view a, size_t lda, mn_ocl_arg_view b, size_t ldb,
                      float beta, mn_ocl_arg_view c, size_t ldc, const mn_ocl_temp *temp) {
    size_t need;
    cl_int err;
    cl_mem tbuf = NULL;
    int own = 0;
    if (m == 0 || n == 0) return MN_OK;
    MN_GPU_TRY(mn_ocl_temp_size(o, ta, tb, m, n, k, (size_t)a.off, lda, (size_t)b.off, ldb,
                                (size_t)c.off, ldc, &need));
    if (need > 0 && temp && temp->mem) {
        if (need > temp->bytes)
            return mn_error_set(MN_ERR_BACKEND,
                                "%s: CLBlast needs %zu bytes of temp buffer for a %zux%zux%zu "
                                "GEMM but the workspace holds %zu",
                                op, need, m, n, k, temp->bytes);
        cl_buffer_region region = {temp->origin, need};
        tbuf = clCreateSubBuffer(temp->mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                                 &region, &err);
        if (err != CL_SUCCESS)
            return mn_ocl_fail(err, "%s: clCreateSubBuffer(origin %zu, %zu bytes)", op,
                               temp->origin, need);
    } else if (need > 0) {
        tbuf = clCreateBuffer(o->context, CL_MEM_READ_WRITE, need, NULL, &err);
        if (err != CL_SUCCESS)
            return mn_ocl_fail(err, "%s: clCreateBuffer(GEMM temp, %zu bytes)", op, need);
        own = 1;
        mn_gpu_count_alloc(&o->gpu, need);
    }
    CLBlastStatusCode st = CLBlastSgemmWithTempBuffer(
        CLBlastLayoutRowMajor, mn_ocl_tr(ta), mn_ocl_tr(tb), m, n, k, 1.0f, a.mem,
        (size_t)a.off, lda, b.mem, (size_t)b.off, ldb, beta, c.mem, (size_t)c.off, ldc,
        &o->queue, NULL, tbuf);
    mn_status ret = MN_OK;
    if (st != CLBlastSuccess)
        ret = mn_error_set(MN_ERR_BACKEND, "%s: CLBlastSgemm(%zux%zux%zu) failed: status %d", op,
                           m, n, k, (int)st);
    if (own) {
        /* the buffer must outlive the queued GEMM before it leaves the books */
        err = clFinish(o->queue);
        if (err != CL_SUCCESS && ret == MN_OK) ret = mn_ocl_fail(err, "%s: clFinish", op);
        mn_gpu_count_free(&o->gpu, need);
    }
    if (tbuf) clReleaseMemObject(tbuf);
    return ret;
}

mn_status mn_ocl_dev_gemm(mn_backend *be, const char *op, int ta, int tb, size_t m, size_t n,
                          size_t k, mn_gpu_ptr a, size_t lda, mn_gpu_ptr b, size_t ldb,
                          mn_gpu_ptr c, size_t ldc) {
    return mn_ocl_gemm(mn_ocl_impl(be), op, ta, tb, m, n, k, mn_ocl_av(a), lda, mn_ocl_av(b),
                       ldb, 0.0f, mn_ocl_av(c), ldc, NULL);
}
