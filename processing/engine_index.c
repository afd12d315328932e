/*
 * engine_index.c - live jobs by id (engine__internal.h): open addressing
 * with linear probing; a removed slot is marked, and the table is rebuilt
 * when live plus removed slots pass three quarters.
 */
#include "engine__internal.h"
#include "ocps/sal_hash.h"

#include <stdlib.h>
#include <string.h>

static engine_rec engine_index_tomb_rec;
#define engine_index_tomb (&engine_index_tomb_rec)

/* FNV-1a of the id. */
static size_t engine_index_hash(const char *id)
{
    uint64_t h = sal_fnv1a64_str(id);
    return (size_t)(h ^ (h >> 32));
}

/* The slot holding id, or the first free slot of its probe sequence. */
static size_t engine_index_slot(const engine_index *x, const char *id, bool *found)
{
    size_t mask = x->cap - 1;
    size_t i = engine_index_hash(id) & mask;
    size_t free_slot = SIZE_MAX;
    for (;;) {
        engine_rec *r = x->slots[i];
        if (r == NULL) {
            *found = false;
            return free_slot != SIZE_MAX ? free_slot : i;
        }
        if (r == engine_index_tomb) {
            if (free_slot == SIZE_MAX) {
                free_slot = i;
            }
        } else if (strcmp(r->st.job.id, id) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int engine_index_rebuild(engine_index *x, size_t cap)
{
    engine_index y = {.slots = calloc(cap, sizeof *y.slots), .cap = cap};
    if (y.slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < x->cap; i++) {
        engine_rec *r = x->slots[i];
        if (r != NULL && r != engine_index_tomb) {
            bool found;
            y.slots[engine_index_slot(&y, r->st.job.id, &found)] = r;
            y.used++;
            y.n++;
        }
    }
    free(x->slots);
    *x = y;
    return 0;
}

int engine_index_reserve(engine_index *x)
{
    if ((x->used + 1) * 4 > x->cap * 3) {
        size_t cap = x->cap == 0 ? 64 : ((x->n + 1) * 2 > x->cap ? 2 * x->cap : x->cap);
        if (engine_index_rebuild(x, cap) != 0) {
            return -1;
        }
    }
    return 0;
}

int engine_index_put(engine_index *x, engine_rec *r)
{
    if (engine_index_reserve(x) != 0) {
        return -1;
    }
    bool found;
    size_t i = engine_index_slot(x, r->st.job.id, &found);
    if (!found) {
        x->used += x->slots[i] == NULL;
        x->n++;
    }
    x->slots[i] = r;
    return 0;
}

engine_rec *engine_index_get(const engine_index *x, const char *id)
{
    if (x->cap == 0 || id == NULL) {
        return NULL;
    }
    bool found;
    size_t i = engine_index_slot(x, id, &found);
    return found ? x->slots[i] : NULL;
}

void engine_index_del(engine_index *x, const engine_rec *r)
{
    if (x->cap == 0) {
        return;
    }
    bool found;
    size_t i = engine_index_slot(x, r->st.job.id, &found);
    if (found && x->slots[i] == r) {
        x->slots[i] = engine_index_tomb;
        x->n--;
    }
}

void engine_index_free(engine_index *x)
{
    free(x->slots);
    memset(x, 0, sizeof *x);
}
