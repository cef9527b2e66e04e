/* Helpers shared by the fuzz harnesses: the file-based entry points (importers, the
 * calibration file, the dataset cache) get each input as a file in a private temp folder. */
#ifndef MN_FUZZ_UTIL_H
#define MN_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>

/* The process's private temp folder (created once, "$TMPDIR/mn-fuzz-XXXXXX"). */
const char *mn_fuzz_dir(void);
/* Writes `size` bytes to mn_fuzz_dir()/name (creating parent folders); the full path
 * goes into `path`. */
void mn_fuzz_write(const char *name, const uint8_t *data, size_t size, char *path, size_t path_size);
/* Removes mn_fuzz_dir()/name (a file or an empty folder); missing is fine. */
void mn_fuzz_remove(const char *name);
/* Splits an input at the first occurrence of the 8-byte separator "\n--8<--\n": part 0
 * before it, part 1 after (empty when absent). Lets one input carry two files. */
void mn_fuzz_split(const uint8_t *data, size_t size, const uint8_t **p0, size_t *n0,
                   const uint8_t **p1, size_t *n1);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
