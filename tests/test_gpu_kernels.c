/* The GPU backends share one kernel list (src/backend/gpu/gpu_kernels.def): ids, names,
 * which kernel file defines each, and the parameter signature every launch is checked
 * against. This suite parses kernels/mcunas.cl and kernels/mcunas.cu and checks that
 * every kernel there is listed, that every listed kernel is there, and that its parameters
 * are the listed ones in order and type, so a kernel edited in one file and not the list
 * (or the other file) fails here, without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/gpu/gpu_impl.h"

/* ---- reading the kernel files ---- */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* kernels/<name> next to this file's tests/ directory. */
static char *kernel_file(const char *name) {
    const char *self = __FILE__, *slash = strrchr(self, '/');
    assert_non_null(slash);
    size_t n = (size_t)(slash - self);
    char *path = malloc(n + strlen(name) + 16);
    memcpy(path, self, n);
    sprintf(path + n, "/../kernels/%s", name);
    char *text = read_text(path);
    if (!text) fail_msg("cannot read %s", path);
    free(path);
    return text;
}

/* Blanks out comments (kept the same length, so nothing else moves). */
static void strip_comments(char *s) {
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            char *end = e ? e + 2 : p + strlen(p);
            memset(p, ' ', (size_t)(end - p));
            p = end - 1;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n') *p++ = ' ';
            if (!*p) break;
        }
    }
}

/* ---- one parameter list to a signature ---- */

/* The type words of one parameter ("const float *x" -> "float", star set), without
 * qualifiers and without the parameter's name. */
static void param_type(const char *p, size_t len, char *type, size_t cap, int *star,
                       char *name, size_t name_cap) {
    static const char *const skip[] = {"__global", "global", "const", "__restrict__",
                                       "restrict", "volatile"};
    char buf[256], *words[16];
    int nw = 0;
    if (len >= sizeof buf) len = sizeof buf - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    *star = strchr(buf, '*') != NULL;
    for (char *t = strtok(buf, " \t\r\n*"); t && nw < 16; t = strtok(NULL, " \t\r\n*"))
        words[nw++] = t;
    type[0] = '\0';
    snprintf(name, name_cap, "%s", nw ? words[nw - 1] : "");
    for (int i = 0; i < nw - 1; i++) { /* the last word is the name */
        int skipped = 0;
        for (size_t k = 0; k < sizeof skip / sizeof *skip; k++)
            if (strcmp(words[i], skip[k]) == 0) skipped = 1;
        if (skipped) continue;
        if (type[0]) strncat(type, " ", cap - strlen(type) - 1);
        strncat(type, words[i], cap - strlen(type) - 1);
    }
}

static char pointer_letter(const char *type) {
    if (strcmp(type, "float") == 0) return 'F';
    if (strcmp(type, "int") == 0) return 'I';
    if (strcmp(type, "uchar") == 0 || strcmp(type, "unsigned char") == 0) return 'B';
    return '?';
}

static char scalar_letter(const char *type) {
    if (strcmp(type, "uint") == 0 || strcmp(type, "unsigned") == 0 ||
        strcmp(type, "unsigned int") == 0)
        return 'u';
    if (strcmp(type, "ulong") == 0 || strcmp(type, "uint64_t") == 0 ||
        strcmp(type, "unsigned long long") == 0)
        return 'U';
    if (strcmp(type, "int") == 0) return 'i';
    if (strcmp(type, "float") == 0) return 'f';
    return '?';
}

/* The signature letters of a parameter list (the text between the parentheses) and, when
 * names is not NULL, the parameters' names separated by spaces. In OpenCL (`cl`) a tensor
 * is a pointer followed by its `ulong` element offset (not named in `names`); a pointer
 * without one gives '!'. */
static void signature_names(const char *params, size_t len, int cl, char *sig, size_t cap,
                            char *names, size_t names_cap) {
    size_t n = 0;
    int pending_offset = 0;
    const char *p = params, *end = params + len;
    while (p < end && n + 1 < cap) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        char type[128], name[64];
        int star;
        param_type(p, (size_t)(stop - p), type, sizeof type, &star, name, sizeof name);
        if (names && !pending_offset) {
            if (n) strncat(names, " ", names_cap - strlen(names) - 1);
            strncat(names, name, names_cap - strlen(names) - 1);
        }
        if (pending_offset) {
            if (star || strcmp(type, "ulong") != 0) sig[n - 1] = '!';
            pending_offset = 0;
        } else if (star) {
            sig[n++] = pointer_letter(type);
            pending_offset = cl;
        } else {
            sig[n++] = scalar_letter(type);
        }
        p = comma ? comma + 1 : end;
    }
    if (pending_offset && n) sig[n - 1] = '!';
    sig[n] = '\0';
}

static void signature(const char *params, size_t len, int cl, char *sig, size_t cap) {
    signature_names(params, len, cl, sig, cap, NULL, 0);
}

/* ---- the kernels of one file ---- */

typedef struct kernel_sig {
    char name[64];
    char sig[32];
    char names[256]; /* the parameters' names in order (OpenCL: not the offsets) */
} kernel_sig;

/* Every kernel of `text` (after `marker`, e.g. "__kernel void"); returns the count. */
static int parse_kernels(char *text, const char *marker, int cl, kernel_sig *out, int cap) {
    int n = 0;
    strip_comments(text);
    for (char *p = strstr(text, marker); p && n < cap; p = strstr(p, marker)) {
        p += strlen(marker);
        while (*p == ' ' || *p == '\n') p++;
        char *open = strchr(p, '(');
        assert_non_null(open);
        size_t nl = (size_t)(open - p);
        while (nl && (p[nl - 1] == ' ' || p[nl - 1] == '\n')) nl--;
        assert_true(nl < sizeof out[n].name);
        memcpy(out[n].name, p, nl);
        out[n].name[nl] = '\0';
        char *close = strchr(open, ')');
        assert_non_null(close);
        out[n].names[0] = '\0';
        signature_names(open + 1, (size_t)(close - open - 1), cl, out[n].sig,
                        sizeof out[n].sig, out[n].names, sizeof out[n].names);
        n++;
        p = close;
    }
    return n;
}

/* Compares one file's kernels with the list; returns the number of disagreements and
 * prints each. */
static int compare(const kernel_sig *k, int n, int where, const char *file) {
    int bad = 0;
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++) {
        const mn_gpu_kernel_info *e = &mn_gpu_kernels[i];
        if (!(e->where & where)) continue;
        int found = 0;
        for (int j = 0; j < n; j++)
            if (strcmp(k[j].name, e->name) == 0) {
                found = 1;
                if (strcmp(k[j].sig, e->sig) != 0) {
                    print_error("%s: %s takes '%s'; gpu_kernels.def says '%s'\n", file,
                                e->name, k[j].sig, e->sig);
                    bad++;
                }
            }
        if (!found) {
            print_error("%s: %s is listed but not defined\n", file, e->name);
            bad++;
        }
    }
    for (int j = 0; j < n; j++) {
        int listed = 0;
        for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++)
            if ((mn_gpu_kernels[i].where & where) && strcmp(k[j].name, mn_gpu_kernels[i].name) == 0)
                listed = 1;
        if (!listed) {
            print_error("%s: %s is defined but not listed for it\n", file, k[j].name);
            bad++;
        }
    }
    return bad;
}

static int check_file(const char *file, const char *marker, int cl, int where,
                      kernel_sig *k) {
    char *text = kernel_file(file);
    int n = parse_kernels(text, marker, cl, k, 64);
    free(text);
    int listed = 0;
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++) listed += (mn_gpu_kernels[i].where & where) != 0;
    assert_int_equal(n, listed);
    assert_int_equal(compare(k, n, where, file), 0);
    return n;
}

static kernel_sig cl_kernels[64], cu_kernels[64];

static void test_opencl_kernels_match_list(void **state) {
    (void)state;
    check_file("mcunas.cl", "__kernel void", 1, MN_GPU_IN_CL, cl_kernels);
}

static void test_cuda_kernels_match_list(void **state) {
    (void)state;
    check_file("mcunas.cu", "__global__ void", 0, MN_GPU_IN_CU, cu_kernels);
}

/* A kernel in both files takes the same parameters by name too, so the one argument list
 * the shared ops pass means the same on both backends (types alone would let two tensors
 * or two sizes trade places). */
static void test_shared_kernels_same_parameters(void **state) {
    (void)state;
    int ncl = check_file("mcunas.cl", "__kernel void", 1, MN_GPU_IN_CL, cl_kernels);
    int ncu = check_file("mcunas.cu", "__global__ void", 0, MN_GPU_IN_CU, cu_kernels);
    int shared = 0, bad = 0;
    for (int i = 0; i < ncl; i++)
        for (int j = 0; j < ncu; j++)
            if (strcmp(cl_kernels[i].name, cu_kernels[j].name) == 0) {
                shared++;
                if (strcmp(cl_kernels[i].names, cu_kernels[j].names) != 0) {
                    print_error("%s: mcunas.cl (%s) and mcunas.cu (%s) disagree\n",
                                cl_kernels[i].name, cl_kernels[i].names, cu_kernels[j].names);
                    bad++;
                }
            }
    int listed = 0;
    for (int i = 0; i < MN_GPU_KERNEL_COUNT; i++)
        listed += mn_gpu_kernels[i].where == (MN_GPU_IN_CL | MN_GPU_IN_CU);
    assert_int_equal(shared, listed);
    assert_int_equal(bad, 0);
}

/* The parser tells orders and types apart (so the two tests above can fail). */
static void test_parser_sees_differences(void **state) {
    (void)state;
    char sig[32];
    const char cl[] = "__global const float *x, ulong xo, __global const int *lab, ulong lo, "
                      "float s, uint n, ulong seed, int flag, __global const uchar *u, ulong uo";
    signature(cl, strlen(cl), 1, sig, sizeof sig);
    assert_string_equal(sig, "FIfuUiB");
    const char cl_no_offset[] = "__global float *x, uint n";
    signature(cl_no_offset, strlen(cl_no_offset), 1, sig, sizeof sig);
    assert_string_equal(sig, "!");
    const char cu[] = "const float *x, float *y, unsigned count, uint64_t seed, int has, "
                      "const unsigned char *u";
    signature(cu, strlen(cu), 0, sig, sizeof sig);
    assert_string_equal(sig, "FFuUiB");
    const char cu_swapped[] = "float *y, unsigned count, const float *x";
    signature(cu_swapped, strlen(cu_swapped), 0, sig, sizeof sig);
    assert_string_equal(sig, "FuF");
    /* which the list tells apart from the real order */
    assert_string_not_equal(sig, mn_gpu_kernels[MN_GPU_RELU_FWD].sig);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opencl_kernels_match_list),
        cmocka_unit_test(test_cuda_kernels_match_list),
        cmocka_unit_test(test_shared_kernels_same_parameters),
        cmocka_unit_test(test_parser_sees_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
