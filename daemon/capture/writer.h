/* writer.h — the writer thread: takes frames off the queue and writes them to the store in
 * transactions of up to batch_frames frames or batch_ms milliseconds, whichever comes first (and,
 * with a retention, of at most retention_transaction_bytes() of images: a larger batch is split).
 *
 * The writer owns the store's write connection while it runs. With a retention (retention.h) it
 * makes room before each batch, and stores frames without their images while only protected
 * frames are left to delete (handing the images to the image cache for the scorer). A batch that
 * fails on a full disk or database is rolled back, room is made, and it is retried — the writer
 * holds it meanwhile, and the queue drops its oldest frames (counted) if the wait is long; only a
 * stop gives up on it after a few seconds (its frames counted as failed). A batch that fails for
 * any other reason is rolled back and its frames are counted as failed. Errors are logged once per
 * change, not once per batch. writer_stop() returns after the queue has been closed and drained
 * and the last batch committed. Between batches (and while a batch waits for room on a full disk)
 * other threads may use the connection through writer_register_camera() (a camera added by a
 * reload). */
#ifndef INSPECTD_WRITER_H
#define INSPECTD_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "image_cache.h"
#include "base/metrics.h"
#include "queue.h"
#include "store/retention.h"
#include "store/store.h"

/* What the writer reports, updated without locks. */
struct writer_status {
    atomic_int_fast64_t last_frame_id;  /* the newest frame committed; 0: none yet */
    atomic_uint_fast64_t without_image; /* frames committed without their image */
    atomic_uint_fast64_t full_retries;  /* batch writes retried after a full disk */
};

struct writer_config {
    struct store *store;
    struct frame_queue *queue;
    const int64_t *camera_ids;       /* (ncameras) database id of each camera index */
    struct metrics_camera *counters; /* (ncameras) */
    size_t ncameras;
    int batch_frames;
    int batch_ms;
    struct metrics_histogram *commit_latency; /* time of each batch's inserts + commit */
    struct retention *retention;              /* NULL: no limits, a full disk fails the batch */
    struct image_cache *images;   /* images of frames stored without them; may be NULL */
    struct writer_status *status; /* may be NULL */
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

/* store_camera_recipe() and store_switch_recipe() on the writer's connection, between two
 * batches (from any thread). Return 0, or -1 with the reason in err. */
int writer_camera_recipe(struct writer *w, int64_t camera_id, const char *file_recipe, char *recipe,
                         size_t recipesz, int64_t *recipe_id, char *err, size_t errsz);
/* store_region() on the writer's connection, between two batches. Returns 0, or -1 with the
 * reason in err. */
int writer_region(struct writer *w, const char *roi, const void *mask, size_t mask_len,
                  const char *mask_file, int64_t *region_id, char *err, size_t errsz);
int writer_switch_recipe(struct writer *w, int64_t camera_id, const char *recipe,
                         const char *file_recipe, int64_t *recipe_id, char *err, size_t errsz);

#endif
