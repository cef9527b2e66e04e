/* Throughput measurement: training steps of a candidate on synthetic data, and the machine's
 * SGEMM peak through the BLAS the CPU backend uses. */
#ifndef MCUNAS_BENCH_H
#define MCUNAS_BENCH_H

#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mn_bench_result {
    int steps;               /* timed steps (after warm-up) */
    double seconds;          /* timed wall time */
    double images_per_second;
    double gflops;           /* mn_bench_flops_per_image x images/s */
    size_t device_bytes;     /* the net's planned (and allocated) device memory */
} mn_bench_result;

/* FLOPs of one image in a training step, the usual convention: 6 x MACC (forward 2 FLOPs per
 * MACC; backward twice that, for the gradients of the inputs and of the weights). Pooling,
 * normalisation and the optimiser are not counted. */
double mn_bench_flops_per_image(const mn_arch *arch);

/* Trains `arch` on seeded random data with batch `batch` for ~`seconds` after `warmup`
 * steps (forward + backward + Adam per step). `stop`: when non-NULL and set, the run stops
 * at the next step with MN_ERR_INTERRUPTED. */
mn_status mn_bench_train(const mn_arch *arch, mn_backend *be, int batch, double seconds,
                         int warmup, volatile int *stop, mn_bench_result *out);

/* SGEMM C[64 x 4096] = A[64 x 576] B[576 x 4096] repeated for ~`seconds` on `threads`
 * threads: the shape of a mid-sized conv layer's GEMM. `stop` as above. */
mn_status mn_bench_sgemm(int threads, double seconds, volatile int *stop, double *gflops);

#ifdef __cplusplus
}
#endif
#endif
