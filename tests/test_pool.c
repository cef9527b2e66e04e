/* The search with workers: the same path and winner as a sequential run whatever runs
 * ahead or where, a worker killed mid-candidate costs nothing, and the candidates running at
 * once never plan past the shared host budget. Small and fast: a few tiny candidates, one
 * epoch, single-threaded workers (training is then the same in every process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "search/pool.h"
#include "mcunas/backend.h"
#include "mcunas/dataset.h"
#include "mcunas/journal.h"
#include "mcunas/search.h"
#include "mcunas/target.h"
#include "testutil.h"

static mn_test_fixture fx; /* folder, dataset, targets */

static int setup(void **state) {
    (void)state;
    assert_int_equal(mn_test_fixture_setup(&fx, "pool", 600, 100), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return mn_test_fixture_teardown(&fx);
}

typedef struct recorder {
    mn_journal_entry path[64]; /* what the rules were told, in order */
    int n;
    volatile int stop;
} recorder;

static void on_candidate(void *user, const mn_journal_entry *e, int replayed) {
    recorder *r = user;
    (void)replayed;
    if (r->n < 64) r->path[r->n++] = *e;
}

static void config(mn_search_config *c, recorder *r, const char *journal, mn_strategy_kind kind,
                   int workers, int lookahead) {
    memset(c, 0, sizeof *c);
    memset(r, 0, sizeof *r);
    c->strategy = kind;
    c->layout = MN_LAYOUT_NANONAS;
    c->k_max = 3;
    c->target = mn_target_find(&fx.targets, "stm32l412kbu3");
    assert_non_null(c->target);
    c->epochs = 1;
    c->batch = 8;
    c->adam = (mn_adam){3e-3f, 0.9f, 0.999f, 1e-7f};
    c->val_split = 0.3;
    c->split_seed = 11;
    c->seed = 3;
    c->backend = "cpu";
    c->threads = 1;
    c->workers = workers;
    c->lookahead = lookahead;
    c->journal_path = journal;
    c->settings_json = "{\"event\":\"search\",\"test\":2}";
    c->on_candidate = on_candidate;
    c->user = r;
    c->stop = &r->stop;
}

static void expect_same_path(const recorder *a, const mn_search_result *ra, const recorder *b,
                             const mn_search_result *rb) {
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        if (a->path[i].point.k != b->path[i].point.k || a->path[i].point.cells != b->path[i].point.cells)
            fail_msg("step %d: A(%d,%d) sequentially, A(%d,%d) with workers", i, a->path[i].point.k,
                     a->path[i].point.cells, b->path[i].point.k, b->path[i].point.cells);
        assert_int_equal(a->path[i].outcome, b->path[i].outcome);
        assert_float_equal(a->path[i].val_acc, b->path[i].val_acc, 1e-9);
        assert_int_equal(b->path[i].speculative, 0);
    }
    assert_int_equal(ra->have_winner, rb->have_winner);
    assert_int_equal(ra->winner.k, rb->winner.k);
    assert_int_equal(ra->winner.cells, rb->winner.cells);
    assert_float_equal(ra->winner_val_acc, rb->winner_val_acc, 1e-9);
}

/* Lines of a journal that are speculative / on the path. */
static void count_lines(const char *journal, int *path, int *speculative) {
    mn_journal *j;
    assert_int_equal(mn_journal_open(journal, "{\"event\":\"search\",\"test\":2}", 1, &j), MN_OK);
    *path = *speculative = 0;
    for (size_t i = 0; i < mn_journal_count(j); i++) {
        if (mn_journal_get(j, i)->speculative) (*speculative)++;
        else (*path)++;
    }
    mn_journal_close(j);
}

/* Sequential, 2 workers and 3 workers with look-ahead: the rules visit the same points in the
 * same order with the same scores and keep the same answer; what ran ahead and was never
 * asked is journaled as speculative and counted. */
static void workers_keep_the_sequential_path_and_winner(void **state) {
    (void)state;
    static const mn_strategy_kind kinds[] = {MN_STRATEGY_NANONAS, MN_STRATEGY_GRID};
    for (int k = 0; k < 2; k++) {
        recorder seq, par;
        mn_search_config c;
        mn_search_result rs, rp;
        char name[64];
        snprintf(name, sizeof name, "seq-%d.jsonl", k);
        char *j_seq = mn_test_path(fx.tmpdir, name);
        config(&c, &seq, j_seq, kinds[k], 0, 0);
        assert_int_equal(mn_search_run(&c, &fx.data, &rs), MN_OK);
        assert_true(seq.n >= 4);
        assert_int_equal(rs.speculative + rs.speculative_used, 0);
        for (int w = 2; w <= 3; w++) {
            snprintf(name, sizeof name, "par-%d-%d.jsonl", k, w);
            char *j_par = mn_test_path(fx.tmpdir, name);
            config(&c, &par, j_par, kinds[k], w, 2 * w);
            assert_int_equal(mn_search_run(&c, &fx.data, &rp), MN_OK);
            expect_same_path(&seq, &rs, &par, &rp);
            assert_int_equal(rp.slots, w);
            assert_true(rp.utilisation > 0 && rp.utilisation <= 1.0 + 1e-9);
            int path, spec;
            count_lines(j_par, &path, &spec);
            assert_int_equal(path, seq.n);
            /* every speculative line is either used later (its twin is a path line) or counted
             * as never asked */
            assert_int_equal((size_t)spec, rp.speculative + rp.speculative_used);
            for (int i = 0; i < par.n; i++) {
                assert_true(par.path[i].node[0] != '\0');
                assert_true(par.path[i].worker >= 0 && par.path[i].worker < w);
            }
            free(j_par);
        }
        free(j_seq);
    }
}

/* ---- a worker killed mid-candidate ---- */

typedef struct killer {
    const char *journal;
    int after_lines; /* path lines in the journal before the kill */
    int killed;
    atomic_int running; /* set once the thread runs: its start-up is over */
} killer;

/* The killer thread reads files with open/read into buffers of its own, not stdio: each
 * malloc would take the allocator's lock, and a search forking a worker at that moment
 * (ASan's allocator, unlike glibc's, is not made safe across fork) leaves the child waiting
 * on it for good. */
static size_t read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    for (ssize_t r; fd >= 0 && n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0;) n += (size_t)r;
    if (fd >= 0) close(fd);
    buf[n] = '\0';
    return n;
}

static int journal_lines(const char *path) {
    char buf[65536];
    size_t n = read_file(path, buf, sizeof buf);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
    return lines;
}

#ifdef MN_HAVE_MPI
/* Candidate lines of a journal that the rules asked (not speculative). */
static int path_lines(const char *path) {
    FILE *f = fopen(path, "r");
    char line[8192];
    int n = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) n += strstr(line, "\"speculative\":0") != NULL;
    fclose(f);
    return n;
}
#endif

/* This process's children (the search forked them: the worker and the planner), up to 8. */
static int children(pid_t *pids) {
    char path[64], buf[4096], *save = NULL;
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    read_file(path, buf, sizeof buf);
    int count = 0;
    for (char *tok = strtok_r(buf, " \n", &save); tok && count < 8; tok = strtok_r(NULL, " \n", &save))
        pids[count++] = (pid_t)atoi(tok);
    return count;
}

/* CPU ticks a process has used (utime + stime of /proc/PID/stat); 0 when it is gone. */
static unsigned long cpu_ticks(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    read_file(path, buf, sizeof buf);
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
        return ut + st;
    return 0;
}

/* Once the journal holds after_lines results, kills every child while the busiest one (the
 * worker: training costs far more than planning) is working, so that a job is lost mid-way
 * however slow the machine (a fixed delay missed it under ASan on a loaded machine). */
static void *kill_workers(void *arg) {
    killer *k = arg;
    atomic_store(&k->running, 1);
    for (int tries = 0; tries < 12000 && journal_lines(k->journal) < 1 + k->after_lines; tries++)
        usleep(5000);
    pid_t pids[8];
    for (int tries = 0; tries < 400; tries++) {
        int n = children(pids), busiest = -1;
        unsigned long before[8], most = 0;
        for (int i = 0; i < n; i++) before[i] = cpu_ticks(pids[i]);
        for (int i = 0; i < n; i++)
            if (busiest < 0 || before[i] > most) most = before[i], busiest = i;
        usleep(50000);
        if (busiest >= 0 && cpu_ticks(pids[busiest]) > before[busiest]) {
            for (int i = 0; i < n; i++)
                if (kill(pids[i], SIGKILL) == 0) k->killed++;
            return NULL;
        }
    }
    return NULL;
}

/* One worker, no look-ahead: the worker is always training the point needed now, so the
 * kill lands mid-candidate; the job is re-queued on a new worker and the search ends with a
 * sequential run's path and winner, nothing lost. */
static void killed_worker_costs_nothing(void **state) {
    (void)state;
    recorder seq, par;
    mn_search_config c;
    mn_search_result rs, rp;
    char *j_seq = mn_test_path(fx.tmpdir, "kill-seq.jsonl"), *j_par = mn_test_path(fx.tmpdir, "kill-par.jsonl");
    config(&c, &seq, j_seq, MN_STRATEGY_NANONAS, 0, 0);
    c.epochs = 2;
    assert_int_equal(mn_search_run(&c, &fx.data, &rs), MN_OK);
    config(&c, &par, j_par, MN_STRATEGY_NANONAS, 1, 0);
    c.epochs = 2;
    killer k = {j_par, 2, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, kill_workers, &k), 0);
    /* A new thread allocates while it starts (ASan's thread set-up calls calloc), and GCC
     * 12's ASan takes no allocator lock across fork: a search forking its workers during
     * that allocation hands the child a lock held for good, and the worker hangs until the
     * start deadline. The search starts once the thread runs. */
    while (!atomic_load(&k.running)) usleep(1000);
    mn_status st = mn_search_run(&c, &fx.data, &rp);
    if (st) fail_msg("search with a killed worker: %s", mn_error_message());
    pthread_join(th, NULL);
    assert_true(k.killed >= 1); /* the worker, and the process that plans candidates */
    assert_int_equal(rp.lost, 1);
    expect_same_path(&seq, &rs, &par, &rp);
    free(j_seq);
    free(j_par);
}

/* ---- a worker that never becomes ready ---- */

/* What a new worker's hello is read with: a silent peer is a timeout (the search ends that
 * worker and starts another) rather than a wait without end; part of a message is still
 * silence; a peer that closes is an end of file. */
static void hello_wait_has_a_deadline(void **state) {
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[8];
    assert_int_equal(mn_pool_read_within(sv[0], buf, sizeof buf, 100), -1);
    /* half a message, then silence (what was read is lost: the worker is ended anyway) */
    assert_int_equal(write(sv[1], "abcd", 4), 4);
    assert_int_equal(mn_pool_read_within(sv[0], buf, sizeof buf, 100), -1);
    assert_int_equal(write(sv[1], "12345678", 8), 8);
    assert_int_equal(mn_pool_read_within(sv[0], buf, sizeof buf, 100), 1);
    assert_memory_equal(buf, "12345678", 8);
    /* with no limit (what every other read uses) a message in two parts is one message */
    assert_int_equal(write(sv[1], "wxyz", 4), 4);
    assert_int_equal(write(sv[1], "ABCD", 4), 4);
    assert_int_equal(mn_pool_read_all(sv[0], buf, sizeof buf), 1);
    assert_memory_equal(buf, "wxyzABCD", 8);
    close(sv[1]);
    assert_int_equal(mn_pool_read_within(sv[0], buf, 4, 100), 0);
    assert_int_equal(mn_pool_read_all(sv[0], buf, 4), 0);
    close(sv[0]);
    /* the limit is the operator's to change, and checked */
    recorder r;
    mn_search_config c;
    mn_search_result res;
    char *j = mn_test_path(fx.tmpdir, "start-timeout.jsonl");
    config(&c, &r, j, MN_STRATEGY_GRID, 1, 0);
    setenv("MCUNAS_WORKER_START_TIMEOUT", "soon", 1);
    assert_int_equal(mn_search_run(&c, &fx.data, &res), MN_ERR_INVALID_ARG);
    assert_non_null(strstr(mn_error_message(), "MCUNAS_WORKER_START_TIMEOUT"));
    unsetenv("MCUNAS_WORKER_START_TIMEOUT");
    free(j);
}

/* ---- the shared budget ---- */

/* A grid with 3 workers under a host budget that holds the biggest candidate's training
 * beside the smallest's but no three at once: every plan of what ran at once stays under the budget, two did run
 * at once, and the measured memory of the whole search stays under it too. */
static void shared_budget_on(const char *backend) {
    recorder r;
    mn_search_config c;
    mn_search_result res;
    char name[64];
    /* learn each candidate's own bytes: without look-ahead one runs at a time */
    snprintf(name, sizeof name, "budget-free-%s.jsonl", backend);
    char *j_free = mn_test_path(fx.tmpdir, name);
    config(&c, &r, j_free, MN_STRATEGY_GRID, 3, 0);
    c.backend = backend;
    c.k_max = 2;
    mn_status st = mn_search_run(&c, &fx.data, &res);
    if (st == MN_ERR_UNSUPPORTED) { /* built in, but not on this machine (no GPU driver) */
        print_message("backend '%s' not checked: %s\n", backend, mn_error_message());
        free(j_free);
        return;
    }
    if (st) fail_msg("%s: %s", backend, mn_error_message());
    uint64_t base = res.base_host_bytes, own_min = UINT64_MAX, own_max = 0;
    assert_true(base > 0);
    for (int i = 0; i < r.n; i++) {
        if (r.path[i].outcome != MN_OUTCOME_SCORED) continue;
        uint64_t own = r.path[i].host_added_bytes;
        assert_true(own > 0 && r.path[i].joint_planned_bytes > own);
        if (own < own_min) own_min = own;
        if (own > own_max) own_max = own;
    }
    /* the biggest beside the smallest fit, and on cpu no three do (what the processes hold
     * besides the candidates differs from run to run: 5% of it is left spare, 25% where an
     * OpenCL runtime's libraries and caches are most of it) */
    /* under ASan the allocator's quarantine and shadow make the figures vary more than the
     * spare allows: only the budget's invariants are checked there */
    int cpu = !strcmp(backend, "cpu") && !MN_UNDER_ASAN;
    /* What the processes hold besides the candidates moves between runs (shared libraries'
     * pages are shared with whatever else runs on the machine: their proportional share
     * changes), so where the budgeted run never ran two at once, or its base grew so that
     * fewer than three fitted, the budget is learnt again from that run's own base, up to
     * three times. Every run must keep the invariants. */
    int two_at_once = 0;
    for (int attempt = 0; attempt < 3 && !two_at_once; attempt++) {
        size_t budget = (size_t)(base + base / (cpu ? 20 : 4) + own_max + own_min + own_min / 8);
        if (cpu && !(budget < base + 3 * own_min))
            fail_msg("%s: own bytes from %llu to %llu (base %llu): no budget holds two but not three",
                     backend, (unsigned long long)own_min, (unsigned long long)own_max,
                     (unsigned long long)base);
        snprintf(name, sizeof name, "budget-%s-%d.jsonl", backend, attempt);
        char *j = mn_test_path(fx.tmpdir, name);
        recorder b;
        config(&c, &b, j, MN_STRATEGY_GRID, 3, 6);
        c.backend = backend;
        c.k_max = 2;
        c.host_mem = budget;
        if ((st = mn_search_run(&c, &fx.data, &res))) fail_msg("%s: %s", backend, mn_error_message());
        if (res.max_joint_planned_bytes > budget)
            fail_msg("%s: candidates planned %llu bytes at once, the budget is %zu", backend,
                     (unsigned long long)res.max_joint_planned_bytes, budget);
        /* two at once (on cpu: an OpenCL runtime's resident caches grow in each worker over
         * a run, so a budget learnt from one run may hold only one candidate in the next) */
        two_at_once = !cpu || res.max_joint_planned_bytes > res.base_host_bytes + own_max;
        if (!two_at_once && attempt == 2)
            fail_msg("%s: never two at once in three runs (largest plan %llu, base %llu)", backend,
                     (unsigned long long)res.max_joint_planned_bytes,
                     (unsigned long long)res.base_host_bytes);
        assert_true(res.peak_search_host_bytes > 0);
        if (!MN_UNDER_ASAN && res.peak_search_host_bytes > budget)
            fail_msg("%s: the search measured %llu bytes, the budget is %zu", backend,
                     (unsigned long long)res.peak_search_host_bytes, budget);
        mn_journal *jr;
        assert_int_equal(mn_journal_open(j, "{\"event\":\"search\",\"test\":2}", 1, &jr), MN_OK);
        int scored = 0;
        for (size_t i = 0; i < mn_journal_count(jr); i++) {
            const mn_journal_entry *e = mn_journal_get(jr, i);
            if (e->outcome != MN_OUTCOME_SCORED) continue;
            scored++;
            assert_true(e->joint_planned_bytes <= budget);
            if (!MN_UNDER_ASAN && e->host_measured_bytes > e->host_planned_bytes)
                fail_msg("%s A(%d,%d): measured %llu > planned %llu", backend, e->point.k,
                         e->point.cells, (unsigned long long)e->host_measured_bytes,
                         (unsigned long long)e->host_planned_bytes);
        }
        /* A base that grew past the budget's allowance (another process that shared our
         * libraries ended) prunes candidates with the figures, as it should: learn again. */
        if (scored < 3 && attempt < 2 && res.base_host_bytes > base) {
            print_message("%s: %d scored: the base moved from %llu to %llu; the budget is learnt again\n",
                          backend, scored, (unsigned long long)base, (unsigned long long)res.base_host_bytes);
            two_at_once = 0;
        } else if (scored < 3) {
            fail_msg("%s: %d scored under a budget of %zu (base %llu); first: %s", backend, scored,
                     budget, (unsigned long long)res.base_host_bytes, mn_journal_get(jr, 0)->reason);
        }
        mn_journal_close(jr);
        free(j);
        base = res.base_host_bytes;
    }
    free(j_free);
}

static void shared_budget_holds(void **state) {
    (void)state;
    char names[256];
    snprintf(names, sizeof names, "%s", mn_backend_available());
    for (char *b = strtok(names, ", "); b; b = strtok(NULL, ", ")) shared_budget_on(b);
}

#ifdef MN_HAVE_MPI
/* ---- MPI: the CLI under mpirun ---- */

#include <sys/wait.h>

/* mpirun [-np ranks] mcunas search ... on the test's data; returns the exit code. With
 * kill_after, the rank 1 process is killed with SIGKILL once the journal holds that many
 * candidate lines. `other_data`: rank 1 reads this file instead (MPMD). */
static int run_mpi(int ranks, const char *out, int resume, int kill_after, const char *other_data) {
    const char *bin = mn_test_bin();
    char np[16], np1[16];
    snprintf(np, sizeof np, "%d", other_data ? 1 : ranks);
    snprintf(np1, sizeof np1, "%d", ranks - 1);
    pid_t pid = fork();
    if (pid == 0) {
        char errfile[4200];
        snprintf(errfile, sizeof errfile, "%s.stderr", out);
        int devnull = open("/dev/null", O_WRONLY), err = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(devnull, 1);
        dup2(err, 2);
        setpgid(0, 0);
        /* Open MPI's runtime keeps allocations to the end of the process, which LeakSanitizer
         * would report as the search's; the CLI's own leaks are checked without MPI */
        if (MN_UNDER_ASAN) setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
        const char *argv[64];
        int n = 0;
        argv[n++] = "mpirun";
        if (geteuid() == 0) argv[n++] = "--allow-run-as-root";
        argv[n++] = "--oversubscribe";
        const char *rest[] = {"--target", "stm32l412kbu3", "--out", out, "--k-max", "3", "--epochs", "1",
                              "--batch", "8", "--lr", "3e-3", "--seed", "3", "--threads", "1",
                              "--workers", "1", "--final-epochs", "1", "--quiet"};
        const int n_rest = (int)(sizeof rest / sizeof rest[0]);
        for (int part = 0; part < (other_data ? 2 : 1); part++) {
            if (part) argv[n++] = ":";
            argv[n++] = "-np";
            argv[n++] = part ? np1 : np;
            argv[n++] = bin;
            argv[n++] = "search";
            argv[n++] = "--data";
            argv[n++] = part ? other_data : fx.data_path;
            for (int i = 0; i < n_rest; i++) argv[n++] = rest[i];
            if (resume) argv[n++] = "--resume";
        }
        argv[n] = NULL;
        execvp("mpirun", (char *const *)argv);
        _exit(127);
    }
    if (kill_after) {
        char journal[4200];
        snprintf(journal, sizeof journal, "%s/journal.jsonl", out);
        for (int tries = 0; tries < 12000 && path_lines(journal) < kill_after; tries++) usleep(5000);
        /* rank 1: the process whose environment says OMPI_COMM_WORLD_RANK=1 */
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
            char path[300], env[65536];
            snprintf(path, sizeof path, "/proc/%s/environ", de->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            size_t len = fread(env, 1, sizeof env - 1, f);
            fclose(f);
            int rank1 = 0, ours = 0;
            for (size_t i = 0; i < len; i += strlen(env + i) + 1) {
                env[len] = '\0';
                if (!strcmp(env + i, "OMPI_COMM_WORLD_RANK=1")) rank1 = 1;
                if (!strncmp(env + i, "MN_TEST_TMPDIR=", 15) && strstr(out, env + i + 15)) ours = 1;
            }
            if (rank1 && ours) kill((pid_t)atoi(de->d_name), SIGKILL);
        }
        if (d) closedir(d);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The path of a journal (its non-speculative lines) as points and scores. */
static int journal_path(const char *out, mn_journal_entry *e, int max) {
    char path[4200];
    snprintf(path, sizeof path, "%s/journal.jsonl", out);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    char settings[4096] = "";
    if (!fgets(settings, sizeof settings, f)) settings[0] = '\0';
    fclose(f);
    settings[strcspn(settings, "\n")] = '\0';
    mn_journal *j;
    if (mn_journal_open(path, settings, 1, &j)) return 0;
    int n = 0;
    for (size_t i = 0; i < mn_journal_count(j) && n < max; i++)
        if (!mn_journal_get(j, i)->speculative) e[n++] = *mn_journal_get(j, i);
    mn_journal_close(j);
    (void)line;
    return n;
}

/* mpirun -np 3: the sequential path and winner; a rank killed mid-search ends the job (Open
 * MPI's runtime does not let survivors go on) with the journal intact, and --resume with
 * fewer ranks finishes it to the same winner without retraining what the journal holds; a
 * rank reading other data is refused, naming its node and file. */
static void mpi_search_matches_and_survives_a_killed_rank(void **state) {
    (void)state;
    if (!mn_test_bin()) skip();
    char *seq = mn_test_path(fx.tmpdir, "mpi-seq"), *par = mn_test_path(fx.tmpdir, "mpi-par");
    char *cut = mn_test_path(fx.tmpdir, "mpi-killed"), *bad = mn_test_path(fx.tmpdir, "mpi-bad");
    assert_int_equal(run_mpi(1, seq, 0, 0, NULL), 0); /* one rank: no MPI pool, one worker */
    assert_int_equal(run_mpi(3, par, 0, 0, NULL), 0);
    mn_journal_entry a[64], b[64], c[64];
    int na = journal_path(seq, a, 64), nb = journal_path(par, b, 64);
    assert_true(na >= 4);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        assert_int_equal(a[i].point.k, b[i].point.k);
        assert_int_equal(a[i].point.cells, b[i].point.cells);
        assert_float_equal(a[i].val_acc, b[i].val_acc, 1e-9);
        assert_true(b[i].rank >= 1 && b[i].rank <= 2); /* trained on the worker ranks */
    }

    int rc = run_mpi(3, cut, 0, 2, NULL);
    assert_int_not_equal(rc, 0);
    int before = journal_path(cut, c, 64);
    assert_true(before >= 2);
    mn_journal_entry kept[64];
    memcpy(kept, c, sizeof kept);
    assert_int_equal(run_mpi(2, cut, 1, 0, NULL), 0); /* fewer ranks */
    int after = journal_path(cut, c, 64);
    assert_int_equal(after, na);
    for (int i = 0; i < na; i++) {
        assert_int_equal(c[i].point.k, a[i].point.k);
        assert_int_equal(c[i].point.cells, a[i].point.cells);
        assert_float_equal(c[i].val_acc, a[i].val_acc, 1e-9);
    }
    for (int i = 0; i < before; i++) /* nothing the journal held was trained again */
        assert_float_equal(c[i].seconds, kept[i].seconds, 1e-9);

    /* rank 1 reads another dataset: refused, naming the node and the file */
    char *other = mn_test_path(fx.tmpdir, "other.h5");
    assert_true(mn_test_write_brightness_dataset(other, 16, 16, 600, 100, 6));
    assert_int_not_equal(run_mpi(2, bad, 0, 0, other), 0);
    char errfile[4200], msg[8192];
    snprintf(errfile, sizeof errfile, "%s.stderr", bad);
    FILE *f = fopen(errfile, "r");
    assert_non_null(f);
    size_t n = fread(msg, 1, sizeof msg - 1, f);
    fclose(f);
    msg[n] = '\0';
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    if (!strstr(msg, other) || !strstr(msg, host) || !strstr(msg, "rank 1"))
        fail_msg("the refusal names neither the node nor the file: %s", msg);
    free(other);
    free(seq);
    free(par);
    free(cut);
    free(bad);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_budget_holds),
        cmocka_unit_test(workers_keep_the_sequential_path_and_winner),
        cmocka_unit_test(killed_worker_costs_nothing),
        cmocka_unit_test(hello_wait_has_a_deadline),
#ifdef MN_HAVE_MPI
        cmocka_unit_test(mpi_search_matches_and_survives_a_killed_rank),
#endif
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
