/* scorer.c — the scoring thread: poll the active model and the unscored frames, score, store. */
#define LOG_TAG "scorer"
#include "log.h"

#include "scorer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imageset.h"
#include "model.h"
#include "store_scoring.h"
#include "vit.h"

#define SCORER_BATCH   16
#define SCORER_IDLE_MS 10
#define MODEL_CHECK_MS 1000

struct scorer {
    pthread_t thread;
    pthread_mutex_t lock; /* guards status and stop */
    bool stop;
    int threads;
    struct scoring_store *db;
    struct scoring_model model;
    bool have_model;
    int64_t last_id; /* frames up to this id were looked at under the current model */
    struct scorer_status status;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

const char *scorer_state_name(enum scorer_state st)
{
    static const char *const names[] = {"learning", "scoring", "error"};
    return names[st];
}

static void set_error(struct scorer *s, const char *msg)
{
    pthread_mutex_lock(&s->lock);
    bool changed = strncmp(s->status.last_error, msg, sizeof s->status.last_error - 1) != 0;
    snprintf(s->status.last_error, sizeof s->status.last_error, "%.*s",
             (int)sizeof s->status.last_error - 1, msg);
    pthread_mutex_unlock(&s->lock);
    if (changed) log_error("%s", msg);
}

/* Loads the active model when it changed. Returns true when a model is ready to score. */
static bool refresh_model(struct scorer *s)
{
    struct model_row row;
    int found = scoring_store_active_model(s->db, &row);
    if (found < 0) {
        set_error(s, scoring_store_errmsg(s->db));
        return s->have_model;
    }
    if (found == 0 || (s->have_model && row.id == s->status.model_id)) return s->have_model;
    struct scoring_model m;
    char err[512];
    int64_t after = 0;
    if (scoring_store_resume_point(s->db, row.id, &after)) {
        set_error(s, scoring_store_errmsg(s->db));
        return s->have_model;
    }
    if (model_load(&m, row.path, row.bank, err, sizeof err)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "model %s not loaded (the previous one keeps scoring): %s",
                 row.version, err);
        set_error(s, msg);
        return s->have_model;
    }
    if (s->have_model) model_free(&s->model);
    s->model = m;
    s->have_model = true;
    s->last_id = after;
    pthread_mutex_lock(&s->lock);
    s->status.state = SCORER_SCORING;
    s->status.model_id = row.id;
    s->status.threshold = m.threshold;
    snprintf(s->status.model_version, sizeof s->status.model_version, "%s", row.version);
    s->status.last_error[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    log_info("scoring with model %s: %dx%d input, bank of %d patches, threshold %.4f", row.version,
             m.size, m.size, m.bank.n, m.threshold);
    return true;
}

/* Scores one frame and stores the result. Returns 0, or -1 (error recorded). */
static int score_frame(struct scorer *s, int64_t id)
{
    void *data = NULL;
    size_t size = 0;
    int64_t camera = 0, t0 = mono_us();
    int found = scoring_store_frame(s->db, id, &data, &size, &camera);
    if (found <= 0) {
        if (found < 0) set_error(s, scoring_store_errmsg(s->db));
        free(data);
        return found;
    }
    struct scoring_model *m = &s->model;
    struct image_set one = {.size = m->size, .channels = m->channels, .max = 1};
    char what[48], err[256];
    snprintf(what, sizeof what, "frame %lld", (long long)id);
    int added = image_set_add_encoded(&one, data, size, what);
    free(data);
    int P = m->gh * m->gw, rc = -1;
    float score = 0, *grid = malloc(sizeof(float) * (size_t)P);
    if (added == 1 && grid &&
        model_score(m, one.pixels, 1, s->threads, &score, grid, err, sizeof err) == 0) {
        struct scoring_result r = {.frame_id = id,
                                   .model_id = s->status.model_id,
                                   .camera_id = camera,
                                   .score = score,
                                   .threshold = m->threshold,
                                   .flagged = score > m->threshold,
                                   .latency_us = mono_us() - t0,
                                   .grid = grid,
                                   .grid_w = m->gw,
                                   .grid_h = m->gh};
        rc = scoring_store_result(s->db, &r);
        if (rc) set_error(s, scoring_store_errmsg(s->db));
        pthread_mutex_lock(&s->lock);
        if (!rc) {
            s->status.scored++;
            s->status.flagged += r.flagged;
            s->status.last_latency_us = r.latency_us;
        }
        pthread_mutex_unlock(&s->lock);
    } else if (added == 1 && grid) {
        set_error(s, err);
    }
    if (rc) {
        pthread_mutex_lock(&s->lock);
        s->status.failed++;
        pthread_mutex_unlock(&s->lock);
    }
    free(grid);
    image_set_free(&one);
    return rc;
}

static bool stopping(struct scorer *s)
{
    pthread_mutex_lock(&s->lock);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

static void *scorer_main(void *arg)
{
    struct scorer *s = arg;
    int64_t next_check = 0;
    /* small GEMMs on one core: OpenBLAS threads would only contend with capture and training */
    vit_set_threads(1);
    while (!stopping(s)) {
        if (mono_us() >= next_check) {
            refresh_model(s);
            next_check = mono_us() + MODEL_CHECK_MS * 1000;
        }
        int64_t ids[SCORER_BATCH];
        int n = s->have_model ? scoring_store_unscored(s->db, s->status.model_id, s->last_id, ids,
                                                       SCORER_BATCH)
                              : 0;
        if (n < 0) set_error(s, scoring_store_errmsg(s->db));
        for (int i = 0; i < n && !stopping(s); i++) {
            score_frame(s, ids[i]);
            s->last_id = ids[i]; /* a frame that cannot be scored is not retried in a loop */
        }
        if (n <= 0) sleep_ms(SCORER_IDLE_MS);
    }
    return NULL;
}

struct scorer *scorer_start(const char *db_path, int threads, char *err, size_t errsz)
{
    struct scorer *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory for the scorer");
        return NULL;
    }
    s->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&s->lock, NULL);
    if (!(s->db = scoring_store_open(db_path, err, errsz))) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, scorer_main, s) != 0) {
        snprintf(err, errsz, "cannot start the scoring thread");
        scoring_store_close(s->db);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    return s;
}

void scorer_stop(struct scorer *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    if (s->have_model) model_free(&s->model);
    scoring_store_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void scorer_get_status(struct scorer *s, struct scorer_status *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->status;
    pthread_mutex_unlock(&s->lock);
}
