/* dino_step.c — the data-parallel DINO training step. */
#include "dino_step.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"
#include "ssl_step.h"

struct dino_step_worker {
    struct vit_model student, teacher; /* replicas */
    struct vit_acts s_glob, s_loc, t_glob, s_def;
    long g0, g1;    /* this worker's rows of the global stack */
    long l0, l1;    /* this worker's rows of the local stack */
    long d0, d1;    /* this worker's defect images */
    float *dtokens; /* (d1 − d0, T, D) the defect loss's gradient on their tokens */
    double defect_loss, defect_acc;
    float *gtokens; /* (g1 − g0, T, D) the dense loss's gradient on the student's global tokens */
    double dense_loss;        /* this worker's Σ (1 − cos) over its masked patches */
    float *dembed;            /* (g1 − g0, D) KoLeo and auxiliary gradient on the student's global
                               * embeddings */
    int *target;              /* (g1 − g0) auxiliary classes of this worker's global rows */
    double koleo;             /* this worker's KoLeo loss, summed over its crops */
    double aux_loss, aux_acc; /* this worker's auxiliary loss and accuracy, row-weighted */
    int failed;               /* out of memory in this worker's step */
};

struct run_ctx {
    struct dino_step *s;
    const float *globals, *locals;
    const struct dino_step_params *p;
    long step;
    long masked; /* masked patches in the whole batch this step (0: no dense loss) */
};

static size_t image_floats(const struct dino_step *s, int size)
{
    return (size_t)s->model.in_chans * size * size;
}

/* The student's copy of this worker's global rows with their masked patches set to 0. */
static const float *mask_rows(struct dino_step *s, struct dino_step_worker *k, const float *globals,
                              const unsigned char *mask)
{
    int C = s->model.in_chans, G = s->cfg.global_size, ps = s->model.patch, g = G / ps;
    size_t gi = image_floats(s, G);
    float *out = s->masked + (size_t)k->g0 * gi;
    memcpy(out, globals + (size_t)k->g0 * gi, sizeof(float) * gi * (size_t)(k->g1 - k->g0));
    for (long r = k->g0; r < k->g1; r++) {
        const unsigned char *m = mask + (size_t)r * g * g;
        float *img = s->masked + (size_t)r * gi;
        for (int p = 0; p < g * g; p++) {
            if (!m[p]) continue;
            int y0 = p / g * ps, x0 = p % g * ps;
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < ps; y++)
                    memset(img + ((size_t)ch * G + y0 + y) * G + x0, 0, sizeof(float) * ps);
        }
    }
    return out;
}

/* The masked-patch distillation on this worker's global rows; returns whether it ran. */
static bool dense_part(struct dino_step *s, struct dino_step_worker *k, const struct run_ctx *c)
{
    k->dense_loss = 0;
    if (!c->masked || !k->gtokens || k->g1 <= k->g0) return false;
    int T = k->s_glob.T, D = s->model.dim, rows = (int)(k->g1 - k->g0);
    memset(k->gtokens, 0, sizeof(float) * (size_t)rows * T * D);
    dino_dense_loss(k->s_glob.tokens, k->t_glob.tokens, c->p->mask + (size_t)k->g0 * (T - 1), rows,
                    T, D, s->cfg.dense_weight / (float)c->masked, k->gtokens, &k->dense_loss);
    return true;
}

static void forward_part(void *arg, int w, int n)
{
    struct run_ctx *c = arg;
    struct dino_step *s = c->s;
    struct dino_step_worker *k = &s->workers[w];
    size_t gi = image_floats(s, s->cfg.global_size), li = image_floats(s, s->cfg.local_size);
    if (ssl_method_has_teacher(s->cfg.method))
        vit_forward(&k->teacher, &k->t_glob, c->globals + (size_t)k->g0 * gi);
    const float *sg = c->globals + (size_t)k->g0 * gi;
    if (c->masked) sg = mask_rows(s, k, c->globals, c->p->mask);
    vit_forward(&k->student, &k->s_glob, sg);
    if (k->l1 > k->l0) vit_forward(&k->student, &k->s_loc, c->locals + (size_t)k->l0 * li);
    if (k->dtokens && c->p->defects && k->d1 > k->d0)
        vit_forward(&k->student, &k->s_def, c->p->defects + (size_t)k->d0 * gi);
}

/* The synthetic-defect loss on this worker's defect images; returns whether it ran. */
static bool defect_part(struct dino_step *s, struct dino_step_worker *k,
                        const struct dino_step_params *p)
{
    k->defect_loss = k->defect_acc = 0;
    if (!k->dtokens || !p->defects || k->d1 <= k->d0) return false;
    int T = k->s_def.T, D = s->model.dim, rows = (int)(k->d1 - k->d0);
    size_t P = (size_t)(T - 1);
    memset(k->dtokens, 0, sizeof(float) * (size_t)rows * T * D);
    dino_defect_loss(k->s_def.tokens, rows, T, D, k->student.w.defect_w, k->student.w.defect_b,
                     p->defect_target + (size_t)k->d0 * P, p->defect_pw + (size_t)k->d0 * P,
                     s->cfg.defect_weight, k->dtokens, k->student.g.defect_w, k->student.g.defect_b,
                     &k->defect_loss, &k->defect_acc);
    return true;
}

/* KoLeo on the student's global embeddings of this worker, one group per crop (rows of the same
 * crop index), as DINOv2 does on each device's share of the batch. */
static int koleo_part(struct dino_step *s, struct dino_step_worker *k)
{
    int D = s->model.dim, B = s->cfg.batch;
    k->koleo = 0;
    if (s->cfg.koleo_weight <= 0.0f) return 0;
    for (long r = k->g0; r < k->g1;) {
        long end = (r / B + 1) * B < k->g1 ? (r / B + 1) * B : k->g1;
        double loss;
        size_t off = (size_t)(r - k->g0) * D;
        if (end - r >= 2) {
            if (dino_koleo(k->s_glob.embed + off, (int)(end - r), D, s->cfg.koleo_weight,
                           k->dembed + off, &loss))
                return -1;
            k->koleo += loss;
        }
        r = end;
    }
    return 0;
}

/* Transformation prediction on this worker's global rows: row r is image r mod B. Weighted by
 * its share of the rows, so the workers' terms add up to the mean over every global crop. */
static int aux_part(struct dino_step *s, struct dino_step_worker *k, const int *target)
{
    int B = s->cfg.batch, rows = (int)(k->g1 - k->g0);
    k->aux_loss = k->aux_acc = 0;
    if (!target || s->cfg.aux_weight <= 0.0f || s->model.aux_classes <= 0 || rows == 0) return 0;
    for (int i = 0; i < rows; i++) k->target[i] = target[(k->g0 + i) % B];
    float share = (float)rows / (float)(s->cfg.n_global * B);
    double loss, acc;
    if (dino_aux_loss(k->s_glob.embed, rows, s->model.dim, k->student.w.aux_w, k->student.w.aux_b,
                      k->target, s->model.aux_classes, s->cfg.aux_weight * share, k->dembed,
                      k->student.g.aux_w, k->student.g.aux_b, &loss, &acc))
        return -1;
    k->aux_loss = loss * share, k->aux_acc = acc * share;
    return 0;
}

/* The gradient on the student's global embeddings from the terms that read them (KoLeo, the
 * auxiliary head), or NULL when none is on. */
static const float *embed_grad(struct dino_step *s, struct dino_step_worker *k, const int *target)
{
    k->failed = 0;
    if (!k->dembed) return NULL;
    memset(k->dembed, 0, sizeof(float) * (size_t)(k->g1 - k->g0) * s->model.dim);
    if (koleo_part(s, k) || aux_part(s, k, target)) k->failed = 1;
    return k->dembed;
}

static void backward_part(void *arg, int w, int n)
{
    struct run_ctx *c = arg;
    struct dino_step *s = c->s;
    struct dino_step_worker *k = &s->workers[w];
    size_t K = (size_t)s->model.head_out, nglob = (size_t)s->cfg.n_global * s->cfg.batch;
    vit_zero_grad(&k->student);
    const float *dembed = embed_grad(s, k, c->p->aux_target);
    const float *dtok = dense_part(s, k, c) ? k->gtokens : NULL;
    vit_backward(&k->student, &k->s_glob, s->dlogits_s + (size_t)k->g0 * K, dembed, dtok);
    if (k->l1 > k->l0)
        vit_backward(&k->student, &k->s_loc, s->dlogits_s + (nglob + (size_t)k->l0) * K, NULL,
                     NULL);
    if (defect_part(s, k, c->p)) vit_backward(&k->student, &k->s_def, NULL, NULL, k->dtokens);
}

static void reduce_part(void *arg, int w, int n)
{
    struct run_ctx *c = arg;
    struct dino_step *s = c->s;
    long begin, end;
    pool_share((long)s->student.nparams, w, n, &begin, &end);
    float *g = s->student.grads;
    memcpy(g + begin, s->workers[0].student.grads + begin, sizeof(float) * (size_t)(end - begin));
    for (int k = 1; k < s->nworkers; k++) {
        const float *src = s->workers[k].student.grads;
        for (long i = begin; i < end; i++) g[i] += src[i];
    }
}

static void update_part(void *arg, int w, int n)
{
    struct run_ctx *c = arg;
    struct dino_step *s = c->s;
    struct adamw_params opt = {.lr = c->p->lr,
                               .weight_decay = c->p->weight_decay,
                               .beta1 = s->cfg.beta1,
                               .beta2 = s->cfg.beta2,
                               .eps = s->cfg.eps};
    adamw_update_part(&s->student, &opt, c->step, w, n);
    float momentum = ssl_method_has_teacher(s->cfg.method) ? c->p->teacher_momentum : 0.0f;
    ema_update_part(&s->teacher, &s->student, momentum, w, n);
}

/* Copies each worker's logits rows into the full stacks. */
static void gather_logits(struct dino_step *s)
{
    size_t K = (size_t)s->model.head_out, nglob = (size_t)s->cfg.n_global * s->cfg.batch;
    for (int w = 0; w < s->nworkers; w++) {
        struct dino_step_worker *k = &s->workers[w];
        size_t ng = (size_t)(k->g1 - k->g0), nl = (size_t)(k->l1 - k->l0);
        if (ssl_method_has_teacher(s->cfg.method))
            memcpy(s->logits_t + (size_t)k->g0 * K, k->t_glob.logits, sizeof(float) * ng * K);
        memcpy(s->logits_s + (size_t)k->g0 * K, k->s_glob.logits, sizeof(float) * ng * K);
        if (nl)
            memcpy(s->logits_s + (nglob + (size_t)k->l0) * K, k->s_loc.logits,
                   sizeof(float) * nl * K);
    }
}

int dino_step_run(struct dino_step *s, const float *globals, const float *locals,
                  const struct dino_step_params *p, struct dino_stats *stats)
{
    const struct dino_step_config *c = &s->cfg;
    int K = s->model.head_out, B = c->batch;
    struct run_ctx ctx = {.s = s, .globals = globals, .locals = locals, .p = p};
    if (s->masked && p->mask) {
        size_t P = (size_t)(c->global_size / s->model.patch) * (c->global_size / s->model.patch);
        for (size_t i = 0; i < (size_t)c->n_global * B * P; i++) ctx.masked += p->mask[i] != 0;
    }
    /* each worker runs its own GEMMs: BLAS must not add threads of its own (set on every step,
     * since other code may have raised the BLAS thread count in between) */
    if (s->nworkers > 1) gemm_set_threads(1);
    pool_run(s->pool, forward_part, &ctx);
    gather_logits(s);
    struct dino_stats st = {0};
    if (c->method != SSL_DINO) {
        if (ssl_step_loss(s, &st)) return -2;
    } else {
        int lrc =
            c->sinkhorn > 0
                ? dino_loss_sinkhorn(s->logits_t, s->logits_s, s->dlogits_s, B, c->n_global,
                                     c->n_global + c->n_local, K, p->teacher_temp, c->student_temp,
                                     c->sinkhorn, &st)
                : dino_loss(s->logits_t, s->logits_s, s->center, s->dlogits_s, B, c->n_global,
                            c->n_global + c->n_local, K, p->teacher_temp, c->student_temp, &st);
        if (lrc) return -2;
        dino_center_update(s->center, s->logits_t, c->n_global * B, K, c->center_momentum);
    }
    pool_run(s->pool, backward_part, &ctx);
    st.koleo = st.aux_loss = st.aux_acc = st.defect_loss = st.defect_acc = st.dense_loss = 0;
    for (int w = 0; w < s->nworkers; w++) {
        if (s->workers[w].failed) return -2;
        st.koleo += s->workers[w].koleo / c->n_global;
        st.aux_loss += s->workers[w].aux_loss, st.aux_acc += s->workers[w].aux_acc;
        st.defect_loss += s->workers[w].defect_loss, st.defect_acc += s->workers[w].defect_acc;
        st.dense_loss += ctx.masked ? s->workers[w].dense_loss / (double)ctx.masked : 0.0;
    }
    pool_run(s->pool, reduce_part, &ctx);
    ssl_step_add_grads(s);
    if (c->clip > 0.0f) adamw_clip_grads(&s->student, c->clip);
    if (p->freeze_last_layer && c->method == SSL_DINO) adamw_freeze_last_layer(&s->student);
    ctx.step = ++s->student.adam_step;
    pool_run(s->pool, update_part, &ctx);
    if (stats) *stats = st;
    return 0;
}

static int check_config(const struct vit_config *m, const struct dino_step_config *c, char *err,
                        size_t errsz)
{
    const char *why = NULL;
    if (m->head_out <= 0)
        why = "the model needs a DINO head (head_out > 0)";
    else if (c->batch < 1 || c->n_global < 1 || c->n_local < 0)
        why = "batch and n_global must be at least 1, n_local at least 0";
    else if (c->global_size % m->patch || c->global_size <= 0 ||
             (c->n_local > 0 && (c->local_size % m->patch || c->local_size <= 0)))
        why = "crop sizes must be positive multiples of the patch size";
    else if (c->threads < 1 || c->threads > 64 || c->n_global * c->batch < c->threads)
        why = "threads must be in [1, 64] and at most n_global x batch";
    else if (c->student_temp <= 0.0f)
        why = "student_temp must be positive";
    else if (c->defect_weight < 0.0f || (c->defect_weight > 0.0f && !m->defect_head))
        why = "the defect loss needs a model with a defect head (defect_head 1)";
    else if (c->dense_weight < 0.0f ||
             (c->dense_weight > 0.0f && !ssl_method_has_teacher(c->method)))
        why = "the masked-patch distillation needs a teacher (DINO or BYOL) and a weight >= 0";
    else if ((unsigned)c->method >= SSL_METHODS)
        why = "unknown method";
    else if (c->method != SSL_DINO && c->n_global != 2)
        why = "BYOL, Barlow Twins and SimCLR take two global crops";
    else if (!ssl_method_uses_locals(c->method) && c->n_local > 0)
        why = "Barlow Twins and SimCLR take no local crops";
    else if ((c->method == SSL_BYOL) != (m->pred_hidden > 0))
        why = "BYOL needs a model with a predictor (pred_hidden > 0), the others none";
    else if (c->method == SSL_BARLOW && (c->batch < 2 || c->barlow_lambda < 0.0f))
        why = "Barlow Twins needs a batch of 2 at least and lambda >= 0";
    else if (c->method == SSL_SIMCLR && c->simclr_temp <= 0.0f)
        why = "SimCLR's temperature must be positive";
    if (why) {
        if (errsz) snprintf(err, errsz, "invalid training config: %s", why);
        return -1;
    }
    return 0;
}

static int create_worker(struct dino_step *s, int w, char *err, size_t errsz)
{
    struct dino_step_worker *k = &s->workers[w];
    const struct dino_step_config *c = &s->cfg;
    pool_share((long)c->n_global * c->batch, w, s->nworkers, &k->g0, &k->g1);
    pool_share((long)c->n_local * c->batch, w, s->nworkers, &k->l0, &k->l1);
    int G = c->global_size, L = c->local_size;
    int rc = vit_replica_create(&k->student, &s->student, true, err, errsz);
    if (!rc) rc = vit_replica_create(&k->teacher, &s->teacher, false, err, errsz);
    if (!rc && ssl_method_has_teacher(c->method))
        rc = vit_acts_create(&k->t_glob, &k->teacher, (int)(k->g1 - k->g0), G, G, true, false, err,
                             errsz);
    if (!rc)
        rc = vit_acts_create(&k->s_glob, &k->student, (int)(k->g1 - k->g0), G, G, true, true, err,
                             errsz);
    bool aux = c->aux_weight > 0.0f && s->model.aux_classes > 0;
    if (!rc && (c->koleo_weight > 0.0f || aux)) {
        k->dembed = malloc(sizeof(float) * (size_t)(k->g1 - k->g0) * s->model.dim);
        k->target = malloc(sizeof(int) * (size_t)(k->g1 - k->g0 + 1));
        if (!k->dembed || !k->target) {
            rc = -2;
            if (errsz) snprintf(err, errsz, "out of memory for the embedding gradient");
        }
    }
    pool_share((long)c->batch, w, s->nworkers, &k->d0, &k->d1);
    if (!rc && c->defect_weight > 0.0f && k->d1 > k->d0) {
        rc = vit_acts_create(&k->s_def, &k->student, (int)(k->d1 - k->d0), G, G, false, true, err,
                             errsz);
        if (!rc) {
            k->dtokens =
                malloc(sizeof(float) * (size_t)(k->d1 - k->d0) * k->s_def.T * (size_t)s->model.dim);
            if (!k->dtokens) {
                rc = -2;
                if (errsz) snprintf(err, errsz, "out of memory for the defect gradient");
            }
        }
    }
    if (!rc && c->dense_weight > 0.0f && k->g1 > k->g0) {
        k->gtokens =
            malloc(sizeof(float) * (size_t)(k->g1 - k->g0) * k->s_glob.T * (size_t)s->model.dim);
        if (!k->gtokens) {
            rc = -2;
            if (errsz) snprintf(err, errsz, "out of memory for the dense gradient");
        }
    }
    if (!rc && k->l1 > k->l0)
        rc = vit_acts_create(&k->s_loc, &k->student, (int)(k->l1 - k->l0), L, L, true, true, err,
                             errsz);
    return rc;
}

int dino_step_create(struct dino_step *s, const struct vit_config *model,
                     const struct dino_step_config *cfg, uint64_t seed, char *err, size_t errsz)
{
    memset(s, 0, sizeof *s);
    if (check_config(model, cfg, err, errsz)) return -1;
    s->model = *model;
    s->cfg = *cfg;
    int rc = vit_create(&s->student, model, true, err, errsz);
    if (rc) return rc;
    rc = vit_create(&s->teacher, model, false, err, errsz);
    if (rc) goto fail;
    vit_init_weights(&s->student, seed);
    vit_copy_params(&s->teacher, &s->student);
    size_t K = (size_t)model->head_out, B = (size_t)cfg->batch;
    s->center = calloc(K, sizeof(float));
    s->logits_s = malloc(sizeof(float) * (size_t)(cfg->n_global + cfg->n_local) * B * K);
    s->dlogits_s = malloc(sizeof(float) * (size_t)(cfg->n_global + cfg->n_local) * B * K);
    s->logits_t = malloc(sizeof(float) * (size_t)cfg->n_global * B * K);
    bool dense = cfg->dense_weight > 0.0f;
    if (dense)
        s->masked = malloc(sizeof(float) * (size_t)cfg->n_global * B * model->in_chans *
                           cfg->global_size * cfg->global_size);
    s->nworkers = cfg->threads;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    s->pool = pool_create(s->nworkers);
    rc = -2;
    if (!s->center || !s->logits_s || !s->dlogits_s || !s->logits_t || (dense && !s->masked) ||
        !s->workers || !s->pool) {
        if (errsz) snprintf(err, errsz, "out of memory (or threads) for the training step");
        goto fail;
    }
    for (int w = 0; w < s->nworkers; w++)
        if ((rc = create_worker(s, w, err, errsz))) goto fail;
    if ((rc = ssl_step_create(s, err, errsz))) goto fail;
    return 0;
fail:
    dino_step_destroy(s);
    return rc;
}

void dino_step_destroy(struct dino_step *s)
{
    ssl_step_destroy(s);
    pool_destroy(s->pool);
    for (int w = 0; s->workers && w < s->nworkers; w++) {
        struct dino_step_worker *k = &s->workers[w];
        vit_acts_destroy(&k->s_glob);
        vit_acts_destroy(&k->s_loc);
        vit_acts_destroy(&k->t_glob);
        vit_acts_destroy(&k->s_def);
        free(k->dtokens);
        free(k->gtokens);
        free(k->dembed);
        free(k->target);
        vit_destroy(&k->student);
        vit_destroy(&k->teacher);
    }
    free(s->workers);
    free(s->center);
    free(s->logits_s);
    free(s->dlogits_s);
    free(s->logits_t);
    free(s->masked);
    vit_destroy(&s->teacher);
    vit_destroy(&s->student);
    memset(s, 0, sizeof *s);
}
