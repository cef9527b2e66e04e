/* The ranks of an MPI job as the search's workers. Rank 0 coordinates (strategy, journal,
 * plans, report); every other rank serves jobs on a local pool of its own (--workers worker
 * processes of --threads threads) under its own host budget, and is one group of slots.
 *
 * Open MPI (as built by Debian) ends the whole job when a rank dies: survivors cannot go on.
 * Rank 0 journals every outcome as it arrives, so such a job ends with its journal intact,
 * and --resume, with the same or fewer ranks, retrains nothing the journal holds. A worker
 * process that dies inside a rank is replaced by that rank's local pool and its job retried,
 * as on one machine. */
#include "pool.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mcunas/host.h"

enum { TAG_HELLO = 1, TAG_JOB, TAG_DONE, TAG_STOP };

typedef struct rank_hello {
    char node[64];
    int workers;
    uint64_t host_mem, device_mem, base_bytes, runtime_bytes;
    uint32_t data_crc;
    char data[256]; /* the dataset file the rank read */
    int status; /* the rank's pool failed to start: msg */
    char msg[256];
} rank_hello;

typedef struct rank_job {
    int slot; /* the slot within the rank */
    mn_pool_job job;
} rank_job;

typedef struct rank_done {
    mn_pool_done d;
    uint64_t base_bytes; /* the rank's base after the job */
} rank_done;

typedef struct mpi_impl {
    mn_eval_ctx *ctx;
    mn_backend *be; /* rank 0 plans on its own backend: it never forks */
    int size;
} mpi_impl;

static int mpi_ready(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init && !fin) {
        int provided;
        MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        init = 1;
    }
    return init && !fin;
}

int mn_search_mpi_rank(int *size) {
    *size = 1;
    if (!mpi_ready()) return 0;
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return rank;
}

void mn_search_mpi_finish(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Finalize();
}

/* The content of the loaded dataset, so that every rank trains on the same images. */
static uint32_t data_crc(const mn_loaded_data *d) {
    size_t image = mn_shape_count(d->info.shape);
    uLong crc = crc32(0L, Z_NULL, 0);
    const mn_samples *split[2] = {&d->train, &d->test};
    for (int s = 0; s < 2; s++) {
        const unsigned char *p = d->images[s];
        size_t n = split[s]->count * image;
        for (size_t off = 0; p && off < n; off += 1u << 30) {
            size_t len = n - off < (1u << 30) ? n - off : (1u << 30);
            crc = crc32(crc, p + off, (uInt)len);
        }
        if (d->labels[s])
            crc = crc32(crc, (const unsigned char *)d->labels[s], (uInt)(split[s]->count * sizeof(int32_t)));
    }
    return (uint32_t)crc;
}

/* ---- a worker rank ---- */

mn_status mn_search_mpi_serve(mn_eval_ctx *ctx, int workers) {
    if (!mpi_ready()) return mn_error_set(MN_ERR_INVALID_ARG, "MPI is not running");
    mn_pool *local = NULL;
    rank_hello h;
    memset(&h, 0, sizeof h);
    h.status = mn_pool_local_create(ctx, workers > 0 ? workers : 1, &local);
    if (h.status) snprintf(h.msg, sizeof h.msg, "%s", mn_error_message());
    if (gethostname(h.node, sizeof h.node - 1) != 0) snprintf(h.node, sizeof h.node, "?");
    if (local) {
        h.workers = local->n_slots;
        h.base_bytes = local->groups[0].base_bytes;
        h.runtime_bytes = local->groups[0].runtime_bytes;
    }
    h.host_mem = ctx->cfg->host_mem;
    h.device_mem = ctx->cfg->device_mem;
    h.data_crc = data_crc(ctx->data);
    snprintf(h.data, sizeof h.data, "%s", ctx->cfg->data_path ? ctx->cfg->data_path : "the dataset");
    MPI_Send(&h, sizeof h, MPI_BYTE, 0, TAG_HELLO, MPI_COMM_WORLD);
    mn_status st = h.status ? (mn_status)h.status : MN_OK;
    for (int running = local != NULL; running;) {
        int flag = 0;
        MPI_Status ms;
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &ms);
        if (flag) {
            if (ms.MPI_TAG == TAG_STOP) {
                MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                break;
            }
            rank_job j;
            MPI_Recv(&j, sizeof j, MPI_BYTE, 0, TAG_JOB, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if ((st = local->ops->submit(local, j.slot, &j.job))) break;
            continue;
        }
        rank_done rd;
        memset(&rd, 0, sizeof rd);
        int r = local->ops->wait(local, 5, &rd.d);
        if (r < 0) {
            st = MN_ERR_IO;
            break;
        }
        if (r == 1) {
            rd.base_bytes = local->groups[0].base_bytes;
            MPI_Send(&rd, sizeof rd, MPI_BYTE, 0, TAG_DONE, MPI_COMM_WORLD);
        }
    }
    if (local) local->ops->destroy(local);
    MPI_Finalize();
    return st;
}

/* ---- rank 0 ---- */

static mn_status mpi_plan(mn_pool *pool, mn_point p, mn_pool_plan *out) {
    mpi_impl *im = pool->impl;
    im->ctx->budget.runtime_bytes = pool->groups[0].runtime_bytes;
    return mn_search_plan(im->ctx, &im->be, p, out);
}

/* Slots are numbered rank by rank: slot s is worker slot_worker[s] of group slot_group[s],
 * and group g is rank g + 1. */
static mn_status mpi_submit(mn_pool *pool, int slot, const mn_pool_job *job) {
    rank_job j = {pool->slot_worker[slot], *job};
    MPI_Send(&j, sizeof j, MPI_BYTE, pool->groups[pool->slot_group[slot]].rank, TAG_JOB, MPI_COMM_WORLD);
    return MN_OK;
}

static int mpi_wait(mn_pool *pool, int timeout_ms, mn_pool_done *out) {
    for (int waited = 0;; waited++) {
        int flag = 0;
        MPI_Status ms;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_DONE, MPI_COMM_WORLD, &flag, &ms);
        if (flag) {
            rank_done rd;
            MPI_Recv(&rd, sizeof rd, MPI_BYTE, ms.MPI_SOURCE, TAG_DONE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            int g = ms.MPI_SOURCE - 1, first = 0;
            pool->groups[g].base_bytes = (size_t)rd.base_bytes;
            for (int s = 0; s < pool->n_slots; s++)
                if (pool->slot_group[s] == g) {
                    first = s;
                    break;
                }
            *out = rd.d;
            out->slot = first + rd.d.slot;
            return 1;
        }
        if (waited >= timeout_ms) return 0;
        usleep(1000);
    }
}

static size_t mpi_host_bytes(mn_pool *pool) {
    (void)pool;
    return mn_host_rss_bytes(); /* this node's coordinator; the ranks measure their own */
}

static void mpi_destroy(mn_pool *pool) {
    if (!pool) return;
    mpi_impl *im = pool->impl;
    if (im) {
        for (int r = 1; r < im->size; r++) MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
        /* the results of jobs still running are not needed: the ranks end their pools */
        mn_backend_destroy(im->be);
        free(im);
        MPI_Finalize();
    }
    mn_pool_free(pool);
}

static const mn_pool_ops mpi_ops = {mpi_plan, mpi_submit, mpi_wait, mpi_host_bytes, mpi_destroy};

mn_status mn_pool_mpi_create(mn_eval_ctx *ctx, int workers, mn_pool **out) {
    (void)workers; /* each rank's own */
    *out = NULL;
    int size = 1;
    if (mn_search_mpi_rank(&size) != 0)
        return mn_error_set(MN_ERR_INVALID_ARG, "only rank 0 coordinates a search");
    if (size < 2)
        return mn_error_set(MN_ERR_INVALID_ARG, "an MPI search needs at least 2 ranks (rank 0 "
                            "coordinates; the others train)");
    rank_hello *h = calloc((size_t)size, sizeof *h);
    if (!h) return mn_error_set(MN_ERR_NOMEM, "no memory for %d ranks", size);
    int slots = 0;
    for (int r = 1; r < size; r++)
        MPI_Recv(&h[r], sizeof h[r], MPI_BYTE, r, TAG_HELLO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    uint32_t crc = data_crc(ctx->data);
    char self[64] = "?";
    gethostname(self, sizeof self - 1);
    mn_status st = MN_OK;
    for (int r = 1; r < size && !st; r++) {
        if (h[r].status)
            st = mn_error_set((mn_status)h[r].status, "rank %d on %s: %s", r, h[r].node, h[r].msg);
        else if (h[r].data_crc != crc)
            st = mn_error_set(MN_ERR_INVALID_ARG,
                              "rank %d on node %s: %s holds other data than %s on node %s (rank "
                              "0): content crc32 %08x, rank 0 %08x; every node must read the same "
                              "dataset cache",
                              r, h[r].node, h[r].data, ctx->cfg->data_path ? ctx->cfg->data_path : "the dataset",
                              self, h[r].data_crc, crc);
        slots += h[r].workers;
    }
    mn_pool *pool = NULL;
    if (!st) st = mn_pool_alloc(slots, size - 1, &pool);
    mpi_impl *im = st ? NULL : calloc(1, sizeof *im);
    if (!st && !im) st = mn_error_set(MN_ERR_NOMEM, "no memory for an MPI pool");
    if (st) {
        /* the ranks wait for jobs: tell them to end */
        for (int r = 1; r < size; r++) MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
        MPI_Finalize();
        mn_pool_free(pool);
        free(h);
        return st;
    }
    im->ctx = ctx;
    im->size = size;
    pool->impl = im;
    pool->ops = &mpi_ops;
    for (int r = 1, s = 0; r < size; r++) {
        mn_pool_group *g = &pool->groups[r - 1];
        snprintf(g->node, sizeof g->node, "%s", h[r].node);
        g->rank = r;
        g->host_mem = (size_t)h[r].host_mem;
        g->device_mem = (size_t)h[r].device_mem;
        g->base_bytes = (size_t)h[r].base_bytes;
        g->runtime_bytes = (size_t)h[r].runtime_bytes;
        for (int w = 0; w < h[r].workers; w++, s++) {
            pool->slot_group[s] = r - 1;
            pool->slot_worker[s] = w;
        }
    }
    free(h);
    *out = pool;
    return MN_OK;
}
