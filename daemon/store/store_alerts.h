/* store_alerts.h — the operator's side of the database: alerts (list, one, summary, review),
 * model versions and the event log the live feed replays (schema/0003_operator.sql). Reads go
 * through a lent read-only connection (store_pool_get); a review opens a short-lived write
 * connection of its own, since reviews come at a human pace. Every function returns -1 on an
 * error with the reason in store_reader_errmsg() (or err), as store.h says. */
#ifndef INSPECTD_STORE_ALERTS_H
#define INSPECTD_STORE_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct alert_filter {
    const char *state;  /* "new", "defect", "false_positive" or NULL for any */
    const char *camera; /* a camera name or NULL */
    const char *recipe; /* the frames of a recipe, or NULL */
    int64_t since;      /* created_at >= since (Unix µs); 0: no bound */
    int64_t until;      /* created_at < until; 0: no bound */
    int64_t before;     /* id < before (the cursor); 0: from the newest */
};

struct alert_info {
    int64_t id, frame_id, model_id;
    int64_t created_at, captured_at, reviewed_at; /* Unix µs; reviewed_at 0 when not reviewed */
    char camera[64], model_version[64], state[16];
    char recipe[64]; /* its frame's recipe ("" for a frame from before recipes were recorded) */
    double score, score_norm, threshold;
    bool has_note;
    char note[1024];
};

#define ALERT_NOTE_MAX 1000

/* Alerts matching f, newest (highest id) first, at most max. Returns the count or -1. */
int store_list_alerts(struct store_reader *r, const struct alert_filter *f, struct alert_info *out,
                      int max);
/* One alert. Returns 1, 0 when there is no such alert, or -1. */
int store_get_alert(struct store_reader *r, int64_t id, struct alert_info *out);

/* The alerts created in one hour by one camera in one state. */
struct alert_count {
    char camera[64];
    int state;    /* 0 new, 1 defect, 2 false_positive (the order of store_alert_counts) */
    int64_t hour; /* hours since 1970-01-01T00:00Z */
    int64_t n;
};

/* Counts of alerts created in [since, until) by hour (oldest first), camera and state, into *out
 * (malloc'ed, NULL when there are none). Returns the number of rows, or -1. */
int store_alert_summary(struct store_reader *r, int64_t since, int64_t until,
                        struct alert_count **out);

/* A model version as stored. */
struct model_info {
    int64_t id;
    char version[64];
    char status[16];                  /* "active", "retired", "rejected" */
    int64_t created_at, activated_at; /* Unix µs; activated_at 0: never */
    bool has_frames_used, has_loss, has_threshold;
    int64_t frames_used;
    double loss, threshold;
    char *meta;      /* its meta, JSON text (malloc'ed), NULL when there is none */
    char recipe[64]; /* the recipe it was trained for; "" for a model from before recipes */
};

/* A recipe as stored: its active model (model_id 0: none) and how many frames it has. */
struct recipe_info {
    int64_t id;
    char name[64];
    int64_t model_id;
    char model_version[64];
    int64_t frames;
};

/* The scores model_id gave the newest frames of recipe (up to max, newest first; confirmed
 * defects left out) into out. Returns the count or -1. */
int store_recent_scores(struct store_reader *r, const char *recipe, int64_t model_id, double *out,
                        int max);

/* Up to max recipes, oldest first. Returns the count or -1. */
int store_list_recipes(struct store_reader *r, struct recipe_info *out, int max);

/* Every model version, newest first, into *out (malloc'ed, NULL when there are none; free with
 * store_models_free). Returns the count, or -1. */
int store_list_models(struct store_reader *r, struct model_info **out);
/* One model by id into *out (free what it holds with store_model_clear). Returns 1, 0 when there
 * is no such model, or -1. */
int store_get_model(struct store_reader *r, int64_t id, struct model_info *out);
/* Frees what a model_info holds (its meta); store_models_free also frees the array of n. */
void store_model_clear(struct model_info *m);
void store_models_free(struct model_info *m, int n);

struct event_row {
    int64_t id, ref, created_at;
    char kind[8]; /* "alert", "review", "model" */
};

/* Events after id `after`, oldest first, at most max. Returns the count or -1. */
int store_events_after(struct store_reader *r, int64_t after, struct event_row *out, int max);
/* The newest event's id (0 when none). Returns 0 or -1. */
int store_last_event(struct store_reader *r, int64_t *id);

/* Alert counts by state, for /metrics: new, defect, false_positive. Returns 0 or -1. */
int store_alert_counts(struct store_reader *r, int64_t counts[3]);

/* Records the operator's verdict ("defect" or "false_positive") and note (NULL: none) on alert
 * id, with reviewed_at now, through a write connection to the database at path. Returns 1, 0
 * when there is no such alert, or -1 with the reason in err. */
int store_review_alert(const char *path, int64_t id, const char *verdict, const char *note,
                       char *err, size_t errsz);

#endif
