/* The search journal's reader (what `search --resume` and the report read back): the input
 * is DIR/journal.jsonl, opened for resuming with the settings of its own first line (so that
 * the entries are read; when the first byte is '#', with fixed settings instead, to test
 * the settings comparison), then one entry is appended and every entry read. */
#include "fuzz_util.h"
#include "mcunas/journal.h"

#include <stdlib.h>
#include <string.h>

static const char fixed[] =
    "{\"event\":\"search\",\"version\":1,\"data\":\"s.h5\",\"limit\":0,\"target\":\"stm32l412kbu3\","
    "\"strategy\":\"grid\",\"layout\":\"nanonas\",\"k_max\":2,\"epochs\":1,\"seed\":1}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[1024];
    mn_fuzz_write("journal.jsonl", data, size, path, sizeof path);
    char *settings;
    if (size && data[0] == '#') {
        settings = strdup(fixed);
    } else {
        /* The first line, up to its newline (a NUL inside ends it early: settings are C text). */
        size_t n = 0;
        while (n < size && data[n] != '\n') n++;
        settings = malloc(n + 1);
        if (settings) {
            memcpy(settings, data, n);
            settings[n] = 0;
        }
    }
    if (!settings) return 0;
    mn_journal *j = NULL;
    if (mn_journal_open(path, settings, 1, &j) == MN_OK) {
        volatile double sink = 0;
        for (size_t i = 0; i < mn_journal_count(j); i++) {
            const mn_journal_entry *e = mn_journal_get(j, i);
            sink += e->val_acc + (double)e->point.k + (double)strlen(e->reason);
        }
        (void)sink;
        mn_journal_entry e;
        mn_journal_entry_init(&e, (mn_point){1, 1});
        mn_journal_append(j, &e);
        mn_journal_close(j);
    }
    free(settings);
    return 0;
}
