/* Allocation-failure injection (MN_FAILALLOC builds): the CLI and libmcunas are linked with
 * -Wl,--wrap for malloc, calloc, realloc, strdup and aligned_alloc, so every such call made
 * by mcunas's own code (not by HDF5, OpenBLAS, jansson or libc internally) comes here.
 *
 *   MN_FAIL_ALLOC=n        the n-th call (1-based, counted over all threads) returns NULL
 *   MN_FAIL_ALLOC_COUNT=1  print "failalloc: N allocations" to stderr at exit
 *
 * tests/failalloc/sweep runs a command once to count its allocations, then again failing
 * each n in turn. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void *__wrap_aligned_alloc(size_t a, size_t n);

static atomic_ulong calls;
static unsigned long fail_at; /* 0: never */

static void report(void) {
    fprintf(stderr, "failalloc: %lu allocations\n", (unsigned long)atomic_load(&calls));
}

__attribute__((constructor)) static void failalloc_init(void) {
    const char *s = getenv("MN_FAIL_ALLOC");
    if (s && *s) fail_at = strtoul(s, NULL, 10);
    const char *c = getenv("MN_FAIL_ALLOC_COUNT");
    if (c && *c == '1') atexit(report);
}

/* 1 when this call is the one to fail. */
static int failing(void) { return atomic_fetch_add(&calls, 1) + 1 == fail_at; }

void *__wrap_malloc(size_t n) { return failing() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return failing() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return failing() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return failing() ? NULL : __real_strdup(s); }
void *__wrap_aligned_alloc(size_t a, size_t n) { return failing() ? NULL : __real_aligned_alloc(a, n); }
