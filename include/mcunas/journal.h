/* The search journal: DIR/journal.jsonl, one JSON object per line. The first line describes
 * the search (its settings); every further line is one evaluated candidate, written with a
 * single write() and fsync()ed, so a search killed at any moment loses at most the line
 * being written. Resuming reads the file back, drops a torn last line, checks that the
 * settings match and replays the candidates into the strategy. */
#ifndef MCUNAS_JOURNAL_H
#define MCUNAS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mcunas/status.h"
#include "mcunas/strategy.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_JOURNAL_VERSION 1

typedef struct mn_journal_entry {
    mn_point point;
    mn_outcome outcome;
    char reason[256];            /* why infeasible/pruned/failed; "" when scored */
    double val_acc;              /* the score; -1 when not trained */
    uint64_t macc;
    uint64_t params;
    uint64_t flash_bytes;        /* 0 when not computed */
    uint64_t ram_bytes;
    double latency_ms;           /* -1 when not computed */
    uint64_t host_planned_bytes;
    uint64_t host_measured_bytes;   /* 0 when not trained */
    uint64_t device_planned_bytes;
    uint64_t device_measured_bytes; /* 0 when not trained */
    double seconds;              /* wall time spent on this candidate */
    /* where and when it ran (search.h: workers, MPI ranks) */
    int speculative;             /* evaluated ahead of need and not yet asked by the rules when
                                  * written; a point the rules reach later gets its own line */
    char node[64];               /* host name of the machine that evaluated it */
    int rank, worker;            /* MPI rank (0 without MPI) and worker slot on that rank */
    double started;              /* seconds from the start of the candidate phase */
    uint64_t joint_planned_bytes; /* the host plan of everything running on that node when it
                                   * started, itself included (0 when not trained) */
    uint64_t host_added_bytes;   /* its part of that plan: what its training adds to the node */
} mn_journal_entry;

void mn_journal_entry_init(mn_journal_entry *e, mn_point p);

typedef struct mn_journal mn_journal;

/* Opens DIR/journal.jsonl. `settings` is a JSON object (one line, no newline; anything else
 * is MN_ERR_INVALID_ARG before the file is touched) written as the first line of a new
 * journal; with `resume`, an existing journal must start with exactly these settings
 * (else MN_ERR_INVALID_ARG naming the first differing key) and its entries become readable.
 * Without `resume`, an existing non-empty journal is an error (never overwritten). */
mn_status mn_journal_open(const char *path, const char *settings, int resume, mn_journal **out);
void mn_journal_close(mn_journal *j);

size_t mn_journal_count(const mn_journal *j);
const mn_journal_entry *mn_journal_get(const mn_journal *j, size_t i);

/* Appends (and keeps in memory) one entry; durable when this returns MN_OK. */
mn_status mn_journal_append(mn_journal *j, const mn_journal_entry *e);

/* The line a journal would write for an entry (for --json event streams), without the
 * newline. Returns its length as snprintf does (truncated to size - 1 when longer), -1 when
 * out of memory. */
int mn_journal_format(const mn_journal_entry *e, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
