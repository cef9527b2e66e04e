/* Stopping on signals: a flag the long work polls, and the temporary files a forced exit
 * removes. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/fileio.h"

volatile int mn_cli_stop_flag = 0;

/* Temporary names registered before the work starts, read by the handler: the count is
 * published only after its slot is written. Static storage, so that registering allocates
 * nothing and cannot fail. */
#define MAX_REMOVE 16
static char to_remove[MAX_REMOVE][MN_FILE_PATH_MAX];
static volatile sig_atomic_t n_remove = 0;

void mn_cli_remove_on_exit(const char *path) {
    if (!path || n_remove >= MAX_REMOVE) return;
    /* a path too long for the slot is refused by the writer as well, with this message */
    if (mn_file_tmp_name(path, to_remove[n_remove], sizeof to_remove[0])) return;
    atomic_signal_fence(memory_order_release); /* the slot before the count, for the handler */
    n_remove = n_remove + 1;
}

static void on_stop_signal(int sig) {
    if (sig == SIGINT && mn_cli_stop_flag == SIGINT) {
        /* A second Ctrl-C: leave now. unlink and _exit are async-signal-safe. */
        for (sig_atomic_t i = 0; i < n_remove; i++) unlink(to_remove[i]);
        _exit(MN_EXIT_INTERRUPTED);
    }
    if (!mn_cli_stop_flag) mn_cli_stop_flag = sig;
}

void mn_cli_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: a read or write under way when the signal comes completes; the work sees
     * the flag at its next check instead of a failed call. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}
