/* The target file parser (mn_target_list_parse) on arbitrary text. */
#include "fuzz_util.h"
#include "mcunas/target.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    mn_target_list list;
    if (mn_target_list_init(&list) == MN_OK) {
        mn_target_list_parse(&list, text, "fuzz.targets");
        mn_target_list_free(&list);
    }
    free(text);
    return 0;
}
