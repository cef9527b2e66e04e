/* The options that describe a candidate network and where it runs, parsed in one place so
 * every subcommand that takes them (train, estimate, export, rank, search) accepts the same
 * values and answers with the same messages. */
#ifndef MN_CLI_ARCH_H
#define MN_CLI_ARCH_H

#include <getopt.h>

#include "mcunas/arch.h"
#include "mcunas/target.h"

/* getopt values of the architecture options; a subcommand lists the ones it takes in its
 * option table with the MN_CLI_LONGOPT_* entries below. */
enum {
    MN_CLI_OPT_K = 0x1000, /* --k K           kernels of the first convolution, [1, 4096] */
    MN_CLI_OPT_CELLS,      /* --cells C       cells, [0, MN_ARCH_MAX_CELLS] */
    MN_CLI_OPT_LAYOUT,     /* --layout L      nanonas | colabnas | convbn (| all) */
    MN_CLI_OPT_INPUT,      /* --input HxWxC   input shape */
    MN_CLI_OPT_CLASSES,    /* --classes N     classes, [2, 65536] */
    MN_CLI_OPT_IO,         /* --io uint8|int8 the model's input/output type */
    MN_CLI_OPT_K_MIN,      /* --k-min K       smallest k of a space, [1, 4096] */
    MN_CLI_OPT_K_MAX,      /* --k-max K       largest k of a space, [1, 4096] */
    MN_CLI_OPT_RAM_RESERVE, /* --ram-reserve SIZE  RAM of the target kept free of the model */
    MN_CLI_OPT_ARCH_END
};
#define MN_CLI_LONGOPT_K {"k", required_argument, 0, MN_CLI_OPT_K}
#define MN_CLI_LONGOPT_CELLS {"cells", required_argument, 0, MN_CLI_OPT_CELLS}
#define MN_CLI_LONGOPT_LAYOUT {"layout", required_argument, 0, MN_CLI_OPT_LAYOUT}
#define MN_CLI_LONGOPT_INPUT {"input", required_argument, 0, MN_CLI_OPT_INPUT}
#define MN_CLI_LONGOPT_CLASSES {"classes", required_argument, 0, MN_CLI_OPT_CLASSES}
#define MN_CLI_LONGOPT_IO {"io", required_argument, 0, MN_CLI_OPT_IO}
#define MN_CLI_LONGOPT_K_MIN {"k-min", required_argument, 0, MN_CLI_OPT_K_MIN}
#define MN_CLI_LONGOPT_K_MAX {"k-max", required_argument, 0, MN_CLI_OPT_K_MAX}
#define MN_CLI_LONGOPT_RAM_RESERVE {"ram-reserve", required_argument, 0, MN_CLI_OPT_RAM_RESERVE}

typedef struct mn_cli_arch {
    long k, cells;         /* -1 until given */
    mn_layout layout;      /* nanonas until given */
    unsigned layouts;      /* 1u << layout, or all three for "--layout all"; 0 until given */
    int allow_all_layouts; /* set by the subcommand that accepts "--layout all" */
    mn_shape input;        /* 50x50x3 until given */
    long classes;          /* 2 until given */
    int io_int8;           /* 0 (uint8) until given */
    long k_min, k_max;     /* 0 until given */
    size_t ram_reserve;    /* --ram-reserve in bytes, when ram_reserve_given */
    int ram_reserve_given;
} mn_cli_arch;

void mn_cli_arch_init(mn_cli_arch *a);
/* Whether a getopt value is one of the options above. */
int mn_cli_arch_is_option(int opt);
/* Applies one architecture option. Returns MN_EXIT_OK, or prints a usage error prefixed
 * with `where` (a config file's location, or "") and returns MN_EXIT_USAGE. */
int mn_cli_arch_apply(const char *cmd, mn_cli_arch *a, int opt, const char *arg,
                      const char *where);
/* Checks that --k and --cells were given; usage error otherwise. */
int mn_cli_arch_require_point(const char *cmd, const mn_cli_arch *a);

/* Loads the built-in targets and `file` (NULL: none) into `list` and finds `name`, then
 * applies `a`'s --ram-reserve when given (`a` may be NULL). On failure prints the error (a
 * usage error when `name` is NULL or unknown, or the reserve leaves no RAM), frees the list
 * and returns the exit code; MN_EXIT_OK otherwise. */
int mn_cli_target_find(const char *cmd, const char *name, const char *file,
                       const mn_cli_arch *a, mn_target_list *list, const mn_target **out);

#endif
