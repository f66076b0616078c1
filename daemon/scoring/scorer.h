/* scorer.h — the scoring thread: every stored frame gets a score against the active model of the
 * recipe it was captured for (decode → resize to the model's input → teacher backbone → patch
 * k-NN against the bank), a result row, and, when flagged, a heatmap and an alert. Each recipe
 * has its model, loaded when it changes, and its false positives in its bank. Frames are found in
 * the database, recipe by recipe, one batch of each in turn (the oldest unscored ones first, after
 * the last frame the model scored, or from the recipe's newest for a first model that scored
 * nothing yet; a model that replaces another continues where that one stopped, backlog included),
 * so neither a restart nor a model swap loses a frame and capture is never slowed. The frames
 * waiting (up to 16) are scored together, in one backbone pass; each gets the result it would get
 * alone (model_score). Every frame gets a verdict (schema/0005_results.sql): 'ok' or 'ng' with its
 * result, else 'unscored' with the reason. While a frame's recipe has no model yet (the scorer is
 * "learning" until any recipe has one) its frames get 'unscored' (no_model). A frame stored
 * without its image (storage full) is scored from the image cache the writer handed its image to;
 * when the cache no longer holds it, it is 'unscored' (no_image) and counted. A result that cannot
 * be written because the disk is full is retried (the writer's retention makes room) instead of
 * being lost. */
#ifndef INSPECTD_SCORER_H
#define INSPECTD_SCORER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/metrics.h"
#include "capture/image_cache.h"

struct scorer;

enum scorer_state { SCORER_LEARNING = 0, SCORER_SCORING, SCORER_ERROR };

#define SCORER_MAX_RECIPES 64

/* A recipe as the scorer sees it. */
struct scorer_recipe_status {
    char recipe[64];
    bool has_model;
    char model_version[64];
    int64_t model_id, model_created_us;
    float threshold;          /* in use: from the sensitivity below */
    double false_alarm_rate;  /* the recipe's sensitivity in force */
    bool fixed_threshold;     /* the threshold is fixed (not the rate's quantile) */
    uint64_t scored, flagged; /* since start */
    int feedback_frames;      /* false positives in its bank */
};

/* The scorer over all recipes: state is "scoring" once any recipe has a model; the model fields
 * are those of the model loaded last. */
struct scorer_status {
    enum scorer_state state;
    char model_version[64];
    int64_t model_id;
    float threshold;
    uint64_t scored, flagged, failed;
    int64_t last_latency_us;  /* decode + embed + k-NN of the last frame (with its batch's) */
    int64_t model_created_us; /* that model's creation time */
    int feedback_frames;      /* false positives in the banks */
    uint64_t
        idle; /* turns that scored nothing: no model, no new frame, a read error, a full disk */
    uint64_t without_image; /* stored without their image and no longer in memory: not scored */
    uint64_t skipped;       /* stored longer than max_score_lag_s before their turn: not scored */
    char last_error[256];
};

/* One image scored against a recipe's active model, for POST /api/v1/score. */
struct scorer_verdict {
    float score, threshold;
    bool flagged;
    char model_version[64];
    char recipe[64];
    int64_t latency_us;
    uint8_t *heatmap_jpeg; /* malloc'ed when asked for, else NULL */
    size_t heatmap_len;
};

/* Starts the thread on the database at path (already migrated). threads: BLAS/embedding
 * workers for scoring. images: where the writer puts the images it could not store (may be NULL;
 * must outlive the scorer). max_lag_s: frames stored longer ago than this when their turn comes
 * are skipped and counted (0: none). Returns NULL with the reason in err. */
struct scorer *scorer_start(const char *db_path, int threads, struct image_cache *images,
                            int max_lag_s, char *err, size_t errsz);

/* The config's sensitivities ([recipe.NAME] false_alarm_rate and threshold, [trainer]'s for the
 * other recipes): written to the recipes within a second, where no change made over the API holds
 * (scoring_store_file_sensitivity), and from then on each recipe's threshold follows the
 * sensitivity in force without retraining: a fixed threshold, or the false-alarm rate's quantile
 * of its model's calibration scores. At start and at each reload. */
void scorer_configure(struct scorer *s, const struct config *cfg);

/* Stops the thread (after the batch in hand) and frees everything; NULL is fine. */
void scorer_stop(struct scorer *s);

void scorer_get_status(struct scorer *s, struct scorer_status *out);

/* Up to max recipes the scorer knows (those of the database), oldest first. Returns the count. */
int scorer_recipes(struct scorer *s, struct scorer_recipe_status *out, int max);
/* A copy of the calibration scores of recipe's model (malloc'ed into *out, n of them; none when
 * its model has none). Returns the count, 0, or -1 when the recipe has no model or out of memory.
 */
int scorer_recipe_calibration(struct scorer *s, const char *recipe, float **out);

/* One recipe's status. Returns false (out zeroed) when the scorer does not know it (yet). */
bool scorer_recipe_status(struct scorer *s, const char *recipe, struct scorer_recipe_status *out);

/* Seconds per scored frame (decode + embed + k-NN + storing the result), for /metrics. */
struct metrics_histogram *scorer_latency(struct scorer *s);

/* The scorer's /metrics lines: frames scored, flagged, failed and skipped, each recipe's active
 * model, the feedback in the banks, the scoring latency. */
void scorer_write_metrics(FILE *out, struct scorer *s);

/* Scores an encoded JPEG/PNG with recipe's model (waiting for the frame in hand), with its
 * heatmap overlay when asked. Returns 0; 1 when the recipe has no model yet (or is unknown); -1
 * when the image cannot be decoded (reason in err); -2 on an internal failure (reason in err). */
int scorer_score_image(struct scorer *s, const char *recipe, const void *data, size_t len,
                       bool heatmap, struct scorer_verdict *out, char *err, size_t errsz);

const char *scorer_state_name(enum scorer_state st);

#endif
