/* mcunas targets: the built-in MCU table (plus any --target-file). */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "mcunas/target.h"

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mcunas targets [--target-file F] [--json]\n\n"
            "Lists the MCU targets: core, clock, RAM, flash, CoreMark and the MACC bound\n"
            "(CoreMark x 10^4 unless the target overrides it).\n\n"
            "Options:\n"
            "  --target-file F  add targets from an INI-like file (see docs/cost-model.md):\n"
            "                     [name]  core=cortex-m4  clock_mhz=80  ram_kib=40\n"
            "                     flash_kib=128  coremark=273  [macc_bound=2730000]\n"
            "  --json           one JSON object per target, one per line\n"
            "  -h, --help       this help\n");
}

int mn_cmd_targets(int argc, char **argv) {
    enum { OPT_FILE = 256, OPT_JSON };
    static const struct option longopts[] = {{"target-file", required_argument, 0, OPT_FILE},
                                             {"json", no_argument, 0, OPT_JSON},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *cmd = "targets";
    const char *files[16];
    int n_files = 0, json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FILE:
            if (n_files == 16) return mn_cli_usage_error(cmd, "at most 16 --target-file");
            files[n_files++] = optarg;
            break;
        case OPT_JSON: json = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    mn_target_list list;
    mn_status st = mn_target_list_init(&list);
    for (int i = 0; !st && i < n_files; i++) st = mn_target_list_load(&list, files[i]);
    if (st) {
        mn_target_list_free(&list);
        return mn_cli_fail(cmd, st);
    }
    if (!json)
        printf("%-16s %-14s %8s %9s %10s %9s %12s\n", "name", "core", "MHz", "RAM KiB", "flash KiB",
               "CoreMark", "MACC bound");
    for (size_t i = 0; i < list.count; i++) {
        const mn_target *t = &list.items[i];
        if (json) {
            mn_json j;
            mn_json_begin(&j, stdout);
            mn_json_str(&j, "name", t->name);
            mn_json_str(&j, "core", mn_core_name(t->core));
            mn_json_num(&j, "clock_mhz", t->clock_mhz);
            mn_json_int(&j, "ram_bytes", (long long)t->ram_bytes);
            mn_json_int(&j, "ram_reserve_bytes", (long long)t->ram_reserve_bytes);
            mn_json_int(&j, "flash_bytes", (long long)t->flash_bytes);
            mn_json_num(&j, "coremark", t->coremark);
            mn_json_int(&j, "macc_bound", (long long)t->macc_bound);
            mn_json_str(&j, "source", t->source);
            mn_json_end(&j);
        } else {
            printf("%-16s %-14s %8g %9g %10g %9g %12llu\n", t->name, mn_core_name(t->core),
                   t->clock_mhz, t->ram_bytes / 1024.0, t->flash_bytes / 1024.0, t->coremark,
                   (unsigned long long)t->macc_bound);
        }
    }
    mn_target_list_free(&list);
    return MN_EXIT_OK;
}
