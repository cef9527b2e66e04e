/* Worker processes on this machine, forked from the search and talking over socket pairs.
 *
 * Processes rather than threads: a worker that crashes or is OOM-killed takes only its own
 * candidate with it (the search sees its socket close and re-queues the job), and the kernel's
 * peak resident set, which the evaluator resets and reads per candidate, is per process.
 * Forked, a worker shares the loaded dataset with the search copy-on-write: those pages are
 * held once. libgomp's thread pool does not survive fork (the child's first parallel region
 * would wait for threads that were not copied), so each worker runs from a fresh thread of
 * its own, which gets a fresh OpenMP pool. A worker dies with the search (PR_SET_PDEATHSIG),
 * so a killed search leaves no orphans training on. */
#include "pool.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcunas/host.h"

/* A worker that cannot allocate its own start-up state exits with this code, so the search
 * can say it ran out of memory rather than that the worker died. */
#define CHILD_EXIT_NOMEM 3
/* How long a new worker may take to say hello, in seconds: making its backend (an OpenCL
 * runtime may compile its kernels first, slowly under a sanitizer on a busy machine) takes
 * seconds. MCUNAS_WORKER_START_TIMEOUT=S changes it (a very slow machine; the tests). */
#define MN_WORKER_START_S 300

typedef struct worker {
    pid_t pid;
    size_t idle_bytes; /* its proportional set size between jobs */
    int to_fd, from_fd; /* job socket (we write), result socket (we read) */
    int busy;
    mn_pool_job job;
} worker;

typedef struct local_impl {
    mn_eval_ctx *ctx;
    int n;
    worker *w;
    worker planner; /* plans candidates on a backend of its own (slot -1) */
    int start_s;    /* seconds a new worker may take to be ready */
} local_impl;

typedef struct plan_req {
    mn_point p;
    uint64_t runtime_bytes;
} plan_req;

typedef struct plan_resp {
    int status;
    char msg[256];
    mn_pool_plan plan;
} plan_resp;

typedef struct hello {
    uint64_t runtime_bytes;
    uint64_t idle_bytes;
    int status; /* the worker cannot serve: msg says why */
    char msg[256];
} hello;

/* A process's proportional set size: its resident pages, each shared page divided among
 * the processes sharing it (the data the workers share with the search, the pages of the
 * libraries they all map), so that a sum over the processes counts every page once. */
static size_t pss(pid_t pid);

typedef struct child_arg {
    mn_eval_ctx ctx;
    mn_search_config cfg;
    int in_fd, out_fd, slot;
} child_arg;

/* The planner's side: a backend made once, then a plan per request. The search's own process
 * creates no backend, so that a worker forked later (a replacement) inherits no backend's
 * runtime state: OpenCL implementations, like libgomp, do not survive fork. */
static void planner_main(child_arg *a) {
    mn_eval_ctx *ctx = &a->ctx;
    mn_backend *be = NULL;
    mn_backend_options bo = {ctx->budget.threads, ctx->budget.device};
    hello h;
    memset(&h, 0, sizeof h);
    h.status = mn_backend_create(ctx->budget.backend ? ctx->budget.backend : "cpu", &bo, &be);
    if (h.status) snprintf(h.msg, sizeof h.msg, "%s", mn_error_message());
    if (!mn_pool_write_all(a->out_fd, &h, sizeof h) || h.status) return;
    plan_req req;
    while (mn_pool_read_all(a->in_fd, &req, sizeof req)) {
        plan_resp r;
        memset(&r, 0, sizeof r);
        ctx->budget.runtime_bytes = (size_t)req.runtime_bytes;
        r.status = mn_search_plan(ctx, &be, req.p, &r.plan);
        if (r.status) snprintf(r.msg, sizeof r.msg, "%s", mn_error_message());
        if (!mn_pool_write_all(a->out_fd, &r, sizeof r)) break;
    }
    mn_backend_destroy(be);
}

/* The worker's side: warm up (its own runtime bytes), say hello, then evaluate jobs until
 * its job socket closes. */
static void *child_main(void *arg) {
    child_arg *a = arg;
    mn_eval_ctx *ctx = &a->ctx;
    if (a->slot < 0) {
        planner_main(a);
        return NULL;
    }
    ctx->budget.runtime_bytes = mn_search_runtime_bytes(&ctx->budget, a->cfg.layout,
                                                        ctx->data->info.shape, ctx->data->info.classes);
    hello h;
    memset(&h, 0, sizeof h);
    h.runtime_bytes = ctx->budget.runtime_bytes;
    h.idle_bytes = pss(getpid());
    if (!mn_pool_write_all(a->out_fd, &h, sizeof h)) return NULL;
    mn_pool_job job;
    while (mn_pool_read_all(a->in_fd, &job, sizeof job)) {
        mn_pool_done d;
        memset(&d, 0, sizeof d);
        d.id = job.id;
        d.slot = a->slot;
        d.status = mn_search_evaluate(ctx, job.p, &d.e);
        if (d.status) snprintf(d.msg, sizeof d.msg, "%s", mn_error_message());
#ifdef __GLIBC__
        /* Hand back what the candidate freed (its backend, oneDNN's primitives): an idle
         * worker holds only its runtime, and the base the budget counts stays put. */
        malloc_trim(0);
#endif
        d.idle_bytes = pss(getpid());
        if (!mn_pool_write_all(a->out_fd, &d, sizeof d)) break;
    }
    _exit(0); /* the process ends here: nothing of the search's to tear down */
}

/* Forks worker `slot` and waits for its hello. */
static mn_status spawn_once(local_impl *im, int slot, size_t *runtime_bytes, int *killed) {
    int to[2], from[2]; /* [0] the reading end, [1] the writing end */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to) != 0)
        return mn_error_set(MN_ERR_IO, "cannot create a socket pair for worker %d: %s", slot, strerror(errno));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, from) != 0) {
        close(to[0]);
        close(to[1]);
        return mn_error_set(MN_ERR_IO, "cannot create a socket pair for worker %d: %s", slot, strerror(errno));
    }
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        return mn_error_set(MN_ERR_IO, "cannot start worker %d: %s", slot, strerror(errno));
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1); /* the search died before the line above */
        close(to[1]);
        close(from[0]);
        for (int i = 0; i < im->n; i++) /* the other workers' sockets */
            if (im->w[i].pid > 0) {
                close(im->w[i].to_fd);
                close(im->w[i].from_fd);
            }
        if (im->planner.pid > 0) {
            close(im->planner.to_fd);
            close(im->planner.from_fd);
        }
        child_arg *a = calloc(1, sizeof *a);
        if (!a) _exit(CHILD_EXIT_NOMEM);
        /* the worker's own configuration: no progress output from several processes */
        a->cfg = *im->ctx->cfg;
        a->cfg.on_candidate = NULL;
        a->cfg.on_train_progress = NULL;
        a->ctx = *im->ctx;
        a->ctx.cfg = &a->cfg;
        a->in_fd = to[0];
        a->out_fd = from[1];
        a->slot = slot;
        pthread_t th;
        if (pthread_create(&th, NULL, child_main, a) != 0) _exit(CHILD_EXIT_NOMEM);
        pthread_join(th, NULL);
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    worker *w = slot < 0 ? &im->planner : &im->w[slot];
    memset(w, 0, sizeof *w);
    w->pid = pid;
    w->to_fd = to[1];
    w->from_fd = from[0];
    hello h;
    const int got = mn_pool_read_within(w->from_fd, &h, sizeof h, im->start_s * 1000);
    if (got <= 0) {
        /* Alive but silent: the child of a fork inherits the locks other threads held at
         * that moment (an allocator's, a runtime's), and one held for good stops it before
         * its hello. It is ended, and started once more like a worker killed while starting. */
        if (got < 0) kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        close(w->to_fd);
        close(w->from_fd);
        w->pid = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_NOMEM)
            return mn_error_set(MN_ERR_NOMEM, "worker %d ran out of memory while starting", slot);
        *killed = WIFSIGNALED(status);
        if (got < 0)
            return mn_error_set(MN_ERR_BACKEND, "worker %d was not ready after %d s (MCUNAS_WORKER_START_TIMEOUT)",
                                slot, im->start_s);
        return mn_error_set(MN_ERR_BACKEND, "worker %d ended before it was ready (status %d)", slot, status);
    }
    if (h.status) { /* it said why it cannot serve, and ends */
        waitpid(pid, NULL, 0);
        close(w->to_fd);
        close(w->from_fd);
        w->pid = 0;
        return mn_error_set((mn_status)h.status, "%s", h.msg);
    }
    if (runtime_bytes) *runtime_bytes = (size_t)h.runtime_bytes;
    w->idle_bytes = (size_t)h.idle_bytes;
    return MN_OK;
}

/* Starts worker `slot` (the planner for -1). One killed by a signal while it started (the
 * kernel's OOM killer, an operator) is started once more, as a job that dies is retried. */
static mn_status spawn(local_impl *im, int slot, size_t *runtime_bytes) {
    int killed = 0;
    mn_status st = spawn_once(im, slot, runtime_bytes, &killed);
    if (st == MN_ERR_BACKEND && killed) st = spawn_once(im, slot, runtime_bytes, &killed);
    return st;
}

/* "key: N kB" of /proc/PID/smaps_rollup, in bytes. */
static size_t rollup(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t klen = strlen(key), v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0) {
            unsigned long long kib = 0;
            if (sscanf(line + klen, " %llu", &kib) == 1) v = (size_t)kib * 1024;
            break;
        }
    fclose(f);
    return v;
}

static size_t pss(pid_t pid) { return rollup(pid, "Pss:"); }

/* What the node holds besides the candidates running now: the search (and the data its
 * workers share), the planner, each worker between jobs, every shared page once. Backends'
 * runtimes keep caches after a candidate (an OpenCL implementation's compiled programs and
 * libraries, allocator arenas), so it is read anew after every job rather than once. */
static void update_base(mn_pool *pool) {
    local_impl *im = pool->impl;
    size_t base = pss(getpid());
    if (im->planner.pid > 0) base += pss(im->planner.pid);
    for (int i = 0; i < im->n; i++)
        if (im->w[i].pid > 0) base += im->w[i].idle_bytes;
    pool->groups[0].base_bytes = base;
}

static mn_status local_plan(mn_pool *pool, mn_point p, mn_pool_plan *out) {
    local_impl *im = pool->impl;
    plan_req req = {p, pool->groups[0].runtime_bytes};
    plan_resp r;
    int ok = 0;
    for (int attempt = 0; attempt < 2 && !ok; attempt++) {
        ok = mn_pool_write_all(im->planner.to_fd, &req, sizeof req) &&
             mn_pool_read_all(im->planner.from_fd, &r, sizeof r);
        if (!ok) { /* the planner died (killed, out of memory): one replacement */
            int status = 0;
            waitpid(im->planner.pid, &status, 0);
            close(im->planner.to_fd);
            close(im->planner.from_fd);
            im->planner.pid = 0;
            if (attempt == 0) {
                mn_status st = spawn(im, -1, NULL);
                if (st) return st;
            }
        }
    }
    if (!ok)
        return mn_error_set(MN_ERR_BACKEND, "the planner process ended twice while planning A(%d,%d)",
                            p.k, p.cells);
    if (r.status) return mn_error_set((mn_status)r.status, "%s", r.msg);
    *out = r.plan;
    return MN_OK;
}

static mn_status local_submit(mn_pool *pool, int slot, const mn_pool_job *job) {
    local_impl *im = pool->impl;
    worker *w = &im->w[slot];
    if (w->busy) return mn_error_set(MN_ERR_INVALID_ARG, "worker %d is busy", slot);
    w->job = *job;
    w->busy = 1;
    /* a write to a worker that just died fails; its end shows in wait as a lost job */
    mn_pool_write_all(w->to_fd, job, sizeof *job);
    return MN_OK;
}

/* Worker `slot` closed its socket: reap it, report its job lost and start another. */
static int lost(mn_pool *pool, int slot, mn_pool_done *out) {
    local_impl *im = pool->impl;
    worker *w = &im->w[slot];
    int status = 0;
    waitpid(w->pid, &status, 0);
    close(w->to_fd);
    close(w->from_fd);
    memset(out, 0, sizeof *out);
    out->slot = slot;
    out->lost = 1;
    out->id = w->job.id;
    if (WIFSIGNALED(status))
        snprintf(out->msg, sizeof out->msg, "worker %d (pid %d) was killed by signal %d%s", slot,
                 (int)w->pid, WTERMSIG(status), WTERMSIG(status) == SIGKILL ? " (out of memory?)" : "");
    else
        snprintf(out->msg, sizeof out->msg, "worker %d (pid %d) exited with status %d", slot,
                 (int)w->pid, WEXITSTATUS(status));
    int had_job = w->busy;
    w->pid = 0;
    w->busy = 0;
    if (spawn(im, slot, NULL)) return -1;
    update_base(pool);
    return had_job;
}

static int local_wait(mn_pool *pool, int timeout_ms, mn_pool_done *out) {
    local_impl *im = pool->impl;
    struct pollfd fds[256];
    int n = im->n < 256 ? im->n : 256;
    for (int i = 0; i < n; i++) {
        fds[i].fd = im->w[i].from_fd;
        fds[i].events = POLLIN;
        fds[i].revents = 0;
    }
    int r = poll(fds, (nfds_t)n, timeout_ms);
    if (r < 0 && errno != EINTR) {
        mn_error_set(MN_ERR_IO, "waiting for the workers: %s", strerror(errno));
        return -1;
    }
    if (r <= 0) return 0;
    for (int i = 0; i < n; i++) {
        if (!fds[i].revents) continue;
        worker *w = &im->w[i];
        if (!mn_pool_read_all(w->from_fd, out, sizeof *out)) {
            int got = lost(pool, i, out);
            if (got != 0) return got; /* 1: a lost job; -1: no new worker */
            continue;                 /* an idle worker died and was replaced */
        }
        out->slot = i;
        out->lost = 0;
        w->busy = 0;
        w->idle_bytes = (size_t)out->idle_bytes;
        update_base(pool);
        return 1;
    }
    return 0;
}

static size_t local_host_bytes(mn_pool *pool) {
    local_impl *im = pool->impl;
    size_t total = pss(getpid());
    if (im->planner.pid > 0) total += pss(im->planner.pid);
    for (int i = 0; i < im->n; i++)
        if (im->w[i].pid > 0) total += pss(im->w[i].pid);
    return total;
}

static void local_destroy(mn_pool *pool) {
    if (!pool) return;
    local_impl *im = pool->impl;
    if (im) {
        for (int i = 0; i < im->n; i++)
            if (im->w[i].pid > 0) {
                close(im->w[i].to_fd); /* an idle worker ends when its job socket closes */
                if (im->w[i].busy) kill(im->w[i].pid, SIGKILL); /* speculation nobody needs */
            }
        for (int i = 0; i < im->n; i++)
            if (im->w[i].pid > 0) {
                waitpid(im->w[i].pid, NULL, 0);
                close(im->w[i].from_fd);
            }
        if (im->planner.pid > 0) {
            close(im->planner.to_fd);
            waitpid(im->planner.pid, NULL, 0);
            close(im->planner.from_fd);
        }
        free(im->w);
        free(im);
    }
    mn_pool_free(pool);
}

static const mn_pool_ops local_ops = {local_plan, local_submit, local_wait, local_host_bytes, local_destroy};

mn_status mn_pool_local_create(mn_eval_ctx *ctx, int workers, mn_pool **out) {
    *out = NULL;
    if (workers < 1 || workers > 256)
        return mn_error_set(MN_ERR_INVALID_ARG, "workers must be in [1, 256] (got %d)", workers);
    int start_s = MN_WORKER_START_S;
    const char *v = getenv("MCUNAS_WORKER_START_TIMEOUT");
    if (v && *v) {
        char *end;
        long t = strtol(v, &end, 10);
        if (*end || t < 1 || t > 86400)
            return mn_error_set(MN_ERR_INVALID_ARG, "MCUNAS_WORKER_START_TIMEOUT must be seconds in [1, 86400], got '%s'", v);
        start_s = (int)t;
    }
    mn_pool *pool;
    mn_status st = mn_pool_alloc(workers, 1, &pool);
    if (st) return st;
    local_impl *im = calloc(1, sizeof *im);
    if (im) im->w = calloc((size_t)workers, sizeof(worker));
    if (!im || !im->w) {
        if (im) free(im);
        mn_pool_free(pool);
        return mn_error_set(MN_ERR_NOMEM, "no memory for %d workers", workers);
    }
    im->ctx = ctx;
    im->n = workers;
    im->start_s = start_s;
    pool->impl = im;
    pool->ops = &local_ops;
    mn_pool_group *g = &pool->groups[0];
    g->host_mem = ctx->cfg->host_mem;
    g->device_mem = ctx->cfg->device_mem;
    if (gethostname(g->node, sizeof g->node - 1) != 0) snprintf(g->node, sizeof g->node, "localhost");
    for (int i = 0; i < workers && !st; i++) {
        size_t rt = 0;
        st = spawn(im, i, &rt);
        if (rt > g->runtime_bytes) g->runtime_bytes = rt;
    }
    if (!st) st = spawn(im, -1, NULL);
    if (!st) update_base(pool);
    if (st) {
        local_destroy(pool);
        return st;
    }
    *out = pool;
    return MN_OK;
}
