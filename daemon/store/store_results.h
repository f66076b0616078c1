/* store_results.h — the verdict of every part (schema/0005_results.sql) as the API, the live feed
 * and the line outputs read it: the paged list, one frame's verdict, the verdicts reached after a
 * given one (in the order they were reached), counts for /metrics and the summary by camera and
 * time. Reads go through a lent read-only connection (store_pool_get); every function returns -1
 * on an error with the reason in store_reader_errmsg(), as store.h says. */
#ifndef INSPECTD_STORE_RESULTS_H
#define INSPECTD_STORE_RESULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* Verdict codes, in the order counts and summaries use. */
enum result_verdict { RESULT_OK = 0, RESULT_NG, RESULT_UNSCORED, RESULT_NVERDICTS };

/* Reasons of an 'unscored' verdict, in the order counts use. */
enum result_reason {
    REASON_NO_MODEL = 0,
    REASON_SKIPPED,
    REASON_UNDECODABLE,
    REASON_NO_IMAGE,
    REASON_ERROR,
    REASON_LATE,
    RESULT_NREASONS
};

/* "ok", "ng", "unscored"; the reasons' names as stored ("no_model", ...). */
const char *result_verdict_name(enum result_verdict v);
const char *result_reason_name(enum result_reason r);
/* The code of a verdict or reason name. Returns it, or -1 for an unknown name. */
int result_verdict_code(const char *name);
int result_reason_code(const char *name);

struct result_filter {
    const char *camera; /* a camera name or NULL */
    const char *recipe; /* a recipe name or NULL */
    int verdict;        /* an enum result_verdict, or -1 for any */
    int64_t since;      /* captured_at >= since (Unix µs); 0: no bound */
    int64_t until;      /* captured_at < until; 0: no bound */
    int64_t before;     /* id < before (the cursor); 0: from the newest */
};

struct result_info {
    int64_t id; /* the order in which verdicts were reached */
    int64_t frame_id;
    char camera[64];
    char recipe[64];                     /* the recipe the frame was captured for; "" none */
    int64_t recipe_id;                   /* 0: none */
    uint64_t seq;                        /* the frame's sequence number from its camera */
    char part_id[STORE_PART_ID_MAX + 1]; /* the line's id, or "" when it gave none */
    int64_t captured_at, created_at;     /* Unix µs */
    int64_t scored_at;                   /* a score reached after an unscored verdict; 0: none */
    enum result_verdict verdict;
    int reason; /* enum result_reason when unscored, else -1 */
    bool has_score;
    double score, score_norm, threshold; /* when has_score */
    int64_t model_id;                    /* 0: no model scored it */
    char model_version[64];              /* "" when model_id is 0 */
};

/* Verdicts matching f, the newest (highest id) first, at most max. Returns the count or -1. */
int store_list_results(struct store_reader *r, const struct result_filter *f,
                       struct result_info *out, int max);
/* The verdict of frame_id. Returns 1, 0 when the frame has none (yet), or -1. */
int store_get_result(struct store_reader *r, int64_t frame_id, struct result_info *out);
/* Verdicts with id > after, oldest first, at most max. Returns the count or -1. */
int store_results_after(struct store_reader *r, int64_t after, struct result_info *out, int max);
/* The newest verdict's id (0 when none). Returns 0 or -1. */
int store_last_result(struct store_reader *r, int64_t *id);

/* Verdicts of one camera with one verdict and reason (-1 unless unscored). */
struct result_count {
    char camera[64];
    enum result_verdict verdict;
    int reason;
    int64_t n;
};

/* Counts of every verdict up to id `upto` by camera, verdict and reason into *out (malloc'ed, NULL
 * when there are none). Returns the number of rows, or -1. */
int store_result_counts(struct store_reader *r, int64_t upto, struct result_count **out);

/* Verdicts captured in one minute by one camera for one recipe with one verdict. */
struct result_minute {
    char camera[64];
    char recipe[64]; /* "" : none */
    int64_t minute;  /* minutes since 1970-01-01T00:00Z */
    enum result_verdict verdict;
    int64_t n;
};

/* Counts of the verdicts captured in [since, until) by minute (oldest first), camera, recipe and
 * verdict
 * into *out (malloc'ed, NULL when there are none). Returns the number of rows, or -1. */
int store_result_minutes(struct store_reader *r, int64_t since, int64_t until,
                         struct result_minute **out);

#endif
