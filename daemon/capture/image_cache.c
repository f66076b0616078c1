/* image_cache.c — a FIFO ring of (frame id, image) under one mutex. A taken entry leaves a hole
 * that is reclaimed when it reaches the tail. */
#include "image_cache.h"

#include <pthread.h>
#include <stdlib.h>

struct entry {
    int64_t id;
    void *data; /* NULL: a hole (taken) */
    size_t size;
};

struct image_cache {
    pthread_mutex_t lock;
    struct entry *ring; /* (max_frames) */
    size_t max_frames, max_bytes;
    size_t tail, count; /* oldest slot; slots in use, holes included */
    size_t bytes;       /* of the images held */
    uint64_t dropped;
};

struct image_cache *image_cache_create(size_t max_frames, size_t max_bytes)
{
    struct image_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->ring = calloc(max_frames ? max_frames : 1, sizeof *c->ring))) {
        free(c);
        return NULL;
    }
    c->max_frames = max_frames ? max_frames : 1;
    c->max_bytes = max_bytes;
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

/* Removes the oldest slot; counts a drop when it held an image. Lock held. */
static void pop_tail(struct image_cache *c)
{
    struct entry *e = &c->ring[c->tail];
    if (e->data) {
        free(e->data);
        c->bytes -= e->size;
        c->dropped++;
    }
    *e = (struct entry){0};
    c->tail = (c->tail + 1) % c->max_frames;
    c->count--;
}

void image_cache_free(struct image_cache *c)
{
    if (!c) return;
    while (c->count) pop_tail(c);
    pthread_mutex_destroy(&c->lock);
    free(c->ring);
    free(c);
}

void image_cache_put(struct image_cache *c, int64_t id, void *data, size_t size)
{
    if (!c || size > c->max_bytes) {
        free(data);
        if (c) {
            pthread_mutex_lock(&c->lock);
            c->dropped++;
            pthread_mutex_unlock(&c->lock);
        }
        return;
    }
    pthread_mutex_lock(&c->lock);
    while (c->count == c->max_frames || c->bytes + size > c->max_bytes) pop_tail(c);
    c->ring[(c->tail + c->count) % c->max_frames] = (struct entry){id, data, size};
    c->count++;
    c->bytes += size;
    pthread_mutex_unlock(&c->lock);
}

bool image_cache_take(struct image_cache *c, int64_t id, void **data, size_t *size)
{
    if (!c) return false;
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->count && !found; i++) {
        struct entry *e = &c->ring[(c->tail + i) % c->max_frames];
        if (e->data && e->id == id) {
            *data = e->data, *size = e->size;
            c->bytes -= e->size;
            e->data = NULL;
            found = true;
        }
    }
    while (c->count && !c->ring[c->tail].data) pop_tail(c); /* holes at the tail */
    pthread_mutex_unlock(&c->lock);
    return found;
}

uint64_t image_cache_dropped(struct image_cache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t n = c->dropped;
    pthread_mutex_unlock(&c->lock);
    return n;
}
