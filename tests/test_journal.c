/* The search journal: durable lines, exact read-back (whatever strings hold), torn last
 * lines, settings checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
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

/* Reading back goes through a JSON parser: a string value that holds "key": text (a reason
 * quoting a score, say) cannot be taken for a key, and quotes, backslashes, control
 * characters and UTF-8 come back byte for byte. Bytes that are not UTF-8 come back as
 * their Latin-1 reading, so the line stays valid JSON. */
static void string_values_round_trip(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("journal");
    char *path = mn_test_path(dir, "journal.jsonl");
    static const char *const reasons[] = {
        /* keys inside a value, ahead of the real ones */
        "pruned at \"k\": 9, \"outcome\":\"scored\", \"val_acc\": 0.99, \"score\": 0.99}",
        /* a value that is a key's name: a key finder that scans the text for "macc" stops
           in the middle of the line and never finds the real one */
        "macc",
        "back\\slash \\\" \\u0041 and \"quote\" at the end\"",
        "tab\there, newline\nthere, \x01\x1f control, DEL \x7f",
        "UTF-8: caf\xc3\xa9 \xe2\x82\xac 10 \xf0\x9f\x98\x80 \xe5\xad\xa6\xe7\xbf\x92",
    };
    const size_t n = sizeof reasons / sizeof reasons[0];
    mn_journal *j;
    assert_int_equal(mn_journal_open(path, SETTINGS, 0, &j), MN_OK);
    for (size_t i = 0; i < n; i++) {
        mn_journal_entry e = sample(2 + (int)i, 1, MN_OUTCOME_PRUNED);
        snprintf(e.reason, sizeof e.reason, "%s", reasons[i]);
        assert_int_equal(mn_journal_append(j, &e), MN_OK);
    }
    mn_journal_entry latin1 = sample(7, 0, MN_OUTCOME_FAILED);
    snprintf(latin1.reason, sizeof latin1.reason, "cannot read /data/caf\xe9/x.png");
    assert_int_equal(mn_journal_append(j, &latin1), MN_OK);
    mn_journal_close(j);

    /* each line is one JSON object whose reason is exactly the string given */
    FILE *f = fopen(path, "r");
    char line[4096];
    assert_non_null(fgets(line, sizeof line, f)); /* settings */
    for (size_t i = 0; i < n; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        assert_int_equal(line[strlen(line) - 1], '\n');
        assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line each */
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o) fail_msg("line %zu is not JSON: %s", i + 2, err.text);
        assert_string_equal(json_string_value(json_object_get(o, "reason")), reasons[i]);
        assert_int_equal(json_integer_value(json_object_get(o, "k")), 2 + (int)i);
        json_decref(o);
    }
    fclose(f);

    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_OK);
    assert_int_equal(mn_journal_count(j), n + 1);
    for (size_t i = 0; i < n; i++) {
        const mn_journal_entry *r = mn_journal_get(j, i);
        assert_int_equal(r->point.k, 2 + (int)i);
        assert_int_equal(r->point.cells, 1);
        assert_int_equal(r->outcome, MN_OUTCOME_PRUNED);
        assert_float_equal(r->val_acc, -1, 0);
        assert_string_equal(r->reason, reasons[i]);
        assert_int_equal(r->macc, 1000003ull * (uint64_t)(2 + i));
    }
    assert_string_equal(mn_journal_get(j, n)->reason, "cannot read /data/caf\xc3\xa9/x.png");
    mn_journal_close(j);

    /* a reason longer than the field is cut on a character boundary, never inside one */
    mn_journal_entry longest = sample(8, 0, MN_OUTCOME_FAILED);
    memset(longest.reason, 0, sizeof longest.reason);
    for (size_t i = 0; i + 1 < sizeof longest.reason; i++)
        longest.reason[i] = (char)(i % 2 ? 0xe9 : 'a'); /* Latin-1: doubles in UTF-8 */
    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_OK);
    assert_int_equal(mn_journal_append(j, &longest), MN_OK);
    mn_journal_close(j);
    assert_int_equal(mn_journal_open(path, SETTINGS, 1, &j), MN_OK);
    const char *cut = mn_journal_get(j, n + 1)->reason;
    size_t len = strlen(cut);
    assert_true(len >= sizeof longest.reason - 3 && len < sizeof longest.reason);
    assert_int_equal((unsigned char)cut[len - 1], 0xa9); /* ends with a whole "é" */
    json_t *s = json_string(cut);
    assert_non_null(s); /* valid UTF-8 */
    json_decref(s);
    mn_journal_close(j);

    /* the --json event line is the journal line */
    char buf[2048];
    int written = mn_journal_format(&latin1, buf, sizeof buf);
    assert_int_equal(written, (int)strlen(buf));
    assert_non_null(strstr(buf, "{\"event\":\"candidate\",\"k\":7,\"cells\":0,\"outcome\":\"failed\","
                                "\"reason\":\"cannot read /data/caf\xc3\xa9/x.png\",\"val_acc\":-1.0,"));
    assert_int_equal(mn_journal_format(&latin1, buf, 10), written); /* snprintf's contract */
    assert_int_equal(strlen(buf), 9);

    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

/* Settings must be a JSON object; a different one names the first key that differs, even
 * when the difference is in a string that contains a quote. */
static void settings_are_checked_as_json(void **state) {
    (void)state;
    char *dir = mn_test_tmpdir("journal");
    char *path = mn_test_path(dir, "journal.jsonl");
    mn_journal *j;
    assert_int_equal(mn_journal_open(path, "{\"data\":\"a\\\"b\",\"seed\":1", 0, &j),
                     MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "not a JSON object"));
    assert_int_not_equal(access(path, F_OK), 0); /* nothing written */
    assert_int_equal(mn_journal_open(path, "[1,2]", 0, &j), MN_ERR_INVALID_ARG);
    const char *a = "{\"event\":\"search\",\"data\":\"x\\\",\\\"seed\\\":2\",\"seed\":1}";
    const char *b = "{\"event\":\"search\",\"data\":\"x\\\",\\\"seed\\\":2\",\"seed\":1,\"top\":3}";
    const char *c = "{\"event\":\"search\",\"data\":\"y\\\",\\\"seed\\\":2\",\"seed\":1}";
    assert_int_equal(mn_journal_open(path, a, 0, &j), MN_OK);
    mn_journal_close(j);
    assert_int_equal(mn_journal_open(path, b, 1, &j), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "(first difference: \"top\")"));
    assert_int_equal(mn_journal_open(path, c, 1, &j), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "(first difference: \"data\")"));
    /* a candidate line that is not JSON names the file, line and column */
    FILE *f = fopen(path, "a");
    fputs("{\"event\":\"candidate\",\"k\":3,,}\n", f);
    fclose(f);
    assert_int_equal(mn_journal_open(path, a, 1, &j), MN_ERR_FORMAT);
    assert_non_null(strstr(mn_error_message(), "journal.jsonl:2: column"));
    unlink(path);
    rmdir(dir);
    free(path);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_and_resume),
        cmocka_unit_test(resume_of_a_missing_journal_starts_fresh),
        cmocka_unit_test(string_values_round_trip),
        cmocka_unit_test(settings_are_checked_as_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
