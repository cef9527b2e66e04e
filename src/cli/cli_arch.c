/* The architecture and target options of every subcommand (cli_arch.h). */
#include "cli_arch.h"

#include <string.h>

#include "cli.h"

void mn_cli_arch_init(mn_cli_arch *a) {
    memset(a, 0, sizeof *a);
    a->k = a->cells = -1;
    a->layout = MN_LAYOUT_NANONAS;
    a->input = (mn_shape){50, 50, 3};
    a->classes = 2;
}

int mn_cli_arch_is_option(int opt) { return opt >= MN_CLI_OPT_K && opt < MN_CLI_OPT_ARCH_END; }

static int parse_layout(const char *cmd, mn_cli_arch *a, const char *arg, const char *where) {
    if (a->allow_all_layouts && !strcmp(arg, "all")) {
        a->layouts = (1u << MN_LAYOUT_NANONAS) | (1u << MN_LAYOUT_COLABNAS) | (1u << MN_LAYOUT_CONVBN);
        return MN_EXIT_OK;
    }
    if (mn_layout_parse(arg, &a->layout)) return mn_cli_usage_error(cmd, "%s%s", where, mn_error_message());
    a->layouts = 1u << a->layout;
    return MN_EXIT_OK;
}

int mn_cli_arch_apply(const char *cmd, mn_cli_arch *a, int opt, const char *arg,
                      const char *where) {
#define BAD(...) return mn_cli_usage_error(cmd, __VA_ARGS__)
    int h, w, c;
    switch (opt) {
    case MN_CLI_OPT_K:
        if (!mn_cli_parse_int(arg, 1, 4096, &a->k)) BAD("%s--k must be an integer in [1, 4096], got '%s'", where, arg);
        break;
    case MN_CLI_OPT_CELLS:
        if (!mn_cli_parse_int(arg, 0, MN_ARCH_MAX_CELLS, &a->cells))
            BAD("%s--cells must be an integer in [0, %d], got '%s'", where, MN_ARCH_MAX_CELLS, arg);
        break;
    case MN_CLI_OPT_LAYOUT: return parse_layout(cmd, a, arg, where);
    case MN_CLI_OPT_INPUT:
        if (!mn_cli_parse_shape(arg, &h, &w, &c)) BAD("%s--input must look like 28x28x1, got '%s'", where, arg);
        a->input = (mn_shape){h, w, c};
        break;
    case MN_CLI_OPT_CLASSES:
        if (!mn_cli_parse_int(arg, 2, 65536, &a->classes))
            BAD("%s--classes must be an integer in [2, 65536], got '%s'", where, arg);
        break;
    case MN_CLI_OPT_IO:
        if (!strcmp(arg, "uint8")) a->io_int8 = 0;
        else if (!strcmp(arg, "int8")) a->io_int8 = 1;
        else BAD("%s--io must be uint8 or int8, got '%s'", where, arg);
        break;
    case MN_CLI_OPT_K_MIN:
        if (!mn_cli_parse_int(arg, 1, 4096, &a->k_min)) BAD("%s--k-min must be an integer in [1, 4096], got '%s'", where, arg);
        break;
    case MN_CLI_OPT_K_MAX:
        if (!mn_cli_parse_int(arg, 1, 4096, &a->k_max)) BAD("%s--k-max must be an integer in [1, 4096], got '%s'", where, arg);
        break;
    case MN_CLI_OPT_RAM_RESERVE:
        if (!strcmp(arg, "0")) a->ram_reserve = 0;
        else if (!mn_cli_parse_size(arg, &a->ram_reserve))
            BAD("%s--ram-reserve must be a size such as 2K or 2048, got '%s'", where, arg);
        a->ram_reserve_given = 1;
        break;
    default: BAD("%sunknown or incomplete option", where);
    }
#undef BAD
    return MN_EXIT_OK;
}

int mn_cli_arch_require_point(const char *cmd, const mn_cli_arch *a) {
    if (a->k < 0) return mn_cli_usage_error(cmd, "--k is required");
    if (a->cells < 0) return mn_cli_usage_error(cmd, "--cells is required");
    return MN_EXIT_OK;
}

int mn_cli_target_find(const char *cmd, const char *name, const char *file,
                       const mn_cli_arch *a, mn_target_list *list, const mn_target **out) {
    if (!name) return mn_cli_usage_error(cmd, "--target is required (see 'mcunas targets')");
    mn_status st = mn_target_list_init(list);
    if (!st && file) st = mn_target_list_load(list, file);
    if (st) {
        mn_target_list_free(list);
        return mn_cli_fail(cmd, st);
    }
    /* the list is ours, so its entry may take the reserve */
    mn_target *t = (mn_target *)mn_target_find(list, name);
    if (!t) {
        mn_target_list_free(list);
        return mn_cli_usage_error(cmd, "unknown target '%s' (see 'mcunas targets')", name);
    }
    if (a && a->ram_reserve_given && mn_target_set_ram_reserve(t, a->ram_reserve)) {
        int rc = mn_cli_usage_error(cmd, "--ram-reserve: %s", mn_error_message());
        mn_target_list_free(list);
        return rc;
    }
    *out = t;
    return MN_EXIT_OK;
}
