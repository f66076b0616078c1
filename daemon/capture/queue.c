/* queue.c — a ring buffer of frames under one mutex, with a condition variable for the consumer;
 * full means drop the oldest. */
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "queue.h"
#include "source.h"

struct frame_queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty; /* uses CLOCK_MONOTONIC */
    struct queue_item *ring; /* (capacity) */
    size_t capacity, head, depth;
    bool closed;
};

struct frame_queue *queue_create(size_t capacity)
{
    assert(capacity > 0);
    struct frame_queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    if (!(q->ring = calloc(capacity, sizeof *q->ring))) {
        free(q);
        return NULL;
    }
    q->capacity = capacity;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->nonempty, &attr);
    pthread_condattr_destroy(&attr);
    return q;
}

void queue_destroy(struct frame_queue *q)
{
    if (!q) return;
    for (size_t i = 0; i < q->depth; i++) frame_free(&q->ring[(q->head + i) % q->capacity].frame);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->nonempty);
    free(q->ring);
    free(q);
}

int queue_push(struct frame_queue *q, struct queue_item *item)
{
    int dropped = -1;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        frame_free(&item->frame);
        return -2;
    }
    if (q->depth == q->capacity) {
        struct queue_item *oldest = &q->ring[q->head];
        dropped = oldest->camera;
        frame_free(&oldest->frame);
        q->head = (q->head + 1) % q->capacity;
        q->depth--;
    }
    q->ring[(q->head + q->depth) % q->capacity] = *item;
    q->depth++;
    pthread_cond_signal(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
    item->frame.data = NULL;
    return dropped;
}

int queue_pop(struct frame_queue *q, struct queue_item *out, int64_t deadline_ns)
{
    int rc = 1;
    pthread_mutex_lock(&q->lock);
    while (q->depth == 0 && !q->closed) {
        if (deadline_ns < 0) {
            pthread_cond_wait(&q->nonempty, &q->lock);
        } else {
            struct timespec ts = clock_timespec(deadline_ns);
            if (pthread_cond_timedwait(&q->nonempty, &q->lock, &ts) != 0 && q->depth == 0 &&
                !q->closed) {
                rc = 0;
                break;
            }
        }
    }
    if (rc == 1 && q->depth == 0) rc = -1; /* closed and drained */
    if (rc == 1) {
        *out = q->ring[q->head];
        q->ring[q->head].frame.data = NULL;
        q->head = (q->head + 1) % q->capacity;
        q->depth--;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void queue_close(struct frame_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

size_t queue_depth(struct frame_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t d = q->depth;
    pthread_mutex_unlock(&q->lock);
    return d;
}

size_t queue_capacity(const struct frame_queue *q)
{
    return q->capacity;
}
