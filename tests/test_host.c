/* The machine as the process sees it: cgroup v1/v2 memory and CPU limits read from fake
 * cgroup trees, the affinity mask, and a real cgroup where the machine lets us make one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcunas/host.h"
#include "testutil.h"

#define MIB ((size_t)1 << 20)
#define NO_LIMIT ((size_t)-1)

static char *root_dir; /* a fresh fake tree per test */

/* root/rel (directories made as needed) holding `text`. */
static void put(const char *rel, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root_dir, rel);
    for (char *p = path + strlen(root_dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *path_of(const char *rel) { return mn_test_path(root_dir, rel); }

static int fresh(void **state) {
    (void)state;
    root_dir = mn_test_tmpdir("cgroup");
    assert_non_null(root_dir);
    return 0;
}

static int gone(void **state) {
    (void)state;
    int rc = mn_test_remove_tree(root_dir);
    free(root_dir);
    return rc == 0 ? 0 : 1;
}

static void v2_memory_is_the_tightest_level(void **state) {
    (void)state;
    put("cg/cgroup.controllers", "cpu memory pids\n");
    put("self", "0::/jobs/job1\n");
    /* the job: 256 MiB, 100 MiB used of which 20 MiB inactive page cache */
    put("cg/jobs/job1/memory.max", "268435456\n");
    put("cg/jobs/job1/memory.current", "104857600\n");
    put("cg/jobs/job1/memory.stat", "anon 80000000\nfile 24000000\ninactive_file 20971520\nactive_file 0\n");
    put("cg/jobs/memory.max", "max\n");
    put("cg/jobs/memory.current", "999999999\n");
    char *root = path_of("cg"), *self = path_of("self");
    size_t limit = 0;
    assert_int_equal(mn_host_cgroup_memory_left(root, self, &limit), 176 * MIB);
    assert_int_equal(limit, 256 * MIB);
    /* an ancestor with less room left wins */
    put("cg/jobs/memory.max", "134217728\n");
    put("cg/jobs/memory.current", "125829120\n");
    assert_int_equal(mn_host_cgroup_memory_left(root, self, &limit), 8 * MIB);
    assert_int_equal(limit, 128 * MIB);
    /* memory.high below memory.max is where the kernel starts throttling: it counts */
    put("cg/jobs/memory.max", "max\n");
    put("cg/jobs/job1/memory.high", "209715200\n");
    assert_int_equal(mn_host_cgroup_memory_left(root, self, &limit), 120 * MIB);
    assert_int_equal(limit, 200 * MIB);
    /* used beyond the limit: nothing left, never a wrapped-around huge number */
    put("cg/jobs/job1/memory.current", "314572800\n");
    put("cg/jobs/job1/memory.stat", "inactive_file 0\n");
    assert_int_equal(mn_host_cgroup_memory_left(root, self, NULL), 0);
    free(root);
    free(self);
}

static void v2_without_limits_or_files(void **state) {
    (void)state;
    put("cg/cgroup.controllers", "memory\n");
    put("cg/a/memory.max", "max\n");
    put("cg/a/memory.current", "1000\n");
    put("self", "0::/a\n");
    char *root = path_of("cg"), *self = path_of("self"), *none = path_of("no-such-file");
    size_t limit = 0;
    assert_int_equal(mn_host_cgroup_memory_left(root, self, &limit), NO_LIMIT);
    assert_int_equal(limit, NO_LIMIT);
    assert_int_equal(mn_host_cgroup_cpus(root, self), 0);
    /* no membership file, or a root with no cgroup filesystem: no limit either */
    assert_int_equal(mn_host_cgroup_memory_left(root, none, NULL), NO_LIMIT);
    assert_int_equal(mn_host_cgroup_memory_left(none, self, NULL), NO_LIMIT);
    assert_int_equal(mn_host_cgroup_cpus(none, self), 0);
    /* garbage in the files is no limit, not a number read from it */
    put("cg/a/memory.max", "lots\n");
    assert_int_equal(mn_host_cgroup_memory_left(root, self, NULL), NO_LIMIT);
    put("cg/a/cpu.max", "half 100000\n");
    assert_int_equal(mn_host_cgroup_cpus(root, self), 0);
    free(root);
    free(self);
    free(none);
}

/* A container whose cgroup namespace is not private: /proc/self/cgroup names a path the
 * mount does not show, and the container's own limit sits at the mount itself. */
static void v2_container_sees_only_its_mount(void **state) {
    (void)state;
    put("cg/cgroup.controllers", "cpu memory\n");
    put("cg/memory.max", "536870912\n");
    put("cg/memory.current", "104857600\n");
    put("cg/cpu.max", "150000 100000\n");
    put("self", "0::/kubepods/burstable/pod1234/abcdef\n");
    char *root = path_of("cg"), *self = path_of("self");
    assert_int_equal(mn_host_cgroup_memory_left(root, self, NULL), 412 * MIB);
    assert_int_equal(mn_host_cgroup_cpus(root, self), 2); /* 1.5 CPUs: rounded up */
    free(root);
    free(self);
}

static void v2_cpu_quota(void **state) {
    (void)state;
    put("cg/cgroup.controllers", "cpu\n");
    put("cg/a/b/cpu.max", "max 100000\n");
    put("cg/a/cpu.max", "300000 100000\n");
    put("self", "0::/a/b\n");
    char *root = path_of("cg"), *self = path_of("self");
    assert_int_equal(mn_host_cgroup_cpus(root, self), 3);
    put("cg/a/b/cpu.max", "50000 100000\n"); /* half a CPU below three: one thread */
    assert_int_equal(mn_host_cgroup_cpus(root, self), 1);
    free(root);
    free(self);
}

/* cgroup v1 beside an empty unified hierarchy, as systemd's hybrid layout mounts it. */
static void v1_memory_and_cpu(void **state) {
    (void)state;
    put("self", "12:pids:/\n5:cpu,cpuacct:/batch/j7\n4:memory:/batch/j7\n0::/\n");
    put("cg/unified/cgroup.controllers", "\n");
    put("cg/memory/memory.limit_in_bytes", "9223372036854771712\n"); /* v1's "no limit" */
    put("cg/memory/memory.usage_in_bytes", "4000000000\n");
    put("cg/memory/batch/j7/memory.limit_in_bytes", "1073741824\n");
    put("cg/memory/batch/j7/memory.usage_in_bytes", "314572800\n");
    put("cg/memory/batch/j7/memory.stat",
        "cache 1000\ninactive_file 1000\ntotal_cache 104857600\ntotal_inactive_file 104857600\n");
    put("cg/cpu/batch/j7/cpu.cfs_quota_us", "-1\n");
    put("cg/cpu/batch/j7/cpu.cfs_period_us", "100000\n");
    put("cg/cpu/batch/cpu.cfs_quota_us", "200000\n");
    put("cg/cpu/batch/cpu.cfs_period_us", "100000\n");
    char *root = path_of("cg"), *self = path_of("self");
    size_t limit = 0;
    /* 1 GiB - (300 MiB - 100 MiB of the hierarchy's inactive cache) */
    assert_int_equal(mn_host_cgroup_memory_left(root, self, &limit), 824 * MIB);
    assert_int_equal(limit, 1024 * MIB);
    assert_int_equal(mn_host_cgroup_cpus(root, self), 2);
    put("cg/memory/batch/j7/memory.limit_in_bytes", "9223372036854771712\n");
    assert_int_equal(mn_host_cgroup_memory_left(root, self, &limit), NO_LIMIT);
    assert_int_equal(limit, NO_LIMIT);
    free(root);
    free(self);
}

static int affinity_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

/* The process's own figures go through MN_CGROUP_ROOT: a fake tree with the same quota at
 * every place this process's cgroup could be found (v1 or v2, any path). */
static void process_figures_follow_the_cgroup(void **state) {
    (void)state;
    const int cpus = affinity_count();
    assert_true(mn_host_cpu_count() >= 1);
    assert_true(mn_host_cpu_count() <= cpus);
    put("cg/cgroup.controllers", "cpu memory\n");
    put("cg/cpu.max", "100000 100000\n");
    put("cg/memory.max", "67108864\n");
    put("cg/memory.current", "16777216\n");
    put("cg/cpu/cpu.cfs_quota_us", "100000\n");
    put("cg/cpu/cpu.cfs_period_us", "100000\n");
    put("cg/memory/memory.limit_in_bytes", "67108864\n");
    put("cg/memory/memory.usage_in_bytes", "16777216\n");
    char *root = path_of("cg");
    assert_int_equal(setenv("MN_CGROUP_ROOT", root, 1), 0);
    assert_int_equal(mn_host_cpu_count(), 1);
    assert_int_equal(mn_host_cgroup_memory_left(NULL, NULL, NULL), 48 * MIB);
    assert_true(mn_host_available_bytes() <= 48 * MIB);
    put("cg/cpu.max", "max 100000\n");
    put("cg/cpu/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(mn_host_cpu_count(), cpus);
    assert_int_equal(unsetenv("MN_CGROUP_ROOT"), 0);
    free(root);
}

/* ---- a real cgroup ---- */

static int write_file(const char *dir, const char *name, const char *text) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0) && ok;
}

/* "oom_kill N" of a v2 memory.events or v1 memory.oom_control; -1 when unreadable. */
static long oom_kills(const char *dir, int v2) {
    char path[4400], line[256];
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.events" : "memory.oom_control");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "oom_kill %ld", &n) == 1) break;
    fclose(f);
    return n;
}

/* A memory cgroup of `bytes` for a child process: v2 beside the root's, or v1 under this
 * process's own memory cgroup. 0, with the reason in why, when the machine does not let us. */
static int make_memory_cgroup(size_t bytes, char *dir, size_t n, int *v2, char *why, size_t wn) {
    char limit[32];
    snprintf(limit, sizeof limit, "%zu\n", bytes);
    if (geteuid() != 0) {
        snprintf(why, wn, "not root: cannot create a cgroup");
        return 0;
    }
    FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "r");
    char ctl[512] = "";
    if (f) {
        if (!fgets(ctl, sizeof ctl, f)) ctl[0] = '\0';
        fclose(f);
    }
    if (strstr(ctl, "memory")) {
        *v2 = 1;
        snprintf(dir, n, "/sys/fs/cgroup/mcunas-test-%d", (int)getpid());
        if (mkdir(dir, 0755) != 0) {
            snprintf(why, wn, "cannot create %s: %s", dir, strerror(errno));
            return 0;
        }
        write_file(dir, "memory.swap.max", "0\n");
        if (write_file(dir, "memory.max", limit)) return 1;
        snprintf(why, wn, "cannot set %s/memory.max", dir);
        rmdir(dir);
        return 0;
    }
    /* v1: under this process's own memory cgroup, so its accounting still holds */
    f = fopen("/proc/self/cgroup", "r");
    char line[1024], own[1024] = "";
    while (f && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 && strncmp(c1 + 1, "memory:", 7) == 0) {
            c2[1 + strcspn(c2 + 1, "\n")] = '\0';
            snprintf(own, sizeof own, "%s", c2 + 1);
        }
    }
    if (f) fclose(f);
    *v2 = 0;
    snprintf(dir, n, "/sys/fs/cgroup/memory%s/mcunas-test-%d", strcmp(own, "/") ? own : "", (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        snprintf(why, wn, "no writable memory cgroup (v2 without the memory controller; %s: %s)",
                 dir, strerror(errno));
        return 0;
    }
    write_file(dir, "memory.swappiness", "0\n");
    if (write_file(dir, "memory.limit_in_bytes", limit)) return 1;
    snprintf(why, wn, "cannot set %s/memory.limit_in_bytes", dir);
    rmdir(dir);
    return 0;
}

/* A search without --host-mem inside a 256 MiB cgroup plans within it and is not killed. */
static void search_in_a_256m_cgroup(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    if (!bin) skip();
    char dir[4200], why[4400];
    int v2 = 0;
    if (!make_memory_cgroup(256 * MIB, dir, sizeof dir, &v2, why, sizeof why)) {
        fprintf(stderr, "search_in_a_256m_cgroup: skipped: %s\n", why);
        skip();
    }
    char *data = path_of("data.h5"), *out = path_of("search"), *log = path_of("search.log");
    assert_true(mn_test_write_brightness_dataset(data, 16, 16, 900, 200, 5));
    char procs[4300];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    /* The shell moves itself into the cgroup, then becomes mcunas. Under AddressSanitizer
     * its quarantine of freed memory (256 MiB by default) would be the sanitizer's own use,
     * not the search's: keep it small there. */
    const char *argv[] = {"/bin/sh", "-c",
                          "echo $$ > \"$0\" && ASAN_OPTIONS=\"$ASAN_OPTIONS:quarantine_size_mb=16\" exec \"$@\"",
                          procs, bin, "search", "--data", data, "--target", "stm32l412kbu3",
                          "--out", out, "--k-max", "3", "--epochs", "1", "--batch", "8",
                          "--final-epochs", "1", NULL};
    int rc = mn_test_run(0, argv, log);
    long kills = oom_kills(dir, v2);
    rmdir(dir); /* empty again: the search has exited */
    assert_int_equal(rc, 0);
    assert_true(kills <= 0);
    /* the budget it printed is the cgroup's, not the machine's */
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[4096];
    double mib = -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "host budget ");
        if (p) mib = atof(p + strlen("host budget "));
    }
    fclose(f);
    if (!(mib > 0 && mib <= 256)) {
        mn_test_print_run(argv, log, rc);
        fail_msg("host budget %.0f MiB in a 256 MiB cgroup", mib);
    }
    free(data);
    free(out);
    free(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(v2_memory_is_the_tightest_level, fresh, gone),
        cmocka_unit_test_setup_teardown(v2_without_limits_or_files, fresh, gone),
        cmocka_unit_test_setup_teardown(v2_container_sees_only_its_mount, fresh, gone),
        cmocka_unit_test_setup_teardown(v2_cpu_quota, fresh, gone),
        cmocka_unit_test_setup_teardown(v1_memory_and_cpu, fresh, gone),
        cmocka_unit_test_setup_teardown(process_figures_follow_the_cgroup, fresh, gone),
        cmocka_unit_test_setup_teardown(search_in_a_256m_cgroup, fresh, gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
