/* The program of kernels/mcunas.cl: built once per device and cached on disk.
 *
 * Cache entry: <cache dir>/ocl-<16 hex digits>.bin, the key a 64-bit FNV-1a hash of the
 * device name, driver version, the embedded source and the build options. The file is a
 * small header (magic, payload length, payload hash) and the device binary from
 * CL_PROGRAM_BINARIES; it is written to a temporary name and renamed, so readers never
 * see half a file. A missing, short, corrupt or rejected entry is rebuilt from source and
 * rewritten; a cache that cannot be written is ignored (the program still works). */
#include "ocl_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char mn_ocl_kernel_source[];
extern const size_t mn_ocl_kernel_source_len;

#define MN_OCL_CACHE_MAGIC 0x4d4e4f43u /* "MNOC" */

typedef struct mn_ocl_cache_header {
    uint32_t magic;
    uint32_t version;
    uint64_t bytes; /* payload length */
    uint64_t hash;  /* FNV-1a of the payload */
} mn_ocl_cache_header;

static uint64_t mn_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int mn_ocl_cache_dir(char *dir, size_t size) {
    const char *over = getenv("MN_OCL_CACHE_DIR");
    int n;
    if (over) {
        if (!*over) return 0;
        n = snprintf(dir, size, "%s", over);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && *xdg)
            n = snprintf(dir, size, "%s/mcunas", xdg);
        else if (home && *home)
            n = snprintf(dir, size, "%s/.cache/mcunas", home);
        else
            return 0;
    }
    return n > 0 && (size_t)n < size;
}

/* mkdir -p for the cache directory; failures are left to the open that follows. */
static void mn_ocl_mkdirs(const char *dir) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

/* Reads a cache entry's payload (malloc'ed) or returns NULL. */
static unsigned char *mn_ocl_cache_read(const char *path, size_t *bytes) {
    FILE *f = fopen(path, "rb");
    mn_ocl_cache_header h;
    unsigned char *data = NULL;
    *bytes = 0;
    if (!f) return NULL;
    if (fread(&h, sizeof h, 1, f) != 1 || h.magic != MN_OCL_CACHE_MAGIC || h.version != 1 ||
        h.bytes == 0 || h.bytes > ((uint64_t)1 << 31))
        goto fail;
    data = malloc((size_t)h.bytes);
    if (!data || fread(data, 1, (size_t)h.bytes, f) != (size_t)h.bytes) goto fail;
    if (mn_fnv1a(0xcbf29ce484222325ull, data, (size_t)h.bytes) != h.hash) goto fail;
    fclose(f);
    *bytes = (size_t)h.bytes;
    return data;
fail:
    free(data);
    fclose(f);
    return NULL;
}

static void mn_ocl_cache_write(const char *dir, const char *path, const unsigned char *data,
                               size_t bytes) {
    char tmp[1100];
    mn_ocl_mkdirs(dir);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    mn_ocl_cache_header h = {MN_OCL_CACHE_MAGIC, 1, bytes,
                             mn_fnv1a(0xcbf29ce484222325ull, data, bytes)};
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(data, 1, bytes, f) == bytes;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

/* Builds o->program; on failure leaves the build log in the message. */
static mn_status mn_ocl_build(mn_ocl *o, const char *options, const char *how) {
    cl_int err = clBuildProgram(o->program, 1, &o->device, options, NULL, NULL);
    if (err == CL_SUCCESS) return MN_OK;
    char log[2048] = "";
    size_t n = 0;
    clGetProgramBuildInfo(o->program, o->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log,
                          &n);
    log[sizeof log - 1] = '\0';
    return mn_error_set(MN_ERR_BACKEND,
                        "opencl: building the kernels %s for '%s' failed: %s (%d): %s", how,
                        o->info.name, mn_ocl_error_name(err), (int)err, log);
}

static mn_status mn_ocl_from_source(mn_ocl *o, const char *options) {
    cl_int err;
    const char *src = mn_ocl_kernel_source;
    size_t len = mn_ocl_kernel_source_len;
    o->program = clCreateProgramWithSource(o->context, 1, &src, &len, &err);
    if (err != CL_SUCCESS) return mn_ocl_fail(err, "clCreateProgramWithSource");
    return mn_ocl_build(o, options, "from source");
}

/* Tries the cached binary; 1 when o->program is built from it. */
static int mn_ocl_from_cache(mn_ocl *o, const char *path, const char *options) {
    size_t bytes;
    unsigned char *bin = mn_ocl_cache_read(path, &bytes);
    if (!bin) return 0;
    cl_int err, status = CL_SUCCESS;
    const unsigned char *b = bin;
    o->program = clCreateProgramWithBinary(o->context, 1, &o->device, &bytes, &b, &status, &err);
    free(bin);
    if (err == CL_SUCCESS && status == CL_SUCCESS &&
        clBuildProgram(o->program, 1, &o->device, options, NULL, NULL) == CL_SUCCESS)
        return 1;
    if (o->program) clReleaseProgram(o->program);
    o->program = NULL;
    return 0;
}

static void mn_ocl_save_binary(mn_ocl *o, const char *dir, const char *path) {
    size_t bytes = 0;
    if (clGetProgramInfo(o->program, CL_PROGRAM_BINARY_SIZES, sizeof bytes, &bytes, NULL) !=
            CL_SUCCESS ||
        bytes == 0)
        return;
    unsigned char *bin = malloc(bytes);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(o->program, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) ==
        CL_SUCCESS)
        mn_ocl_cache_write(dir, path, bin, bytes);
    free(bin);
}

mn_status mn_ocl_program_load(mn_ocl *o) {
    char options[128], dir[900], path[1024];
    snprintf(options, sizeof options, "-cl-std=CL1.2 -DMN_RED_WG=%zu", o->red_wg);
    uint64_t key = 0xcbf29ce484222325ull;
    key = mn_fnv1a(key, o->info.name, strlen(o->info.name) + 1);
    key = mn_fnv1a(key, o->info.driver, strlen(o->info.driver) + 1);
    key = mn_fnv1a(key, o->info.platform, strlen(o->info.platform) + 1);
    key = mn_fnv1a(key, mn_ocl_kernel_source, mn_ocl_kernel_source_len);
    key = mn_fnv1a(key, options, strlen(options) + 1);
    int cache = mn_ocl_cache_dir(dir, sizeof dir);
    if (cache) snprintf(path, sizeof path, "%s/ocl-%016llx.bin", dir, (unsigned long long)key);
    o->program_from_cache = cache && mn_ocl_from_cache(o, path, options);
    if (!o->program_from_cache) {
        MN_GPU_TRY(mn_ocl_from_source(o, options));
        if (cache) mn_ocl_save_binary(o, dir, path);
    }
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++) {
        if (!(mn_gpu_kernels[i].where & MN_GPU_IN_CL)) continue;
        cl_int err;
        o->kernels[i] = clCreateKernel(o->program, mn_gpu_kernels[i].name, &err);
        if (err != CL_SUCCESS)
            return mn_ocl_fail(err, "clCreateKernel(%s)", mn_gpu_kernels[i].name);
    }
    return MN_OK;
}
