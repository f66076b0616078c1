/* model.c — scoring models: building a bank and threshold from normal frames, loading, scoring. */
#define LOG_TAG "model"
#include "log.h"

#include "model.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "embedding.h"
#include "heatmap.h"
#include "image.h"

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errsz) vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

void model_build_defaults(struct model_build_options *o)
{
    *o = (struct model_build_options){.layer = -1,
                                      .bank_images = 128,
                                      .aligned_bank_bytes = 64l << 20,
                                      .max_patches = 8192,
                                      .calib_images = 512,
                                      .false_alarm_rate = 0.005,
                                      .top_q = 0.0f,
                                      .readout = MODEL_READOUT_AUTO,
                                      .threads = 2};
}

int model_read_config(const struct st_file *f, const char *path, struct scoring_model *m,
                      struct vit_config *c, char *err, size_t errsz)
{
    const char *text = st_meta(f, "model");
    json_error_t je;
    json_t *j = text ? json_loads(text, 0, &je) : NULL;
    json_t *mean = j ? json_object_get(j, "mean") : NULL,
           *std = j ? json_object_get(j, "std") : NULL;
    memset(c, 0, sizeof *c);
    int ok =
        j && json_unpack(j, "{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "dim", &c->dim,
                         "depth", &c->depth, "heads", &c->heads, "mlp_ratio", &c->mlp_ratio,
                         "patch", &c->patch, "img_size", &c->img_size, "in_chans", &c->in_chans,
                         "head_hidden", &c->head_hidden, "head_bottleneck", &c->head_bottleneck,
                         "head_out", &c->head_out) == 0;
    json_t *aux = j ? json_object_get(j, "aux_classes") : NULL;
    if (ok && aux) {
        ok = json_is_integer(aux);
        c->aux_classes = (int)json_integer_value(aux);
    }
    ok = ok && json_is_array(mean) && json_is_array(std) &&
         json_array_size(mean) == (size_t)c->in_chans &&
         json_array_size(std) == (size_t)c->in_chans && c->in_chans >= 1 && c->in_chans <= 3;
    for (int i = 0; ok && i < c->in_chans; i++) {
        double mu = json_number_value(json_array_get(mean, (size_t)i));
        double sd = json_number_value(json_array_get(std, (size_t)i));
        ok = json_is_number(json_array_get(mean, (size_t)i)) && fabs(mu) <= 1e6 && sd > 1e-6 &&
             sd <= 1e6;
        m->mean[i] = ok ? (float)mu : 0.0f;
        m->std[i] = ok ? (float)sd : 1.0f;
    }
    json_decref(j);
    if (!ok)
        return fail(err, errsz, "%s: not an inspectd training checkpoint (model metadata)", path);
    char why[256];
    if (vit_config_check(c, why, sizeof why)) return fail(err, errsz, "%s: %s", path, why);
    m->size = c->img_size, m->channels = c->in_chans;
    m->gh = m->gw = c->img_size / c->patch;
    return 0;
}

static int load_teacher(struct scoring_model *m, const char *ckpt, char *err, size_t errsz)
{
    struct st_file f;
    struct vit_config c;
    char why[256];
    if (st_load(ckpt, &f, why, sizeof why)) return fail(err, errsz, "%s", why);
    int rc = model_read_config(&f, ckpt, m, &c, err, errsz);
    if (!rc && vit_create(&m->vit, &c, false, why, sizeof why))
        rc = fail(err, errsz, "%s: %s", ckpt, why);
    else if (!rc && checkpoint_load_model(&m->vit, &f, "teacher.", why, sizeof why))
        rc = fail(err, errsz, "%s: %s", ckpt, why);
    st_free(&f);
    return rc;
}

/* Patch tokens (n, gh·gw, D) of images (n, C, S, S) in [0, 1], normalised on the way. */
static float *patch_tokens(const struct scoring_model *m, const float *images, int n, int threads,
                           char *err, size_t errsz)
{
    int S = m->size, C = m->channels, D = m->vit.cfg.dim, P = m->gh * m->gw;
    size_t px = (size_t)S * S;
    float *norm = calloc((size_t)n * C * px, sizeof(float));
    float *tok = malloc(sizeof(float) * (size_t)n * (P + 1) * D);
    if (!norm || !tok) {
        free(norm), free(tok);
        fail(err, errsz, "out of memory for %d images' tokens", n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const float *src = images + ((size_t)i * C + c) * px;
            float *dst = norm + ((size_t)i * C + c) * px;
            for (size_t k = 0; k < px; k++) dst[k] = (src[k] - m->mean[c]) / m->std[c];
        }
    int rc =
        embedding_extract_layers(&m->vit, norm, n, S, S, 1u << m->layer, threads, tok, err, errsz);
    free(norm);
    if (rc) {
        free(tok);
        return NULL;
    }
    /* drop each image's class token: rows 1..P */
    for (int i = 0; i < n; i++)
        memmove(tok + (size_t)i * P * D, tok + ((size_t)i * (P + 1) + 1) * D,
                sizeof(float) * (size_t)P * D);
    return tok;
}

/* Bank rows per image and floats per row in the model's readout. */
static int rows_per_image(const struct scoring_model *m)
{
    return m->readout == MODEL_READOUT_ALIGNED ? 1 : m->gh * m->gw;
}

static int feature_dim(const struct scoring_model *m)
{
    return m->readout == MODEL_READOUT_ALIGNED ? m->gh * m->gw * m->vit.cfg.dim : m->vit.cfg.dim;
}

/* The bank-space rows of n images: (n · rows_per_image, feature_dim), patch tokens, standardised
 * grids for ALIGNED (grid_mean and grid_scale set). NULL on failure (reason in err). */
static float *features(const struct scoring_model *m, const float *images, int n, int threads,
                       char *err, size_t errsz)
{
    float *x = patch_tokens(m, images, n, threads, err, errsz);
    if (!x || m->readout != MODEL_READOUT_ALIGNED) return x;
    size_t F = (size_t)feature_dim(m);
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t f = 0; f < F; f++)
            x[i * F + f] = (x[i * F + f] - m->grid_mean[f]) * m->grid_scale[f];
    return x;
}

/* The nearest-k search of x (n, F) in rows [first, first + count) of the bank: mean distance in
 * dist_mean (n) and each query's nearest row (absolute) in nearest (n). */
static int search_rows(const struct knn_bank *bank, int first, int count, int k, const float *x,
                       int n, int threads, float *dist_mean, int *nearest)
{
    struct knn_bank part = *bank;
    part.x += (size_t)first * bank->dim, part.norm2 += first, part.n = count;
    k = k < count ? k : count;
    float *dist = malloc(sizeof(float) * (size_t)n * k);
    int *idx = malloc(sizeof(int) * (size_t)n * k);
    int rc = dist && idx ? knn_search(&part, x, n, k, false, threads, dist, idx) : -1;
    for (int i = 0; !rc && i < n; i++) {
        double sum = 0;
        for (int j = 0; j < k; j++) sum += sqrt(fmax(dist[(size_t)i * k + j], 0.0));
        dist_mean[i] = (float)(sum / k);
        nearest[i] = first + idx[(size_t)i * k];
    }
    free(dist), free(idx);
    return rc;
}

/* ALIGNED: each grid's mean distance to its k nearest grids of the bank file, or its distance to
 * the nearest operator-feedback grid when that is smaller (a frame marked normal scores 0);
 * grids (n, P) hold each position's distance to the nearest grid's same position. */
static int score_aligned(const struct scoring_model *m, const float *x, int n, int threads,
                         float *scores, float *grids)
{
    int P = m->gh * m->gw, D = m->vit.cfg.dim, nfb = m->bank.n - m->base_rows;
    size_t F = (size_t)P * D;
    float *fb_dist = malloc(sizeof(float) * (size_t)n);
    int *nearest = malloc(sizeof(int) * (size_t)n), *fb_nearest = malloc(sizeof(int) * (size_t)n);
    int rc = fb_dist && nearest && fb_nearest
                 ? search_rows(&m->bank, 0, m->base_rows, MODEL_ALIGNED_K, x, n, threads, scores,
                               nearest)
                 : -1;
    if (!rc && nfb > 0)
        rc = search_rows(&m->bank, m->base_rows, nfb, 1, x, n, threads, fb_dist, fb_nearest);
    for (int i = 0; !rc && i < n; i++) {
        if (nfb > 0 && fb_dist[i] < scores[i]) scores[i] = fb_dist[i], nearest[i] = fb_nearest[i];
        const float *q = x + F * i, *b = m->bank.x + F * (size_t)nearest[i];
        for (int t = 0; grids && t < P; t++) {
            double d2 = 0;
            for (int c = 0; c < D; c++) {
                double e = q[t * D + c] - b[t * D + c];
                d2 += e * e;
            }
            grids[(size_t)i * P + t] = (float)sqrt(d2);
        }
    }
    free(fb_dist), free(nearest), free(fb_nearest);
    return rc;
}

int model_score(const struct scoring_model *m, const float *images, int n, int threads,
                float *scores, float *grids, char *err, size_t errsz)
{
    float *x = features(m, images, n, threads, err, errsz);
    if (!x) return -1;
    int rc = m->readout == MODEL_READOUT_ALIGNED
                 ? score_aligned(m, x, n, threads, scores, grids)
                 : knn_patch_score(&m->bank, x, n, m->gh * m->gw, m->top_q, threads, scores, grids);
    free(x);
    return rc ? fail(err, errsz, "out of memory for patch scores") : 0;
}

/* ALIGNED: grid_mean and grid_scale from the raw grids x (n, F): each feature's mean and the
 * inverse of its spread, floored at a hundredth of the mean spread (a position that never varies
 * in the bank, such as an empty background, must not turn sensor noise into a defect). */
static int fit_standardisation(struct scoring_model *m, const float *x, int n)
{
    size_t F = (size_t)feature_dim(m);
    free(m->grid_mean), free(m->grid_scale);
    m->grid_mean = malloc(sizeof(float) * F);
    m->grid_scale = malloc(sizeof(float) * F);
    if (!m->grid_mean || !m->grid_scale) return -1;
    double mean_var = 0;
    for (size_t f = 0; f < F; f++) {
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++) {
            double v = x[(size_t)i * F + f];
            s += v, ss += v * v;
        }
        double mu = s / n, var = fmax(ss / n - mu * mu, 0.0);
        m->grid_mean[f] = (float)mu, m->grid_scale[f] = (float)var;
        mean_var += var / (double)F;
    }
    double floor_var = fmax(1e-4 * mean_var, 1e-12);
    for (size_t f = 0; f < F; f++)
        m->grid_scale[f] = (float)(1.0 / sqrt(fmax(m->grid_scale[f], floor_var)));
    return 0;
}

/* The bank rows: every patch of the bank images, or a k-centre coreset of them; for ALIGNED the
 * standardised grids of the bank images. */
static int build_bank(struct scoring_model *m, const float *imgs, int n,
                      const struct model_build_options *o, char *err, size_t errsz)
{
    float *x = patch_tokens(m, imgs, n, o->threads, err, errsz);
    if (!x) return -1;
    int rc;
    if (m->readout == MODEL_READOUT_ALIGNED) {
        size_t F = (size_t)feature_dim(m);
        rc = fit_standardisation(m, x, n);
        for (size_t i = 0; !rc && i < (size_t)n * F; i++)
            x[i] = (x[i] - m->grid_mean[i % F]) * m->grid_scale[i % F];
        if (!rc) rc = knn_bank_build(&m->bank, x, n, (int)F, KNN_L2);
    } else {
        rc = knn_bank_build_coreset(&m->bank, x, n * m->gh * m->gw, m->vit.cfg.dim, o->max_patches,
                                    o->threads);
    }
    free(x);
    return rc ? fail(err, errsz, "out of memory for the bank") : 0;
}

static int save_bank(const struct scoring_model *m, const struct model_build_options *o,
                     const struct model_build_result *r, const char *path, char *err, size_t errsz)
{
    char layer[16], thr[32], rate[32], topq[32], bi[16], ci[16];
    snprintf(layer, sizeof layer, "%d", m->layer);
    snprintf(thr, sizeof thr, "%.9g", r->threshold);
    snprintf(rate, sizeof rate, "%g", o->false_alarm_rate);
    snprintf(topq, sizeof topq, "%g", o->top_q);
    snprintf(bi, sizeof bi, "%d", r->bank_images);
    snprintf(ci, sizeof ci, "%d", r->calib_images);
    const char *keys[] = {"format", "layer",       "threshold", "false_alarm_rate",
                          "top_q",  "bank_images", "readout",   "calibration_images"};
    const char *vals[] = {
        "inspectd-bank", layer, thr, rate, topq, bi, model_readout_name(m->readout), ci};
    int shape[2] = {m->bank.n, m->bank.dim}, gshape[1] = {feature_dim(m)};
    struct st_out t[3] = {
        {.name = "bank", .ndim = 2, .shape = shape, .data = m->bank.x},
        {.name = "grid_mean", .ndim = 1, .shape = gshape, .data = m->grid_mean},
        {.name = "grid_scale", .ndim = 1, .shape = gshape, .data = m->grid_scale}};
    int nt = m->readout == MODEL_READOUT_ALIGNED ? 3 : 1;
    return st_save(path, t, nt, keys, vals, 8, err, errsz);
}

int model_from_vit(struct scoring_model *m, const struct vit_model *vit, const float *mean,
                   const float *std, char *err, size_t errsz)
{
    memset(m, 0, sizeof *m);
    if (vit_replica_create(&m->vit, vit, false, err, errsz)) return -1;
    m->size = vit->cfg.img_size, m->channels = vit->cfg.in_chans;
    m->gh = m->gw = vit->cfg.img_size / vit->cfg.patch;
    for (int c = 0; c < m->channels; c++) m->mean[c] = mean[c], m->std[c] = std[c];
    return 0;
}

void model_bank_split(int n, const struct model_build_options *o, int *bank_idx, int *nb,
                      int *cal_idx, int *nc)
{
    *nb = *nc = 0;
    for (int i = 0; i < n; i++) {
        if (i % 5 == 4 || (i == n - 1 && *nc == 0)) {
            if (*nc < o->calib_images) cal_idx[(*nc)++] = i;
        } else if (*nb < o->bank_images) {
            bank_idx[(*nb)++] = i;
        }
    }
}

int model_fit(struct scoring_model *m, const float *images, int n,
              const struct model_build_options *o, struct model_build_result *r, char *err,
              size_t errsz)
{
    memset(r, 0, sizeof *r);
    m->layer = model_scoring_layer(&m->vit.cfg, o->layer);
    m->top_q = o->top_q;
    if (m->layer > m->vit.cfg.depth)
        return fail(err, errsz, "layer %d: the model has %d blocks", m->layer, m->vit.cfg.depth);
    if (n < 2) return fail(err, errsz, "need at least 2 normal images");
    size_t per = (size_t)m->channels * m->size * m->size;
    float *bank_imgs = malloc(sizeof(float) * per * (size_t)n);
    float *cal_imgs = malloc(sizeof(float) * per * (size_t)n);
    float *cal_scores = malloc(sizeof(float) * (size_t)n);
    int *bank_idx = malloc(sizeof(int) * (size_t)n), *cal_idx = malloc(sizeof(int) * (size_t)n);
    int rc = -1, nb = 0, nc = 0;
    if (!bank_imgs || !cal_imgs || !cal_scores || !bank_idx || !cal_idx) {
        fail(err, errsz, "out of memory");
        goto done;
    }
    knn_bank_free(&m->bank);
    r->alignment = model_alignment(images, n, m->channels, m->size);
    m->readout = o->readout != MODEL_READOUT_AUTO    ? o->readout
                 : r->alignment >= MODEL_ALIGNED_MIN ? MODEL_READOUT_ALIGNED
                                                     : MODEL_READOUT_PATCH;
    r->readout = m->readout;
    struct model_build_options split = *o;
    if (m->readout == MODEL_READOUT_ALIGNED) {
        long per_grid = (long)sizeof(float) * feature_dim(m);
        long fit = o->aligned_bank_bytes / per_grid;
        split.bank_images =
            (int)(fit < MODEL_ALIGNED_MAX_IMAGES ? (fit > 1 ? fit : 1) : MODEL_ALIGNED_MAX_IMAGES);
    }
    model_bank_split(n, &split, bank_idx, &nb, cal_idx, &nc);
    for (int i = 0; i < nb; i++)
        memcpy(bank_imgs + per * i, images + per * bank_idx[i], sizeof(float) * per);
    for (int i = 0; i < nc; i++)
        memcpy(cal_imgs + per * i, images + per * cal_idx[i], sizeof(float) * per);
    if (build_bank(m, bank_imgs, nb, o, err, errsz)) goto done;
    m->base_rows = m->bank.n;
    if (model_score(m, cal_imgs, nc, o->threads, cal_scores, NULL, err, errsz)) goto done;
    if (knn_calibrate(cal_scores, nc, o->false_alarm_rate, &r->threshold)) {
        fail(err, errsz, "out of memory for calibration");
        goto done;
    }
    m->threshold = r->threshold;
    r->bank_rows = m->bank.n, r->bank_images = nb, r->calib_images = nc;
    rc = 0;
done:
    free(bank_imgs), free(cal_imgs), free(cal_scores), free(bank_idx), free(cal_idx);
    return rc;
}

int model_scoring_layer(const struct vit_config *c, int layer)
{
    return layer >= 0 ? layer : (c->depth + 1) / 2;
}

int model_build(const char *ckpt, const struct image_set *normal,
                const struct model_build_options *o, const char *bank_path,
                struct model_build_result *r, char *err, size_t errsz)
{
    struct scoring_model m;
    memset(&m, 0, sizeof m);
    memset(r, 0, sizeof *r);
    if (load_teacher(&m, ckpt, err, errsz)) return -1;
    int rc = -1;
    if (normal->size != m.size || normal->channels != m.channels || normal->n < 2)
        fail(err, errsz, "need at least 2 normal images of %dx%d with %d channel(s)", m.size,
             m.size, m.channels);
    else if (!model_fit(&m, normal->pixels, normal->n, o, r, err, errsz))
        rc = save_bank(&m, o, r, bank_path, err, errsz);
    model_free(&m);
    return rc;
}

static int meta_float(const struct st_file *f, const char *key, float *out)
{
    const char *v = st_meta(f, key);
    char *end;
    if (!v) return -1;
    *out = strtof(v, &end);
    return *end ? -1 : 0;
}

/* The readout of a bank file ("readout" metadata; PATCH when absent, as in files of earlier
 * versions) and, for ALIGNED, its standardisation tensors. Returns 0, or -1 with the reason. */
static int load_readout(struct scoring_model *m, const struct st_file *f, const char *path,
                        char *err, size_t errsz)
{
    const char *name = st_meta(f, "readout");
    if (name && (model_readout_parse(name, &m->readout) || m->readout == MODEL_READOUT_AUTO))
        return fail(err, errsz, "%s: unknown readout '%s'", path, name);
    if (m->readout != MODEL_READOUT_ALIGNED) return 0;
    const struct st_tensor *mu = st_find(f, "grid_mean"), *sc = st_find(f, "grid_scale");
    size_t F = (size_t)feature_dim(m);
    if (!mu || !sc || mu->numel != F || sc->numel != F)
        return fail(err, errsz, "%s: aligned bank without a standardisation of %zu floats", path,
                    F);
    m->grid_mean = malloc(sizeof(float) * F);
    m->grid_scale = malloc(sizeof(float) * F);
    if (!m->grid_mean || !m->grid_scale) return fail(err, errsz, "out of memory for the bank");
    st_read_f32(mu, m->grid_mean);
    st_read_f32(sc, m->grid_scale);
    return 0;
}

int model_load(struct scoring_model *m, const char *ckpt, const char *bank_path, char *err,
               size_t errsz)
{
    memset(m, 0, sizeof *m);
    if (load_teacher(m, ckpt, err, errsz)) return -1;
    struct st_file f;
    char why[256];
    if (st_load(bank_path, &f, why, sizeof why)) {
        model_free(m);
        return fail(err, errsz, "%s", why);
    }
    const struct st_tensor *t = st_find(&f, "bank");
    const char *format = st_meta(&f, "format"), *layer = st_meta(&f, "layer");
    float layer_f = 0;
    int rc = 0;
    if (!format || strcmp(format, "inspectd-bank") != 0 || !t || t->ndim != 2 || !layer ||
        meta_float(&f, "threshold", &m->threshold) || meta_float(&f, "top_q", &m->top_q) ||
        meta_float(&f, "layer", &layer_f) || !(m->threshold > 0.0f))
        rc = fail(err, errsz, "%s: not an inspectd bank file", bank_path);
    else if (load_readout(m, &f, bank_path, err, errsz))
        rc = -1;
    else if (t->shape[1] != feature_dim(m) || t->shape[0] < 1 || layer_f < 0 ||
             layer_f > m->vit.cfg.depth)
        rc = fail(err, errsz,
                  "%s: bank of (%lld, %lld) layer %s does not fit %s (dim %d, %d blocks)",
                  bank_path, (long long)t->shape[0], (long long)t->shape[1], layer, ckpt,
                  m->vit.cfg.dim, m->vit.cfg.depth);
    float *x = rc ? NULL : malloc(sizeof(float) * t->numel);
    if (!rc && !x) rc = fail(err, errsz, "out of memory for the bank");
    if (!rc) {
        st_read_f32(t, x);
        m->layer = (int)layer_f;
        if (knn_bank_build(&m->bank, x, (int)t->shape[0], (int)t->shape[1], KNN_L2))
            rc = fail(err, errsz, "out of memory for the bank");
        m->base_rows = (int)t->shape[0];
    }
    free(x);
    st_free(&f);
    if (rc) model_free(m);
    return rc;
}

bool model_has_feedback(const struct scoring_model *m, int64_t id)
{
    for (int i = 0; i < m->feedback_n; i++)
        if (m->feedback[i] == id) return true;
    return false;
}

int model_set_feedback(struct scoring_model *m, const int64_t *ids, int n, const float *fresh,
                       int threads, char *err, size_t errsz)
{
    int D = m->bank.dim, P = rows_per_image(m), nfresh = 0;
    for (int i = 0; i < n; i++) nfresh += !model_has_feedback(m, ids[i]);
    float *tok = nfresh > 0 ? features(m, fresh, nfresh, threads, err, errsz) : NULL;
    if (nfresh > 0 && !tok) return -1;
    size_t base = (size_t)m->base_rows * D, per = (size_t)P * D;
    float *x = malloc(sizeof(float) * (base + per * (size_t)n));
    int64_t *kept = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    struct knn_bank b;
    int rc = 0;
    if (!x || !kept) {
        rc = fail(err, errsz, "out of memory for the bank");
    } else {
        memcpy(x, m->bank.x, sizeof(float) * base);
        for (int i = 0, f = 0; i < n; i++) {
            int old = -1;
            for (int j = 0; j < m->feedback_n && old < 0; j++)
                if (m->feedback[j] == ids[i]) old = j;
            const float *rows = old >= 0 ? m->bank.x + base + per * old : tok + per * f++;
            memcpy(x + base + per * i, rows, sizeof(float) * per);
            kept[i] = ids[i];
        }
        if (knn_bank_build(&b, x, m->base_rows + n * P, D, KNN_L2))
            rc = fail(err, errsz, "out of memory for the bank");
    }
    if (!rc) {
        knn_bank_free(&m->bank);
        m->bank = b;
        free(m->feedback);
        m->feedback = kept, m->feedback_n = n;
        kept = NULL;
    }
    free(x), free(tok), free(kept);
    return rc;
}

void model_free(struct scoring_model *m)
{
    free(m->feedback);
    free(m->grid_mean), free(m->grid_scale);
    knn_bank_free(&m->bank);
    vit_destroy(&m->vit);
    memset(m, 0, sizeof *m);
}

int model_heatmap_jpeg(const void *frame, size_t len, const float *grid, int gh, int gw,
                       float threshold, uint8_t **jpeg, size_t *jpeg_len, char *err, size_t errsz)
{
    struct image im = {0};
    struct image_decode_opts opts = {.channels = 3};
    if (image_decode(frame, len, &opts, &im, err, errsz) < 0) return -1;
    int W = im.width, H = im.height, rc = -1;
    float *map = malloc(sizeof(float) * (size_t)W * H);
    uint8_t *rgb = malloc((size_t)W * H * 3);
    if (map && rgb) {
        for (int y = 0; y < H; y++)
            memcpy(rgb + (size_t)y * W * 3, im.data + im.stride * y, (size_t)W * 3);
        float sigma = 4.0f * (float)(W > H ? W : H) / 256.0f;
        if (heatmap_upsample(grid, gh, gw, map, H, W, sigma) == 0) {
            heatmap_overlay(rgb, map, H, W, threshold, rgb);
            for (int y = 0; y < H; y++)
                memcpy(im.data + im.stride * y, rgb + (size_t)y * W * 3, (size_t)W * 3);
            rc = image_encode_jpeg(&im, 85, jpeg, jpeg_len, err, errsz) < 0 ? -1 : 0;
        } else {
            fail(err, errsz, "out of memory for the heatmap");
        }
    } else {
        fail(err, errsz, "out of memory for the heatmap");
    }
    free(map), free(rgb);
    image_free(&im);
    return rc;
}

void model_bank_path(const char *ckpt, char *out, size_t outsz)
{
    static const char ext[] = ".safetensors";
    size_t n = strlen(ckpt), k = sizeof ext - 1;
    int stem = n > k && strcmp(ckpt + n - k, ext) == 0 ? (int)(n - k) : (int)n;
    snprintf(out, outsz, "%.*s.bank%s", stem, ckpt, ext);
}

double model_alignment(const float *images, int n, int C, int S)
{
    size_t px = (size_t)C * S * S;
    double within = 0, s = 0, ss = 0;
    for (size_t p = 0; p < px; p++) {
        double ps = 0, pss = 0;
        for (int i = 0; i < n; i++) {
            double v = images[(size_t)i * px + p];
            ps += v, pss += v * v;
        }
        within += fmax(pss / n - (ps / n) * (ps / n), 0.0);
        s += ps, ss += pss;
    }
    double N = (double)n * (double)px, total = ss / N - (s / N) * (s / N);
    return n < 2 || total <= 1e-12 ? 0.0 : fmax(0.0, 1.0 - within / (double)px / total);
}

static const char *const readout_names[] = {"patch", "aligned", "auto"};

const char *model_readout_name(enum model_readout r)
{
    return (unsigned)r <= MODEL_READOUT_AUTO ? readout_names[r] : "patch";
}

int model_readout_parse(const char *s, enum model_readout *out)
{
    for (int i = 0; i <= MODEL_READOUT_AUTO; i++)
        if (strcmp(s, readout_names[i]) == 0) {
            *out = (enum model_readout)i;
            return 0;
        }
    return -1;
}
