/* scoring_store.h — the scoring side of the database: model versions, unscored frames, and one
 * result (with heatmap and alert when flagged) per scored frame. A connection of its own, so the
 * scorer never waits on the capture writer's batches for longer than SQLite's busy timeout.
 * The database must exist with its schema (store_open creates and migrates it). */
#ifndef INSPECTD_STORE_SCORING_H
#define INSPECTD_STORE_SCORING_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"

struct scoring_store;

struct model_row {
    int64_t id;
    char version[64];
    char path[PATH_MAX]; /* training checkpoint (its teacher scores) */
    char bank[PATH_MAX]; /* bank file (meta "bank") */
    double threshold;
    int64_t created_at;
    int64_t recipe_id; /* the recipe it scores for (as asked: the recipe it is active in) */
    char recipe[64];
};

/* A recipe and its active model (has_model false while it is learning), and its sensitivity in
 * force (false_alarm_rate 0: not stored yet, the default; threshold 0: none fixed). */
struct recipe_row {
    int64_t id;
    char name[64];
    bool has_model;
    struct model_row model;
    double false_alarm_rate, threshold;
    bool sensitivity_set; /* set over the API, and holding */
};

struct scoring_result {
    int64_t frame_id, model_id, camera_id;
    float score, threshold;
    bool flagged;
    int64_t latency_us;
    const float *grid; /* (grid_h, grid_w) patch scores, stored when flagged; may be NULL */
    int grid_w, grid_h;
};

/* Opens a read-write connection. Returns NULL with the reason in err. */
struct scoring_store *scoring_store_open(const char *path, char *err, size_t errsz);
void scoring_store_close(struct scoring_store *s);
const char *scoring_store_errmsg(const struct scoring_store *s);
/* True when the last error was a full disk or database (SQLITE_FULL, ENOSPC): worth retrying. */
bool scoring_store_error_is_full(const struct scoring_store *s);

/* The active model of a recipe. Returns 1 (out filled), 0 when there is none (or no such
 * recipe), -1 on error. */
int scoring_store_active_model(struct scoring_store *s, const char *recipe, struct model_row *out);

/* Up to max recipes, oldest first, with their active models. Returns the count or -1. */
int scoring_store_recipes(struct scoring_store *s, struct recipe_row *out, int max);

/* Adds a model of recipe (created if new), in one transaction: active (it becomes the recipe's
 * model; the recipe's model until then is retired unless another recipe still uses it) or, with
 * active false, 'rejected' (nothing else changes). meta: JSON object text (the bank path is added
 * to it as "bank"). A version already taken (two models registered within the same second) gets a
 * suffix "-2", "-3", …; the version stored is copied into used (usedsz bytes) when not NULL.
 * Returns 0 (id set when not NULL) or -1. */
int scoring_store_register_model(struct scoring_store *s, const char *recipe, const char *version,
                                 const char *ckpt, const char *bank, double threshold,
                                 int frames_used, double loss, const char *meta, bool active,
                                 int64_t *id, char *used, size_t usedsz);

/* Up to max ids of frames (of recipe recipe_id; 0: of any) an operator confirmed as defects,
 * newest first. Returns the count or -1. */
int scoring_store_confirmed_defects(struct scoring_store *s, int64_t recipe_id, int64_t *ids,
                                    int max);

/* Up to max ids of frames (of recipe recipe_id; 0: of any) an operator marked as false
 * positives, the latest reviewed first. Returns the count or -1. */
int scoring_store_false_positives(struct scoring_store *s, int64_t recipe_id, int64_t *ids,
                                  int max);

/* A number that changes whenever the set of false-positive frames (of recipe recipe_id; 0: of
 * any) changes (count, latest review, sum of ids). Returns 0 or -1. */
int scoring_store_feedback_mark(struct scoring_store *s, int64_t recipe_id, int64_t mark[3]);

/* Up to max ids of the frames of recipe_id after after_id without a result of model_id,
 * ascending. Returns the count, or -1. */
int scoring_store_unscored(struct scoring_store *s, int64_t model_id, int64_t recipe_id,
                           int64_t after_id, int64_t *ids, int max);

/* Where scoring recipe_id's frames with model_id starts: after the last of them it scored or the
 * last of them with a verdict, whichever is later (frames stored before verdicts existed are not
 * scored). Returns 0 or -1. */
int scoring_store_resume_point(struct scoring_store *s, int64_t model_id, int64_t recipe_id,
                               int64_t *after_id);

/* A frame's encoded image (malloc'ed, caller frees) and camera. Returns 1, 2 when the frame was
 * stored without its image (storage full: *data NULL, *camera_id set), 0 when the frame is gone,
 * or -1. */
int scoring_store_frame(struct scoring_store *s, int64_t id, void **data, size_t *size,
                        int64_t *camera_id);

/* The region frame id was captured with: its id (0: the whole frame) into *region_id. Returns 1, 0
 * when the frame is gone, or -1. */
int scoring_store_frame_region(struct scoring_store *s, int64_t frame_id, int64_t *region_id);

/* Region row region_id: its ROI and decoded mask into *out (free it with region_free). Returns 1,
 * 0 when there is no such region, or -1 (a mask that does not decode too; reason in errmsg). */
int scoring_store_region(struct scoring_store *s, int64_t region_id, struct region *out);

/* Stores a result and the frame's verdict ('ng' when flagged, else 'ok'; a verdict the frame
 * already has stays, the score going beside it); when flagged also its heatmap (if grid) and an
 * alert in state 'new'. One transaction. Returns 0 or -1. */
int scoring_store_result(struct scoring_store *s, const struct scoring_result *r);

/* Gives the frames in (after_id, last_id] (of recipe recipe_id; 0: of any) that have no verdict yet
 * the verdict 'unscored' with reason ("no_model", "skipped", "undecodable", "no_image", "error",
 * "late"). Returns 0 or -1. */
int scoring_store_unscored_verdicts(struct scoring_store *s, int64_t recipe_id, int64_t after_id,
                                    int64_t last_id, const char *reason);

/* The newest frame after after_id stored (created_at) before before_us, in *last (after_id when
 * there is none). Returns 0 or -1. */
int scoring_store_stored_before(struct scoring_store *s, int64_t after_id, int64_t before_us,
                                int64_t *last);

/* Among the frames of recipe_id (0: every frame): the id of the max-th frame after after_id, or of
 * the last one when fewer are stored, in *last (after_id when there is none). Returns 0 or -1. */
int scoring_store_frames_after(struct scoring_store *s, int64_t recipe_id, int64_t after_id,
                               int max, int64_t *last);

/* Whether an operator confirmed frame_id as a defect (kept out of training and banks).
 * Returns 1, 0, or -1 on error. */
int scoring_store_confirmed_defect(struct scoring_store *s, int64_t frame_id);

/* Whether a model row (any status) names the checkpoint at path (as registered: a real path).
 * Returns 1, 0, or -1 on error. */
int scoring_store_has_checkpoint(struct scoring_store *s, const char *path);

/* Among the frames of recipe recipe_id (0: every frame): when the frame after after_id was stored
 * before before_us (created_at, the host's clock): the last frame stored before before_us in *last,
 * and how many frames lie in (after_id, *last] in *count; otherwise *last = after_id and *count =
 * 0. Reads the next frame's row, and when it is stale about log2(backlog) more rows (a bisection on
 * id), never the whole backlog. Returns 0 or -1. */
int scoring_store_stale(struct scoring_store *s, int64_t recipe_id, int64_t after_id,
                        int64_t before_us, int64_t *last, int64_t *count);

/* Calls fn for the checkpoint and the bank file (when meta names one) of every model row, with
 * keep = true for the files to keep: the active models' (active = true) and those of the `keep`
 * newest models (by id) whatever their status. Paths are as registered. Returns 0, or -1 on a
 * database error (fn may have been called for some rows). */
int scoring_store_model_files(struct scoring_store *s, int keep,
                              void (*fn)(const char *path, bool keep, bool active, void *ctx),
                              void *ctx);

/* Frames of recipe_id stored after its active model was registered (all of its frames when it
 * has none). Returns 0 or -1. */
int scoring_store_frames_since_model(struct scoring_store *s, int64_t recipe_id, int64_t *count);
/* Frames of recipe_id. Returns 0 or -1. */
int scoring_store_frames_of_recipe(struct scoring_store *s, int64_t recipe_id, int64_t *count);

/* The recipe a command works on: `asked` when the database has it (and, with need_model, it has
 * a model), else, with asked NULL, the database's only recipe (with a model when need_model).
 * Returns 0 with its name in out; 1 when there is none or it is ambiguous, with the reason in why
 * (for the user); -1 on a database error. */
int scoring_store_pick_recipe(struct scoring_store *s, const char *asked, bool need_model,
                              char *out, size_t outsz, char *why, size_t whysz);

/* A recipe's sensitivity as the config file says it (the recipe is created if new): it is the one
 * in force unless one set over the API holds, which it does while the file says what it said
 * then (compared as text). Returns 0 or -1. */
int scoring_store_file_sensitivity(struct scoring_store *s, const char *recipe, double rate,
                                   double threshold);

/* Sets a recipe's sensitivity (PUT /api/v1/recipes/{name}/sensitivity): rate > 0 sets the false
 * alarm rate and clears a fixed threshold; else threshold > 0 fixes the threshold (the rate
 * stays). It holds until the file's values for the recipe (file_rate, file_threshold) change.
 * Returns 1, 0 when there is no such recipe, or -1. */
int scoring_store_put_sensitivity(struct scoring_store *s, const char *recipe, double rate,
                                  double threshold, double file_rate, double file_threshold);

/* Up to max ids of the frames of recipe_id that stand for its normal products under model_id (the
 * model scored them below its threshold, or an operator marked them false positives), newest
 * first: what a model without stored calibration scores is recalibrated on. Returns the count or
 * -1. */
int scoring_store_calibration_frames(struct scoring_store *s, int64_t recipe_id, int64_t model_id,
                                     int64_t *ids, int max);

#endif
