/* golive.c — the rule a new model passes before it scores: validation on the defects operators
 * confirmed (see golive.h). */
#define LOG_TAG "golive"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "frame_region.h"
#include "golive.h"
#include "imageset.h"
#include "model.h"
#include "store/scoring_store.h"

#define VALIDATION_DEFECTS 256

/* Share of the confirmed defects a model flags, or -1 when it cannot be loaded or run. */
static double defects_caught(const char *ckpt, const char *bank, struct scoring_store *ss,
                             const int64_t *ids, int n, int threads)
{
    struct scoring_model m;
    char err[512];
    if (model_load(&m, ckpt, bank, err, sizeof err)) {
        log_warn("validation: %s", err);
        return -1;
    }
    struct image_set set = {.size = m.size, .channels = m.channels};
    struct frame_region_cache regions = {0};
    for (int i = 0; i < n; i++) {
        void *data = NULL;
        size_t size = 0;
        int64_t camera;
        char what[48];
        const struct region *r = NULL;
        snprintf(what, sizeof what, "frame %lld", (long long)ids[i]);
        if (scoring_store_frame(ss, ids[i], &data, &size, &camera) == 1 &&
            !frame_region_of(&regions, ss, ids[i], &r, err, sizeof err)) {
            struct image_view v = model_view(&m, r);
            image_set_add_region(&set, data, size, what, &v);
        }
        free(data);
    }
    float *scores = malloc(sizeof(float) * (size_t)(set.frames ? set.frames : 1));
    struct model_input in = model_input_of(&set);
    double caught = -1;
    if (set.frames && scores &&
        !model_score_input(&m, &in, threads, scores, NULL, err, sizeof err)) {
        int k = 0;
        for (int i = 0; i < set.frames; i++) k += scores[i] > m.threshold;
        caught = (double)k / set.frames;
    }
    free(scores);
    frame_region_free(&regions);
    image_set_free(&set);
    model_free(&m);
    return caught;
}

bool golive_allowed(struct scoring_store *ss, const char *recipe, const char *ckpt,
                    const char *bank, int threads, char *why, size_t whysz)
{
    int64_t ids[VALIDATION_DEFECTS];
    struct model_row old;
    if (scoring_store_active_model(ss, recipe, &old) != 1) return true;
    int n = scoring_store_confirmed_defects(ss, old.recipe_id, ids, VALIDATION_DEFECTS);
    if (n <= 0) return true;
    double now = defects_caught(ckpt, bank, ss, ids, n, threads);
    double before = defects_caught(old.path, old.bank, ss, ids, n, threads);
    log_info("validation on %d confirmed defects: the new model flags %.1f %%, model %s %.1f %%", n,
             100 * now, old.version, 100 * before);
    if (now >= before) return true;
    snprintf(why, whysz, "flags %.1f %% of %d confirmed defects, model %s %.1f %%", 100 * now, n,
             old.version, 100 * before);
    return false;
}
