/* scorer.c — the scoring thread: poll the active model and the unscored frames, score, store. */
#define LOG_TAG "scorer"
#include "heatmap.h"
#include "array.h"
#include "clock.h"
#include "log.h"

#include "scorer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imageset.h"
#include "gemm.h"
#include "model.h"
#include "store/scoring_store.h"
#include "vit.h"

#define SCORER_BATCH   16 /* frames waiting that are scored in one backbone pass, at most */
#define SCORER_IDLE_MS 10
#define MODEL_CHECK_MS 1000
#define FEEDBACK_MAX   256  /* latest false positives that join the bank */
#define FULL_RETRY_MS  500  /* a result not written on a full disk is retried after this */
#define NO_MODEL_BATCH 1024 /* frames given 'no_model' verdicts per turn, at most */
#define NO_MODEL_MS    100  /* how often they are given: one small transaction per turn */

enum { SCORE_RETRY = -2 }; /* store_result(): the disk is full, try the frame again later */

struct scorer {
    pthread_t thread;
    pthread_mutex_t lock; /* guards status and stop */
    bool stop;
    int threads;
    struct image_cache *images; /* of frames stored without them */
    bool warned_no_image;       /* such a frame could not be scored: logged once */
    struct scoring_store *db;
    pthread_mutex_t model_lock; /* guards model and have_model against POST /score */
    struct scoring_model model;
    bool have_model;
    int64_t feedback_mark[3]; /* of the false positives now in the bank */
    struct metrics_histogram latency;
    int64_t last_id; /* frames up to this id were looked at under the current model (or have their
                        no_model verdict); -1: not known yet */
    int64_t max_lag_us;     /* frames stored longer ago than this are skipped; 0: never */
    int64_t skip_logged_us; /* when skipping was last logged (monotonic) */
    uint64_t skip_unlogged; /* skipped since */
    struct scorer_status status;
};

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
    /* a model that replaces another continues where that one stopped, so no frame of the swap
     * goes unscored; the first model (also the one found at start) resumes after its own last
     * result, or starts at the newest frame (a backlog from before any model is not scored) */
    int64_t after = s->last_id;
    if (!s->have_model && scoring_store_resume_point(s->db, row.id, &after)) {
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
    s->last_id = after;
    memset(s->feedback_mark, 0, sizeof s->feedback_mark); /* the new bank has none yet */
    /* model and status change together: an upload scored now names the model that scored it
     * (lock order everywhere: model_lock, then lock) */
    pthread_mutex_lock(&s->model_lock);
    if (s->have_model) model_free(&s->model);
    s->model = m;
    s->have_model = true;
    pthread_mutex_lock(&s->lock);
    s->status.state = SCORER_SCORING;
    s->status.model_id = row.id;
    s->status.model_created_us = row.created_at;
    s->status.feedback_frames = 0;
    s->status.threshold = m.threshold;
    snprintf(s->status.model_version, sizeof s->status.model_version, "%s", row.version);
    s->status.last_error[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->model_lock);
    log_info("scoring with model %s: %dx%d input, bank of %d patches, threshold %.4f", row.version,
             m.size, m.size, m.bank.n, m.threshold);
    return true;
}

/* Operator feedback: when the set of frames marked false positive changed, the bank becomes the
 * model's own plus their patches. A frame that cannot be read or decoded is left out. */
static void refresh_feedback(struct scorer *s)
{
    int64_t mark[3];
    if (!s->have_model) return;
    if (scoring_store_feedback_mark(s->db, mark)) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    if (memcmp(mark, s->feedback_mark, sizeof mark) == 0) return;
    int64_t ids[FEEDBACK_MAX];
    int n = scoring_store_false_positives(s->db, ids, FEEDBACK_MAX);
    if (n < 0) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    /* frames already in the bank keep their rows; only the new ones are read and embedded */
    struct scoring_model *m = &s->model;
    struct image_set set = {.size = m->size, .channels = m->channels, .max = FEEDBACK_MAX};
    int used = 0;
    for (int i = 0; i < n; i++) {
        if (model_has_feedback(m, ids[i])) {
            ids[used++] = ids[i];
            continue;
        }
        void *data = NULL;
        size_t size = 0;
        int64_t camera;
        char what[48];
        snprintf(what, sizeof what, "false positive frame %lld", (long long)ids[i]);
        if (scoring_store_frame(s->db, ids[i], &data, &size, &camera) == 1 &&
            image_set_add_encoded(&set, data, size, what) == 1)
            ids[used++] = ids[i]; /* one that cannot be read or decoded is left out */
        free(data);
    }
    char err[256];
    pthread_mutex_lock(&s->model_lock);
    int rc = model_set_feedback(m, ids, used, set.pixels, s->threads, err, sizeof err);
    pthread_mutex_unlock(&s->model_lock);
    image_set_free(&set);
    if (rc) {
        char msg[320];
        snprintf(msg, sizeof msg, "operator feedback not applied: %s", err);
        set_error(s, msg);
        return;
    }
    memcpy(s->feedback_mark, mark, sizeof mark);
    pthread_mutex_lock(&s->lock);
    s->status.feedback_frames = used;
    pthread_mutex_unlock(&s->lock);
    log_info("operator feedback: %d false positive frame(s) in the bank (%d patches in all)", used,
             m->bank.n);
}

/* Gives frame id the verdict 'unscored' for reason (when it has none yet); an error is recorded. */
static void unscored(struct scorer *s, int64_t id, const char *reason)
{
    if (scoring_store_unscored_verdicts(s->db, id - 1, id, reason))
        set_error(s, scoring_store_errmsg(s->db));
}

/* A frame stored without its image: its image from the cache, if the cache still holds it.
 * Returns 1, or 0 (counted). */
static int image_from_cache(struct scorer *s, int64_t id, void **data, size_t *size)
{
    if (image_cache_take(s->images, id, data, size)) return 1;
    pthread_mutex_lock(&s->lock);
    s->status.without_image++;
    pthread_mutex_unlock(&s->lock);
    if (!s->warned_no_image)
        log_warn("frame %lld was stored without its image and it is no longer in memory: not "
                 "scored (counted as without_image from now on)",
                 (long long)id);
    s->warned_no_image = true;
    return 0;
}

/* A frame of a batch: its encoded image (from the database or the image cache) and, once decoded,
 * its place in the batch's image set (-1: not decoded). */
struct batch_frame {
    int64_t id, camera;
    void *data;
    size_t size;
    bool cached;
    int slot;
};

/* Stores frame f's result. Returns 0, -1 (error recorded), or SCORE_RETRY on a full disk. */
static int store_result(struct scorer *s, const struct batch_frame *f, float score, float *grid,
                        int64_t t0)
{
    const struct scoring_model *m = &s->model;
    struct scoring_result r = {.frame_id = f->id,
                               .model_id = s->status.model_id,
                               .camera_id = f->camera,
                               .score = score,
                               .threshold = m->threshold,
                               .flagged = score > m->threshold,
                               .latency_us = clock_mono_us() - t0,
                               .grid = grid,
                               .grid_w = m->gw,
                               .grid_h = m->gh};
    int rc = scoring_store_result(s->db, &r);
    if (rc) {
        set_error(s, scoring_store_errmsg(s->db));
        if (scoring_store_error_is_full(s->db)) return SCORE_RETRY;
        unscored(s, f->id, "error");
    } else {
        metrics_histogram_observe(&s->latency, (clock_mono_us() - t0) * 1000);
    }
    pthread_mutex_lock(&s->lock);
    if (!rc) {
        s->status.scored++;
        s->status.flagged += r.flagged;
        s->status.last_latency_us = r.latency_us;
    } else {
        s->status.failed++;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void count_failed(struct scorer *s, int n)
{
    pthread_mutex_lock(&s->lock);
    s->status.failed += (uint64_t)n;
    pthread_mutex_unlock(&s->lock);
}

/* Scores the n frames ids (oldest first) in one backbone pass and stores their results, in order.
 * A frame that cannot be read, decoded or stored is passed over (counted, error recorded).
 * Returns how many frames were dealt with: n, or fewer when a result could not be written on a
 * full disk (that frame and the later ones are to be tried again). */
static int score_batch(struct scorer *s, const int64_t *ids, int n)
{
    int64_t t0 = clock_mono_us();
    struct scoring_model *m = &s->model;
    struct batch_frame f[SCORER_BATCH];
    struct image_set set = {.size = m->size, .channels = m->channels, .max = n};
    for (int i = 0; i < n; i++) {
        f[i] = (struct batch_frame){.id = ids[i], .slot = -1};
        int found = scoring_store_frame(s->db, ids[i], &f[i].data, &f[i].size, &f[i].camera);
        f[i].cached = found == 2;
        if (f[i].cached && !(found = image_from_cache(s, ids[i], &f[i].data, &f[i].size)))
            unscored(s, ids[i], "no_image");
        if (found < 0) {
            set_error(s, scoring_store_errmsg(s->db));
            unscored(s, ids[i], "error");
        }
        if (found <= 0) continue;
        char what[48];
        snprintf(what, sizeof what, "frame %lld", (long long)ids[i]);
        if (image_set_add_encoded(&set, f[i].data, f[i].size, what) == 1) {
            f[i].slot = set.n - 1;
        } else {
            count_failed(s, 1);
            unscored(s, ids[i], "undecodable");
        }
    }
    int P = m->gh * m->gw, done = n;
    float *scores = malloc(sizeof(float) * (size_t)(set.n ? set.n : 1));
    float *grids = malloc(sizeof(float) * (size_t)(set.n ? set.n : 1) * P);
    char err[256] = "out of memory for a batch of frames";
    int scored = -1;
    if (scores && grids) {
        pthread_mutex_lock(&s->model_lock);
        scored = set.n
                     ? model_score(m, set.pixels, set.n, s->threads, scores, grids, err, sizeof err)
                     : 0;
        pthread_mutex_unlock(&s->model_lock);
    }
    if (scored) {
        set_error(s, err);
        count_failed(s, set.n);
        for (int i = 0; i < n; i++)
            if (f[i].slot >= 0) unscored(s, f[i].id, "error");
    }
    for (int i = 0; !scored && i < n; i++) {
        if (f[i].slot < 0) continue;
        int k = f[i].slot;
        if (store_result(s, &f[i], scores[k], grids + (size_t)k * P, t0) == SCORE_RETRY) {
            done = i;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        /* the images of frames to be tried again go back where they came from */
        if (i >= done && f[i].cached && f[i].data)
            image_cache_put(s->images, f[i].id, f[i].data, f[i].size);
        else
            free(f[i].data);
    }
    free(scores), free(grids);
    image_set_free(&set);
    return done;
}

static bool stopping(struct scorer *s)
{
    pthread_mutex_lock(&s->lock);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

/* Skips the frames after last_id that were stored longer than max_lag_us ago: the line outpaces
 * scoring, and alerts must stay timely. Counted, and logged at most once a minute. */
static void skip_stale(struct scorer *s)
{
    if (s->max_lag_us <= 0 || !s->have_model) return;
    int64_t last = s->last_id, count = 0;
    if (scoring_store_stale(s->db, s->last_id, clock_wall_us() - s->max_lag_us, &last, &count)) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    if (count <= 0) return;
    if (scoring_store_unscored_verdicts(s->db, s->last_id, last, "skipped")) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    s->last_id = last;
    pthread_mutex_lock(&s->lock);
    s->status.skipped += (uint64_t)count;
    uint64_t total = s->status.skipped;
    pthread_mutex_unlock(&s->lock);
    s->skip_unlogged += (uint64_t)count;
    int64_t now = clock_mono_us();
    if (s->skip_logged_us == 0 || now - s->skip_logged_us >= 60 * 1000000LL) {
        log_warn("scoring fell more than %lld s behind the line: skipped %llu frame(s) to frame "
                 "%lld (%llu since start; [pipeline] max_score_lag_s)",
                 (long long)(s->max_lag_us / 1000000), (unsigned long long)s->skip_unlogged,
                 (long long)last, (unsigned long long)total);
        s->skip_logged_us = now;
        s->skip_unlogged = 0;
    }
}

/* Before the first model: the frames stored since the last look get the verdict 'unscored'
 * (no_model), NO_MODEL_BATCH at a time. Returns 0 or -1 (error recorded). */
static int mark_no_model(struct scorer *s)
{
    int64_t last;
    if (s->last_id < 0 && scoring_store_resume_point(s->db, 0, &s->last_id)) {
        set_error(s, scoring_store_errmsg(s->db));
        return -1;
    }
    if (scoring_store_frames_after(s->db, s->last_id, NO_MODEL_BATCH, &last) ||
        (last > s->last_id &&
         scoring_store_unscored_verdicts(s->db, s->last_id, last, "no_model"))) {
        set_error(s, scoring_store_errmsg(s->db));
        return -1;
    }
    s->last_id = last;
    return 0;
}

static void *scorer_main(void *arg)
{
    struct scorer *s = arg;
    int64_t next_check = 0, next_no_model = 0;
    /* small GEMMs on one core: OpenBLAS threads would only contend with capture and training */
    gemm_set_threads(1);
    while (!stopping(s)) {
        if (clock_mono_us() >= next_check) {
            refresh_model(s);
            refresh_feedback(s);
            next_check = clock_mono_us() + MODEL_CHECK_MS * 1000;
        }
        skip_stale(s);
        int64_t ids[SCORER_BATCH];
        int n = s->have_model ? scoring_store_unscored(s->db, s->status.model_id, s->last_id, ids,
                                                       SCORER_BATCH)
                              : 0;
        if (n < 0) set_error(s, scoring_store_errmsg(s->db));
        if (!s->have_model && clock_mono_us() >= next_no_model) {
            mark_no_model(s);
            next_no_model = clock_mono_us() + NO_MODEL_MS * 1000;
        }
        if (n > 0 && !stopping(s)) {
            /* the frames waiting go through the backbone together */
            int done = score_batch(s, ids, n);
            if (done > 0) s->last_id = ids[done - 1]; /* one that cannot be scored is not retried */
            if (done < n) {
                pthread_mutex_lock(&s->lock);
                s->status.idle++; /* waiting for room is not a hang (watchdog.h) */
                pthread_mutex_unlock(&s->lock);
                sleep_ms(FULL_RETRY_MS);
            }
        }
        if (n <= 0) {
            pthread_mutex_lock(&s->lock);
            s->status.idle++;
            pthread_mutex_unlock(&s->lock);
            sleep_ms(SCORER_IDLE_MS);
        }
    }
    return NULL;
}

struct scorer *scorer_start(const char *db_path, int threads, struct image_cache *images,
                            int max_lag_s, char *err, size_t errsz)
{
    struct scorer *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errsz, "out of memory for the scorer");
        return NULL;
    }
    s->threads = threads < 1 ? 1 : threads;
    s->images = images;
    s->last_id = -1;
    s->max_lag_us = (int64_t)max_lag_s * 1000000;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->model_lock, NULL);
    static const double bounds[] = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2};
    metrics_histogram_init(&s->latency, bounds, ARRAY_LEN(bounds));
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
    pthread_mutex_destroy(&s->model_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void scorer_get_status(struct scorer *s, struct scorer_status *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->status;
    pthread_mutex_unlock(&s->lock);
}

struct metrics_histogram *scorer_latency(struct scorer *s)
{
    return &s->latency;
}

int scorer_score_image(struct scorer *s, const void *data, size_t len, bool heatmap,
                       struct scorer_verdict *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = clock_mono_us();
    /* the model's input size, then the decode without the lock: an upload of several megapixels
     * must not hold up the frames of the line */
    pthread_mutex_lock(&s->model_lock);
    bool have = s->have_model;
    int size = s->model.size, channels = s->model.channels;
    pthread_mutex_unlock(&s->model_lock);
    if (!have) {
        snprintf(err, errsz, "no model yet: the daemon is still learning what normal looks like");
        return 1;
    }
    struct image_set one = {.size = size, .channels = channels, .max = 1};
    if (image_set_add_encoded(&one, data, len, "the uploaded image") != 1) {
        /* the decoder's reason went to the log; say what a client can act on */
        image_set_free(&one);
        snprintf(err, errsz, "not a decodable JPEG or PNG image (at least %dx%d pixels)", size,
                 size);
        return -1;
    }
    pthread_mutex_lock(&s->model_lock);
    struct scoring_model *m = &s->model;
    int gh = m->gh, gw = m->gw, rc = 0;
    float *grid = malloc(sizeof(float) * (size_t)gh * gw);
    char why[256] = "";
    if (m->size != size || m->channels != channels) {
        snprintf(err, errsz, "the model changed while the image was decoded: send it again");
        rc = -2;
    } else if (!grid) {
        snprintf(err, errsz, "out of memory");
        rc = -2;
    } else if (model_score(m, one.pixels, 1, 1, &out->score, grid, why, sizeof why)) {
        snprintf(err, errsz, "%s", why);
        rc = -2;
    } else {
        out->threshold = m->threshold;
        out->flagged = out->score > m->threshold;
        pthread_mutex_lock(&s->lock); /* the version of the model that scored it */
        snprintf(out->model_version, sizeof out->model_version, "%s", s->status.model_version);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&s->model_lock);
    image_set_free(&one);
    if (rc == 0 && heatmap &&
        heatmap_jpeg(data, len, grid, gh, gw, out->threshold, &out->heatmap_jpeg, &out->heatmap_len,
                     err, errsz))
        rc = -2;
    out->latency_us = clock_mono_us() - t0;
    free(grid);
    return rc;
}

void scorer_write_metrics(FILE *out, struct scorer *s)
{
    struct scorer_status sc;
    scorer_get_status(s, &sc);
    metrics_write_one(out, "inspectd_frames_scored_total", "counter",
                      "Frames scored against the active model.", "%llu",
                      (unsigned long long)sc.scored);
    metrics_write_one(out, "inspectd_frames_flagged_total", "counter",
                      "Frames whose score crossed the threshold.", "%llu",
                      (unsigned long long)sc.flagged);
    metrics_write_one(out, "inspectd_frames_score_failed_total", "counter",
                      "Frames that could not be scored (undecodable, database error).", "%llu",
                      (unsigned long long)sc.failed);
    metrics_write_one(out, "inspectd_frames_skipped_total", "counter",
                      "Frames not scored: stored longer than max_score_lag_s before their turn.",
                      "%llu", (unsigned long long)sc.skipped);
    metrics_write_one(out, "inspectd_model_id", "gauge", "Id of the active model (0: none).",
                      "%lld", (long long)sc.model_id);
    char label[160];
    metrics_write_header(out, "inspectd_model_info", "gauge",
                         "The active model's version (1 while one scores).");
    if (sc.model_id)
        fprintf(out, "inspectd_model_info{version=\"%s\"} 1\n",
                metrics_label(sc.model_version, label, sizeof label));
    metrics_write_one(out, "inspectd_model_age_seconds", "gauge",
                      "Seconds since the active model was created (0: none).", "%.0f",
                      sc.model_id ? (double)(clock_wall_us() - sc.model_created_us) * 1e-6 : 0.0);
    metrics_write_one(out, "inspectd_model_threshold", "gauge",
                      "The active model's flagging threshold (raw score units).", "%g",
                      sc.model_id ? sc.threshold : 0.0);
    metrics_write_one(out, "inspectd_feedback_frames", "gauge",
                      "Frames marked false positive whose patches are in the bank.", "%d",
                      sc.feedback_frames);
    metrics_write_histogram(out, "inspectd_scoring_seconds",
                            "Time to score one frame: decode, embed, k-NN, store the result.",
                            scorer_latency(s));
}
