/* mcunas bench --compare-torch: the same training step timed in PyTorch, through the
 * torch_throughput.py script installed with mcunas (share/mcunas/). */
#ifndef MN_CLI_BENCH_TORCH_H
#define MN_CLI_BENCH_TORCH_H

#include <stddef.h>

#include "mcunas/arch.h"

typedef struct mn_bench_torch {
    char python[4096]; /* the interpreter (given, or python3 from PATH) */
    char script[4096]; /* torch_throughput.py */
    char version[64];  /* torch.__version__ */
} mn_bench_torch;

/* Finds the script and checks that `python` (NULL: python3) imports torch. Prints what is
 * missing and how to get it; returns MN_EXIT_OK or MN_EXIT_FAILURE. */
int mn_bench_torch_open(mn_bench_torch *t, const char *python);

/* Times A(k, cells) on `arch`'s input in PyTorch ("cpu" or "cuda") with the same batch,
 * threads, seconds and warm-up; returns MN_EXIT_OK with images/s, or prints why not and
 * returns MN_EXIT_FAILURE. */
int mn_bench_torch_run(mn_bench_torch *t, const mn_arch *arch, int batch, int threads,
                       double seconds, int warmup, const char *device, double *images_per_second);

#endif
