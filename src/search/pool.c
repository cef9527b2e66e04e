/* What the pools share, and the pool of the search's own process (no workers). */
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mcunas/clock.h"
#include "mcunas/host.h"

mn_status mn_pool_alloc(int n_slots, int n_groups, mn_pool **out) {
    *out = NULL;
    mn_pool *p = calloc(1, sizeof *p);
    if (p) {
        p->slot_group = calloc((size_t)n_slots, sizeof(int));
        p->slot_worker = calloc((size_t)n_slots, sizeof(int));
        p->groups = calloc((size_t)n_groups, sizeof(mn_pool_group));
    }
    if (!p || !p->slot_group || !p->slot_worker || !p->groups) {
        mn_pool_free(p);
        return mn_error_set(MN_ERR_NOMEM, "no memory for a pool of %d workers", n_slots);
    }
    p->n_slots = n_slots;
    p->n_groups = n_groups;
    for (int i = 0; i < n_slots; i++) p->slot_worker[i] = i;
    *out = p;
    return MN_OK;
}

void mn_pool_free(mn_pool *pool) {
    if (!pool) return;
    free(pool->slot_group);
    free(pool->slot_worker);
    free(pool->groups);
    free(pool);
}

int mn_pool_read_within(int fd, void *buf, size_t n, int timeout_ms) {
    char *b = buf;
    const double deadline = mn_time_now() + timeout_ms / 1000.0;
    while (n) {
        if (timeout_ms >= 0) {
            const int left_ms = (int)((deadline - mn_time_now()) * 1000.0);
            if (left_ms <= 0) return -1;
            struct pollfd p = {fd, POLLIN, 0};
            const int ready = poll(&p, 1, left_ms);
            if (ready < 0 && errno == EINTR) continue;
            if (ready < 0) return 0;
            if (ready == 0) continue; /* the deadline is checked above */
        }
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

int mn_pool_read_all(int fd, void *buf, size_t n) {
    return mn_pool_read_within(fd, buf, n, -1) == 1;
}

int mn_pool_write_all(int fd, const void *buf, size_t n) {
    const char *b = buf;
    while (n) {
        /* a socket, so that a peer that died is an error here, not SIGPIPE for the search */
        ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        b += r;
        n -= (size_t)r;
    }
    return 1;
}

/* ---- inline: the job runs in this process when the search waits for it ---- */

typedef struct inline_impl {
    mn_eval_ctx *ctx;
    int pending;
    mn_pool_job job;
} inline_impl;

static mn_status inline_submit(mn_pool *pool, int slot, const mn_pool_job *job) {
    inline_impl *im = pool->impl;
    (void)slot;
    im->job = *job;
    im->pending = 1;
    return MN_OK;
}

static int inline_wait(mn_pool *pool, int timeout_ms, mn_pool_done *out) {
    inline_impl *im = pool->impl;
    (void)timeout_ms;
    if (!im->pending) return 0;
    im->pending = 0;
    memset(out, 0, sizeof *out);
    out->id = im->job.id;
    out->status = mn_search_evaluate(im->ctx, im->job.p, &out->e);
    if (out->status) snprintf(out->msg, sizeof out->msg, "%s", mn_error_message());
    return 1;
}

static size_t inline_host_bytes(mn_pool *pool) {
    (void)pool;
    return mn_host_rss_bytes();
}

static void inline_destroy(mn_pool *pool) {
    if (!pool) return;
    free(pool->impl);
    mn_pool_free(pool);
}

static const mn_pool_ops inline_ops = {NULL, inline_submit, inline_wait, inline_host_bytes, inline_destroy};

mn_status mn_pool_inline_create(mn_eval_ctx *ctx, mn_pool **out) {
    mn_status st = mn_pool_alloc(1, 1, out);
    if (st) return st;
    inline_impl *im = calloc(1, sizeof *im);
    if (!im) {
        mn_pool_free(*out);
        *out = NULL;
        return mn_error_set(MN_ERR_NOMEM, "no memory for a pool");
    }
    im->ctx = ctx;
    (*out)->impl = im;
    (*out)->ops = &inline_ops;
    /* the evaluator measures the runtime's bytes itself, as a search always did */
    ctx->budget.runtime_bytes = mn_search_runtime_bytes(&ctx->budget, ctx->cfg->layout,
                                                        ctx->data->info.shape, ctx->data->info.classes);
    (*out)->groups[0].runtime_bytes = ctx->budget.runtime_bytes;
    (*out)->groups[0].host_mem = ctx->cfg->host_mem;
    (*out)->groups[0].device_mem = ctx->cfg->device_mem;
    if (gethostname((*out)->groups[0].node, sizeof (*out)->groups[0].node - 1) != 0)
        snprintf((*out)->groups[0].node, sizeof (*out)->groups[0].node, "localhost");
    return MN_OK;
}
