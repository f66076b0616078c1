/* scorer.c — the scoring thread: poll the recipes' active models and their unscored frames, score,
 * store. */
#define LOG_TAG "scorer"
#include "heatmap.h"
#include "array.h"
#include "clock.h"
#include "log.h"

#include "scorer.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame_region.h"
#include "gemm.h"
#include "image.h"
#include "imageset.h"
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
#define MAX_RECIPES    SCORER_MAX_RECIPES
#define RECALIB_FRAMES 256 /* frames a model without calibration scores is recalibrated on */
#define RECALIB_MIN    10

enum { SCORE_RETRY = -2 }; /* store_result(): the disk is full, try the frame again later */

/* A recipe and the model that scores its frames. */
struct recipe_slot {
    int64_t id;
    char name[64];
    struct scoring_model model; /* valid when have_model */
    bool have_model;
    char bank_path[4096];     /* the bank file of model */
    int64_t feedback_mark[3]; /* of the recipe's false positives now in the bank */
    int64_t last_id;          /* its frames up to this id were looked at under the current model */
    bool file_applied;        /* the config's sensitivity was written for it */
    float trained_threshold;  /* the model's own threshold, at its trained false-alarm rate */
    double rate, fixed;       /* the sensitivity the threshold was set from (-1: none yet) */
    struct scorer_recipe_status status; /* under the scorer's lock */
};

/* The config's sensitivity of a recipe. */
struct file_sensitivity {
    char name[64];
    double rate, threshold;
};

struct scorer {
    pthread_t thread;
    pthread_mutex_t lock; /* guards status, the slots' status, nslots and stop */
    bool stop;
    int threads;
    struct image_cache *images; /* of frames stored without them */
    bool warned_no_image;       /* such a frame could not be scored: logged once */
    struct scoring_store *db;
    struct frame_region_cache regions; /* of the frames scored (the scoring thread's) */
    pthread_mutex_t model_lock; /* guards the slots' model and have_model against POST /score */
    struct recipe_slot slots[MAX_RECIPES];
    int nslots, turn;    /* turn: the slot looked at first in the next round */
    bool warned_recipes; /* more recipes than slots: logged once */
    /* the config's sensitivities (scorer_configure), under lock; written to the database by the
     * scoring thread when they changed (config_gen) */
    struct file_sensitivity file[CONFIG_MAX_RECIPES + CONFIG_MAX_CAMERAS];
    int nfile;
    double default_rate, default_threshold;
    uint64_t config_gen, applied_gen;
    struct metrics_histogram latency;
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

/* A frame as the model sees it: the frame's image (data, size), of a width × height frame, through
 * the region it was captured with. */
struct frame_view {
    const struct region *region; /* NULL: the whole frame */
    int width, height;
    int rect[4]; /* the ROI in the frame */
};

/* Appends frame id's image to set as model m sees it through its region, one image or its tiles
 * (view, when not NULL, says how). Returns 1,
 * 0 when it cannot be seen (undecodable, or its ROI lies outside the frame: recorded as the error,
 * logged once), or -1 on a database error or out of memory (recorded). */
static int add_frame(struct scorer *s, const struct scoring_model *m, struct image_set *set,
                     int64_t id, const void *data, size_t size, struct frame_view *view)
{
    char err[400], what[48];
    struct frame_view v = {0};
    if (frame_region_of(&s->regions, s->db, id, &v.region, err, sizeof err))
        return set_error(s, err), -1;
    if (view) *view = v;
    if (image_probe(data, size, &v.width, &v.height) == IMAGE_OK &&
        region_rect(v.region, v.width, v.height, v.rect, err, sizeof err)) {
        char msg[500];
        snprintf(msg, sizeof msg, "frames not scored: their camera's %s ([camera.X] roi)", err);
        set_error(s, msg);
        return 0;
    }
    snprintf(what, sizeof what, "frame %lld", (long long)id);
    struct image_view iv = model_view(m, v.region);
    int n = image_set_add_region(set, data, size, what, &iv);
    if (n > 0 && view) *view = v;
    return n < 0 ? (set_error(s, "out of memory for a frame"), -1) : n > 0;
}

/* Loads recipe r's active model (row) when it changed. */
static void refresh_slot(struct scorer *s, struct recipe_slot *r, const struct model_row *row)
{
    if (r->have_model && row->id == r->status.model_id) return;
    struct scoring_model m;
    char err[512];
    /* a model that replaces another continues where that one stopped, so no frame of the swap
     * goes unscored; the first model (also the one found at start) resumes after its own last
     * result, or starts at the recipe's newest frame (a backlog from before any model is not
     * scored) */
    int64_t after = r->last_id;
    if (!r->have_model && scoring_store_resume_point(s->db, row->id, r->id, &after)) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    if (model_load(&m, row->path, row->bank, err, sizeof err)) {
        char msg[1024];
        snprintf(msg, sizeof msg,
                 "model %s of recipe %s not loaded (the previous one keeps scoring): %s",
                 row->version, r->name, err);
        set_error(s, msg);
        return;
    }
    r->last_id = after;
    snprintf(r->bank_path, sizeof r->bank_path, "%s", row->bank);
    memset(r->feedback_mark, 0, sizeof r->feedback_mark); /* the new bank has none yet */
    r->trained_threshold = m.threshold;
    r->rate = r->fixed = -1; /* its threshold for the recipe's sensitivity comes next */
    /* model and status change together: an upload scored now names the model that scored it
     * (lock order everywhere: model_lock, then lock) */
    pthread_mutex_lock(&s->model_lock);
    if (r->have_model) model_free(&r->model);
    r->model = m;
    r->have_model = true;
    pthread_mutex_lock(&s->lock);
    s->status.state = SCORER_SCORING;
    r->status.has_model = true;
    r->status.model_id = row->id;
    r->status.model_created_us = row->created_at;
    r->status.feedback_frames = 0;
    r->status.threshold = m.threshold;
    snprintf(r->status.model_version, sizeof r->status.model_version, "%s", row->version);
    s->status.model_id = row->id;
    s->status.model_created_us = row->created_at;
    s->status.threshold = m.threshold;
    snprintf(s->status.model_version, sizeof s->status.model_version, "%s", row->version);
    s->status.last_error[0] = '\0';
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->model_lock);
    log_info("recipe %s: scoring with model %s: %dx%d input, bank of %d patches, threshold %.4f",
             r->name, row->version, m.size, m.size, m.bank.n, m.threshold);
}

/* The config's sensitivity of recipe name. */
static void file_sensitivity_of(struct scorer *s, const char *name, double *rate, double *threshold)
{
    pthread_mutex_lock(&s->lock);
    *rate = s->default_rate, *threshold = s->default_threshold;
    for (int i = 0; i < s->nfile; i++)
        if (strcmp(s->file[i].name, name) == 0)
            *rate = s->file[i].rate, *threshold = s->file[i].threshold;
    pthread_mutex_unlock(&s->lock);
}

/* Recalibrates a model whose bank file has no calibration scores (one of an earlier version) on
 * the recipe's frames it scored below its threshold (and false positives). Returns 0, or -1
 * (error recorded). */
static int recalibrate(struct scorer *s, struct recipe_slot *r)
{
    int64_t ids[RECALIB_FRAMES];
    int n = scoring_store_calibration_frames(s->db, r->id, r->status.model_id, ids, RECALIB_FRAMES);
    if (n < 0) return set_error(s, scoring_store_errmsg(s->db)), -1;
    struct scoring_model *m = &r->model;
    struct image_set set = {.size = m->size, .channels = m->channels};
    for (int i = 0; i < n; i++) {
        void *data = NULL;
        size_t size = 0;
        int64_t camera;
        if (scoring_store_frame(s->db, ids[i], &data, &size, &camera) == 1)
            add_frame(s, m, &set, ids[i], data, size, NULL);
        free(data);
    }
    float *scores = malloc(sizeof(float) * (size_t)(set.frames ? set.frames : 1));
    char err[256] = "out of memory";
    int rc = -1;
    if (set.frames < RECALIB_MIN) {
        snprintf(err, sizeof err, "%d frame(s) scored below its threshold, %d needed", set.frames,
                 RECALIB_MIN);
    } else if (scores) {
        pthread_mutex_lock(&s->model_lock);
        struct model_input in = model_input_of(&set);
        rc = model_score_input(m, &in, s->threads, scores, NULL, err, sizeof err);
        if (!rc && model_set_calibration(m, scores, set.frames)) rc = -1;
        pthread_mutex_unlock(&s->model_lock);
    }
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "recipe %s: model %s has no calibration scores and cannot be recalibrated yet "
                 "(%s): it keeps its own threshold",
                 r->name, r->status.model_version, err);
        set_error(s, msg);
    } else {
        /* kept in the bank file: a restart finds the same calibration, not another one */
        char why[300];
        pthread_mutex_lock(&s->model_lock);
        int kept = model_save_calibration(m, r->bank_path, why, sizeof why);
        pthread_mutex_unlock(&s->model_lock);
        log_info("recipe %s: model %s recalibrated on %d frames it scored as normal%s%s", r->name,
                 r->status.model_version, set.frames, kept ? "; not kept in its bank file: " : "",
                 kept ? why : "");
    }
    free(scores);
    image_set_free(&set);
    return rc;
}

/* The threshold of recipe r's model for the sensitivity in force (row): a fixed threshold, else
 * the false-alarm rate's quantile of the model's calibration scores (its own threshold at the
 * rate it was trained at). Applied to the frames scored from now on. */
static void apply_sensitivity(struct scorer *s, struct recipe_slot *r, const struct recipe_row *row)
{
    if (!r->have_model) return;
    struct scoring_model *m = &r->model;
    /* a model whose bank file has no calibration scores (an earlier version's) is recalibrated
     * when first loaded, once the recipe has frames it scored as normal */
    if (m->n_calibration < 1) recalibrate(s, r);
    double rate = row->false_alarm_rate > 0 ? row->false_alarm_rate : m->trained_rate;
    double fixed = row->threshold;
    if (rate == r->rate && fixed == r->fixed) return;
    float threshold = r->trained_threshold;
    if (fixed > 0) {
        threshold = (float)fixed;
    } else if (fabs(rate - m->trained_rate) > 1e-9) {
        if (m->n_calibration < 1) return; /* not recalibrated yet: tried again next turn */
        pthread_mutex_lock(&s->model_lock);
        int rc = model_threshold_at(m, rate, &threshold);
        pthread_mutex_unlock(&s->model_lock);
        if (rc) return set_error(s, "out of memory for the threshold");
    }
    pthread_mutex_lock(&s->model_lock);
    m->threshold = threshold;
    pthread_mutex_lock(&s->lock);
    r->status.threshold = threshold;
    r->status.false_alarm_rate = rate;
    r->status.fixed_threshold = fixed > 0;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&s->model_lock);
    if (r->rate >= 0 || fixed > 0 || threshold != r->trained_threshold)
        log_info("recipe %s: threshold %.4f (%s %g) from the next frame", r->name, threshold,
                 fixed > 0 ? "fixed" : "false-alarm rate", fixed > 0 ? fixed : rate);
    r->rate = rate, r->fixed = fixed;
}

/* The recipes and their active models: a new recipe gets a slot (and the config's sensitivity),
 * a changed model is loaded, a changed sensitivity sets its threshold. */
static void refresh_models(struct scorer *s)
{
    struct recipe_row rows[MAX_RECIPES + 1];
    int n = scoring_store_recipes(s->db, rows, MAX_RECIPES + 1);
    if (n < 0) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    if (n > MAX_RECIPES && !s->warned_recipes) {
        log_warn("more than %d recipes in the database: only the first %d are scored", MAX_RECIPES,
                 MAX_RECIPES);
        s->warned_recipes = true;
    }
    if (n > MAX_RECIPES) n = MAX_RECIPES;
    pthread_mutex_lock(&s->lock);
    uint64_t gen = s->config_gen;
    pthread_mutex_unlock(&s->lock);
    bool wrote = false;
    for (int i = 0; i < n; i++) {
        struct recipe_slot *r = NULL;
        for (int k = 0; k < s->nslots && !r; k++)
            if (s->slots[k].id == rows[i].id) r = &s->slots[k];
        if (!r) {
            pthread_mutex_lock(&s->lock);
            r = &s->slots[s->nslots];
            memset(r, 0, sizeof *r);
            r->id = rows[i].id;
            r->last_id = -1; /* not known yet */
            r->rate = r->fixed = -1;
            snprintf(r->name, sizeof r->name, "%s", rows[i].name);
            snprintf(r->status.recipe, sizeof r->status.recipe, "%s", rows[i].name);
            s->nslots++;
            pthread_mutex_unlock(&s->lock);
        }
        if (gen > 0 && (!r->file_applied || gen != s->applied_gen)) {
            double rate, threshold;
            file_sensitivity_of(s, r->name, &rate, &threshold);
            if (scoring_store_file_sensitivity(s->db, r->name, rate, threshold))
                set_error(s, scoring_store_errmsg(s->db));
            else
                r->file_applied = wrote = true;
        }
    }
    s->applied_gen = gen;
    if (wrote && (n = scoring_store_recipes(s->db, rows, MAX_RECIPES)) < 0) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s->nslots; k++) {
            if (s->slots[k].id != rows[i].id) continue;
            if (rows[i].has_model) refresh_slot(s, &s->slots[k], &rows[i].model);
            apply_sensitivity(s, &s->slots[k], &rows[i]);
        }
}

void scorer_configure(struct scorer *s, const struct config *cfg)
{
    pthread_mutex_lock(&s->lock);
    s->nfile = 0;
    s->default_rate = cfg->false_alarm_rate;
    s->default_threshold = cfg->threshold;
    for (size_t i = 0; i < cfg->nrecipes; i++)
        s->file[s->nfile++] = (struct file_sensitivity){"", cfg->recipes[i].false_alarm_rate,
                                                        cfg->recipes[i].threshold};
    for (size_t i = 0; i < cfg->nrecipes; i++)
        snprintf(s->file[i].name, sizeof s->file[i].name, "%s", cfg->recipes[i].name);
    s->config_gen++;
    pthread_mutex_unlock(&s->lock);
}

/* Feedback rows are keyed by frame id, and with tiles by frame id and tile (model_set_feedback's
 * ids): a frame of tiles gives one key per tile. */
#define FEEDBACK_TILE_KEYS (IMAGE_VIEW_MAX_TILES * IMAGE_VIEW_MAX_TILES)

/* The keys of false-positive frame id's images (its tiles), at most max, into keys; the images
 * not in m's bank yet are appended to fresh, in order. Returns the count (0: it cannot be read or
 * decoded, left out). */
static int feedback_frame(struct scorer *s, const struct scoring_model *m, int64_t id,
                          int64_t *keys, int max, struct image_set *fresh)
{
    bool tiles = m->input == MODEL_INPUT_TILES;
    if (!tiles && model_has_feedback(m, id)) return keys[0] = id, 1;
    void *data = NULL;
    size_t size = 0;
    int64_t camera;
    struct image_set one = {.size = m->size, .channels = m->channels};
    if (scoring_store_frame(s->db, id, &data, &size, &camera) != 1 ||
        add_frame(s, m, &one, id, data, size, NULL) != 1) {
        free(data);
        image_set_free(&one);
        return 0;
    }
    free(data);
    size_t per = (size_t)m->channels * m->size * m->size;
    int n = one.n < max ? one.n : max;
    for (int t = 0; t < n; t++) {
        keys[t] = tiles ? id * FEEDBACK_TILE_KEYS + t : id;
        if (model_has_feedback(m, keys[t])) continue;
        if (fresh->n >= (int)fresh->cap) {
            size_t cap = fresh->cap ? fresh->cap * 2 : 16;
            float *p = realloc(fresh->pixels, sizeof(float) * per * cap);
            if (!p) {
                image_set_free(&one);
                return t;
            }
            fresh->pixels = p, fresh->cap = cap;
        }
        memcpy(fresh->pixels + per * fresh->n++, one.pixels + per * t, sizeof(float) * per);
    }
    image_set_free(&one);
    return n;
}

/* Operator feedback: when the set of a recipe's frames marked false positive changed, its bank
 * becomes the model's own plus their patches. A frame that cannot be read or decoded is left out.
 */
static void refresh_feedback(struct scorer *s, struct recipe_slot *r)
{
    int64_t mark[3];
    if (!r->have_model) return;
    if (scoring_store_feedback_mark(s->db, r->id, mark)) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    if (memcmp(mark, r->feedback_mark, sizeof mark) == 0) return;
    int64_t ids[FEEDBACK_MAX];
    int n = scoring_store_false_positives(s->db, r->id, ids, FEEDBACK_MAX);
    if (n < 0) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    /* frames (tiles) already in the bank keep their rows; only the new ones are embedded */
    struct scoring_model *m = &r->model;
    struct image_set set = {.size = m->size, .channels = m->channels};
    int64_t *keys = malloc(sizeof(int64_t) * FEEDBACK_MAX);
    int used = 0, frames = 0;
    for (int i = 0; keys && i < n && used < FEEDBACK_MAX; i++) {
        int got = feedback_frame(s, m, ids[i], keys + used, FEEDBACK_MAX - used, &set);
        used += got, frames += got > 0;
    }
    if (!keys) {
        set_error(s, "out of memory for operator feedback");
        return;
    }
    char err[256];
    pthread_mutex_lock(&s->model_lock);
    int rc = model_set_feedback(m, keys, used, set.pixels, s->threads, err, sizeof err);
    pthread_mutex_unlock(&s->model_lock);
    image_set_free(&set);
    free(keys);
    if (rc) {
        char msg[320];
        snprintf(msg, sizeof msg, "operator feedback not applied: %s", err);
        set_error(s, msg);
        return;
    }
    memcpy(r->feedback_mark, mark, sizeof mark);
    int total = 0;
    pthread_mutex_lock(&s->lock);
    r->status.feedback_frames = frames;
    for (int k = 0; k < s->nslots; k++) total += s->slots[k].status.feedback_frames;
    s->status.feedback_frames = total;
    pthread_mutex_unlock(&s->lock);
    log_info("recipe %s: operator feedback: %d false positive frame(s) in the bank (%d patches in "
             "all)",
             r->name, frames, m->bank.n);
}

/* Gives frame id the verdict 'unscored' for reason (when it has none yet); an error is recorded. */
static void unscored(struct scorer *s, int64_t id, const char *reason)
{
    if (scoring_store_unscored_verdicts(s->db, 0, id - 1, id, reason))
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
    struct frame_view view;
};

/* Stores frame f's result (grid: its heatmap grids, one per tile). Returns 0, -1 (error
 * recorded), or SCORE_RETRY on a full disk. */
static int store_result(struct scorer *s, struct recipe_slot *slot, const struct batch_frame *f,
                        float score, float *grid, int64_t t0)
{
    const struct scoring_model *m = &slot->model;
    int gh = m->gh, gw = m->gw;
    float *frame_grid = NULL;
    if ((f->view.region || m->input == MODEL_INPUT_TILES) &&
        (frame_grid = malloc(sizeof(float) * HEATMAP_MAX_GRID * HEATMAP_MAX_GRID))) {
        /* the heatmap is one grid over the whole frame, the ROI's patches in their place */
        if (model_frame_grid(m, f->view.region, f->view.width, f->view.height, grid, frame_grid,
                             &gh, &gw) == 0)
            grid = frame_grid;
        else
            gh = m->gh, gw = m->gw;
    }
    struct scoring_result r = {.frame_id = f->id,
                               .model_id = slot->status.model_id,
                               .camera_id = f->camera,
                               .score = score,
                               .threshold = m->threshold,
                               .flagged = score > m->threshold,
                               .latency_us = clock_mono_us() - t0,
                               .grid = grid,
                               .grid_w = gw,
                               .grid_h = gh};
    int rc = scoring_store_result(s->db, &r);
    free(frame_grid);
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
        slot->status.scored++;
        slot->status.flagged += r.flagged;
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
static int score_batch(struct scorer *s, struct recipe_slot *slot, const int64_t *ids, int n)
{
    int64_t t0 = clock_mono_us();
    struct scoring_model *m = &slot->model;
    struct batch_frame f[SCORER_BATCH];
    struct image_set set = {.size = m->size, .channels = m->channels};
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
        int added = add_frame(s, m, &set, ids[i], f[i].data, f[i].size, &f[i].view);
        if (added == 1) {
            f[i].slot = set.frames - 1;
        } else {
            count_failed(s, 1);
            unscored(s, ids[i], added == 0 && !f[i].view.region ? "undecodable" : "error");
        }
    }
    int P = m->gh * m->gw, done = n;
    float *scores = malloc(sizeof(float) * (size_t)(set.frames ? set.frames : 1));
    float *grids = malloc(sizeof(float) * (size_t)(set.n ? set.n : 1) * P);
    char err[256] = "out of memory for a batch of frames";
    int scored = -1;
    if (scores && grids) {
        pthread_mutex_lock(&s->model_lock);
        struct model_input in = model_input_of(&set);
        scored = set.n ? model_score_input(m, &in, s->threads, scores, grids, err, sizeof err) : 0;
        pthread_mutex_unlock(&s->model_lock);
    }
    if (scored) {
        set_error(s, err);
        count_failed(s, set.frames);
        for (int i = 0; i < n; i++)
            if (f[i].slot >= 0) unscored(s, f[i].id, "error");
    }
    for (int i = 0; !scored && i < n; i++) {
        if (f[i].slot < 0) continue;
        int k = f[i].slot;
        if (store_result(s, slot, &f[i], scores[k], grids + (size_t)set.first[k] * P, t0) ==
            SCORE_RETRY) {
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
static void skip_stale(struct scorer *s, struct recipe_slot *r)
{
    if (s->max_lag_us <= 0 || !r->have_model) return;
    int64_t last = r->last_id, count = 0;
    if (scoring_store_stale(s->db, r->id, r->last_id, clock_wall_us() - s->max_lag_us, &last,
                            &count)) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    if (count <= 0) return;
    if (scoring_store_unscored_verdicts(s->db, r->id, r->last_id, last, "skipped")) {
        set_error(s, scoring_store_errmsg(s->db));
        return;
    }
    r->last_id = last;
    pthread_mutex_lock(&s->lock);
    s->status.skipped += (uint64_t)count;
    uint64_t total = s->status.skipped;
    pthread_mutex_unlock(&s->lock);
    s->skip_unlogged += (uint64_t)count;
    int64_t now = clock_mono_us();
    if (s->skip_logged_us == 0 || now - s->skip_logged_us >= 60 * 1000000LL) {
        log_warn("scoring fell more than %lld s behind the line: skipped %llu frame(s) (recipe %s "
                 "to frame %lld; %llu since start; [pipeline] max_score_lag_s)",
                 (long long)(s->max_lag_us / 1000000), (unsigned long long)s->skip_unlogged,
                 r->name, (long long)last, (unsigned long long)total);
        s->skip_logged_us = now;
        s->skip_unlogged = 0;
    }
}

/* While recipe r has no model: its frames stored since the last look get the verdict 'unscored'
 * (no_model), NO_MODEL_BATCH at a time. Returns 0 or -1 (error recorded). */
static int mark_no_model(struct scorer *s, struct recipe_slot *r)
{
    int64_t last;
    if (r->last_id < 0 && scoring_store_resume_point(s->db, 0, r->id, &r->last_id)) {
        set_error(s, scoring_store_errmsg(s->db));
        return -1;
    }
    if (scoring_store_frames_after(s->db, r->id, r->last_id, NO_MODEL_BATCH, &last) ||
        (last > r->last_id &&
         scoring_store_unscored_verdicts(s->db, r->id, r->last_id, last, "no_model"))) {
        set_error(s, scoring_store_errmsg(s->db));
        return -1;
    }
    r->last_id = last;
    return 0;
}

/* One batch of recipe r's waiting frames. Returns true when there was one. */
static bool score_recipe(struct scorer *s, struct recipe_slot *r)
{
    if (!r->have_model) return false;
    skip_stale(s, r);
    int64_t ids[SCORER_BATCH];
    int n = scoring_store_unscored(s->db, r->status.model_id, r->id, r->last_id, ids, SCORER_BATCH);
    if (n < 0) set_error(s, scoring_store_errmsg(s->db));
    if (n <= 0 || stopping(s)) return false;
    /* the frames waiting go through the backbone together */
    int done = score_batch(s, r, ids, n);
    if (done > 0) r->last_id = ids[done - 1]; /* one that cannot be scored is not retried */
    if (done < n) {
        pthread_mutex_lock(&s->lock);
        s->status.idle++; /* waiting for room is not a hang (watchdog.h) */
        pthread_mutex_unlock(&s->lock);
        sleep_ms(FULL_RETRY_MS);
    }
    return true;
}

static void *scorer_main(void *arg)
{
    struct scorer *s = arg;
    int64_t next_check = 0, next_no_model = 0;
    /* small GEMMs on one core: OpenBLAS threads would only contend with capture and training */
    gemm_set_threads(1);
    while (!stopping(s)) {
        if (clock_mono_us() >= next_check) {
            refresh_models(s);
            for (int k = 0; k < s->nslots; k++) refresh_feedback(s, &s->slots[k]);
            next_check = clock_mono_us() + MODEL_CHECK_MS * 1000;
        }
        /* one batch of each recipe in turn, so that a backlog of one does not hold up another;
         * the frames of a recipe without a model get their verdict */
        bool worked = false;
        for (int k = 0; k < s->nslots && !stopping(s); k++)
            worked |= score_recipe(s, &s->slots[(s->turn + k) % s->nslots]);
        if (s->nslots) s->turn = (s->turn + 1) % s->nslots;
        if (clock_mono_us() >= next_no_model) {
            for (int k = 0; k < s->nslots && !stopping(s); k++)
                if (!s->slots[k].have_model) mark_no_model(s, &s->slots[k]);
            next_no_model = clock_mono_us() + NO_MODEL_MS * 1000;
        }
        if (!worked) {
            pthread_mutex_lock(&s->lock);
            s->status.idle++;
            pthread_mutex_unlock(&s->lock);
            sleep_ms(SCORER_IDLE_MS);
        }
    }
    /* the scorer stops after capture (cmd_run): the last frames stored while a recipe had no
     * model get their verdict too */
    for (int k = 0; k < s->nslots; k++) {
        struct recipe_slot *r = &s->slots[k];
        for (int64_t before = -2; !r->have_model && r->last_id != before;) {
            before = r->last_id;
            if (mark_no_model(s, r)) break;
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
    for (int k = 0; k < s->nslots; k++)
        if (s->slots[k].have_model) model_free(&s->slots[k].model);
    frame_region_free(&s->regions);
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

int scorer_recipes(struct scorer *s, struct scorer_recipe_status *out, int max)
{
    pthread_mutex_lock(&s->lock);
    int n = s->nslots < max ? s->nslots : max;
    for (int k = 0; k < n; k++) out[k] = s->slots[k].status;
    pthread_mutex_unlock(&s->lock);
    return n;
}

bool scorer_recipe_status(struct scorer *s, const char *recipe, struct scorer_recipe_status *out)
{
    memset(out, 0, sizeof *out);
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (int k = 0; k < s->nslots && !found; k++)
        if (strcmp(s->slots[k].name, recipe) == 0) *out = s->slots[k].status, found = true;
    pthread_mutex_unlock(&s->lock);
    return found;
}

struct metrics_histogram *scorer_latency(struct scorer *s)
{
    return &s->latency;
}

/* The slot of recipe name, or NULL. Under model_lock (the slots are only added to, and a slot's
 * name never changes, but nslots is read under lock). */
static struct recipe_slot *find_slot(struct scorer *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct recipe_slot *r = NULL;
    for (int k = 0; k < s->nslots && !r; k++)
        if (strcmp(s->slots[k].name, name) == 0) r = &s->slots[k];
    pthread_mutex_unlock(&s->lock);
    return r;
}

int scorer_recipe_calibration(struct scorer *s, const char *recipe, float **out)
{
    *out = NULL;
    pthread_mutex_lock(&s->model_lock);
    struct recipe_slot *r = find_slot(s, recipe);
    int n = r && r->have_model ? r->model.n_calibration : -1;
    if (n > 0 && (*out = malloc(sizeof(float) * (size_t)n)))
        memcpy(*out, r->model.calibration, sizeof(float) * (size_t)n);
    else if (n > 0)
        n = -1;
    pthread_mutex_unlock(&s->model_lock);
    return n;
}

int scorer_score_image(struct scorer *s, const char *recipe, const void *data, size_t len,
                       bool heatmap, struct scorer_verdict *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    int64_t t0 = clock_mono_us();
    /* the model's input size, then the decode without the lock: an upload of several megapixels
     * must not hold up the frames of the line */
    pthread_mutex_lock(&s->model_lock);
    struct recipe_slot *slot = find_slot(s, recipe);
    bool have = slot && slot->have_model;
    int size = have ? slot->model.size : 0, channels = have ? slot->model.channels : 0;
    struct image_view view = have ? model_view(&slot->model, NULL) : (struct image_view){0};
    pthread_mutex_unlock(&s->model_lock);
    if (!have) {
        snprintf(err, errsz,
                 "recipe %s has no model yet: the daemon is still learning what normal looks like",
                 recipe);
        return 1;
    }
    struct image_set one = {.size = size, .channels = channels};
    struct batch_frame bf = {.id = 0};
    if (image_probe(data, len, &bf.view.width, &bf.view.height) != IMAGE_OK ||
        image_set_add_region(&one, data, len, "the uploaded image", &view) < 1) {
        /* the decoder's reason went to the log; say what a client can act on */
        image_set_free(&one);
        snprintf(err, errsz, "not a decodable JPEG or PNG image (at least %dx%d pixels)", size,
                 size);
        return -1;
    }
    pthread_mutex_lock(&s->model_lock);
    struct scoring_model *m = &slot->model;
    int gh = m->gh, gw = m->gw, rc = 0;
    float *grid = malloc(sizeof(float) * (size_t)gh * gw * one.n);
    float *frame_grid = NULL;
    char why[256] = "";
    struct model_input in = model_input_of(&one);
    if (m->size != size || m->channels != channels || model_view(m, NULL).tiles != view.tiles ||
        model_view(m, NULL).overlap != view.overlap) {
        snprintf(err, errsz, "the model changed while the image was decoded: send it again");
        rc = -2;
    } else if (!grid) {
        snprintf(err, errsz, "out of memory");
        rc = -2;
    } else if (model_score_input(m, &in, 1, &out->score, grid, why, sizeof why)) {
        snprintf(err, errsz, "%s", why);
        rc = -2;
    } else {
        /* tiles: their grids stitched back into one over the image */
        if (view.tiles && heatmap &&
            (frame_grid = malloc(sizeof(float) * HEATMAP_MAX_GRID * HEATMAP_MAX_GRID)) &&
            model_frame_grid(m, NULL, bf.view.width, bf.view.height, grid, frame_grid, &gh, &gw) ==
                0) {
            free(grid);
            grid = frame_grid;
        } else if (frame_grid) {
            free(frame_grid);
        }
        out->threshold = m->threshold;
        out->flagged = out->score > m->threshold;
        pthread_mutex_lock(&s->lock); /* the version of the model that scored it */
        snprintf(out->model_version, sizeof out->model_version, "%s", slot->status.model_version);
        pthread_mutex_unlock(&s->lock);
        snprintf(out->recipe, sizeof out->recipe, "%s", recipe);
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
    struct scorer_recipe_status rs[MAX_RECIPES];
    int n = scorer_recipes(s, rs, MAX_RECIPES);
    char label[160], version[160];
    metrics_write_header(out, "inspectd_model_id", "gauge",
                         "Id of a recipe's active model (recipes with one).");
    for (int k = 0; k < n; k++)
        if (rs[k].has_model)
            fprintf(out, "inspectd_model_id{recipe=\"%s\"} %lld\n",
                    metrics_label(rs[k].recipe, label, sizeof label), (long long)rs[k].model_id);
    metrics_write_header(out, "inspectd_model_info", "gauge",
                         "A recipe's active model's version (1 while one scores).");
    for (int k = 0; k < n; k++)
        if (rs[k].has_model)
            fprintf(out, "inspectd_model_info{recipe=\"%s\",version=\"%s\"} 1\n",
                    metrics_label(rs[k].recipe, label, sizeof label),
                    metrics_label(rs[k].model_version, version, sizeof version));
    metrics_write_header(out, "inspectd_model_age_seconds", "gauge",
                         "Seconds since a recipe's active model was created.");
    for (int k = 0; k < n; k++)
        if (rs[k].has_model)
            fprintf(out, "inspectd_model_age_seconds{recipe=\"%s\"} %.0f\n",
                    metrics_label(rs[k].recipe, label, sizeof label),
                    (double)(clock_wall_us() - rs[k].model_created_us) * 1e-6);
    metrics_write_header(out, "inspectd_model_threshold", "gauge",
                         "A recipe's active model's flagging threshold (raw score units).");
    for (int k = 0; k < n; k++)
        if (rs[k].has_model)
            fprintf(out, "inspectd_model_threshold{recipe=\"%s\"} %g\n",
                    metrics_label(rs[k].recipe, label, sizeof label), rs[k].threshold);
    metrics_write_one(out, "inspectd_feedback_frames", "gauge",
                      "Frames marked false positive whose patches are in the bank.", "%d",
                      sc.feedback_frames);
    metrics_write_histogram(out, "inspectd_scoring_seconds",
                            "Time to score one frame: decode, embed, k-NN, store the result.",
                            scorer_latency(s));
}
