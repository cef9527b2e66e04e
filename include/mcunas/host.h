/* The machine running mcunas as this process sees it: the memory and CPUs it may really use
 * (Linux's /proc, the affinity mask and the process's cgroup), what the search and ranking
 * plan candidates against, and what a candidate's training measures. */
#ifndef MCUNAS_HOST_H
#define MCUNAS_HOST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where the cgroup filesystem is mounted unless MN_CGROUP_ROOT names another place. */
#define MN_HOST_CGROUP_ROOT "/sys/fs/cgroup"

/* Memory the kernel could give this process now: MemAvailable from /proc/meminfo, capped by
 * what its cgroup still allows (mn_host_cgroup_memory_left); 0 when unknown. */
size_t mn_host_available_bytes(void);
/* This process's resident set (VmRSS) and its peak (VmHWM); 0 when unknown. */
size_t mn_host_rss_bytes(void);
size_t mn_host_peak_bytes(void);
/* Resets the peak resident set the kernel keeps for this process to the resident set now;
 * returns 0 when it cannot. */
int mn_host_peak_reset(void);

/* How much more memory the process's cgroup lets it use before the kernel reclaims hard or
 * kills it: over the cgroup and each ancestor with a limit (v2: the smaller of memory.max
 * and memory.high; v1: memory.limit_in_bytes), the limit minus the usage (v2 memory.current,
 * v1 memory.usage_in_bytes) less its inactive page cache (memory.stat, which the kernel
 * drops before it kills); the smallest. (size_t)-1 when no cgroup limits the memory.
 * `root`: the cgroup filesystem (NULL: $MN_CGROUP_ROOT, else MN_HOST_CGROUP_ROOT); `self`: the
 * process's membership file in /proc/self/cgroup's format (NULL: /proc/self/cgroup).
 * `limit`, when not NULL, receives the limit that gives the result ((size_t)-1 when none). */
size_t mn_host_cgroup_memory_left(const char *root, const char *self, size_t *limit);
/* CPUs the process's cgroup quota allows (v2 cpu.max, v1 cpu.cfs_quota_us over
 * cpu.cfs_period_us; the smallest over the cgroup and its ancestors), rounded up; 0 when no
 * quota applies. `root` and `self` as above. */
int mn_host_cgroup_cpus(const char *root, const char *self);
/* CPUs this process may really run on: its affinity mask (sched_getaffinity), capped by the
 * cgroup's quota; at least 1. */
int mn_host_cpu_count(void);

#ifdef __cplusplus
}
#endif
#endif
