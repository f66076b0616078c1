/* queue.h — the bounded frame queue between the capture threads and the writer: many producers,
 * one consumer. When it is full, a push drops the oldest frame (fresh frames matter more on a line
 * than old ones) and tells the producer whose it was, so the drop is counted against that camera.
 *
 * Invariants: 0 <= depth <= capacity; every frame pushed is either popped or freed exactly once
 * (by a drop or by queue_destroy). After queue_close(), pushes are refused and pops drain what is
 * left, then report the end. */
#ifndef INSPECTD_QUEUE_H
#define INSPECTD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "store/store.h"

struct queue_item {
    int camera;        /* index into the pipeline's cameras */
    int64_t recipe_id; /* the camera's recipe when the frame was captured (0: none) */
    int64_t region_id; /* the camera's region then (0: the whole frame) */
    struct frame frame;
    char part_id[STORE_PART_ID_MAX + 1]; /* the line's id of the part; "" when none was given */
};

struct frame_queue;

/* Returns NULL when out of memory. */
struct frame_queue *queue_create(size_t capacity);
/* Frees the frames still queued. Safe on NULL. */
void queue_destroy(struct frame_queue *q);

/* Moves *item into the queue (the queue owns its frame afterwards). Returns -1 when there was room
 * or the camera index of the oldest frame, which was dropped and freed to make room. After
 * queue_close() the item is freed and -2 is returned. */
int queue_push(struct frame_queue *q, struct queue_item *item);

/* Takes the oldest item. Waits until deadline_ns (CLOCK_MONOTONIC; < 0: no limit). Returns 1 with
 * *out filled, 0 on timeout, -1 when the queue is closed and empty. */
int queue_pop(struct frame_queue *q, struct queue_item *out, int64_t deadline_ns);

/* No more pushes; wakes the consumer. */
void queue_close(struct frame_queue *q);

size_t queue_depth(struct frame_queue *q);
size_t queue_capacity(const struct frame_queue *q);

#endif
