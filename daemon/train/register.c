/* register.c — a recipe's recent frames, and a checkpoint registered as its model (see
 * register.h): the code `inspectd train --register` and `inspectd model import` share. */
#define LOG_TAG "train"
#include "log.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "scoring/frame_region.h"
#include "scoring/golive.h"
#include "store/scoring_store.h"
#include "store/store.h"
#include "train/register.h"

/* The frames of a database as training reads them: the image through the region it was captured
 * with (frame_region.h), as the model will see it (fit, or its tiles). */
struct db_frames {
    const struct train_frames *q;
    struct store_pool *pool;
    struct store_reader *r;
    struct scoring_store *ss; /* confirmed defects and regions; NULL: none could be read */
    struct frame_region_cache regions;
};

static void db_frames_close(struct db_frames *d)
{
    frame_region_free(&d->regions);
    scoring_store_close(d->ss);
    if (d->r) store_pool_put(d->pool, d->r);
    store_pool_close(d->pool);
    memset(d, 0, sizeof *d);
}

/* Returns 0, or -1 (logged). */
static int db_frames_open(struct db_frames *d, const struct train_frames *q)
{
    char err[512];
    memset(d, 0, sizeof *d);
    d->q = q;
    if (!(d->pool = store_pool_open(q->db, 1, err, sizeof err))) {
        log_error("%s", err);
        return -1;
    }
    d->r = store_pool_get(d->pool);
    if (!(d->ss = scoring_store_open(q->db, err, sizeof err)))
        log_warn("%s: confirmed defects cannot be left out, nor regions read: %s", q->db, err);
    return 0;
}

/* Frame id's image as the model sees it, appended to set (its tiles, all of them, as one frame).
 * Returns how many images were added (0: the frame has no image, or it was skipped), or -1 on a
 * database error or out of memory (logged). */
static int db_frame_add(struct db_frames *d, int64_t id, struct image_set *set)
{
    void *data = NULL;
    size_t size = 0;
    struct store_frame_info info;
    const struct region *region = NULL;
    char err[512], what[48];
    snprintf(what, sizeof what, "frame %lld", (long long)id);
    int found = store_get_image(d->r, id, &data, &size, &info), n = 0;
    if (found < 0) {
        log_error("%s: %s", d->q->db, store_reader_errmsg(d->r));
        n = -1;
    } else if (found == 1 && d->ss &&
               frame_region_of(&d->regions, d->ss, id, &region, err, sizeof err)) {
        log_error("%s: %s", d->q->db, err);
        n = -1;
    } else if (found == 1) {
        struct image_view v = {.region = region,
                               .tiles = d->q->input == MODEL_INPUT_TILES,
                               .overlap = d->q->tile_overlap};
        n = image_set_add_region(set, data, size, what, &v);
    }
    free(data);
    return n;
}

/* Frame id for training: fit, the frame itself; tiles, TRAIN_TILES_PER_FRAME of its tiles drawn
 * at random. Returns as db_frame_add. */
static int db_frame_train(struct db_frames *d, int64_t id, struct image_set *set)
{
    if (d->q->input != MODEL_INPUT_TILES) return db_frame_add(d, id, set);
    struct image_set all = {.size = set->size, .channels = set->channels};
    int n = db_frame_add(d, id, &all), pick[TRAIN_TILES_PER_FRAME], k = 0;
    struct rng rng = rng_seed(d->q->seed, (uint64_t)id);
    /* k distinct tiles of the n: a partial Fisher-Yates shuffle of the indices */
    int *order = n > 0 ? malloc(sizeof(int) * (size_t)n) : NULL;
    for (int i = 0; order && i < n; i++) order[i] = i;
    for (; order && k < n && k < TRAIN_TILES_PER_FRAME; k++) {
        int j = k + (int)(rng_next(&rng) % (uint64_t)(n - k)), t = order[j];
        order[j] = order[k], order[k] = t, pick[k] = t;
    }
    int rc = n <= 0 ? n : !order ? -1 : image_set_add_images(set, &all, pick, k);
    free(order);
    image_set_free(&all);
    return rc;
}

/* Keeps id as one of the frames loaded. Returns 0 or -1 (logged). */
static int remember_frame(struct train_frames *q, int64_t id)
{
    if (q->nids % 256 == 0) {
        int64_t *p = realloc(q->ids, sizeof(int64_t) * (size_t)(q->nids + 256));
        if (!p) return log_error("out of memory"), -1;
        q->ids = p;
    }
    q->ids[q->nids++] = id;
    return 0;
}

int train_load_frames(struct train_frames *c, struct image_set *set)
{
    enum { PAGE = 256 };
    struct db_frames d;
    if (db_frames_open(&d, c)) return -1;
    struct store_reader *r = d.r;
    struct store_frame_info *page = malloc(sizeof *page * PAGE);
    int rc = page ? 0 : -1, listed = 1;
    if (!page) log_error("out of memory");
    if (!rc && c->camera && store_has_camera(r, c->camera) != 1) {
        log_error("%s: no frames of a camera named '%s'", c->db, c->camera);
        rc = -1;
    }
    for (int64_t before = 0; !rc && listed > 0 && set->n < set->max;) {
        listed = store_list_recipe_frames(r, c->recipe, before, page, PAGE);
        bool recent = false;
        for (int i = 0; i < listed && !rc && set->n < set->max; i++) {
            if (page[i].captured_at_us < c->since_us) continue;
            if (c->camera && strcmp(page[i].camera, c->camera) != 0) {
                recent = true; /* another camera's frame of the recipe: of its time all the same */
                continue;
            }
            recent = true;
            int defect = d.ss ? scoring_store_confirmed_defect(d.ss, page[i].id) : 0;
            if (defect < 0) {
                log_error("%s: %s", c->db, scoring_store_errmsg(d.ss));
                rc = -1;
                continue;
            }
            if (defect) continue; /* an operator confirmed it: not a normal product */
            int added = db_frame_train(&d, page[i].id, set);
            if (added < 0 || (added > 0 && remember_frame(c, page[i].id))) rc = -1;
        }
        if (listed < 0) {
            log_error("%s: %s", c->db, store_reader_errmsg(r));
            rc = -1;
        }
        if (listed > 0) before = page[listed - 1].id;
        if (!recent && c->since_us > 0) break; /* ids grow with time: older pages only from here */
    }
    free(page);
    db_frames_close(&d);
    return rc;
}

/* Tiles: the held-out frames, read one at a time: a few hundred frames' worth of big tiles is too
 * much to hold together. */
struct held_out {
    struct db_frames *d;
    int next, used, max; /* the next of the frames to look at; frames given; at most */
};

/* model_build_streamed's next(): the next held-out frame's tiles (every fifth frame). */
static int next_held_out(void *arg, struct image_set *one)
{
    struct held_out *h = arg;
    const struct train_frames *q = h->d->q;
    while (h->used < h->max && h->next < q->nids) {
        int i = h->next++;
        if (i % 5 != 4 && !(i == q->nids - 1 && h->used == 0)) continue;
        int n = db_frame_add(h->d, q->ids[i], one);
        if (n < 0) return -1;
        if (n > 0) return h->used++, 1;
    }
    return 0;
}

/* Tiles: the bank from every tile of up to TRAIN_TILES_BANK_FRAMES of q's frames (at size and
 * channels: the run's), the threshold from the held-out ones. Returns 0, or -1 with the reason
 * in err. */
static int build_tiles(const struct train_frames *q, int size, int channels, const char *ckpt,
                       const struct model_build_options *o, const char *bank,
                       struct model_build_result *res, char *err, size_t errsz)
{
    struct db_frames d;
    if (!q || !q->ids) return snprintf(err, errsz, "tiles need the frames of a database"), -1;
    if (db_frames_open(&d, q)) return snprintf(err, errsz, "cannot read %s", q->db), -1;
    struct image_set set = {.size = size, .channels = channels};
    int rc = 0;
    for (int i = 0, frames = 0; !rc && i < q->nids && frames < TRAIN_TILES_BANK_FRAMES; i++)
        if (i % 5 != 4) {
            int n = db_frame_add(&d, q->ids[i], &set);
            frames += n > 0;
            if (n < 0) {
                snprintf(err, errsz, "cannot read the bank's frames");
                rc = -1;
            }
        }
    struct held_out h = {.d = &d, .max = o->calib_images};
    if (!rc) rc = model_build_streamed(ckpt, &set, next_held_out, &h, o, bank, res, err, errsz);
    image_set_free(&set);
    db_frames_close(&d);
    return rc;
}

/* The row's meta: the bank and calibration, the readout, the recipe, then a->meta's members. */
static void meta_json(const struct train_register *a, const struct model_build_options *o,
                      const struct model_build_result *res, char *out, size_t n)
{
    snprintf(out, n,
             "{\"bank_rows\":%d,\"bank_images\":%d,\"calibration_images\":%d,"
             "\"false_alarm_rate\":%g,\"readout\":\"%s\",\"input\":\"%s\",\"recipe\":\"%s\"%s%s}",
             res->bank_rows, res->bank_images, res->calib_images, o->false_alarm_rate,
             model_readout_name(res->readout), model_input_name(o->input), a->recipe,
             a->meta && a->meta[0] ? "," : "", a->meta ? a->meta : "");
}

int train_register_model(const struct train_register *a, const struct image_set *set,
                         struct train_registered *out)
{
    char bank[PATH_MAX + 32], err[512], version[64], meta[1024];
    memset(out, 0, sizeof *out);
    model_bank_path(a->ckpt, bank, sizeof bank);
    struct model_build_options o;
    model_build_defaults(&o);
    o.threads = a->threads;
    o.readout = a->readout;
    o.aggregate = a->aggregate;
    o.input = a->input;
    o.tile_overlap = a->tile_overlap;
    if (o.input == MODEL_INPUT_TILES
            ? build_tiles(a->frames, set->size, set->channels, a->ckpt, &o, bank, &out->res, err,
                          sizeof err)
            : model_build(a->ckpt, set, &o, bank, &out->res, err, sizeof err)) {
        log_error("model not registered: %s", err);
        return -1;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(version, sizeof version, "%Y%m%dT%H%M%SZ", &tm);
    meta_json(a, &o, &out->res, meta, sizeof meta);
    struct scoring_store *ss = scoring_store_open(a->db, err, sizeof err);
    bool ok =
        ss && golive_allowed(ss, a->recipe, a->ckpt, bank, a->threads, out->why, sizeof out->why);
    if (ss && !ok) {
        size_t len = strlen(meta);
        snprintf(meta + len - 1, sizeof meta - len + 1, ",\"rejected\":\"%s\"}", out->why);
    }
    int rc =
        ss ? scoring_store_register_model(ss, a->recipe, version, a->ckpt, bank, out->res.threshold,
                                          set->frames ? set->frames : set->n, a->loss, meta, ok,
                                          &out->id, out->version, sizeof out->version)
           : -1;
    const struct model_build_result *res = &out->res;
    if (rc)
        log_error("model not registered: %s", ss ? scoring_store_errmsg(ss) : err);
    else if (!ok)
        log_error("model %s rejected, the active one keeps scoring: it %s", out->version, out->why),
            rc = 1;
    else
        log_info("model %s (id %lld) now scores recipe %s of %s: %s readout, %s input, bank of %d "
                 "rows from %d %s, threshold %.4f from %d held-out frames",
                 out->version, (long long)out->id, a->recipe, a->db,
                 model_readout_name(res->readout), model_input_name(o.input), res->bank_rows,
                 res->bank_images, o.input == MODEL_INPUT_TILES ? "tiles" : "frames",
                 res->threshold, res->calib_images);
    out->active = rc == 0;
    scoring_store_close(ss);
    return rc;
}
