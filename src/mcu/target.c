/* Built-in MCU targets and the user target file parser. */
#include "mcunas/target.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const core_names[MN_CORE_COUNT] = {"cortex-m0plus", "cortex-m3", "cortex-m4",
                                                      "cortex-m7", "cortex-m33"};

const char *mn_core_name(mn_core core) {
    return (unsigned)core < MN_CORE_COUNT ? core_names[core] : "unknown";
}

mn_status mn_core_parse(const char *name, mn_core *out) {
    for (int i = 0; i < MN_CORE_COUNT; i++)
        if (!strcmp(name, core_names[i])) {
            *out = (mn_core)i;
            return MN_OK;
        }
    if (!strcmp(name, "cortex-m0+")) {
        *out = MN_CORE_M0PLUS;
        return MN_OK;
    }
    return mn_error_set(MN_ERR_INVALID_ARG,
                        "unknown core '%s' (expected cortex-m0plus, cortex-m3, cortex-m4, "
                        "cortex-m7 or cortex-m33)",
                        name);
}

#define KIB 1024u
/* Every figure with its public source. CoreMark: the vendor's datasheet figure (which is the
 * EEMBC-certified or vendor-measured score at the maximum clock) where one is published; for
 * the two Cortex-M0+ parts without a published score it is Arm's 2.46 CoreMark/MHz for the
 * Cortex-M0+ (Arm Cortex-M0+ processor page) times the clock, marked "estimate". */
static const mn_target builtins[] = {
    /* ST DS12323 (STM32L010RB): Cortex-M0+ up to 32 MHz, 20 KiB RAM, 128 KiB flash.
     * CoreMark 75: ST's figure as used by the NanoNAS/ColabNAS papers (RESEARCH.md 1.5). */
    {"stm32l010rbt6", MN_CORE_M0PLUS, 32, 20 * KIB, 128 * KIB, 75, 750000,
     "ST DS12323 datasheet; CoreMark 75 (ST, as in ColabNAS/NanoNAS)", 0},
    /* ST DS8890 (STM32L151xC): Cortex-M3 32 MHz, 32 KiB RAM, 256 KiB flash; CoreMark 93. */
    {"stm32l151ucy6", MN_CORE_M3, 32, 32 * KIB, 256 * KIB, 93, 930000,
     "ST DS8890 datasheet; CoreMark 93 (ST, as in ColabNAS/NanoNAS)", 0},
    /* ST DS12469 (STM32L412xx): Cortex-M4F 80 MHz, 40 KiB RAM, 128 KiB flash; CoreMark 273
     * ("1.25 DMIPS/MHz, 273.55 CoreMark" on the datasheet's front page). */
    {"stm32l412kbu3", MN_CORE_M4, 80, 40 * KIB, 128 * KIB, 273, 2730000,
     "ST DS12469 datasheet (273.55 CoreMark at 80 MHz)", 0},
    /* ST DS10941 (STM32F412xE/G, the 1 MiB variant MCUNet uses): Cortex-M4F 100 MHz,
     * 256 KiB RAM, 1 MiB flash; CoreMark 339 at 100 MHz (datasheet front page). */
    {"stm32f412", MN_CORE_M4, 100, 256 * KIB, 1024 * KIB, 339, 3390000,
     "ST DS10941 datasheet, STM32F412xG (339 CoreMark at 100 MHz)", 0},
    /* ST DS10693 (STM32F446xC/E): Cortex-M4F 180 MHz, 128 KiB RAM, 512 KiB flash;
     * "225 DMIPS / 608 CoreMark" (datasheet front page). */
    {"stm32f446re", MN_CORE_M4, 180, 128 * KIB, 512 * KIB, 608, 6080000,
     "ST DS10693 datasheet (608 CoreMark at 180 MHz)", 0},
    /* ST DS10916 (STM32F745/746xG): Cortex-M7 216 MHz, 320 KiB RAM, 1 MiB flash;
     * "1082 CoreMark" (datasheet front page). */
    {"stm32f746", MN_CORE_M7, 216, 320 * KIB, 1024 * KIB, 1082, 10820000,
     "ST DS10916 datasheet, STM32F746NG (1082 CoreMark at 216 MHz)", 0},
    /* Nordic nRF52840 Product Specification v1.7: Cortex-M4F 64 MHz, 256 KiB RAM, 1 MiB
     * flash, "212 EEMBC CoreMark score running from flash memory". */
    {"nrf52840", MN_CORE_M4, 64, 256 * KIB, 1024 * KIB, 212, 2120000,
     "Nordic nRF52840 Product Specification v1.7 (212 CoreMark at 64 MHz)", 0},
    /* Raspberry Pi RP2040 datasheet: dual Cortex-M0+ 133 MHz, 264 KiB SRAM; flash external
     * (2 MiB W25Q16 on the Pico board, Pico datasheet). CoreMark: estimate, one core,
     * 2.46 CoreMark/MHz x 133 MHz. */
    {"rp2040", MN_CORE_M0PLUS, 133, 264 * KIB, 2048 * KIB, 327, 3270000,
     "RP2040 + Raspberry Pi Pico datasheets; CoreMark estimate 2.46/MHz x 133", 0},
    /* Microchip SAM D21 datasheet (ATSAMD21G18A, Arduino Nano 33 IoT): Cortex-M0+ 48 MHz,
     * 32 KiB SRAM, 256 KiB flash. CoreMark: estimate 2.46 CoreMark/MHz x 48 MHz. */
    {"samd21g18", MN_CORE_M0PLUS, 48, 32 * KIB, 256 * KIB, 118, 1180000,
     "Microchip SAM D21 datasheet (Arduino Nano 33 IoT); CoreMark estimate 2.46/MHz x 48", 0},
};
#define N_BUILTIN (sizeof builtins / sizeof builtins[0])

size_t mn_target_builtin_count(void) { return N_BUILTIN; }

size_t mn_target_ram_budget(const mn_target *t) {
    return t->ram_reserve_bytes < t->ram_bytes ? t->ram_bytes - t->ram_reserve_bytes : 0;
}

mn_status mn_target_set_ram_reserve(mn_target *t, size_t bytes) {
    if (bytes >= t->ram_bytes)
        return mn_error_set(MN_ERR_INVALID_ARG,
                            "RAM reserve of %zu B leaves nothing of %s's %zu B of RAM", bytes,
                            t->name, t->ram_bytes);
    t->ram_reserve_bytes = bytes;
    return MN_OK;
}
const mn_target *mn_target_builtin(size_t i) { return i < N_BUILTIN ? &builtins[i] : NULL; }

mn_status mn_target_list_init(mn_target_list *list) {
    list->count = 0;
    list->items = malloc(sizeof builtins);
    if (!list->items) return mn_error_set(MN_ERR_NOMEM, "out of memory for the target table");
    memcpy(list->items, builtins, sizeof builtins);
    list->count = N_BUILTIN;
    return MN_OK;
}

void mn_target_list_free(mn_target_list *list) {
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

const mn_target *mn_target_find(const mn_target_list *list, const char *name) {
    for (size_t i = 0; i < list->count; i++)
        if (!strcmp(list->items[i].name, name)) return &list->items[i];
    return NULL;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static int valid_name(const char *s) {
    if (!*s || strlen(s) >= sizeof(((mn_target *)0)->name)) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-' ||
              *s == '.'))
            return 0;
    return 1;
}

enum { F_CORE = 1, F_CLOCK = 2, F_RAM = 4, F_FLASH = 8, F_COREMARK = 16, F_MACC = 32, F_RESERVE = 64 };
#define F_REQUIRED (F_CORE | F_CLOCK | F_RAM | F_FLASH | F_COREMARK)

static mn_status finish_section(mn_target_list *list, mn_target *t, int fields, const char *path,
                                int line) {
    if ((fields & F_REQUIRED) != F_REQUIRED) {
        static const char *const names[] = {"core", "clock_mhz", "ram_kib", "flash_kib", "coremark"};
        for (int i = 0; i < 5; i++)
            if (!(fields & (1 << i)))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: target [%s] lacks '%s'", path, line,
                                    t->name, names[i]);
    }
    if (!(fields & F_MACC)) t->macc_bound = (uint64_t)llround(t->coremark * 1e4);
    if (t->ram_reserve_bytes >= t->ram_bytes)
        return mn_error_set(MN_ERR_FORMAT, "%s:%d: target [%s]: ram_reserve_kib must be below ram_kib",
                            path, line, t->name);
    for (size_t i = 0; i < list->count; i++)
        if (!strcmp(list->items[i].name, t->name)) {
            list->items[i] = *t;
            return MN_OK;
        }
    mn_target *n = realloc(list->items, (list->count + 1) * sizeof *n);
    if (!n) return mn_error_set(MN_ERR_NOMEM, "out of memory for the target table");
    list->items = n;
    list->items[list->count++] = *t;
    return MN_OK;
}

static int parse_pos(const char *v, double max, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *trim(end) || !(d > 0) || d > max) return 0;
    *out = d;
    return 1;
}

mn_status mn_target_list_parse(mn_target_list *list, const char *text, const char *path) {
    mn_target cur;
    int in_section = 0, fields = 0, section_line = 0, line = 0;
    const char *p = text;
    char buf[512];
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        if (len >= sizeof buf)
            return mn_error_set(MN_ERR_FORMAT, "%s:%d: line longer than %zu characters", path, line,
                                sizeof buf - 1);
        memcpy(buf, p, len);
        buf[len] = 0;
        p = nl ? nl + 1 : p + len;
        char *hash = strchr(buf, '#');
        if (hash) *hash = 0;
        char *s = trim(buf);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || *trim(close + 1))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: expected '[name]'", path, line);
            *close = 0;
            char *name = trim(s + 1);
            if (!valid_name(name))
                return mn_error_set(MN_ERR_FORMAT,
                                    "%s:%d: bad target name '%s' (lower-case letters, digits, "
                                    "'_', '-', '.'; at most 47 characters)",
                                    path, line, name);
            if (in_section) {
                mn_status st = finish_section(list, &cur, fields, path, section_line);
                if (st) return st;
            }
            memset(&cur, 0, sizeof cur);
            snprintf(cur.name, sizeof cur.name, "%s", name);
            snprintf(cur.source, sizeof cur.source, "%s:%d", path, line);
            in_section = 1;
            fields = 0;
            section_line = line;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return mn_error_set(MN_ERR_FORMAT, "%s:%d: expected 'key = value'", path, line);
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (!in_section)
            return mn_error_set(MN_ERR_FORMAT, "%s:%d: '%s' outside a [target] section", path, line,
                                key);
        double d;
        int bit;
        if (!strcmp(key, "core")) {
            if (mn_core_parse(val, &cur.core))
                return mn_error_prefix(MN_ERR_FORMAT, "%s:%d: ", path, line);
            bit = F_CORE;
        } else if (!strcmp(key, "clock_mhz")) {
            if (!parse_pos(val, 1e5, &d))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: clock_mhz must be a number in (0, 1e5], got '%s'", path, line, val);
            cur.clock_mhz = d;
            bit = F_CLOCK;
        } else if (!strcmp(key, "ram_kib") || !strcmp(key, "flash_kib")) {
            if (!parse_pos(val, 1e9, &d))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: %s must be a number in (0, 1e9], got '%s'", path, line, key, val);
            if (key[0] == 'r') cur.ram_bytes = (size_t)llround(d * 1024), bit = F_RAM;
            else cur.flash_bytes = (size_t)llround(d * 1024), bit = F_FLASH;
        } else if (!strcmp(key, "coremark")) {
            if (!parse_pos(val, 1e8, &d))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: coremark must be a number in (0, 1e8], got '%s'", path, line, val);
            cur.coremark = d;
            bit = F_COREMARK;
        } else if (!strcmp(key, "macc_bound")) {
            if (!parse_pos(val, 1e15, &d) || d != floor(d))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: macc_bound must be a positive integer, got '%s'", path, line, val);
            cur.macc_bound = (uint64_t)d;
            bit = F_MACC;
        } else if (!strcmp(key, "ram_reserve_kib")) {
            if (!parse_pos(val, 1e9, &d))
                return mn_error_set(MN_ERR_FORMAT, "%s:%d: ram_reserve_kib must be a number in (0, 1e9], got '%s'", path, line, val);
            cur.ram_reserve_bytes = (size_t)llround(d * 1024);
            bit = F_RESERVE;
        } else {
            return mn_error_set(MN_ERR_FORMAT,
                                "%s:%d: unknown key '%s' (core, clock_mhz, ram_kib, flash_kib, "
                                "coremark, macc_bound, ram_reserve_kib)",
                                path, line, key);
        }
        if (fields & bit)
            return mn_error_set(MN_ERR_FORMAT, "%s:%d: '%s' given twice", path, line, key);
        fields |= bit;
    }
    if (in_section) return finish_section(list, &cur, fields, path, section_line);
    return MN_OK;
}

mn_status mn_target_list_load(mn_target_list *list, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return mn_error_set(MN_ERR_IO, "cannot open target file %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *n = realloc(text, cap);
            if (!n) {
                free(text);
                fclose(f);
                return mn_error_set(MN_ERR_NOMEM, "out of memory reading %s", path);
            }
            text = n;
        }
        size_t r = fread(text + len, 1, 4096, f);
        len += r;
        if (r < 4096) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(text);
        return mn_error_set(MN_ERR_IO, "cannot read target file %s", path);
    }
    text[len] = 0;
    if (memchr(text, 0, len)) {
        free(text);
        return mn_error_set(MN_ERR_FORMAT, "%s: not a text file (contains a NUL byte)", path);
    }
    mn_status st = mn_target_list_parse(list, text, path);
    free(text);
    return st;
}
