/* store_dataset.h — what a dataset export (an MVTec AD category, export/dataset.h) reads: the
 * frames of each of its three kinds, oldest capture first, one page at a time by keyset
 * ((captured_at, id) after the last one seen), so a long export never holds a connection between
 * pages, and the count of the normal ones (the sampling needs it before the first page).
 *
 *   normal          a frame with its image that was never flagged (no alert, no flagged result,
 *                   no 'ng' verdict: scored ok or never scored) and that the synthetic camera did
 *                   not draw with a defect
 *   false positive  a frame whose alert an operator marked false_positive
 *   defect          a frame whose alert an operator confirmed as a defect
 *
 * The filter: a camera name, a recipe, and a half-open interval [since, until) of capture time. */
#ifndef INSPECTD_STORE_DATASET_H
#define INSPECTD_STORE_DATASET_H

#include <stdint.h>

#include "store.h"

enum dataset_kind { DATASET_NORMAL = 0, DATASET_FALSE_POSITIVE, DATASET_DEFECT };

struct dataset_filter {
    char camera[64];  /* "" for every camera */
    char recipe[64];  /* "" for every recipe */
    int64_t since_us; /* captured at or after (INT64_MIN: no bound) */
    int64_t until_us; /* captured before (INT64_MAX: no bound) */
};

struct dataset_row {
    int64_t frame_id;
    char camera[64], recipe[64]; /* recipe "" when the frame has none */
    int64_t captured_at_us;
    char format[8];   /* "jpeg" or "png" */
    char defect[16];  /* the synthetic camera's ground truth; "" when unknown */
    int64_t alert_id; /* 0 for a normal frame */
};

/* The keyset position after a row: pass {INT64_MIN, 0} for the first page. */
struct dataset_key {
    int64_t captured_at_us, frame_id;
};

/* How many frames of kind match f. Returns the count, or -1 (store_reader_errmsg says why). */
int64_t store_dataset_count(struct store_reader *r, enum dataset_kind kind,
                            const struct dataset_filter *f);

/* Reads up to max frames of kind matching f after key, oldest capture first, into rows. Returns
 * the count (fewer than max: the last page), or -1. */
int store_dataset_page(struct store_reader *r, enum dataset_kind kind,
                       const struct dataset_filter *f, struct dataset_key after,
                       struct dataset_row *rows, int max);

#endif
