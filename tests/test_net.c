/* The trainable network on every built-in backend: its memory plan equals what it
 * allocates, its gradients match finite differences through the whole network for every
 * layout, training is deterministic and learns, and weights round-trip through a file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_impl.h" /* the budget test swaps a backend's mem_info */
#include "mcunas/arch.h"
#include "mcunas/backend.h"
#include "mcunas/net.h"
#include "mcunas/rng.h"
#include "mcunas/train.h"
#include "mcunas/weights.h"
#include "testutil.h"

/* Backends to test: every name in mn_backend_available() that this machine can run, one
 * suite pass each. A GPU backend built in but without a device here (no driver, no GPU)
 * is left out and reported by `gpu_backends_present`, which then skips. */
static char backend_names[8][32];
static int n_backends;
static char unavailable[8][320];
static int n_unavailable;

static void list_backends(void) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", mn_backend_available());
    n_backends = n_unavailable = 0;
    for (char *tok = strtok(buf, ","); tok && n_backends < 8; tok = strtok(NULL, ",")) {
        mn_backend_options o = {2, 0};
        mn_backend *be = NULL;
        mn_status st = mn_backend_create(tok, &o, &be);
        if (st == MN_ERR_UNSUPPORTED && strcmp(tok, "cpu") != 0) {
            snprintf(unavailable[n_unavailable++], sizeof unavailable[0], "%s: %s", tok,
                     mn_error_message());
            continue;
        }
        mn_backend_destroy(be); /* any other failure shows in the tests that create it */
        snprintf(backend_names[n_backends++], sizeof backend_names[0], "%s", tok);
    }
}

/* Says which built-in backends did not run here, and why, as a skip. */
static void gpu_backends_present(void **state) {
    (void)state;
    if (!n_unavailable) return;
    for (int i = 0; i < n_unavailable; i++)
        print_message("SKIPPED backend %s\n", unavailable[i]);
    skip();
}

static mn_backend *make_backend(int i) {
    mn_backend_options o = {2, 0};
    mn_backend *be = NULL;
    assert_int_equal(mn_backend_create(backend_names[i], &o, &be), MN_OK);
    return be;
}

static void random_batch(uint8_t *images, int32_t *labels, size_t n, size_t image_bytes,
                         int classes, uint64_t seed) {
    mn_rng r;
    mn_rng_seed(&r, seed);
    for (size_t i = 0; i < n * image_bytes; i++) images[i] = (uint8_t)mn_rng_below(&r, 256);
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)mn_rng_below(&r, (uint64_t)classes);
}

static void plan_equals_allocation(void **state) {
    (void)state;
    for (int b = 0; b < n_backends; b++) {
        mn_backend *be = make_backend(b);
        const int ks[] = {1, 3, 8};
        for (int layout = 0; layout < MN_LAYOUT_COUNT; layout++)
            for (int i = 0; i < 3; i++) {
                mn_arch arch;
                assert_int_equal(mn_arch_build(&arch, ks[i], i + 1, (mn_layout)layout,
                                               (mn_shape){28, 28, 1}, 10), MN_OK);
                mn_backend_mem before, after;
                mn_backend_mem_info(be, &before);
                mn_net_options no;
                mn_net_options_default(&no);
                no.batch = 16;
                mn_net *net;
                mn_net_plan plan;
                assert_int_equal(mn_net_plan_compute(&arch, be, 16, &plan), MN_OK);
                assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
                mn_backend_mem_info(be, &after);
                /* Every byte the net allocates is in the plan, and nothing else. */
                assert_int_equal(after.allocated_bytes - before.allocated_bytes, plan.device_bytes);
                assert_int_equal(mn_net_get_plan(net)->device_bytes, plan.device_bytes);
                assert_int_equal(plan.trainable, mn_arch_trainable_params(&arch));
                assert_int_equal(plan.state, mn_arch_state_params(&arch));
                /* A training step allocates nothing more. */
                uint8_t images[16 * 784];
                int32_t labels[16];
                random_batch(images, labels, 16, 784, 10, 3);
                mn_adam adam = {1e-3f, 0.9f, 0.999f, 1e-7f};
                double loss;
                int correct;
                assert_int_equal(mn_net_init(net, 1), MN_OK);
                assert_int_equal(mn_net_train_step(net, images, labels, 16, &adam, 1, &loss, &correct),
                                 MN_OK);
                mn_backend_mem_info(be, &after);
                assert_int_equal(after.allocated_bytes - before.allocated_bytes, plan.device_bytes);
                mn_net_destroy(net);
                mn_backend_mem_info(be, &after);
                assert_int_equal(after.allocated_bytes, before.allocated_bytes);
            }
        mn_backend_destroy(be);
    }
}

/* Loss of the whole batch (training mode, fixed dropout seed) at the given parameters. */
static double loss_at(mn_net *net, const float *params, const float *bn_state,
                      const uint8_t *images, const int32_t *labels, int n) {
    double loss = 0;
    assert_int_equal(mn_net_set_params(net, params, bn_state), MN_OK);
    assert_int_equal(mn_net_forward_backward(net, images, labels, n, 99, &loss), MN_OK);
    return loss / n;
}

/* Central differences of the mean loss against the analytic gradient, for every parameter
 * of a tiny A(2,2). float32 forward passes limit FD precision to ~1e-4, and a coordinate
 * can straddle a ReLU or max-pool kink, so each layout must have >= 95% of coordinates
 * within tolerance and a median error far below it. */
static void whole_network_gradient_check(void **state) {
    (void)state;
    for (int b = 0; b < n_backends; b++) {
        mn_backend *be = make_backend(b);
        for (int layout = 0; layout < MN_LAYOUT_COUNT; layout++) {
            mn_arch arch;
            const mn_shape in = {10, 9, 2};
            assert_int_equal(mn_arch_build(&arch, 2, 2, (mn_layout)layout, in, 3), MN_OK);
            mn_net_options no;
            mn_net_options_default(&no);
            no.batch = 6;
            mn_net *net;
            assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
            assert_int_equal(mn_net_init(net, 5), MN_OK);
            const int n = 6;
            uint8_t images[6 * 10 * 9 * 2];
            int32_t labels[6];
            random_batch(images, labels, (size_t)n, mn_shape_count(in), 3, 17);
            size_t p = mn_net_get_plan(net)->trainable, s = mn_net_get_plan(net)->state;
            float *params = malloc(p * sizeof(float)), *grads = malloc(p * sizeof(float));
            float *bn = malloc((s + 1) * sizeof(float));
            assert_int_equal(mn_net_get_params(net, params, bn), MN_OK);
            /* Perturb BN gammas/betas and biases away from their init so every gradient
             * is exercised in general position. */
            mn_rng r;
            mn_rng_seed(&r, 23);
            for (size_t i = 0; i < p; i++) params[i] += (float)(0.1 * (mn_rng_uniform(&r) - 0.5));
            loss_at(net, params, bn, images, labels, n);
            assert_int_equal(mn_net_get_grads(net, grads), MN_OK);
            int ok = 0, total = 0;
            double *errs = malloc(p * sizeof(double));
            const float eps = 2e-3f;
            for (size_t i = 0; i < p; i++) {
                float orig = params[i];
                params[i] = orig + eps;
                double lp = loss_at(net, params, bn, images, labels, n);
                params[i] = orig - eps;
                double lm = loss_at(net, params, bn, images, labels, n);
                params[i] = orig;
                double fd = (lp - lm) / (2.0 * eps);
                double err = fabs(fd - grads[i]) / fmax(1e-2, fabs(fd) + fabs(grads[i]));
                errs[total++] = err;
                ok += err < 3e-2;
            }
            /* median */
            for (int i = 0; i < total; i++)
                for (int j = i + 1; j < total; j++)
                    if (errs[j] < errs[i]) {
                        double t = errs[i];
                        errs[i] = errs[j];
                        errs[j] = t;
                    }
            double median = errs[total / 2];
            if (ok < total * 95 / 100 || median > 5e-3)
                fail_msg("%s layout %s: %d of %d gradients within tolerance, median rel err %g",
                         backend_names[b], mn_layout_name((mn_layout)layout), ok, total, median);
            free(errs);
            free(params);
            free(grads);
            free(bn);
            mn_net_destroy(net);
        }
        mn_backend_destroy(be);
    }
}

static void train_losses(int b, double *losses, int steps) {
    mn_backend *be = make_backend(b);
    mn_arch arch;
    assert_int_equal(mn_arch_build(&arch, 4, 2, MN_LAYOUT_NANONAS, (mn_shape){16, 16, 3}, 4), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 8;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 77), MN_OK);
    uint8_t images[8 * 16 * 16 * 3];
    int32_t labels[8];
    mn_adam adam = {1e-2f, 0.9f, 0.999f, 1e-7f};
    for (int i = 0; i < steps; i++) {
        int correct;
        random_batch(images, labels, 8, 16 * 16 * 3, 4, (uint64_t)i);
        assert_int_equal(mn_net_train_step(net, images, labels, 8, &adam, (uint64_t)i, &losses[i], &correct),
                         MN_OK);
    }
    mn_net_destroy(net);
    mn_backend_destroy(be);
}

static void same_seed_same_bits(void **state) {
    (void)state;
    for (int b = 0; b < n_backends; b++) {
        double a[6], c[6];
        train_losses(b, a, 6);
        train_losses(b, c, 6);
        assert_memory_equal(a, c, sizeof a);
        assert_true(a[5] != a[0]); /* the parameters did move */
    }
}

/* A few training steps of one layout on the CPU backend with `threads` threads: the losses
 * and the final parameters and batch-norm state. */
static void train_on_threads(int threads, mn_layout layout, double *losses, int steps,
                             float **params, float **bn_state, size_t *n_params,
                             size_t *n_state) {
    mn_backend_options o = {threads, 0};
    mn_backend *be = NULL;
    assert_int_equal(mn_backend_create("cpu", &o, &be), MN_OK);
    mn_arch arch;
    assert_int_equal(mn_arch_build(&arch, 8, 2, layout, (mn_shape){32, 32, 3}, 4), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 16;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 77), MN_OK);
    static uint8_t images[16 * 32 * 32 * 3];
    int32_t labels[16];
    mn_adam adam = {1e-2f, 0.9f, 0.999f, 1e-7f};
    for (int i = 0; i < steps; i++) {
        int correct;
        /* the last batch is a partial one */
        int n = i + 1 < steps ? 16 : 11;
        random_batch(images, labels, (size_t)n, 32 * 32 * 3, 4, 100 + (uint64_t)i);
        assert_int_equal(mn_net_train_step(net, images, labels, n, &adam, (uint64_t)i,
                                           &losses[i], &correct),
                         MN_OK);
    }
    *n_params = mn_net_get_plan(net)->trainable;
    *n_state = mn_net_get_plan(net)->state;
    *params = malloc(*n_params * sizeof(float));
    *bn_state = malloc((*n_state ? *n_state : 1) * sizeof(float));
    assert_non_null(*params);
    assert_non_null(*bn_state);
    assert_int_equal(mn_net_get_params(net, *params, *bn_state), MN_OK);
    mn_net_destroy(net);
    mn_backend_destroy(be);
}

/* A candidate's training does not depend on how many threads run it: the CPU backend
 * splits every reduction by the shape alone, so 1, 2 and 3 threads give the same bits. */
static void thread_count_gives_the_same_bits(void **state) {
    (void)state;
    enum { STEPS = 4 };
    for (int layout = 0; layout < 3; layout++) {
        double losses[3][STEPS];
        float *params[3], *bn[3];
        size_t n_params[3], n_state[3];
        for (int t = 0; t < 3; t++)
            train_on_threads(t + 1, (mn_layout)layout, losses[t], STEPS, &params[t], &bn[t],
                             &n_params[t], &n_state[t]);
        assert_true(losses[0][STEPS - 1] != losses[0][0]); /* the parameters did move */
        for (int t = 1; t < 3; t++) {
            if (memcmp(losses[0], losses[t], sizeof losses[0]) != 0)
                fail_msg("%s: the losses on %d threads differ from 1 thread's",
                         mn_layout_name((mn_layout)layout), t + 1);
            assert_int_equal(n_params[t], n_params[0]);
            assert_int_equal(n_state[t], n_state[0]);
            if (memcmp(params[0], params[t], n_params[0] * sizeof(float)) != 0 ||
                memcmp(bn[0], bn[t], n_state[0] * sizeof(float)) != 0)
                fail_msg("%s: the parameters after training on %d threads differ from 1 "
                         "thread's", mn_layout_name((mn_layout)layout), t + 1);
        }
        for (int t = 0; t < 3; t++) {
            free(params[t]);
            free(bn[t]);
        }
    }
}

/* Four classes: mean brightness levels under per-pixel noise, so that the class survives
 * global average pooling and a correct trainer separates them within a few epochs. */
static void make_textures(uint8_t *images, int32_t *labels, size_t n, uint64_t seed) {
    mn_rng r;
    mn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int cls = (int)mn_rng_below(&r, 4);
        int phase = (int)mn_rng_below(&r, 2);
        labels[i] = cls;
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 12; x++) {
                int v = 30 + 50 * cls + (int)mn_rng_below(&r, 40) + 8 * ((x + y + phase) % 2);
                images[i * 144 + (size_t)y * 12 + x] = (uint8_t)v;
            }
    }
}

static void training_learns_and_weights_round_trip(void **state) {
    (void)state;
    for (int b = 0; b < n_backends; b++) {
        mn_backend *be = make_backend(b);
        const size_t n_train = 2000, n_test = 200;
        uint8_t *images = malloc((n_train + n_test) * 144);
        int32_t *labels = malloc((n_train + n_test) * sizeof(int32_t));
        make_textures(images, labels, n_train + n_test, 3);
        mn_samples train = {images, labels, n_train};
        mn_samples test = {images + n_train * 144, labels + n_train, n_test};
        mn_arch arch;
        assert_int_equal(mn_arch_build(&arch, 4, 1, MN_LAYOUT_NANONAS, (mn_shape){12, 12, 1}, 4), MN_OK);
        mn_net_options no;
        mn_net_options_default(&no);
        /* batch 8: ~700 steps, enough for BN's 0.99-momentum moving statistics to settle */
        no.batch = 8;
        mn_net *net;
        assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
        assert_int_equal(mn_net_init(net, 1), MN_OK);
        mn_train_options to;
        mn_train_options_default(&to);
        to.epochs = 4;
        to.adam.lr = 1e-2f;
        mn_train_result res;
        assert_int_equal(mn_train_run(net, &train, &test, &to, &res), MN_OK);
        assert_int_equal(res.val_count, 600);
        assert_int_equal(res.train_count, 1400);
        assert_int_equal(res.epochs_run, 4);
        if (!(res.best_val_acc > 0.9 && res.test_acc > 0.9))
            fail_msg("%s: val acc %.3f, test acc %.3f after 4 epochs", backend_names[b],
                     res.best_val_acc, res.test_acc);
        assert_true(res.best_val_acc >= res.val_acc[res.best_epoch - 1]);

        /* Save, load into a fresh net: identical predictions, bit for bit. */
        char *dir = mn_test_tmpdir("net");
        char *path = mn_test_path(dir, "w.h5");
        assert_int_equal(mn_weights_save(path, net), MN_OK);
        mn_arch read;
        assert_int_equal(mn_weights_read_arch(path, &read), MN_OK);
        assert_int_equal(read.k, 4);
        assert_int_equal(read.cells, 1);
        assert_int_equal(read.classes, 4);
        mn_net *net2;
        assert_int_equal(mn_net_create(&read, be, &no, &net2), MN_OK);
        assert_int_equal(mn_net_init(net2, 999), MN_OK);
        assert_int_equal(mn_weights_load(path, net2), MN_OK);
        float p1[8 * 4], p2[8 * 4];
        assert_int_equal(mn_net_evaluate(net, test.images, NULL, 7, NULL, NULL, p1), MN_OK);
        assert_int_equal(mn_net_evaluate(net2, test.images, NULL, 7, NULL, NULL, p2), MN_OK);
        assert_memory_equal(p1, p2, 7 * 4 * sizeof(float));
        /* The saved test accuracy is reproduced by evaluation. */
        double acc;
        assert_int_equal(mn_train_evaluate(net2, &test, NULL, n_test, NULL, NULL, MN_PHASE_TEST, &acc, NULL),
                         MN_OK);
        assert_true(fabs(acc - res.test_acc) < 1e-12);

        /* A different architecture is refused with both descriptions in the message. */
        mn_arch other;
        assert_int_equal(mn_arch_build(&other, 5, 1, MN_LAYOUT_NANONAS, (mn_shape){12, 12, 1}, 4), MN_OK);
        mn_net *net3;
        assert_int_equal(mn_net_create(&other, be, &no, &net3), MN_OK);
        assert_int_equal(mn_weights_load(path, net3), MN_ERR_INVALID_ARG);
        assert_non_null(strstr(mn_error_message(), "A(4,1)"));
        assert_non_null(strstr(mn_error_message(), "A(5,1)"));
        mn_net_destroy(net3);

        /* Not a weight file, and a missing one: clear errors naming the file. */
        char *junk = mn_test_path(dir, "junk.h5");
        FILE *f = fopen(junk, "w");
        fputs("not hdf5", f);
        fclose(f);
        assert_int_equal(mn_weights_load(junk, net2), MN_ERR_FORMAT);
        assert_non_null(strstr(mn_error_message(), junk));
        assert_int_equal(mn_weights_read_arch("/nonexistent/w.h5", &read), MN_ERR_IO);
        assert_non_null(strstr(mn_error_message(), "/nonexistent/w.h5"));
        /* No temporary file is left behind by a successful save. */
        char *tmp = mn_test_path(dir, "w.h5.tmp");
        assert_int_not_equal(access(tmp, F_OK), 0);
        /* A save into a missing directory fails and leaves nothing. */
        assert_int_equal(mn_weights_save("/nonexistent/dir/w.h5", net), MN_ERR_IO);

        unlink(junk);
        unlink(path);
        rmdir(dir);
        free(tmp);
        free(junk);
        free(path);
        free(dir);
        mn_net_destroy(net2);
        mn_net_destroy(net);
        free(images);
        free(labels);
        mn_backend_destroy(be);
    }
}

/* A backend whose device is tiny: the real backend's ops with a mem_info that reports
 * 8 MiB of device memory, 0.5 MiB of it in use, and (second case) a 1 MiB largest
 * allocation on an unknown capacity. */
static int g_tiny_case;
static void tiny_mem_info(mn_backend *be, mn_backend_mem *out) {
    (void)be;
    memset(out, 0, sizeof *out);
    if (g_tiny_case == 0) {
        out->device_total_bytes = 8u << 20;
        out->allocated_bytes = 512u << 10;
    } else {
        out->max_alloc_bytes = 1u << 20;
    }
}

static void budget_is_refused_before_allocating(void **state) {
    (void)state;
    for (int b = 0; b < n_backends; b++) {
        mn_backend *be = make_backend(b);
        mn_backend_ops fake_ops = *be->ops;
        fake_ops.mem_info = tiny_mem_info;
        mn_backend fake = *be;
        fake.ops = &fake_ops;
        mn_arch arch;
        assert_int_equal(mn_arch_build(&arch, 8, 3, MN_LAYOUT_NANONAS, (mn_shape){28, 28, 1}, 10),
                         MN_OK);
        mn_net_options no;
        mn_net_options_default(&no);
        no.batch = 64;
        mn_net_plan plan;
        assert_int_equal(mn_net_plan_compute(&arch, be, no.batch, &plan), MN_OK);
        size_t largest = 0;
        const size_t parts[] = {plan.train_bytes, plan.state_bytes, plan.act_bytes,
                                plan.grad_bytes,  plan.io_bytes,    plan.workspace_bytes};
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            if (parts[i] > largest) largest = parts[i];
        assert_true(plan.device_bytes > (8u << 20) && largest > (1u << 20));
        mn_backend_mem before, after;
        mn_backend_mem_info(be, &before);
        for (g_tiny_case = 0; g_tiny_case < 2; g_tiny_case++) {
            mn_net *net = (mn_net *)&no; /* must be reset to NULL */
            mn_error_clear();
            assert_int_equal(mn_net_create(&arch, &fake, &no, &net), MN_ERR_BUDGET);
            assert_null(net);
            const char *msg = mn_error_message();
            char need[64];
            snprintf(need, sizeof need, "%.1f MiB",
                     (double)(g_tiny_case ? largest : plan.device_bytes) / (1024.0 * 1024.0));
            const char *have = g_tiny_case ? "1.0 MiB" : "8.0 MiB (0.5 MiB in use)";
            if (!strstr(msg, need) || !strstr(msg, have) || !strstr(msg, "A(8,3)") ||
                !strstr(msg, "batch 64"))
                fail_msg("%s: budget message '%s' lacks '%s' or '%s'", backend_names[b], msg,
                         need, have);
        }
        /* nothing was allocated on the real backend */
        mn_backend_mem_info(be, &after);
        assert_int_equal(after.allocated_bytes, before.allocated_bytes);
        mn_backend_destroy(be);
    }
}


/* backend.h: a conv workspace planned for a full batch serves every smaller batch. */
static void workspace_never_grows_as_the_batch_shrinks(void **state) {
    (void)state;
    static const mn_conv_shape shapes[] = {{64, 28, 28, 1, 3},  {64, 14, 14, 3, 6},
                                           {128, 32, 32, 3, 8}, {128, 16, 16, 8, 16},
                                           {64, 50, 50, 3, 8},  {40, 7, 7, 24, 30}};
    for (int b = 0; b < n_backends; b++)
        for (int threads = 1; threads <= 3; threads++) {
            mn_backend_options o = {threads, 0};
            mn_backend *be = NULL;
            assert_int_equal(mn_backend_create(backend_names[b], &o, &be), MN_OK);
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
                mn_conv_shape full = shapes[i];
                size_t planned = mn_backend_conv3x3_workspace_bytes(be, &full);
                for (int n = 1; n < full.n; n++) {
                    mn_conv_shape part = full;
                    part.n = n;
                    size_t need = mn_backend_conv3x3_workspace_bytes(be, &part);
                    if (need > planned)
                        fail_msg("%s, %d threads, h=w=%d c=%d k=%d: batch %d needs %zu bytes, "
                                 "batch %d planned %zu", backend_names[b], threads, full.h, full.c,
                                 full.k, n, need, full.n, planned);
                }
            }
            mn_backend_destroy(be);
        }
}

/* Every partial batch trains through a net planned for the full batch (the case that
 * failed: A(3,3) on 28x28x1, one thread, a last batch of 12 of 16). */
static void partial_batches_train(void **state) {
    (void)state;
    static const struct { int k, cells; mn_shape in; int batch; } cases[] = {
        {3, 3, {28, 28, 1}, 16}, {8, 2, {32, 32, 3}, 24}};
    for (int b = 0; b < n_backends; b++)
        for (int threads = 1; threads <= 3; threads++) {
            mn_backend_options o = {threads, 0};
            mn_backend *be = NULL;
            assert_int_equal(mn_backend_create(backend_names[b], &o, &be), MN_OK);
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                mn_arch arch;
                assert_int_equal(mn_arch_build(&arch, cases[i].k, cases[i].cells, MN_LAYOUT_NANONAS,
                                               cases[i].in, 10), MN_OK);
                mn_net_options no;
                mn_net_options_default(&no);
                no.batch = cases[i].batch;
                mn_net *net;
                assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
                assert_int_equal(mn_net_init(net, 1), MN_OK);
                size_t image = mn_shape_count(cases[i].in);
                uint8_t *images = malloc((size_t)no.batch * image);
                int32_t labels[64];
                random_batch(images, labels, (size_t)no.batch, image, 10, 9);
                for (int n = 1; n <= no.batch; n++) {
                    double loss;
                    if (mn_net_forward_backward(net, images, labels, n, 1, &loss) != MN_OK)
                        fail_msg("%s, %d threads, A(%d,%d), batch %d of %d: %s", backend_names[b],
                                 threads, cases[i].k, cases[i].cells, n, no.batch, mn_error_message());
                }
                free(images);
                mn_net_destroy(net);
            }
            mn_backend_destroy(be);
        }
}

/* Each layer's slice of the parameter arrays: the offsets step by the arch's counts, and a
 * batch norm's state offset finds its moving mean (0) and variance (1) after init. */
static void parameter_offsets(void **state) {
    (void)state;
    mn_backend *be = make_backend(0);
    mn_arch arch;
    assert_int_equal(mn_arch_build(&arch, 3, 2, MN_LAYOUT_NANONAS, (mn_shape){12, 12, 2}, 4), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 2;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 5), MN_OK);
    float *trainable = malloc(mn_arch_trainable_params(&arch) * sizeof *trainable);
    float *st = malloc(mn_arch_state_params(&arch) * sizeof *st);
    assert_int_equal(mn_net_get_params(net, trainable, st), MN_OK);
    size_t p = 0, s = 0;
    int bn = 0;
    for (int i = 0; i < arch.n_layers; i++) {
        const mn_layer *l = &arch.layers[i];
        assert_int_equal(mn_net_param_offset(net, i), p);
        assert_int_equal(mn_net_state_offset(net, i), s);
        if (l->kind == MN_LAYER_BATCHNORM) {
            for (int c = 0; c < l->out.c; c++) {
                assert_float_equal(st[s + (size_t)c], 0.0f, 0);
                assert_float_equal(st[s + (size_t)l->out.c + (size_t)c], 1.0f, 0);
                assert_float_equal(trainable[p + (size_t)c], 1.0f, 0); /* gamma */
            }
            bn++;
        }
        p += l->n_trainable;
        s += l->n_state;
    }
    assert_true(bn >= 3);
    assert_int_equal(p, mn_arch_trainable_params(&arch));
    assert_int_equal(s, mn_arch_state_params(&arch));
    free(trainable);
    free(st);
    mn_net_destroy(net);
    mn_backend_destroy(be);
}

static void bad_batches_are_refused(void **state) {
    (void)state;
    mn_backend *be = make_backend(0);
    mn_arch arch;
    assert_int_equal(mn_arch_build(&arch, 2, 1, MN_LAYOUT_NANONAS, (mn_shape){8, 8, 1}, 3), MN_OK);
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 4;
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 1), MN_OK);
    uint8_t images[5 * 64] = {0};
    int32_t labels[5] = {0, 1, 2, 3, 0};
    double loss;
    int correct;
    mn_adam adam = {1e-3f, 0.9f, 0.999f, 1e-7f};
    assert_int_equal(mn_net_train_step(net, images, labels, 5, &adam, 1, &loss, &correct),
                     MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "planned for 4"));
    /* label 3 with 3 classes */
    assert_int_equal(mn_net_train_step(net, images, labels + 1, 4, &adam, 1, &loss, &correct),
                     MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "sample 2"));
    mn_net_destroy(net);
    mn_backend_destroy(be);
}

/* The opencl backend's compiled-program cache (MN_OCL_CACHE_DIR pointed at a fresh
 * directory): the first backend writes an entry, a truncated or garbage entry falls back
 * to compiling and is rewritten, and then CLBlast's indirect GEMM path (the one that needs
 * a temp buffer, forced with MN_OCL_GEMM_INDIRECT=1) keeps the plan equal to what the net
 * allocates. Last in the suite: the GEMM override lasts for the rest of the process. */
static void opencl_cache_and_gemm_temp_buffers(void **state) {
    (void)state;
    int have = 0;
    for (int b = 0; b < n_backends; b++) have |= strcmp(backend_names[b], "opencl") == 0;
    if (!have) skip();
    char *dir = mn_test_tmpdir("oclcache");
    char *entry = NULL;
    assert_int_equal(setenv("MN_OCL_CACHE_DIR", dir, 1), 0);
    mn_backend_options o = {2, 0};
    mn_backend *be = NULL;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(mn_backend_create("opencl", &o, &be), MN_OK);
        mn_backend_destroy(be);
        /* exactly one entry, ocl-*.bin */
        char cmd[512];
        snprintf(cmd, sizeof cmd, "ls %s/ocl-*.bin 2>/dev/null", dir);
        FILE *ls = popen(cmd, "r");
        assert_non_null(ls);
        char line[512] = "";
        assert_non_null(fgets(line, sizeof line, ls));
        pclose(ls);
        line[strcspn(line, "\n")] = '\0';
        free(entry);
        entry = strdup(line);
        FILE *f = fopen(entry, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        assert_true(size > 64); /* rewritten whole after each corruption */
        f = fopen(entry, round == 0 ? "r+b" : "wb");
        assert_non_null(f);
        if (round == 0) {
            assert_int_equal(ftruncate(fileno(f), size / 2), 0); /* a short file */
        } else {
            fputs("MNOC not a program binary at all", f); /* garbage */
        }
        fclose(f);
    }
    unsetenv("MN_OCL_CACHE_DIR");
    unlink(entry);
    rmdir(dir);
    free(entry);
    free(dir);

    mn_arch arch;
    assert_int_equal(mn_arch_build(&arch, 4, 2, MN_LAYOUT_NANONAS, (mn_shape){16, 16, 3}, 4), MN_OK);
    mn_net_plan direct, plan;
    assert_int_equal(mn_backend_create("opencl", &o, &be), MN_OK);
    assert_int_equal(mn_net_plan_compute(&arch, be, 8, &direct), MN_OK);
    mn_backend_destroy(be);
    assert_int_equal(setenv("MN_OCL_GEMM_INDIRECT", "1", 1), 0);
    assert_int_equal(mn_backend_create("opencl", &o, &be), MN_OK);
    unsetenv("MN_OCL_GEMM_INDIRECT");
    mn_net_options no;
    mn_net_options_default(&no);
    no.batch = 8;
    assert_int_equal(mn_net_plan_compute(&arch, be, 8, &plan), MN_OK);
    /* the workspace now holds CLBlast's temp buffer (these small GEMMs run direct, without
     * one, unless forced) */
    assert_true(plan.workspace_bytes > direct.workspace_bytes);
    mn_net *net;
    assert_int_equal(mn_net_create(&arch, be, &no, &net), MN_OK);
    assert_int_equal(mn_net_init(net, 3), MN_OK);
    uint8_t images[8 * 16 * 16 * 3];
    int32_t labels[8];
    random_batch(images, labels, 8, 16 * 16 * 3, 4, 5);
    mn_adam adam = {1e-2f, 0.9f, 0.999f, 1e-7f};
    double loss[2];
    int correct;
    for (int i = 0; i < 2; i++)
        assert_int_equal(mn_net_train_step(net, images, labels, 8, &adam, 1, &loss[i], &correct),
                         MN_OK);
    assert_true(isfinite(loss[0]) && isfinite(loss[1]) && loss[1] != loss[0]);
    mn_backend_mem mem;
    mn_backend_mem_info(be, &mem);
    assert_int_equal(mem.allocated_bytes, plan.device_bytes);
    mn_net_destroy(net);
    mn_backend_destroy(be);
}

int main(void) {
    list_backends();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpu_backends_present),
        cmocka_unit_test(plan_equals_allocation),
        cmocka_unit_test(whole_network_gradient_check),
        cmocka_unit_test(same_seed_same_bits),
        cmocka_unit_test(thread_count_gives_the_same_bits),
        cmocka_unit_test(training_learns_and_weights_round_trip),
        cmocka_unit_test(workspace_never_grows_as_the_batch_shrinks),
        cmocka_unit_test(partial_batches_train),
        cmocka_unit_test(parameter_offsets),
        cmocka_unit_test(bad_batches_are_refused),
        cmocka_unit_test(budget_is_refused_before_allocating),
        cmocka_unit_test(opencl_cache_and_gemm_temp_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
