#include "mcunas/bench.h"

#include <cblas.h>
#include <stdlib.h>

#include "mcunas/clock.h"
#include "mcunas/net.h"
#include "mcunas/rng.h"
#include "mcunas/train.h"

double mn_bench_flops_per_image(const mn_arch *arch) { return 6.0 * (double)mn_arch_macc(arch); }

mn_status mn_bench_train(const mn_arch *arch, mn_backend *be, int batch, double seconds,
                         int warmup, volatile int *stop, mn_bench_result *out) {
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = batch;
    mn_net *net = NULL;
    mn_status st = mn_net_create(arch, be, &no, &net);
    if (!st) st = mn_net_init(net, 7);
    if (st) {
        mn_net_destroy(net);
        return st;
    }
    size_t image_bytes = mn_shape_count(arch->input);
    uint8_t *images = malloc((size_t)batch * image_bytes);
    int32_t *labels = malloc((size_t)batch * sizeof(int32_t));
    if (!images || !labels) {
        free(images);
        free(labels);
        mn_net_destroy(net);
        return mn_error_set(MN_ERR_NOMEM, "no memory for a benchmark batch");
    }
    mn_rng rng;
    mn_rng_seed(&rng, 42);
    for (size_t i = 0; i < (size_t)batch * image_bytes; i++) images[i] = (uint8_t)mn_rng_below(&rng, 256);
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)mn_rng_below(&rng, (uint64_t)arch->classes);
    mn_adam adam = {1e-3f, 0.9f, 0.999f, 1e-7f};
    double loss;
    int correct, steps = 0;
    for (int i = 0; i < warmup && !st; i++)
        st = stop && *stop ? mn_error_set(MN_ERR_INTERRUPTED, "benchmark stopped in its warm-up")
                           : mn_net_train_step(net, images, labels, batch, &adam, (uint64_t)i, &loss, &correct);
    double t0 = mn_time_now(), t = t0;
    while (!st && (t - t0 < seconds || steps < 3)) {
        if (stop && *stop) {
            st = mn_error_set(MN_ERR_INTERRUPTED, "benchmark stopped after %d steps", steps);
            break;
        }
        st = mn_net_train_step(net, images, labels, batch, &adam, (uint64_t)steps, &loss, &correct);
        steps++;
        t = mn_time_now();
    }
    if (!st) {
        out->steps = steps;
        out->seconds = t - t0;
        out->images_per_second = (double)steps * batch / out->seconds;
        out->gflops = mn_bench_flops_per_image(arch) * out->images_per_second * 1e-9;
        out->device_bytes = mn_net_get_plan(net)->device_bytes;
    }
    free(images);
    free(labels);
    mn_net_destroy(net);
    return st;
}

mn_status mn_bench_sgemm(int threads, double seconds, volatile int *stop, double *gflops) {
    const int m = 64, n = 4096, k = 576;
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n),
          *c = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return mn_error_set(MN_ERR_NOMEM, "no memory for the SGEMM benchmark");
    }
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    if (threads > 0) openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    int reps = 0;
    double t0 = mn_time_now(), t = t0;
    while (t - t0 < seconds || reps < 3) {
        if (stop && *stop) break;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        reps++;
        t = mn_time_now();
    }
    *gflops = reps ? 2.0 * m * n * k * reps / (t - t0) * 1e-9 : 0;
    free(a);
    free(b);
    free(c);
    return stop && *stop ? mn_error_set(MN_ERR_INTERRUPTED, "SGEMM benchmark stopped after %d runs", reps)
                         : MN_OK;
}
