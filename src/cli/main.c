/* mcunas: the command-line entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mcunas/backend.h"

static const mn_cli_command commands[] = {
    {"import", "import images (IDX, Fashion-MNIST, CIFAR, image folders, COCO as Visual Wake Words) into an HDF5 dataset cache",
     mn_cmd_import, 1},
    {"train", "train one A(k,c) network on a dataset and report its accuracy", mn_cmd_train, 1},
    {"info", "show a dataset cache: shapes, counts per class and split, a preview sheet",
     mn_cmd_info, 0},
    {"search", "search for the most accurate network that fits a target MCU", mn_cmd_search, 1},
    {"rank", "rank every feasible A(k,c) by zero-cost proxies (MONAS), without training", mn_cmd_rank, 1},
    {"bench", "measure training throughput (images/s, GFLOP/s) on a backend", mn_cmd_bench, 1},
    {"devices", "list OpenCL platforms and devices (memory, compute units) for --device", mn_cmd_devices, 0},
    {"targets", "list the MCU targets (built-in and --target-file)", mn_cmd_targets, 0},
    {"estimate", "MACC, flash, RAM, latency and feasibility of A(k,c) on a target", mn_cmd_estimate, 0},
    {"export", "int8-quantize trained weights into a .tflite (and C array)", mn_cmd_export, 1},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_version(void) {
    const mn_backend_desc *d;
    printf("mcunas %s\nbackends: %s\n", MN_VERSION, mn_backend_available());
    for (int i = 0; (d = mn_backend_describe(i)); i++)
        if (!d->built) printf("%s: not built (%s)\n", d->name, d->note);
}

static void print_help(void) {
    printf("mcunas %s: hardware-aware neural architecture search for microcontrollers\n\n"
           "Usage: mcunas <command> [options]\n       mcunas <command> --help\n\n"
           "Commands:\n",
           MN_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        printf("  %-8s %s\n", commands[i].name, commands[i].summary);
    printf("\nOptions:\n  -h, --help     this help\n  -V, --version  version and built-in backends\n\n"
           "Networks A(k,c): a 3x3 conv with k kernels and c cells (max pool, batch norm, 3x3 conv,\n"
           "ReLU), layouts nanonas (default), colabnas and convbn. See README.md.\n\n"
           "Exit codes: 0 success, 1 the work failed (message on stderr), 2 bad command line,\n"
           "130 interrupted (Ctrl-C, SIGTERM or SIGHUP: import, train, search, rank, bench and\n"
           "export stop cleanly and leave no partial output).\n\n"
           "Threads default to the CPUs the process may use (affinity mask, cgroup CPU quota);\n"
           "OMP_NUM_THREADS, OMP_WAIT_POLICY and GOMP_SPINCOUNT are honoured when set.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help();
        return MN_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        print_help();
        return MN_EXIT_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        print_version();
        return MN_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, commands[i].name)) {
            mn_cli_threads_init(argv);
            if (commands[i].stops) mn_cli_install_sigint();
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "mcunas: unknown command '%s'. Try 'mcunas --help'.\n", cmd);
    return MN_EXIT_USAGE;
}
