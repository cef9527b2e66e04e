/* Microcontroller targets: a built-in table of boards (each figure with its public source
 * in src/mcu/target.c) and user targets read from a small INI-like file:
 *
 *   # comment
 *   [my_board]            name: lower-case letters, digits, '_', '-', '.'
 *   core = cortex-m4      cortex-m0plus | cortex-m3 | cortex-m4 | cortex-m7 | cortex-m33
 *   clock_mhz = 80
 *   ram_kib = 40
 *   flash_kib = 128
 *   coremark = 273
 *   macc_bound = 2730000  optional; default coremark x 10^4
 *   ram_reserve_kib = 2   optional; RAM the runtime or application needs beyond the model's
 *                         figure (a vendor's TFLM build, buffers of its own); default 0
 *
 * Errors name the file and the line. */
#ifndef MCUNAS_TARGET_H
#define MCUNAS_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mn_core {
    MN_CORE_M0PLUS = 0,
    MN_CORE_M3,
    MN_CORE_M4,
    MN_CORE_M7,
    MN_CORE_M33,
    MN_CORE_COUNT
} mn_core;

const char *mn_core_name(mn_core core); /* "cortex-m4" */
mn_status mn_core_parse(const char *name, mn_core *out);

typedef struct mn_target {
    char name[48];
    mn_core core;
    double clock_mhz;
    size_t ram_bytes;
    size_t flash_bytes;
    double coremark;
    uint64_t macc_bound; /* CoreMark x 10^4 unless overridden */
    char source[200];    /* where the figures come from, or "file:line" for user targets */
    size_t ram_reserve_bytes; /* kept free of the model: every RAM figure must fit in
                               * mn_target_ram_budget(), ram_bytes minus this; 0 built in */
} mn_target;

/* The RAM a model may use on `t`: its RAM less the reserve. */
size_t mn_target_ram_budget(const mn_target *t);
/* Sets the reserve; refused (MN_ERR_INVALID_ARG) unless it leaves some RAM. */
mn_status mn_target_set_ram_reserve(mn_target *t, size_t bytes);

/* The built-in table. */
size_t mn_target_builtin_count(void);
const mn_target *mn_target_builtin(size_t i);

/* A list of targets: the built-ins plus those read from files. */
typedef struct mn_target_list {
    mn_target *items;
    size_t count;
} mn_target_list;

/* Fills `list` with the built-ins. */
mn_status mn_target_list_init(mn_target_list *list);
/* Appends (or replaces, by name) the targets of a file. */
mn_status mn_target_list_load(mn_target_list *list, const char *path);
/* Parses a target file held in memory (`path` only names it in messages). */
mn_status mn_target_list_parse(mn_target_list *list, const char *text, const char *path);
const mn_target *mn_target_find(const mn_target_list *list, const char *name);
void mn_target_list_free(mn_target_list *list);

#ifdef __cplusplus
}
#endif
#endif
