/* The memory of the machine running mcunas, as Linux's /proc reports it: what the search
 * and ranking plan candidates against, and what a candidate's training measures. */
#ifndef MCUNAS_HOST_H
#define MCUNAS_HOST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What /proc says now (0 when unknown): memory the kernel could give this process
 * (MemAvailable), this process's resident set (VmRSS) and its peak (VmHWM). */
size_t mn_host_available_bytes(void);
size_t mn_host_rss_bytes(void);
size_t mn_host_peak_bytes(void);
/* Resets the peak resident set the kernel keeps for this process to the resident set now;
 * returns 0 when it cannot. */
int mn_host_peak_reset(void);

#ifdef __cplusplus
}
#endif
#endif
