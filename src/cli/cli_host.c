/* What the command line takes from the machine: the OpenMP wait policy and thread count,
 * and the host memory budget. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

/* Idle OpenMP workers in libgomp busy-wait for the next parallel region (300,000 spins by
 * default) before they sleep. Training runs hundreds of short regions per step; when other
 * processes hold the cores, a spinning worker burns the time slice the worker with the real
 * work needs, and throughput collapses: 6-15 img/s instead of 105-164 on one thread
 * (benchmarks/RESULTS.md, "Busy cores"). 1,000 spins (what libgomp itself uses when it
 * knows the CPUs are oversubscribed) measured as fast as the default with the cores to
 * itself and degrades in proportion on a busy machine; OMP_WAIT_POLICY=passive degrades a
 * little better but costs 6-22% on an idle one. libgomp reads the setting once, when it is
 * loaded, before main() runs, so the program sets it and executes itself again; a user's
 * own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone. */
#define MN_CLI_SPINCOUNT "1000"

void mn_cli_threads_init(char **argv) {
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT") &&
        setenv("GOMP_SPINCOUNT", MN_CLI_SPINCOUNT, 1) == 0) {
        execv("/proc/self/exe", argv);
        unsetenv("GOMP_SPINCOUNT"); /* no /proc: run on with libgomp's default */
    }
    /* libgomp's default is the affinity mask; a cgroup CPU quota can be smaller. */
    if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(mn_host_cpu_count());
}

/* What the process may hold in all: its resident set plus `room`, and within a cgroup never
 * more than the cgroup's limit (the resident set counts shared library pages that another
 * cgroup paid for). */
static size_t hold_at_most(size_t room, size_t limit) {
    size_t total = mn_host_rss_bytes() + room;
    return limit != (size_t)-1 && total > limit ? limit : total;
}

size_t mn_cli_host_mem_default(void) {
    size_t limit;
    mn_host_cgroup_memory_left(NULL, NULL, &limit);
    return hold_at_most(mn_host_available_bytes(), limit);
}

int mn_cli_host_mem_check(const char *cmd, size_t host_mem) {
    if (!host_mem) return MN_CLI_CONTINUE;
    size_t limit, left = mn_host_cgroup_memory_left(NULL, NULL, &limit);
    if (left == (size_t)-1) return MN_CLI_CONTINUE;
    size_t allowed = hold_at_most(left, limit);
    if (host_mem <= allowed) return MN_CLI_CONTINUE;
    return mn_cli_usage_error(cmd,
                              "--host-mem %.1f MiB is more than this process's cgroup allows: "
                              "%.1f MiB (its memory limit is %.1f MiB)",
                              host_mem / 1048576.0, allowed / 1048576.0, limit / 1048576.0);
}
