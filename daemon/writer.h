/* writer.h — the writer thread: takes frames off the queue and writes them to the store in
 * transactions of up to batch_frames frames or batch_ms milliseconds, whichever comes first.
 *
 * The writer owns the store's write connection while it runs. A failed batch is rolled back and
 * its frames are counted as failed (the error is logged once per change, not once per batch);
 * the writer then carries on with the next batch. writer_stop() returns after the queue has been
 * closed and drained and the last batch committed. Between batches other threads may use the
 * connection through writer_register_camera() (a camera added by a reload). */
#ifndef INSPECTD_WRITER_H
#define INSPECTD_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "queue.h"
#include "store.h"

struct writer_config {
    struct store *store;
    struct frame_queue *queue;
    const int64_t *camera_ids;       /* (ncameras) database id of each camera index */
    struct metrics_camera *counters; /* (ncameras) */
    size_t ncameras;
    int batch_frames;
    int batch_ms;
    struct metrics_histogram *commit_latency; /* time of each batch's inserts + commit */
};

struct writer;

/* Starts the thread. Returns NULL with a reason in err. */
struct writer *writer_start(const struct writer_config *cfg, char *err, size_t errsz);
/* Closes the queue, waits for the drain and the last commit, joins the thread. Safe on NULL. */
void writer_stop(struct writer *w);

/* store_camera() on the writer's connection, between two batches (from any thread). Returns 0, or
 * -1 with the reason in err. */
int writer_register_camera(struct writer *w, const char *name, const char *driver, int64_t *id,
                           char *err, size_t errsz);

#endif
