/* Private helpers for the JSON that libmcunas and the CLI write through jansson (journal,
 * report.json, --json output), so every writer agrees on strings and numbers. */
#ifndef MN_CORE_JSONUTIL_H
#define MN_CORE_JSONUTIL_H

#include <jansson.h>

/* How every JSON text is dumped: one line, keys in the order they were added, and reals
 * with up to 15 significant digits, so a value rounded by mn_json_real_new prints short
 * ("0.523457", not "0.52345700000000001"). */
#define MN_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

/* A JSON string holding `s`. JSON text is UTF-8, but file and class names need not be: a
 * byte that does not start a valid UTF-8 sequence is taken as Latin-1 (so "\xe9" becomes
 * "é"), which keeps the output valid and loses nothing. NULL only when out of memory. */
json_t *mn_json_string_new(const char *s);

/* `v` rounded to `places` decimals (the precision it is meaningful to), or null when `v` is
 * not finite (JSON has no NaN or infinity). NULL only when out of memory. */
json_t *mn_json_real_new(double v, int places);

/* Copies a JSON string value into buf (at most size-1 bytes, never cutting a UTF-8
 * sequence in two). Returns 0 when `v` is not a string. */
int mn_json_string_copy(const json_t *v, char *buf, size_t size);

#endif
