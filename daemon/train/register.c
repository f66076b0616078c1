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

#include "scoring/frame_region.h"
#include "scoring/golive.h"
#include "store/scoring_store.h"
#include "store/store.h"
#include "train/register.h"

int train_load_frames(const struct train_frames *c, struct image_set *set)
{
    enum { PAGE = 256 };
    char err[512], what[96];
    struct store_pool *pool = store_pool_open(c->db, 1, err, sizeof err);
    if (!pool) {
        log_error("%s", err);
        return -1;
    }
    struct store_reader *r = store_pool_get(pool);
    struct scoring_store *ss = scoring_store_open(c->db, err, sizeof err);
    if (!ss) log_warn("%s: confirmed defects cannot be left out: %s", c->db, err);
    struct store_frame_info *page = malloc(sizeof *page * PAGE), info;
    struct frame_region_cache regions = {0};
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
            void *data = NULL;
            size_t size = 0;
            snprintf(what, sizeof what, "frame %lld", (long long)page[i].id);
            int defect = ss ? scoring_store_confirmed_defect(ss, page[i].id) : 0;
            if (defect < 0) {
                log_error("%s: %s", c->db, scoring_store_errmsg(ss));
                rc = -1;
                continue;
            }
            if (defect) continue; /* an operator confirmed it: not a normal product */
            int found = store_get_image(r, page[i].id, &data, &size, &info);
            const struct region *region = NULL;
            if (found < 0) {
                log_error("%s: %s", c->db, store_reader_errmsg(r));
                rc = -1;
            } else if (found == 1 && ss &&
                       frame_region_of(&regions, ss, page[i].id, &region, err, sizeof err)) {
                log_error("%s: %s", c->db, err);
                rc = -1;
            } else if (found == 1 &&
                       image_set_add_region(set, data, size, what,
                                            &(struct image_view){.region = region}) < 0) {
                rc = -1;
            }
            free(data);
        }
        if (listed < 0) {
            log_error("%s: %s", c->db, store_reader_errmsg(r));
            rc = -1;
        }
        if (listed > 0) before = page[listed - 1].id;
        if (!recent && c->since_us > 0) break; /* ids grow with time: older pages only from here */
    }
    free(page);
    frame_region_free(&regions);
    scoring_store_close(ss);
    store_pool_put(pool, r);
    store_pool_close(pool);
    return rc;
}

/* The row's meta: the bank and calibration, the readout, the recipe, then a->meta's members. */
static void meta_json(const struct train_register *a, const struct model_build_options *o,
                      const struct model_build_result *res, char *out, size_t n)
{
    snprintf(out, n,
             "{\"bank_rows\":%d,\"bank_images\":%d,\"calibration_images\":%d,"
             "\"false_alarm_rate\":%g,\"readout\":\"%s\",\"recipe\":\"%s\"%s%s}",
             res->bank_rows, res->bank_images, res->calib_images, o->false_alarm_rate,
             model_readout_name(res->readout), a->recipe, a->meta && a->meta[0] ? "," : "",
             a->meta ? a->meta : "");
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
    if (model_build(a->ckpt, set, &o, bank, &out->res, err, sizeof err)) {
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
    int rc = ss ? scoring_store_register_model(ss, a->recipe, version, a->ckpt, bank,
                                               out->res.threshold, set->n, a->loss, meta, ok,
                                               &out->id, out->version, sizeof out->version)
                : -1;
    const struct model_build_result *res = &out->res;
    if (rc)
        log_error("model not registered: %s", ss ? scoring_store_errmsg(ss) : err);
    else if (!ok)
        log_error("model %s rejected, the active one keeps scoring: it %s", out->version, out->why),
            rc = 1;
    else
        log_info("model %s (id %lld) now scores recipe %s of %s: %s readout, bank of %d rows "
                 "from %d frames, threshold %.4f from %d held-out frames",
                 out->version, (long long)out->id, a->recipe, a->db,
                 model_readout_name(res->readout), res->bank_rows, res->bank_images, res->threshold,
                 res->calib_images);
    out->active = rc == 0;
    scoring_store_close(ss);
    return rc;
}
