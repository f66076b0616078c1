/* register.h — what `inspectd train --register` and `inspectd model import` share: a recipe's
 * recent frames read from the database (confirmed defects left out), and registering a checkpoint
 * as the recipe's model: its bank built beside it from those frames (FILE.bank.safetensors), the
 * threshold calibrated on the held-out ones, the go-live check against the recipe's confirmed
 * defects, and the database row (active, or rejected with the reason in its meta). The daemon's
 * scorer picks an active model up from the database. */
#ifndef INSPECTD_TRAIN_REGISTER_H
#define INSPECTD_TRAIN_REGISTER_H

#include <stdbool.h>
#include <stdint.h>

#include "imageset.h"
#include "scoring/model.h"

struct train_frames {
    const char *db, *recipe;
    const char *camera; /* NULL: every camera of the recipe */
    int64_t since_us;   /* 0: every frame */
    /* how the model sees a frame, through the region it was captured with: shrunk to set's size
     * (fit), or cut into tiles of that size, TRAIN_TILES_PER_FRAME of them drawn at random
     * (seeded by seed and the frame) joining set as one frame (set->max then counts tiles) */
    enum model_input_mode input;
    int tile_overlap;
    uint64_t seed;
    int64_t *ids; /* out: the frames loaded, newest first (nids; malloc'ed, the caller frees) */
    int nids;
};
#define TRAIN_TILES_PER_FRAME 8

/* Appends q's frames (newest first) to set, up to set->max, decoded at set's size and channels.
 * Returns 0 or -1 (logged). */
int train_load_frames(struct train_frames *q, struct image_set *set);

struct train_register {
    const char *db, *recipe;
    const char *ckpt; /* an absolute path: the row keeps it */
    int threads;
    enum model_readout readout;
    int aggregate;
    /* tiles (input): the bank from every tile of up to TRAIN_TILES_BANK_FRAMES of frames->ids,
     * the threshold from the worst tile of each held-out frame (every fifth), read again from the
     * database one at a time instead of set's sampled tiles */
    enum model_input_mode input;
    int tile_overlap;
    const struct train_frames *frames;
    double loss;      /* NAN: none */
    const char *meta; /* members appended to the row's meta object ("\"start\":\"import\"") */
};

struct train_registered {
    int64_t id;
    char version[64];
    bool active; /* false: registered as rejected, why says why */
    char why[256];
    struct model_build_result res;
};

#define TRAIN_TILES_BANK_FRAMES 8

/* Registers a->ckpt built from the normal images in set. Returns 0 when it is the recipe's active
 * model now, 1 when it was registered as rejected (out->why), or -1 (logged). */
int train_register_model(const struct train_register *a, const struct image_set *set,
                         struct train_registered *out);

#endif
