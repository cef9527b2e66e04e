/* The search journal: durable lines, exact read-back, torn last lines, settings checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcunas/journal.h"
#include "testutil.h"

static const char *SETTINGS = "{\"event\":\"search\",\"strategy\":\"nanonas\",\"seed\":1}";

static mn_journal_entry sample(int k, int cells, mn_outcome o) {
    mn_journal_entry e;
    mn_journal_entry_init(&e, (mn_point){k, cells});
    e.outcome = o;
    if (o == MN_OUTCOME_SCORED) e.val_acc = 0.5 + 0.01 * k + 0.001 * cells;
    else snprintf(e.reason, sizeof e.reason, "RAM 41,234 B > 40,960 B \"quoted\"\tand tab");
    e.macc = 1000003ull * (uint64_t)k;
    e.params = 77;
    e.flash_bytes = 12345;
    e.ram_bytes = 23456;
    e.latency_ms = 12.5;
    e.host_planned_bytes = 5000000;
    e.host_measured_bytes = 4000000;
    e.device_planned_bytes = 3000000;
    e.device_measured_bytes = 2900000;
    e.seconds = 1.25;
    return e;
}

static void round_trip_and_resume(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("journal");
    char *path = mn_test_path(dir, "journal.jsonl");
    mn_journal *j;
    assert_int_equal(mn_journal_open(path, SETTINGS, 0, &j), MN_OK);
    mn_journal_entry a = sample(1, 0, MN_OUTCOME_SCORED), b = sample(1, 1, MN_OUTCOME_INFEASIBLE),
                     c = sample(2, 0, MN_OUTCOME_PRUNED);
    assert_int_equal(mn_journal_append(j, &a), MN_OK);
    assert_int_equal(mn_journal_append(j, &b), MN_OK);
    assert_int_equal(mn_journal_append(j, &c), MN_OK);
    mn_journal_close(j);

    /* Opening an existing search without --resume is refused: nothing is overwritten. */
    assert_int_equal(mn_journal_open(path, SETTINGS, 0, &j), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "--resume"));

    /* A kill in the middle of a write leaves a torn last line: it is dropped. */
    FILE *f = fopen(path, "a");
    fputs("{\"event\":\"candidate\",\"k\":2,\"cel", f);
    fclose(f);
    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_OK);
    assert_int_equal(mn_journal_count(j), 3);
    const mn_journal_entry *r = mn_journal_get(j, 1);
    assert_int_equal(r->point.k, 1);
    assert_int_equal(r->point.cells, 1);
    assert_int_equal(r->outcome, MN_OUTCOME_INFEASIBLE);
    assert_string_equal(r->reason, b.reason);
    r = mn_journal_get(j, 0);
    assert_float_equal(r->val_acc, a.val_acc, 1e-9);
    assert_int_equal(r->macc, a.macc);
    assert_int_equal(r->host_measured_bytes, a.host_measured_bytes);
    assert_float_equal(r->latency_ms, 12.5, 1e-9);
    assert_int_equal(mn_journal_get(j, 2)->outcome, MN_OUTCOME_PRUNED);
    /* Appending after resume continues the same file. */
    mn_journal_entry d = sample(2, 1, MN_OUTCOME_SCORED);
    assert_int_equal(mn_journal_append(j, &d), MN_OK);
    mn_journal_close(j);
    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_OK);
    assert_int_equal(mn_journal_count(j), 4);
    assert_int_equal(mn_journal_get(j, 3)->point.cells, 1);
    mn_journal_close(j);

    /* Different settings: refused, naming the key. */
    assert_int_equal(mn_journal_open(path, "{\"event\":\"search\",\"strategy\":\"nanonas\",\"seed\":2}", 1, &j),
                     MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "\"seed\""));

    /* A corrupt candidate line names the file and line. */
    f = fopen(path, "a");
    fputs("{\"event\":\"candidate\",\"k\":3,\"cells\":0,\"outcome\":\"exploded\"}\n", f);
    fclose(f);
    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_ERR_FORMAT);
    assert_non_null(strstr(mn_error_message(), "journal.jsonl:6"));

    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

static void resume_of_a_missing_journal_starts_fresh(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("journal");
    char *path = mn_test_path(dir, "journal.jsonl");
    mn_journal *j;
    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_OK);
    assert_int_equal(mn_journal_count(j), 0);
    mn_journal_close(j);
    FILE *f = fopen(path, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    assert_string_equal(line, SETTINGS);
    assert_int_equal(mn_journal_open("/nonexistent/dir/journal.jsonl", SETTINGS, 0, &j), MN_ERR_IO);
    assert_non_null(strstr(mn_error_message(), "/nonexistent/dir/journal.jsonl"));
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_resume),
        cmocka_unit_test(resume_of_a_missing_journal_starts_fresh),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
