/* writer.c — the one thread that writes frames: batch, insert, commit, count. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"

#define LOG_TAG "writer"
#include "log.h"

struct writer {
    struct writer_config cfg;
    pthread_t thread;
    pthread_mutex_t store_lock; /* held while a batch or a camera registration uses the store */
    struct queue_item *batch;   /* (batch_frames) */
    bool failing;               /* the last batch failed: log only when this changes */
    char last_error[256];
};

static int write_batch(struct writer *w, size_t n)
{
    struct store *s = w->cfg.store;
    if (store_begin(s) < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        struct queue_item *it = &w->batch[i];
        struct store_frame sf = {
            .camera_id = w->cfg.camera_ids[it->camera],
            .seq = it->frame.seq,
            .captured_at_us = it->frame.captured_at_us,
            .width = it->frame.width,
            .height = it->frame.height,
            .format = it->frame.format,
            .image = it->frame.data,
            .image_size = it->frame.size,
            .has_truth = it->frame.has_truth,
            .truth = it->frame.truth,
        };
        if (store_insert_frame(s, &sf, NULL) < 0) {
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

static void account(struct writer *w, size_t n, bool ok)
{
    for (size_t i = 0; i < n; i++) {
        struct metrics_camera *c = &w->cfg.counters[w->batch[i].camera];
        atomic_fetch_add(ok ? &c->stored : &c->failed, 1);
        if (ok) frame_stored(&w->batch[i].frame);
        frame_free(&w->batch[i].frame);
    }
    if (!ok && (!w->failing || strcmp(w->last_error, store_errmsg(w->cfg.store)) != 0)) {
        snprintf(w->last_error, sizeof w->last_error, "%s", store_errmsg(w->cfg.store));
        log_error("cannot store frames: %s (frames are lost until this clears)", w->last_error);
    } else if (ok && w->failing) {
        log_info("storing frames again");
        w->last_error[0] = '\0';
    }
    w->failing = !ok;
}

/* Collects one batch: waits for its first frame, then up to batch_ms for the rest. Returns the
 * number of frames, 0 when the queue is closed and drained. */
static size_t collect(struct writer *w)
{
    if (queue_pop(w->cfg.queue, &w->batch[0], -1) < 0) return 0;
    size_t n = 1;
    int64_t deadline = queue_now_ns() + (int64_t)w->cfg.batch_ms * 1000000;
    while (n < (size_t)w->cfg.batch_frames && queue_pop(w->cfg.queue, &w->batch[n], deadline) == 1)
        n++;
    return n;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    size_t n;
    while ((n = collect(w)) > 0) {
        pthread_mutex_lock(&w->store_lock);
        int64_t t0 = queue_now_ns();
        bool ok = write_batch(w, n) == 0;
        if (ok && w->cfg.commit_latency)
            metrics_histogram_observe(w->cfg.commit_latency, queue_now_ns() - t0);
        account(w, n, ok);
        pthread_mutex_unlock(&w->store_lock);
    }
    return NULL;
}

struct writer *writer_start(const struct writer_config *cfg, char *err, size_t errsz)
{
    struct writer *w = calloc(1, sizeof *w);
    if (!w || !(w->batch = calloc((size_t)cfg->batch_frames, sizeof *w->batch))) {
        snprintf(err, errsz, "writer: out of memory");
        free(w);
        return NULL;
    }
    w->cfg = *cfg;
    pthread_mutex_init(&w->store_lock, NULL);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        snprintf(err, errsz, "writer: cannot start thread: %s", strerror(rc));
        pthread_mutex_destroy(&w->store_lock);
        free(w->batch);
        free(w);
        return NULL;
    }
    return w;
}

void writer_stop(struct writer *w)
{
    if (!w) return;
    queue_close(w->cfg.queue);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->store_lock);
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
