/* The one clock every duration in mcunas is measured with (training, benchmarks, search,
 * proxies, the CLI's progress): monotonic, so a wall-clock step never shows as time spent. */
#ifndef MCUNAS_CLOCK_H
#define MCUNAS_CLOCK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic seconds since an arbitrary origin; only differences mean anything. */
double mn_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
