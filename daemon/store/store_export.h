/* store_export.h — what an export of flagged frames reads: alerts with their frame's metadata
 * and model version, newest first (by alert id), one page at a time by keyset (alert id < the
 * last one seen), so a long export never holds a connection between pages.
 *
 * The filter: an alert state, a camera name, a recipe, and a half-open interval [since, until) of
 * the time the frame was flagged (the alert's created_at, the daemon's wall clock). */
#ifndef INSPECTD_STORE_EXPORT_H
#define INSPECTD_STORE_EXPORT_H

#include <stdint.h>

#include "store.h"

struct export_filter {
    char state[16];   /* "" for every state; else "new", "defect" or "false_positive" */
    char camera[64];  /* "" for every camera */
    char recipe[64];  /* "" for every recipe; else the frames captured for it */
    int64_t since_us; /* flagged at or after (INT64_MIN: no bound) */
    int64_t until_us; /* flagged before (INT64_MAX: no bound) */
};

struct export_row {
    int64_t alert_id, frame_id;
    char camera[64];
    int64_t captured_at_us, flagged_at_us;
    double score, score_norm, threshold;
    char state[16];
    char *note; /* malloc'ed; NULL when the alert has none */
    char model_version[64];
    char format[8]; /* "jpeg" or "png" */
};

/* Reads up to max alerts matching f with id < before (0: no bound), newest first, into rows.
 * Returns the count (fewer than max: the last page), or -1 (store_reader_errmsg says why; rows
 * hold nothing to free). */
int store_export_page(struct store_reader *r, const struct export_filter *f, int64_t before,
                      struct export_row *rows, int max);
/* Frees the notes of n rows. */
void store_export_rows_free(struct export_row *rows, int n);

#endif
