/* writer.c — the one thread that writes frames: make room, batch, insert, commit, count; on a full
 * disk, free space and retry. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "writer.h"
#include "source.h"

#define LOG_TAG "writer"
#include "log.h"

#define FULL_WAIT_FIRST_MS 100 /* nothing left to free: wait before retrying, doubling */
#define FULL_WAIT_MAX_MS   1000
#define FULL_RETRIES_NOW   3    /* retries right after freeing space, before waiting */
#define STOP_GIVE_UP_MS    3000 /* stopping: how long a batch is still retried on a full disk */
#define FRAME_OVERHEAD     4096 /* a frame's row and the last, partly filled page of its image */

/* What image_missing says of a frame stored without its image. */
#define IMAGE_NOT_KEPT "storage full: only protected frames were left to delete"

struct writer {
    struct writer_config cfg;
    pthread_t thread;
    pthread_mutex_t store_lock; /* held while a batch or a camera registration uses the store */
    atomic_bool stopping;
    struct queue_item *batch; /* (batch_frames) */
    int64_t *ids;             /* (batch_frames) the batch's frame ids once inserted */
    bool failing;             /* the last batch failed: log only when this changes */
    bool full;                /* retrying on a full disk: log only when this changes */
    bool gave_up;             /* stopping on a full disk: no more waiting */
    char last_error[256];
};

/* Inserts batch[from, to) in one transaction, with or without the images. Returns 0 or -1. */
static int write_batch(struct writer *w, size_t from, size_t to, bool images)
{
    struct store *s = w->cfg.store;
    if (store_begin(s) < 0) return -1;
    for (size_t i = from; i < to; i++) {
        struct queue_item *it = &w->batch[i];
        struct store_frame sf = {
            .camera_id = w->cfg.camera_ids[it->camera],
            .recipe_id = it->recipe_id,
            .region_id = it->region_id,
            .seq = it->frame.seq,
            .captured_at_us = it->frame.captured_at_us,
            .width = it->frame.width,
            .height = it->frame.height,
            .format = it->frame.format,
            .image = it->frame.data,
            .image_size = it->frame.size,
            .has_truth = it->frame.has_truth,
            .truth = it->frame.truth,
            .image_missing = images ? NULL : IMAGE_NOT_KEPT,
            .part_id = it->part_id,
        };
        if (store_insert_frame(s, &sf, &w->ids[i]) < 0) {
            store_rollback(s);
            return -1;
        }
    }
    if (store_commit(s) < 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

static void log_state(struct writer *w, bool ok)
{
    if (!ok && (!w->failing || strcmp(w->last_error, store_errmsg(w->cfg.store)) != 0)) {
        snprintf(w->last_error, sizeof w->last_error, "%s", store_errmsg(w->cfg.store));
        log_error("cannot store frames: %s (frames are lost until this clears)", w->last_error);
    } else if (ok && (w->failing || w->full)) {
        log_info("storing frames again");
        w->last_error[0] = '\0';
    }
    w->failing = !ok;
    w->full = false;
}

/* Counts the batch's frames and lets them go: a stored frame's source may dispose of its input
 * (frame_stored); the image of a frame stored without it goes to the scorer through the cache,
 * and its input is kept. */
static void account(struct writer *w, size_t from, size_t to, bool ok, bool images)
{
    struct writer_status *st = w->cfg.status;
    for (size_t i = from; i < to; i++) {
        struct queue_item *it = &w->batch[i];
        struct metrics_camera *c = &w->cfg.counters[it->camera];
        atomic_fetch_add(ok ? &c->stored : &c->failed, 1);
        if (ok && images) frame_stored(&it->frame);
        if (ok && !images) {
            image_cache_put(w->cfg.images, w->ids[i], it->frame.data, it->frame.size);
            it->frame.data = NULL;
            if (st) atomic_fetch_add(&st->without_image, 1);
        }
        frame_free(&it->frame);
    }
    if (ok && st) atomic_store(&st->last_frame_id, w->ids[to - 1]);
    if (ok)
        log_debug("committed frames %lld..%lld", (long long)w->ids[from],
                  (long long)w->ids[to - 1]);
    log_state(w, ok);
}

static int64_t batch_bytes(const struct writer *w, size_t from, size_t to)
{
    int64_t bytes = 0;
    for (size_t i = from; i < to; i++) bytes += (int64_t)w->batch[i].frame.size;
    return bytes;
}

/* The end of the transaction that starts at batch[from]: as many frames as fit in the bytes a
 * transaction may carry (retention bounds the WAL), at least one. */
static size_t transaction_end(const struct writer *w, size_t from, size_t n)
{
    int64_t most = w->cfg.retention ? retention_transaction_bytes(w->cfg.retention) : 0;
    size_t to = from + 1;
    int64_t bytes = (int64_t)w->batch[from].frame.size + FRAME_OVERHEAD;
    while (to < n &&
           (most <= 0 || bytes + (int64_t)w->batch[to].frame.size + FRAME_OVERHEAD <= most))
        bytes += (int64_t)w->batch[to++].frame.size + FRAME_OVERHEAD;
    return to;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void note_full(struct writer *w)
{
    if (w->cfg.status) atomic_fetch_add(&w->cfg.status->full_retries, 1);
    if (w->full) return;
    w->full = true;
    log_warn("cannot store frames: %s; making room and retrying (the queue drops its oldest "
             "frames if this lasts)",
             store_errmsg(w->cfg.store));
}

/* Writes batch[from, to), making room first; on a full disk frees space and retries, holding the
 * frames. Returns true when they are committed; *images says whether with the images. */
static bool store_batch(struct writer *w, size_t from, size_t to, bool *images)
{
    struct retention *ret = w->cfg.retention;
    struct store *s = w->cfg.store;
    size_t n = to - from;
    int64_t bytes = batch_bytes(w, from, to);
    *images = ret ? retention_prepare(ret, s, bytes, (int)n) : true;
    int wait_ms = FULL_WAIT_FIRST_MS, waited_ms = 0, now_retries = 0;
    for (;;) {
        if (write_batch(w, from, to, *images) == 0) {
            if (ret) retention_committed(ret, s, *images);
            w->gave_up = false;
            return true;
        }
        if (!ret || !store_error_is_full(s)) return false;
        note_full(w);
        bool had_images = *images;
        if (retention_after_full(ret, s, *images ? bytes : 0, images) &&
            (now_retries++ < FULL_RETRIES_NOW || had_images != *images))
            continue;
        if (atomic_load(&w->stopping) && (waited_ms >= STOP_GIVE_UP_MS || w->gave_up)) {
            log_error("stopping with the disk still full: %zu frames not stored", n);
            w->gave_up = true; /* the rest of the queue gets one try each */
            return false;
        }
        pthread_mutex_unlock(&w->store_lock); /* a reload may register a camera meanwhile */
        sleep_ms(wait_ms);
        pthread_mutex_lock(&w->store_lock);
        waited_ms += wait_ms;
        wait_ms = wait_ms * 2 > FULL_WAIT_MAX_MS ? FULL_WAIT_MAX_MS : wait_ms * 2;
        now_retries = 0;
    }
}

/* Collects one batch: waits for its first frame, then up to batch_ms for the rest. Returns the
 * number of frames, 0 when the queue is closed and drained. */
static size_t collect(struct writer *w)
{
    if (queue_pop(w->cfg.queue, &w->batch[0], -1) < 0) return 0;
    size_t n = 1;
    int64_t deadline = clock_mono_ns() + (int64_t)w->cfg.batch_ms * 1000000;
    while (n < (size_t)w->cfg.batch_frames && queue_pop(w->cfg.queue, &w->batch[n], deadline) == 1)
        n++;
    return n;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    size_t n;
    while ((n = collect(w)) > 0) {
        for (size_t from = 0, to; from < n; from = to) {
            to = transaction_end(w, from, n);
            pthread_mutex_lock(&w->store_lock);
            int64_t t0 = clock_mono_ns();
            bool images = true;
            bool ok = store_batch(w, from, to, &images);
            if (ok && w->cfg.commit_latency)
                metrics_histogram_observe(w->cfg.commit_latency, clock_mono_ns() - t0);
            account(w, from, to, ok, images);
            pthread_mutex_unlock(&w->store_lock);
        }
    }
    return NULL;
}

struct writer *writer_start(const struct writer_config *cfg, char *err, size_t errsz)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w || !(w->batch = calloc((size_t)cfg->batch_frames, sizeof *w->batch)) ||
        !(w->ids = calloc((size_t)cfg->batch_frames, sizeof *w->ids))) {
        snprintf(err, errsz, "writer: out of memory");
        if (w) free(w->batch);
        free(w);
        return NULL;
    }
    w->cfg = *cfg;
    pthread_mutex_init(&w->store_lock, NULL);
    atomic_init(&w->stopping, false);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        snprintf(err, errsz, "writer: cannot start thread: %s", strerror(rc));
        pthread_mutex_destroy(&w->store_lock);
        free(w->ids);
        free(w->batch);
        free(w);
        return NULL;
    }
    return w;
}

void writer_stop(struct writer *w)
{
    if (!w) return;
    atomic_store(&w->stopping, true);
    queue_close(w->cfg.queue);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->store_lock);
    free(w->ids);
    free(w->batch);
    free(w);
}

int writer_register_camera(struct writer *w, const char *name, const char *driver, int64_t *id,
                           char *err, size_t errsz)
{
    pthread_mutex_lock(&w->store_lock);
    int rc = store_camera(w->cfg.store, name, driver, id);
    if (rc < 0) snprintf(err, errsz, "camera %s: %s", name, store_errmsg(w->cfg.store));
    pthread_mutex_unlock(&w->store_lock);
    return rc;
}

int writer_camera_recipe(struct writer *w, int64_t camera_id, const char *file_recipe, char *recipe,
                         size_t recipesz, int64_t *recipe_id, char *err, size_t errsz)
{
    pthread_mutex_lock(&w->store_lock);
    int rc = store_camera_recipe(w->cfg.store, camera_id, file_recipe, recipe, recipesz, recipe_id);
    if (rc < 0) snprintf(err, errsz, "recipe %s: %s", file_recipe, store_errmsg(w->cfg.store));
    pthread_mutex_unlock(&w->store_lock);
    return rc;
}

int writer_region(struct writer *w, const char *roi, const void *mask, size_t mask_len,
                  const char *mask_file, int64_t *region_id, char *err, size_t errsz)
{
    pthread_mutex_lock(&w->store_lock);
    int rc = store_region(w->cfg.store, roi, mask, mask_len, mask_file, region_id);
    if (rc < 0) snprintf(err, errsz, "region: %s", store_errmsg(w->cfg.store));
    pthread_mutex_unlock(&w->store_lock);
    return rc;
}

int writer_switch_recipe(struct writer *w, int64_t camera_id, const char *recipe,
                         const char *file_recipe, int64_t *recipe_id, char *err, size_t errsz)
{
    pthread_mutex_lock(&w->store_lock);
    int rc = store_switch_recipe(w->cfg.store, camera_id, recipe, file_recipe, recipe_id);
    if (rc < 0) snprintf(err, errsz, "recipe %s: %s", recipe, store_errmsg(w->cfg.store));
    pthread_mutex_unlock(&w->store_lock);
    return rc;
}
