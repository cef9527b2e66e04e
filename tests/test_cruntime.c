/* The C runtime: the generated model.c, compiled by the host's C compiler as strict C99
 * (with AddressSanitizer and UBSan), gives the int8 interpreter's bytes on every test
 * image for every layout and IO type; the schedule streams the stem and fuses the pools;
 * the RAM figure is the plan's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcunas/cost.h"
#include "mcunas/cruntime.h"
#include "mcunas/qgraph.h"
#include "testassert.h"
#include "testutil.h"

/* Reads n images from argv[1], writes the outputs to argv[2]. */
static const char *host_main =
    "#include <stdio.h>\n#include <stdlib.h>\n#include \"model.h\"\n"
    "int main(int argc, char **argv) {\n"
    "    static uint8_t in[MCUNAS_MODEL_INPUT_BYTES], out[MCUNAS_MODEL_OUTPUT_BYTES];\n"
    "    FILE *fi, *fo;\n"
    "    if (argc != 3 || !(fi = fopen(argv[1], \"rb\")) || !(fo = fopen(argv[2], \"wb\"))) return 2;\n"
    "    while (fread(in, 1, sizeof in, fi) == sizeof in) {\n"
    "        if (mcunas_model_invoke(in, out)) return 3;\n"
    "        fwrite(out, 1, sizeof out, fo);\n"
    "    }\n"
    "    if (mcunas_model_invoke(NULL, out) != -1) return 4;\n"
    "    fclose(fi);\n    return fclose(fo) ? 5 : 0;\n}\n";

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Generates, compiles and runs the model on n images; compares with the interpreter. */
static void check_model(int k, int cells, mn_layout layout, int h, int w, int c, int classes, int io_int8) {
    const int n = 12;
    uint8_t *images;
    mn_qgraph *g = mn_test_random_qgraph(k, cells, layout, h, w, c, classes, io_int8, &images, n, 31 + (uint64_t)k);
    assert_non_null(g);
    size_t img = (size_t)h * w * c, nout = g->t[g->output].bytes;
    if (io_int8)
        for (size_t i = 0; i < img * n; i++) images[i] ^= 0x80; /* pixel - 128 */
    char *dir = mn_test_tmpdir("cruntime");
    assert_non_null(dir);
    assert_status(mn_cruntime_generate(g, dir), MN_OK);
    char *mainc = mn_test_path(dir, "main.c"), *inp = mn_test_path(dir, "in.bin"), *outp = mn_test_path(dir, "out.bin");
    write_bytes(mainc, host_main, strlen(host_main));
    write_bytes(inp, images, img * n);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && cc -std=c99 -pedantic -Wall -Wextra -Wconversion -Wno-sign-conversion -Werror -O1 "
             "-fsanitize=address,undefined -fno-sanitize-recover=all model.c main.c -o model_host && "
             "./model_host in.bin out.bin",
             dir);
    if (system(cmd) != 0) fail_msg("A(%d,%d) %s %dx%dx%d io_int8=%d: building or running the model failed", k, cells,
                                   mn_layout_name(layout), h, w, c, io_int8);
    uint8_t *got = malloc(nout * n), ref[64];
    FILE *f = fopen(outp, "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, nout * n + 1, f), nout * n);
    fclose(f);
    mn_qinterp *it;
    assert_status(mn_qinterp_create(g, &it), MN_OK);
    for (int i = 0; i < n; i++) {
        assert_status(mn_qinterp_run(it, images + i * img, ref), MN_OK);
        if (memcmp(ref, got + i * nout, nout))
            fail_msg("A(%d,%d) %s %dx%dx%d io_int8=%d image %d: the C runtime's output differs from the interpreter's",
                     k, cells, mn_layout_name(layout), h, w, c, io_int8, i);
    }
    mn_qinterp_free(it);
    free(got);
    free(mainc);
    free(inp);
    free(outp);
    free(dir);
    free(images);
    mn_qgraph_free(g);
}

static void generated_equals_interpreter(void **state) {
    (void)state;
    check_model(4, 2, MN_LAYOUT_NANONAS, 16, 16, 3, 5, 0);
    check_model(3, 2, MN_LAYOUT_COLABNAS, 16, 16, 1, 5, 1);
    check_model(4, 3, MN_LAYOUT_CONVBN, 20, 20, 3, 5, 0);
    check_model(3, 3, MN_LAYOUT_NANONAS, 23, 17, 3, 2, 1); /* odd sizes: pools drop a row/column */
    check_model(2, 0, MN_LAYOUT_NANONAS, 9, 7, 2, 3, 0);   /* no cell: the stem feeds the GAP */
    check_model(6, 4, MN_LAYOUT_NANONAS, 50, 50, 3, 2, 0); /* NanoNAS VWW A(6,4) */
}

/* The schedule: the stem streamed from the input, every conv fused with its pool, BN in
 * place, the output written to the caller's buffer; the arena never holds a full-resolution
 * conv output or the int8 copy of the input. */
static void schedule_shape(void **state) {
    (void)state;
    mn_arch a;
    assert_status(mn_arch_build(&a, 6, 4, MN_LAYOUT_NANONAS, (mn_shape){50, 50, 3}, 2), MN_OK);
    mn_qgraph *g;
    assert_status(mn_qgraph_build(&a, 0, &g), MN_OK);
    mn_cplan p;
    assert_status(mn_cplan_build(g, &p), MN_OK);
    /* QUANTIZE, DW (row stage), 5 convs, 4 BNs (in place), FC, SOFTMAX, QUANTIZE */
    assert_int_equal(p.n_steps, 2 + 5 + 4 + 3);
    assert_true(p.steps[0].stage && p.steps[1].stage);
    assert_int_equal(p.steps[0].src, MN_CPLAN_INPUT);
    assert_int_equal(p.steps[2].kind, MN_CSTEP_CONV);
    assert_int_equal(p.steps[2].pre, 2);
    assert_int_equal(p.steps[2].pool, MN_CPOOL_MAX2);
    /* ring of 4 input rows of 50 x 3, one pixel's 6 outputs */
    assert_int_equal(p.steps[2].aux_bytes, 4 * 50 * 3 + 8);
    int convs = 0, gap = 0;
    for (int i = 0; i < p.n_steps; i++) {
        const mn_cstep *s = &p.steps[i];
        if (s->kind == MN_CSTEP_CONV) {
            convs++;
            assert_int_not_equal(s->pool, MN_CPOOL_NONE);
            gap += s->pool == MN_CPOOL_GAP;
        }
        if (s->kind == MN_CSTEP_DW && !s->stage) assert_int_equal(s->src, s->dst); /* in place */
    }
    assert_int_equal(convs, 5);
    assert_int_equal(gap, 1);
    assert_int_equal(p.steps[p.n_steps - 1].dst, MN_CPLAN_OUTPUT);
    /* The stem needs its pooled map (25x25x6) and its scratch; the peak is cell 1's conv:
     * its input (25x25x6, 4-byte aligned), pooled output (12x12x12) and one pixel's 12
     * outputs. Nothing full-resolution. */
    assert_int_equal(p.arena_bytes, 3752 + 12 * 12 * 12 + 12);
    assert_int_equal(p.input_bytes, 50 * 50 * 3);
    assert_int_equal(p.output_bytes, 2);
    /* Versus TFLM: RAM (arena + caller's buffers + stack) at most 60% of TFLM's arena. */
    mn_arena ar;
    assert_status(mn_arena_compute(g, MN_ABI_ARM32, &ar), MN_OK);
    mn_cruntime_size sz;
    assert_status(mn_cruntime_size_compute(g, MN_CORE_M4, &sz), MN_OK);
    assert_int_equal(sz.arena_bytes, p.arena_bytes);
    assert_int_equal(sz.ram_bytes, sz.arena_bytes + sz.io_bytes + sz.stack_bytes);
    if (sz.ram_bytes * 10 > ar.total * 6) fail_msg("C runtime RAM %zu B > 60%% of TFLM's %zu B", sz.ram_bytes, ar.total);
    mn_cplan_free(&p);
    mn_qgraph_free(g);
}

/* ---- on emulated Cortex-M cores (tests/firmware/) ---- */
typedef struct fw_figures {
    size_t text, rodata, data, bss, stack;
    unsigned long ticks;
} fw_figures;

static char *firmware_dir(void) { /* tests/firmware next to this file */
    const char *self = __FILE__, *slash = strrchr(self, '/');
    assert_non_null(slash);
    size_t n = (size_t)(slash - self);
    char *d = malloc(n + 16);
    memcpy(d, self, n);
    strcpy(d + n, "/firmware");
    return d;
}

static size_t section_size(const char *path, const char *name) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256], sec[64];
    unsigned long size;
    size_t found = (size_t)-1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %lu", sec, &size) == 2 && !strcmp(sec, name)) found = size;
    fclose(f);
    if (found == (size_t)-1) fail_msg("%s: no section %s", path, name);
    return found;
}

/* Builds and runs the model in `dir` (model.c, images.h) on `core`; checks every output
 * byte against `ref` (n images) and returns the measured figures. */
static fw_figures run_firmware(const char *dir, const char *core, const uint8_t *ref, int n, size_t nout) {
    char *fw = firmware_dir(), cmd[4096], path[2048];
    snprintf(cmd, sizeof cmd, "%s/build_run.sh %s %s", fw, core, dir);
    if (system(cmd) != 0) fail_msg("%s: building or running the firmware failed (%s)", core, cmd);
    fw_figures r = {0};
    snprintf(path, sizeof path, "%s/run-%s.txt", dir, core);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        int i;
        char hex[4000];
        if (sscanf(line, "OUT %d %3999s", &i, hex) == 2) {
            assert_true(i >= 0 && i < n);
            assert_int_equal(strlen(hex), 2 * nout);
            for (size_t k = 0; k < nout; k++) {
                unsigned v;
                sscanf(hex + 2 * k, "%2x", &v);
                if (v != ref[(size_t)i * nout + k])
                    fail_msg("%s image %d byte %zu: firmware %u, interpreter %u", core, i, k, v, ref[(size_t)i * nout + k]);
            }
            seen++;
        }
        sscanf(line, "TICKS %lu", &r.ticks);
        sscanf(line, "STACK %zu", &r.stack);
    }
    fclose(f);
    assert_int_equal(seen, n);
    assert_true(r.ticks > 0 && r.stack > 0);
    snprintf(path, sizeof path, "%s/size-%s.txt", dir, core);
    r.text = section_size(path, ".text");
    r.rodata = section_size(path, ".rodata");
    r.data = section_size(path, ".data");
    r.bss = section_size(path, ".bss");
    free(fw);
    return r;
}

/* Every output byte of the firmware on the emulated Cortex-M4 and M3 equals the
 * interpreter's; flash (.text + .rodata + .data) is within 1% of the estimate, RAM (.data +
 * .bss + stack high-water mark) at most the estimate and within 5% of it; for NanoNAS's VWW
 * A(6,4) the measured RAM is at most 60% of TFLM's 32-bit arena estimate. */
static void firmware_on_cortex_m(void **state) {
    (void)state;
    static const struct { int k, cells; mn_layout l; int h, w, c, classes, io; } cases[] = {
        {4, 2, MN_LAYOUT_NANONAS, 16, 16, 3, 5, 0},
        {3, 2, MN_LAYOUT_COLABNAS, 16, 16, 1, 10, 1},
        {4, 3, MN_LAYOUT_CONVBN, 20, 20, 3, 5, 0},
        {6, 4, MN_LAYOUT_NANONAS, 50, 50, 3, 2, 0},
    };
    static const struct { const char *name; mn_core core; } cores[] = {{"cortex-m4", MN_CORE_M4}, {"cortex-m3", MN_CORE_M3}};
    const int n = 3;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        uint8_t *images;
        mn_qgraph *g = mn_test_random_qgraph(cases[ci].k, cases[ci].cells, cases[ci].l, cases[ci].h, cases[ci].w,
                                             cases[ci].c, cases[ci].classes, cases[ci].io, &images, n, 77);
        assert_non_null(g);
        size_t img = g->t[g->input].bytes, nout = g->t[g->output].bytes;
        if (cases[ci].io)
            for (size_t i = 0; i < img * n; i++) images[i] ^= 0x80;
        uint8_t *ref = malloc(nout * n);
        mn_qinterp *it;
        assert_status(mn_qinterp_create(g, &it), MN_OK);
        for (int i = 0; i < n; i++) assert_status(mn_qinterp_run(it, images + i * img, ref + i * nout), MN_OK);
        mn_qinterp_free(it);
        char *dir = mn_test_tmpdir("firmware");
        assert_non_null(dir);
        assert_status(mn_cruntime_generate(g, dir), MN_OK);
        char *ih = mn_test_path(dir, "images.h");
        FILE *f = fopen(ih, "w");
        assert_non_null(f);
        fprintf(f, "#define MN_FW_N_IMAGES %d\nstatic const uint8_t mn_fw_images[%d][%zu] = {\n", n, n, img);
        for (int i = 0; i < n; i++) {
            fprintf(f, "{");
            for (size_t k = 0; k < img; k++) fprintf(f, "%u,%s", images[i * img + k], k % 24 == 23 ? "\n" : "");
            fprintf(f, "},\n");
        }
        fprintf(f, "};\n");
        assert_int_equal(fclose(f), 0);
        for (size_t co = 0; co < sizeof cores / sizeof cores[0]; co++) {
            fw_figures m = run_firmware(dir, cores[co].name, ref, n, nout);
            mn_cruntime_size e;
            assert_status(mn_cruntime_size_compute(g, cores[co].core, &e), MN_OK);
            size_t flash = m.text + m.rodata + m.data, ram = m.data + m.bss + m.stack;
            double cycles = mn_latency_cycles(g, cores[co].core, &(mn_latency_model){MN_KERNELS_REFERENCE, 1.0});
            print_message("A(%d,%d) %s %dx%dx%d %s: flash %zu (estimate %zu), RAM %zu = bss %zu + stack %zu "
                          "(estimate %zu), %lu instructions (estimate %.0f; TFLM reference latency model %.0f cycles)\n",
                          cases[ci].k, cases[ci].cells, mn_layout_name(cases[ci].l), cases[ci].h, cases[ci].w,
                          cases[ci].c, cores[co].name, flash, e.flash_bytes, ram, m.bss, m.stack, e.ram_bytes,
                          m.ticks * 40, e.instructions, cycles);
            if (!(flash * 100 <= e.flash_bytes * 101 && e.flash_bytes * 100 <= flash * 101))
                fail_msg("%s: flash %zu B not within 1%% of the estimate %zu B", cores[co].name, flash, e.flash_bytes);
            if (!(ram <= e.ram_bytes && e.ram_bytes * 100 <= ram * 105))
                fail_msg("%s: RAM %zu B: the estimate %zu B must bound it within 5%%", cores[co].name, ram, e.ram_bytes);
            /* SysTick runs at QEMU's 25 MHz, one instruction a nanosecond: 40 per tick. */
            double insn = (double)m.ticks * 40;
            if (fabs(insn - e.instructions) > 0.05 * insn)
                fail_msg("%s: %.0f instructions, estimate %.0f: not within 5%%", cores[co].name, insn, e.instructions);
            if (cases[ci].k == 6 && cases[ci].h == 50) {
                mn_arena ar;
                assert_status(mn_arena_compute(g, MN_ABI_ARM32, &ar), MN_OK);
                if (ram * 10 > ar.total * 6)
                    fail_msg("%s: A(6,4) 50x50x3 RAM %zu B > 60%% of TFLM's arena %zu B", cores[co].name, ram, ar.total);
            }
        }
        free(ih);
        free(dir);
        free(ref);
        free(images);
        mn_qgraph_free(g);
    }
}

/* The CLI end to end: a short training, `mcunas export --c-runtime DIR` (no .tflite), the
 * generated code on the exported test images equals the interpreter's dumped outputs;
 * `mcunas estimate --runtime c` reports the plan's figures; `mcunas search --runtime c`
 * delivers a model.c that compiles. */
static void cli_export_and_estimate(void **state) {
    (void)state;
    const char *bin = mn_test_bin();
    assert_non_null(bin);
    char *dir = mn_test_tmpdir("cruntime-cli"), *data = mn_test_path(dir, "d.h5"), *w = mn_test_path(dir, "w.h5");
    assert_true(mn_test_write_brightness_dataset(data, 12, 12, 200, 30, 9));
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "%s train --data %s --k 3 --cells 2 --epochs 1 --batch 16 --threads 1 --quiet --save %s > /dev/null && "
             "%s export --weights %s --data %s --c-runtime %s --calib 50 --test-limit 20 --threads 1 "
             "--dump-inputs %s/in.bin --dump-outputs %s/ref.bin > /dev/null",
             bin, data, w, bin, w, data, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    char *mainc = mn_test_path(dir, "main.c");
    write_bytes(mainc, host_main, strlen(host_main));
    snprintf(cmd, sizeof cmd,
             "cd %s && cc -std=c99 -pedantic -Wall -Wextra -Werror -O1 model.c main.c -o model_host && "
             "./model_host in.bin out.bin && cmp out.bin ref.bin",
             dir);
    if (system(cmd) != 0) fail_msg("the exported C runtime differs from the interpreter (%s)", dir);
    /* no -o and no --c-runtime: a usage error */
    snprintf(cmd, sizeof cmd, "%s export --weights %s --data %s 2> /dev/null", bin, w, data);
    assert_int_not_equal(system(cmd), 0);

    snprintf(cmd, sizeof cmd, "%s estimate --k 6 --cells 4 --target stm32l412kbu3 --runtime c --json > %s/e.json", bin, dir);
    assert_int_equal(system(cmd), 0);
    char *ej = mn_test_path(dir, "e.json");
    FILE *f = fopen(ej, "r");
    assert_non_null(f);
    char js[4096];
    size_t n = fread(js, 1, sizeof js - 1, f);
    js[n] = 0;
    fclose(f);
    mn_arch a;
    assert_status(mn_arch_build(&a, 6, 4, MN_LAYOUT_NANONAS, (mn_shape){50, 50, 3}, 2), MN_OK);
    mn_qgraph *g;
    assert_status(mn_qgraph_build(&a, 0, &g), MN_OK);
    mn_cruntime_size sz;
    assert_status(mn_cruntime_size_compute(g, MN_CORE_M4, &sz), MN_OK);
    char want[128];
    snprintf(want, sizeof want, "\"flash_bytes\":%zu,\"ram_bytes\":%zu,", sz.flash_bytes, sz.ram_bytes);
    if (!strstr(js, want) || !strstr(js, "\"runtime\":\"c\"")) fail_msg("estimate --runtime c: %s lacks %s", js, want);
    mn_qgraph_free(g);

    /* search --runtime c: the winner's model.c / model.h next to the .tflite, and a compile */
    snprintf(cmd, sizeof cmd,
             "%s search --data %s --target stm32l010rbt6 --out %s/search --runtime c --k-max 3 --epochs 1 "
             "--final-epochs 1 --threads 1 --quiet && grep -q '\"runtime\":\"c\"' %s/search/journal.jsonl && "
             "cd %s/search && cp ../main.c . && cc -std=c99 -pedantic -Wall -Wextra -Werror model.c main.c -o m",
             bin, data, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    free(ej);
    free(mainc);
    free(w);
    free(data);
    free(dir);
}

static void refuses_unquantized(void **state) {
    (void)state;
    mn_arch a;
    assert_status(mn_arch_build(&a, 3, 1, MN_LAYOUT_NANONAS, (mn_shape){8, 8, 1}, 2), MN_OK);
    mn_qgraph *g;
    assert_status(mn_qgraph_build(&a, 0, &g), MN_OK);
    assert_int_equal(mn_cruntime_generate(g, "/tmp"), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "not quantized"));
    mn_qgraph_free(g);
    uint8_t *images;
    g = mn_test_random_qgraph(3, 1, MN_LAYOUT_NANONAS, 8, 8, 1, 2, 0, &images, 2, 5);
    assert_non_null(g);
    assert_int_equal(mn_cruntime_generate(g, "/nonexistent/dir"), MN_ERR_IO);
    assert_non_null(strstr(mn_error_message(), "/nonexistent/dir/model.h"));
    free(images);
    mn_qgraph_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(schedule_shape),
        cmocka_unit_test(refuses_unquantized),
        cmocka_unit_test(generated_equals_interpreter),
        cmocka_unit_test(firmware_on_cortex_m),
        cmocka_unit_test(cli_export_and_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
