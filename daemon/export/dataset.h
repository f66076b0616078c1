/* dataset.h — one MVTec AD category written from a database, for training and studying the data
 * elsewhere (tools/torch/train.py, anomalib, `inspectd eval --mvtec DIR`):
 *
 *   DIR/train/good/FRAME.jpg|png   exactly N normal frames (store_dataset.h), sampled evenly over
 *                                  the capture period (the k-th of N is the normal frame of rank
 *                                  ⌊(2k+1)·M / 2N⌋ among the M that match, oldest first)
 *   DIR/test/good/FRAME.jpg|png    false positives, and a held-out sample of the other normal
 *                                  frames (⌈N/4⌉ of them, or as many as there are, sampled evenly
 *                                  the same way; none with --normals all)
 *   DIR/test/defect/FRAME.jpg|png  confirmed defects
 *   DIR/manifest.jsonl             one JSON object per image: image (its path under DIR), split,
 *                                  label, kind (normal, false_positive or defect), frame_id,
 *                                  alert_id, camera, recipe, captured_at, defect (ground truth)
 *
 * An image keeps its stored bytes and format. The category is written into a temporary directory
 * beside DIR and renamed to DIR once complete, so DIR is either the whole category or untouched;
 * DIR must not exist or be an empty directory. Memory is bounded: frames are read a page of
 * metadata at a time and one image at a time, each on a connection borrowed from the pool and given
 * back at once. */
#ifndef INSPECTD_DATASET_H
#define INSPECTD_DATASET_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_dataset.h"

#define DATASET_PAGE 256 /* frames per metadata page */

/* dataset_write()'s answers besides 0 and -1. */
#define DATASET_NO_CAMERA (-2) /* the filter names a camera the database never stored */
#define DATASET_TOO_FEW   (-3) /* fewer normal frames match than --normals asks for */

struct dataset_counts {
    int64_t normals_available;   /* normal frames matching the filter */
    int64_t train_good;          /* images in train/good */
    int64_t test_good_normal;    /* held-out normal images in test/good */
    int64_t test_good_false_pos; /* false positives in test/good */
    int64_t test_defect;         /* images in test/defect */
    int64_t skipped;             /* listed, then deleted before their image was read */
};

/* Writes the category of the frames matching f to dir: `normals` normal frames in train/good
 * (-1: every one). stop, when set to nonzero (a signal handler), ends the export early.
 * Returns 0 with c filled, DATASET_NO_CAMERA, DATASET_TOO_FEW (the count is in c and the reason
 * in err), or -1 with the reason in err; on any error dir is left as it was. */
int dataset_write(struct store_pool *pool, const struct dataset_filter *f, const char *dir,
                  int64_t normals, const volatile sig_atomic_t *stop, struct dataset_counts *c,
                  char *err, size_t errsz);

#endif
