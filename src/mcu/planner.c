/* TFLM's GreedyMemoryPlanner, reproduced from its documented algorithm
 * (tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc): buffers are sorted by
 * size, largest first, by a stable bubble sort of the list built back to front (so of two
 * equal sizes the later-added buffer goes first); each is placed at the lowest offset where
 * it fits between the already placed buffers, in offset order, that are alive at the same
 * time (lifetimes are inclusive op ranges). */
#include <stdlib.h>

#include "mcunas/cost.h"

static int overlaps(const mn_plan_buffer *a, const mn_plan_buffer *b) {
    return !(a->last < b->first || a->first > b->last);
}

mn_status mn_greedy_plan(const mn_plan_buffer *bufs, int n, size_t *offsets, size_t *head) {
    *head = 0;
    if (n <= 0) return MN_OK;
    int *order = malloc(sizeof(int) * (size_t)n);
    int *placed = malloc(sizeof(int) * (size_t)n); /* placed buffers sorted by offset */
    if (!order || !placed) {
        free(order);
        free(placed);
        return mn_error_set(MN_ERR_NOMEM, "out of memory in the memory planner");
    }
    for (int i = 0; i < n; i++) order[i] = n - 1 - i;
    for (int swapped = 1; swapped;) {
        swapped = 0;
        for (int i = 1; i < n; i++)
            if (bufs[order[i - 1]].size < bufs[order[i]].size) {
                int t = order[i - 1];
                order[i - 1] = order[i];
                order[i] = t;
                swapped = 1;
            }
    }
    int n_placed = 0;
    for (int k = 0; k < n; k++) {
        int id = order[k];
        const mn_plan_buffer *w = &bufs[id];
        size_t candidate = 0;
        int insert_at = n_placed;
        for (int p = 0; p < n_placed; p++) {
            const mn_plan_buffer *o = &bufs[placed[p]];
            if (!overlaps(o, w)) continue;
            size_t off = offsets[placed[p]];
            if (off >= candidate && off - candidate >= w->size) break; /* fits in the gap */
            if (off + o->size > candidate) candidate = off + o->size;
        }
        /* Keep the offset-sorted list: after every entry with offset <= candidate. */
        for (int p = 0; p < n_placed; p++)
            if (offsets[placed[p]] > candidate) {
                insert_at = p;
                break;
            }
        for (int p = n_placed; p > insert_at; p--) placed[p] = placed[p - 1];
        placed[insert_at] = id;
        n_placed++;
        offsets[id] = candidate;
        if (candidate + w->size > *head) *head = candidate + w->size;
    }
    free(order);
    free(placed);
    return MN_OK;
}
