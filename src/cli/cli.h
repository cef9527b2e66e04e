/* Shared pieces of the command-line tool: the only code that prints and picks exit codes. */
#ifndef MN_CLI_H
#define MN_CLI_H

#include <stdio.h>

#include "mcunas/clock.h"
#include "mcunas/host.h"
#include "mcunas/status.h"
#include "mcunas/train.h"

/* Exit codes (documented in `mcunas --help` and the README). */
enum {
    MN_EXIT_OK = 0,
    MN_EXIT_FAILURE = 1,     /* the work failed: I/O, bad data, backend error */
    MN_EXIT_USAGE = 2,       /* bad command line */
    MN_EXIT_INTERRUPTED = 130
};

/* What a subcommand's option parser returns to go on running; anything else is the exit
 * code to return at once (--help printed, or a usage error). */
#define MN_CLI_CONTINUE (-1)

typedef struct mn_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    int stops; /* long work that polls mn_cli_stop_flag: main() installs the handlers */
} mn_cli_command;

int mn_cmd_train(int argc, char **argv);
int mn_cmd_import(int argc, char **argv);
int mn_cmd_import_vww(int argc, char **argv); /* `import vww`, dispatched by mn_cmd_import */
int mn_cmd_bench(int argc, char **argv);
int mn_cmd_search(int argc, char **argv);
int mn_cmd_rank(int argc, char **argv);
int mn_cmd_devices(int argc, char **argv);
int mn_cmd_targets(int argc, char **argv);
int mn_cmd_estimate(int argc, char **argv);
int mn_cmd_export(int argc, char **argv);
int mn_cmd_info(int argc, char **argv);

/* Prints "mcunas CMD: <message>" for a failed status; returns the matching exit code. */
int mn_cli_fail(const char *cmd, mn_status st);
/* Prints a usage error and a hint to run --help; returns MN_EXIT_USAGE. */
int mn_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string must be a number in range. */
int mn_cli_parse_int(const char *s, long min, long max, long *out);
int mn_cli_parse_double(const char *s, double min, double max, double *out);
/* "64M", "1G", "512K", "2GiB", "1000000": bytes (binary multiples); > 0. */
int mn_cli_parse_size(const char *s, size_t *out);
/* "28x28x1" */
int mn_cli_parse_shape(const char *s, int *h, int *w, int *c);
/* "50x50": an image size, width first, each side in [1, 4096] */
int mn_cli_parse_wh(const char *s, int *w, int *h);

/* ---- stopping (cli_stop.c) ----
 * SIGINT (Ctrl-C), SIGTERM and SIGHUP (what batch schedulers and closing terminals send)
 * set mn_cli_stop_flag to the signal's number; long work polls it, stops cleanly, removes
 * what it was writing and returns MN_EXIT_INTERRUPTED. A second SIGINT leaves at once,
 * removing the files registered with mn_cli_remove_on_exit first. main() installs the
 * handlers before a long command parses its options; installing them again is harmless. */
extern volatile int mn_cli_stop_flag;
void mn_cli_install_sigint(void);
/* Registers PATH's temporary name (mn_file_tmp_name, what every writer publishes through)
 * for removal when a second SIGINT ends the process before the writer could remove it. */
void mn_cli_remove_on_exit(const char *path);

/* ---- the machine (cli_host.c) ---- */
/* Before anything else in main(): unless the user chose them, an OpenMP wait policy that
 * lets idle workers sleep (may re-execute the program, since libgomp reads it once at load)
 * and a default thread count of the CPUs this process may really use (mn_host_cpu_count). */
void mn_cli_threads_init(char **argv);
/* --host-mem SIZE checked against what the process's cgroup allows: MN_CLI_CONTINUE, or a
 * usage error naming both sizes. 0 (not given) always passes. */
int mn_cli_host_mem_check(const char *cmd, size_t host_mem);
/* The default host budget: the resident set now plus what the kernel and the cgroup would
 * still give (mn_host_available_bytes), never above the cgroup's limit. */
size_t mn_cli_host_mem_default(void);

/* Training progress on stderr: a bar with rate and ETA on a terminal, plain lines every
 * few seconds otherwise, nothing when quiet. */
typedef struct mn_cli_progress {
    int tty;
    int quiet;
    double last_plain;
    int last_phase, last_epoch;
} mn_cli_progress;

void mn_cli_progress_init(mn_cli_progress *p, int quiet);
void mn_cli_progress_train(void *user, const mn_train_progress *p);

/* Importers' progress on stderr (an mn_progress_fn): "what done/total (pct)" redrawn on a
 * terminal at most every 0.1 s, a plain line every 5 s otherwise, nothing when quiet. */
typedef struct mn_cli_count_progress {
    int tty, quiet;
    double last;
} mn_cli_count_progress;
void mn_cli_count_progress_init(mn_cli_count_progress *p, int quiet);
void mn_cli_count_progress_report(void *user, const char *what, size_t done, size_t total);

/* One JSON object per line: {"a":1,"b":"x"}. Keys and values are jansson's (its escaping,
 * invalid UTF-8 read as Latin-1); written as they come, in call order, so mn_json_raw can
 * splice in JSON text that jansson would not hold (an array built elsewhere, 1e999). */
typedef struct mn_json {
    FILE *f;
    int first;
} mn_json;
void mn_json_begin(mn_json *j, FILE *f);
void mn_json_int(mn_json *j, const char *key, long long v);
void mn_json_num(mn_json *j, const char *key, double v);
void mn_json_str(mn_json *j, const char *key, const char *v);
void mn_json_raw(mn_json *j, const char *key, const char *raw);
void mn_json_end(mn_json *j);

#endif
