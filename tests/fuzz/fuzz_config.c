/* mcunas search's --config reader (inih, then every option's check in src/cli/cmd_search.c)
 * on arbitrary files, through the command itself with --print-config, which checks the
 * options and writes nothing but the options it read. What it prints must read back as the
 * same options: given to --config again, the printed file prints itself. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fuzz_util.h"

/* mcunas search --config CONFIG --print-config, its standard output into the scratch file
 * `name` (whose path goes to `path`); returns the command's exit code. */
static int print_config(const char *config, const char *name, char *path, size_t path_size) {
    mn_fuzz_write(name, NULL, 0, path, path_size);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(path, O_WRONLY | O_TRUNC);
    if (saved < 0 || fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
        perror("fuzz_config: redirecting stdout");
        abort();
    }
    close(fd);
    char a0[] = "search", a1[] = "--config", a3[] = "--print-config", a2[1024];
    snprintf(a2, sizeof a2, "%s", config);
    char *argv[] = {a0, a1, a2, a3, NULL};
    int rc = mn_cmd_search(4, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = f ? calloc(1, 1 << 16) : NULL;
    if (!buf || fread(buf, 1, (1 << 16) - 1, f) == (1 << 16) - 1) abort(); /* our output: small */
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char in[1024], out1[1024], out2[1024];
    mn_fuzz_write("in.ini", data, size, in, sizeof in);
    if (print_config(in, "out1.ini", out1, sizeof out1) != 0) return 0;
    int rc = print_config(out1, "out2.ini", out2, sizeof out2);
    char *a = slurp(out1), *b = slurp(out2);
    if (rc != 0 || strcmp(a, b) != 0) {
        fprintf(stderr, "fuzz_config: the printed options do not read back (exit %d)\n--- printed:\n%s--- read back and printed:\n%s",
                rc, a, b);
        abort();
    }
    free(a);
    free(b);
    return 0;
}
