/* train.c — the training loop (DINO and the methods of ssl.h) and its schedules. */
#define LOG_TAG "train"
#include "log.h"

#include "train.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void train_defaults(struct train_options *o, int img_size, int in_chans)
{
    memset(o, 0, sizeof *o);
    o->model = (struct vit_config){.dim = 128,
                                   .depth = 4,
                                   .heads = 4,
                                   .mlp_ratio = 4,
                                   .patch = 4,
                                   .img_size = img_size,
                                   .in_chans = in_chans,
                                   .head_hidden = 1024,
                                   .head_bottleneck = 256,
                                   .head_out = 4096};
    int local = img_size * 3 / 7 / 4 * 4;
    augment_defaults(&o->aug, img_size, local < 4 ? 4 : local);
    o->batch = 64;
    o->n_local = 6;
    o->threads = 2;
    o->lr = 1.6e-2f; /* per 256 images: 4e-3 at batch 64 (twice 8e-3: better at 300 steps) */
    o->min_lr = 1e-6f;
    o->weight_decay = 0.04f;
    o->weight_decay_end = 0.4f;
    o->momentum_teacher = 0.99f; /* short budgets: the teacher must move within minutes */
    o->teacher_temp = 0.04f;
    o->warmup_teacher_temp = 0.04f;
    o->student_temp = 0.1f;
    o->center_momentum = 0.9f;
    o->clip = 3.0f;
    o->warmup_frac = 0.1f;
    o->teacher_temp_warmup_frac = 0.3f;
    o->freeze_last_layer_frac = 0.01f;
    o->aux_weight = 1.0f;
    o->dense_weight = 0.0f;
    o->mask_ratio = 0.5f;
    o->barlow_lambda = 0.0051f;
    o->simclr_temp = 0.2f;
    o->epochs = 100;
    o->seed = 0;
}

void train_set_size(struct train_options *o, int size)
{
    int patch = o->model.patch, local = size * 3 / 7 / patch * patch;
    float global_min = o->aug.global_scale[0];
    augment_defaults(&o->aug, size, local < patch ? patch : local);
    if (global_min > 0.0f) o->aug.global_scale[0] = global_min;
}

struct vit_config train_model_config(const struct train_options *o)
{
    struct vit_config m = o->model;
    m.defect_head = o->defect_weight > 0.0f;
    m.pred_hidden = o->method == SSL_BYOL ? o->model.head_bottleneck : 0;
    return m;
}

int train_make_step(struct dino_step *s, const struct train_options *o, char *err, size_t errsz)
{
    if (augment_check(&o->aug, err, errsz)) return -1;
    struct dino_step_config c = {.batch = o->batch,
                                 .n_global = 2,
                                 .n_local = ssl_method_uses_locals(o->method) ? o->n_local : 0,
                                 .global_size = o->aug.global_size,
                                 .local_size = o->aug.local_size,
                                 .student_temp = o->student_temp,
                                 .center_momentum = o->center_momentum,
                                 .clip = o->clip,
                                 .koleo_weight = o->koleo_weight,
                                 .aux_weight = o->model.aux_classes > 0 ? o->aux_weight : 0.0f,
                                 .defect_weight = o->defect_weight,
                                 .dense_weight = o->dense_weight,
                                 .sinkhorn = o->sinkhorn,
                                 .beta1 = 0.9f,
                                 .beta2 = 0.999f,
                                 .eps = 1e-8f,
                                 .threads = o->threads,
                                 .method = o->method,
                                 .barlow_lambda = o->barlow_lambda,
                                 .simclr_temp = o->simclr_temp};
    struct vit_config model = train_model_config(o);
    return dino_step_create(s, &model, &c, o->seed, err, errsz);
}

void train_warm_start(struct train_options *o, const struct dino_step *s)
{
    o->run_first = s->student.adam_step;
    o->total_steps = 0;
}

/* The schedules at step it of a run planned to end at step total: over the run's own steps (from
 * o->run_first), with the warm-ups of a model's first run left out on a warm start. */
static void step_params(const struct train_options *o, long it, long total,
                        struct dino_step_params *p)
{
    bool warm = o->run_first > 0;
    it -= o->run_first, total -= o->run_first;
    struct dino_schedule sch = {
        .total = total,
        .lr = o->lr * o->batch / 256.0,
        .min_lr = o->min_lr,
        .lr_warmup = (long)(o->warmup_frac * total),
        .weight_decay = o->weight_decay,
        .weight_decay_end = o->weight_decay_end,
        .momentum = o->momentum_teacher,
        .teacher_temp = o->teacher_temp,
        .warmup_teacher_temp = o->warmup_teacher_temp,
        .teacher_temp_warmup = warm ? 0 : (long)(o->teacher_temp_warmup_frac * total),
        .freeze_last_layer = warm ? 0 : (long)(o->freeze_last_layer_frac * total)};
    struct dino_schedule_point v = dino_schedule_at(&sch, it);
    *p = (struct dino_step_params){.lr = v.lr,
                                   .weight_decay = v.weight_decay,
                                   .teacher_temp = v.teacher_temp,
                                   .teacher_momentum = v.teacher_momentum,
                                   .freeze_last_layer = v.freeze_last_layer};
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Fills the crop stacks for the batch of images idx[0..B); with the auxiliary task, each image is
 * first turned by a transformation drawn from its stream (target[b]) into turned (C, H, W). */
static void make_crops(const struct train_options *o, const float *images, int C, int H, int W,
                       const int *idx, uint64_t stream, float *glob, float *loc, float *scratch,
                       int *target, float *turned)
{
    int B = o->batch, G = o->aug.global_size, L = o->aug.local_size;
    int n_local = ssl_method_uses_locals(o->method) ? o->n_local : 0;
    size_t gsz = (size_t)C * G * G, lsz = (size_t)C * L * L, img = (size_t)C * H * W;
    for (int b = 0; b < B; b++) {
        struct rng r = rng_seed(o->seed, stream * (uint64_t)B + (uint64_t)b);
        const float *src = images + (size_t)idx[b] * img;
        if (target) {
            target[b] = (int)(rng_next(&r) % (uint64_t)o->model.aux_classes);
            augment_dihedral(src, C, H, target[b], turned);
            src = turned;
        }
        augment_crop(&o->aug, AUG_GLOBAL1, src, C, H, W, &r, scratch, glob + (size_t)b * gsz);
        augment_crop(&o->aug, AUG_GLOBAL2, src, C, H, W, &r, scratch, glob + ((size_t)B + b) * gsz);
        for (int l = 0; l < n_local; l++)
            augment_crop(&o->aug, AUG_LOCAL, src, C, H, W, &r, scratch,
                         loc + ((size_t)l * B + b) * lsz);
    }
}

/* The defect images of a batch: each image's second global crop with a defect pasted from the
 * first global crop of itself or of another image, and per patch its label (the defect covers at
 * least a quarter of it) and loss weight (balanced: the defective patches weigh half the loss,
 * the clean ones the other half; patches the defect only grazes weigh nothing). */
struct defect_batch {
    float *images;      /* (B, C, G, G) */
    float *target, *pw; /* (B, P) */
    float *alpha;       /* (G, G) scratch */
};

static void make_defects(const struct train_options *o, int C, const float *glob, uint64_t stream,
                         struct defect_batch *d)
{
    int B = o->batch, G = o->aug.global_size, ps = o->model.patch, g = G / ps;
    size_t gsz = (size_t)C * G * G, P = (size_t)g * g;
    long npos = 0, nneg = 0;
    for (int b = 0; b < B; b++) {
        struct rng r = rng_seed(o->seed ^ 0xDEFEC7ull, stream * (uint64_t)B + (uint64_t)b);
        float *img = d->images + (size_t)b * gsz;
        memcpy(img, glob + ((size_t)B + b) * gsz, sizeof(float) * gsz);
        int j = B > 1 && rng_uniform(&r) < 0.5
                    ? (b + 1 + (int)(rng_next(&r) % (uint64_t)(B - 1))) % B
                    : b;
        augment_paste_defect(img, glob + (size_t)j * gsz, C, G, &r, d->alpha);
        for (int py = 0; py < g; py++)
            for (int px = 0; px < g; px++) {
                double cov = 0;
                for (int y = 0; y < ps; y++)
                    for (int x = 0; x < ps; x++)
                        cov += d->alpha[(size_t)(py * ps + y) * G + px * ps + x];
                cov /= ps * ps;
                size_t k = (size_t)b * P + (size_t)py * g + px;
                d->target[k] = cov >= 0.25 ? 1.0f : 0.0f;
                d->pw[k] = cov >= 0.25 ? 1.0f : cov <= 0.01 ? -1.0f : 0.0f;
                npos += d->pw[k] > 0, nneg += d->pw[k] < 0;
            }
    }
    float wp = npos ? (nneg ? 0.5f : 1.0f) / (float)npos : 0.0f;
    float wn = nneg ? (npos ? 0.5f : 1.0f) / (float)nneg : 0.0f;
    for (size_t k = 0; k < (size_t)B * P; k++)
        d->pw[k] = d->pw[k] > 0 ? wp : d->pw[k] < 0 ? wn : 0.0f;
}

/* The student's masks for step `stream`: each global crop row is masked with probability ½, then
 * rectangles of patches (sides up to half the grid) are blanked until a share drawn uniformly in
 * [0.1, mask_ratio] of its g × g patches is (iBOT's block-wise masking, on a small grid). */
static void make_masks(const struct train_options *o, uint64_t stream, int rows, int g,
                       unsigned char *mask)
{
    size_t P = (size_t)g * g;
    memset(mask, 0, (size_t)rows * P);
    for (int r = 0; r < rows; r++) {
        struct rng q = rng_seed(o->seed ^ 0x3A5C0000ull, stream * (uint64_t)rows + (uint64_t)r);
        if (rng_uniform(&q) < 0.5f) continue;
        float lo = 0.1f, hi = o->mask_ratio > lo ? o->mask_ratio : lo;
        long want = lroundf((lo + (hi - lo) * rng_uniform(&q)) * (float)P), have = 0;
        if (want < 1) want = 1;
        unsigned char *m = mask + (size_t)r * P;
        int side = g / 2 > 1 ? g / 2 : 1;
        for (int tries = 0; have < want && tries < 64; tries++) {
            int h = 1 + (int)(rng_next(&q) % (uint64_t)side),
                w = 1 + (int)(rng_next(&q) % (uint64_t)side);
            int y0 = (int)(rng_next(&q) % (uint64_t)(g - h + 1));
            int x0 = (int)(rng_next(&q) % (uint64_t)(g - w + 1));
            for (int y = y0; y < y0 + h && have < want; y++)
                for (int x = x0; x < x0 + w && have < want; x++)
                    if (!m[y * g + x]) m[y * g + x] = 1, have++;
        }
    }
}

void train_guard_init(struct train_guard *g)
{
    *g = (struct train_guard){.temp_scale = 1.0f};
}

int train_guard_step(struct train_guard *g, const struct dino_stats *st, int K)
{
    bool uniform = st->teacher_entropy > TRAIN_GUARD_ENTROPY * log((double)K) &&
                   st->teacher_kl < TRAIN_GUARD_KL;
    g->streak = uniform ? g->streak + 1 : 0;
    if (g->streak < TRAIN_GUARD_STEPS || g->fires >= TRAIN_GUARD_MAX_FIRES) return 0;
    g->streak = 0, g->fires++;
    g->temp_scale *= 0.5f;
    return 1;
}

int train_collapse_step(struct train_guard *g, double embed_std, int K, bool *collapsed)
{
    bool low = embed_std < TRAIN_COLLAPSE_STD / sqrt((double)K);
    g->streak = low ? g->streak + 1 : 0;
    bool now = g->collapsed ? low : g->streak >= TRAIN_GUARD_STEPS;
    *collapsed = now;
    if (now == g->collapsed) return 0;
    g->collapsed = now;
    return 1;
}

/* The order of epoch e: a permutation of [0, n) from the seed alone. */
static void epoch_order(int *perm, int n, uint64_t seed, int epoch)
{
    struct rng r = rng_seed(seed, 0xD1A00000ull + (uint64_t)epoch);
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_uniform(&r) * (i + 1));
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

int train_run(struct dino_step *s, const struct train_options *o, const float *images, int N, int H,
              int W, train_progress_fn cb, void *ctx, char *err, size_t errsz)
{
    int B = o->batch, C = o->model.in_chans, G = o->aug.global_size, L = o->aug.local_size;
    int n = N > B ? N : B; /* tiny sets repeat images to fill a batch */
    long per_epoch = n / B;
    const long unknown = 1L << 40;
    long total = o->total_steps > 0 ? o->total_steps
                 : o->epochs > 0    ? o->run_first + per_epoch * o->epochs
                                    : unknown;
    float *glob = malloc(sizeof(float) * (size_t)2 * B * C * G * G);
    float *loc = malloc(sizeof(float) * ((size_t)o->n_local * B * C * L * L + 1));
    float *scratch = malloc(sizeof(float) * augment_scratch_floats(&o->aug, C, H, W));
    int *perm = malloc(sizeof(int) * (size_t)n);
    int *idx = malloc(sizeof(int) * (size_t)B);
    bool aux = o->model.aux_classes > 0 && o->aux_weight > 0.0f;
    if (aux && H != W) {
        if (errsz) snprintf(err, errsz, "transformation prediction needs square images");
        free(glob), free(loc), free(scratch), free(perm), free(idx);
        return -1;
    }
    int *target = aux ? malloc(sizeof(int) * (size_t)B) : NULL;
    float *turned = aux ? malloc(sizeof(float) * (size_t)C * H * W) : NULL;
    bool defects = o->defect_weight > 0.0f;
    size_t P = (size_t)(G / o->model.patch) * (size_t)(G / o->model.patch);
    struct defect_batch db = {0};
    if (defects) {
        db.images = malloc(sizeof(float) * (size_t)B * C * G * G);
        db.target = malloc(sizeof(float) * (size_t)B * P);
        db.pw = malloc(sizeof(float) * (size_t)B * P);
        db.alpha = malloc(sizeof(float) * (size_t)G * G);
    }
    bool db_ok = !defects || (db.images && db.target && db.pw && db.alpha);
    bool dense = o->dense_weight > 0.0f;
    unsigned char *mask = dense ? malloc((size_t)2 * B * P) : NULL;
    db_ok = db_ok && (!dense || mask);
    if (!glob || !loc || !scratch || !perm || !idx || (aux && (!target || !turned)) || !db_ok) {
        free(glob), free(loc), free(scratch), free(perm), free(idx), free(target), free(turned);
        free(db.images), free(db.target), free(db.pw), free(db.alpha), free(mask);
        if (errsz) snprintf(err, errsz, "out of memory for the training batch");
        return -2;
    }
    double t0 = now_s();
    long first = s->student.adam_step;
    struct train_guard guard;
    train_guard_init(&guard);
    int rc = 0, epoch = -1;
    for (long it = first; it < total; it++) {
        int e = (int)(it / per_epoch);
        if (e != epoch) epoch_order(perm, n, o->seed, epoch = e);
        for (int b = 0; b < B; b++) idx[b] = perm[(it % per_epoch) * B + b] % N;
        make_crops(o, images, C, H, W, idx, (uint64_t)it, glob, loc, scratch, target, turned);
        struct dino_step_params p;
        step_params(o, it, total == unknown ? o->run_first + 1000 : total, &p);
        p.aux_target = target;
        if (defects) {
            make_defects(o, C, glob, (uint64_t)it, &db);
            p.defects = db.images, p.defect_target = db.target, p.defect_pw = db.pw;
        }
        if (dense) {
            make_masks(o, (uint64_t)it, 2 * B, G / o->model.patch, mask);
            p.mask = mask;
        }
        p.teacher_temp =
            fmaxf(p.teacher_temp * guard.temp_scale, fminf(p.teacher_temp, TRAIN_GUARD_MIN_TEMP));
        struct train_progress pr = {.step = it, .epoch = epoch, .lr = p.lr};
        if (dino_step_run(s, glob, loc, &p, &pr.stats)) {
            rc = -2;
            if (errsz) snprintf(err, errsz, "out of memory in a training step");
            break;
        }
        bool collapsed;
        if (o->method != SSL_DINO &&
            train_collapse_step(&guard, pr.stats.embed_std, o->model.head_out, &collapsed)) {
            if (collapsed)
                log_warn("%s has collapsed: the projections' spread (embed_std %.4f) has been "
                         "below %.4f for %d steps",
                         ssl_method_name(o->method), pr.stats.embed_std,
                         TRAIN_COLLAPSE_STD / sqrt((double)o->model.head_out), TRAIN_GUARD_STEPS);
            else
                log_info("%s no longer collapsed: embed_std %.4f", ssl_method_name(o->method),
                         pr.stats.embed_std);
        }
        if (o->method == SSL_DINO && train_guard_step(&guard, &pr.stats, o->model.head_out))
            log_warn("the teacher's output is uniform (entropy %.3f of %.3f, KL %.4f) for %d "
                     "steps: its temperature is now %g of the schedule's",
                     pr.stats.teacher_entropy, log((double)o->model.head_out), pr.stats.teacher_kl,
                     TRAIN_GUARD_STEPS, (double)guard.temp_scale);
        pr.teacher_temp = p.teacher_temp, pr.guard_fires = guard.fires;
        pr.collapsed = guard.collapsed;
        pr.seconds = now_s() - t0;
        long done = it - first + 1;
        if (o->minutes > 0 && o->total_steps == 0 &&
            (done == 5 || done == 10 || done == 20 || done % 25 == 0)) {
            /* plan the schedules from the speed so far (after 5, 10 and 20 steps, then every 25,
             * as the machine's load changes: a short run planned while the machine was busy
             * would otherwise end early once it is not); never beyond the epoch bound */
            long fit = first + (long)(o->minutes * 60.0 / (pr.seconds / (double)done));
            long bound = o->epochs > 0 ? o->run_first + per_epoch * o->epochs : unknown;
            total = fit < bound ? fit : bound;
            if (total < it + 1) total = it + 1;
        }
        pr.total_steps = total == unknown ? 0 : total;
        pr.images_per_s = (double)done * B / pr.seconds;
        if (cb && cb(&pr, ctx)) {
            rc = 1;
            break;
        }
        if (o->minutes > 0 && pr.seconds + pr.seconds / (double)done > o->minutes * 60.0) {
            break; /* the budget is a hard limit: no step that would end beyond it (at the
                    * steps' mean time so far), though a run makes one step at least */
        }
    }
    free(glob), free(loc), free(scratch), free(perm), free(idx), free(target), free(turned);
    free(db.images), free(db.target), free(db.pw), free(db.alpha), free(mask);
    return rc;
}
