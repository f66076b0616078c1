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
                                      .max_patches = 8192,
                                      .calib_images = 512,
                                      .false_alarm_rate = 0.005,
                                      .top_q = 0.0f,
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

int model_score(const struct scoring_model *m, const float *images, int n, int threads,
                float *scores, float *grids, char *err, size_t errsz)
{
    float *tok = patch_tokens(m, images, n, threads, err, errsz);
    if (!tok) return -1;
    int rc = knn_patch_score(&m->bank, tok, n, m->gh * m->gw, m->top_q, threads, scores, grids);
    free(tok);
    return rc ? fail(err, errsz, "out of memory for patch scores") : 0;
}

/* Copies images idx[0..n) of the set into one array. */
static float *gather(const struct image_set *set, const int *idx, int n)
{
    size_t per = (size_t)set->channels * set->size * set->size;
    float *out = malloc(sizeof(float) * per * (n ? n : 1));
    for (int i = 0; out && i < n; i++)
        memcpy(out + per * i, set->pixels + per * idx[i], sizeof(float) * per);
    return out;
}

/* The bank rows: every patch of the bank images, or a k-centre coreset of them. */
static int build_bank(struct scoring_model *m, const float *imgs, int n,
                      const struct model_build_options *o, char *err, size_t errsz)
{
    int D = m->vit.cfg.dim, rows = n * m->gh * m->gw;
    float *tok = patch_tokens(m, imgs, n, o->threads, err, errsz);
    if (!tok) return -1;
    float *x = tok;
    if (rows > o->max_patches) {
        int *idx = malloc(sizeof(int) * (size_t)o->max_patches);
        x = malloc(sizeof(float) * (size_t)o->max_patches * D);
        if (!idx || !x || knn_coreset(tok, rows, D, o->max_patches, 64, 1, o->threads, idx, NULL)) {
            free(idx), free(x), free(tok);
            return fail(err, errsz, "out of memory for the coreset");
        }
        for (int i = 0; i < o->max_patches; i++)
            memcpy(x + (size_t)i * D, tok + (size_t)idx[i] * D, sizeof(float) * D);
        free(idx);
        rows = o->max_patches;
    }
    int rc = knn_bank_build(&m->bank, x, rows, D, KNN_L2);
    if (x != tok) free(x);
    free(tok);
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
    const char *keys[] = {"format", "layer",       "threshold",         "false_alarm_rate",
                          "top_q",  "bank_images", "calibration_images"};
    const char *vals[] = {"inspectd-bank", layer, thr, rate, topq, bi, ci};
    int shape[2] = {m->bank.n, m->bank.dim};
    struct st_out t = {.name = "bank", .ndim = 2, .shape = shape, .data = m->bank.x};
    return st_save(path, &t, 1, keys, vals, 7, err, errsz);
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
    int *bank_idx = malloc(sizeof(int) * (size_t)(normal->n + 1));
    int *cal_idx = malloc(sizeof(int) * (size_t)(normal->n + 1));
    float *bank_imgs = NULL, *cal_imgs = NULL, *cal_scores = NULL;
    m.layer = o->layer >= 0 ? o->layer : (m.vit.cfg.depth + 1) / 2;
    m.top_q = o->top_q;
    if (m.layer > m.vit.cfg.depth) {
        fail(err, errsz, "layer %d: the model has %d blocks", m.layer, m.vit.cfg.depth);
        goto done;
    }
    if (normal->size != m.size || normal->channels != m.channels || normal->n < 2) {
        fail(err, errsz, "need at least 2 normal images of %dx%d with %d channel(s)", m.size,
             m.size, m.channels);
        goto done;
    }
    if (!bank_idx || !cal_idx) {
        fail(err, errsz, "out of memory");
        goto done;
    }
    int nb = 0, nc = 0;
    for (int i = 0; i < normal->n; i++) {
        if (i % 5 == 4 || (i == normal->n - 1 && nc == 0)) {
            if (nc < o->calib_images) cal_idx[nc++] = i;
        } else if (nb < o->bank_images) {
            bank_idx[nb++] = i;
        }
    }
    bank_imgs = gather(normal, bank_idx, nb);
    cal_imgs = gather(normal, cal_idx, nc);
    cal_scores = malloc(sizeof(float) * (size_t)nc);
    if (!bank_imgs || !cal_imgs || !cal_scores) {
        fail(err, errsz, "out of memory");
        goto done;
    }
    if (build_bank(&m, bank_imgs, nb, o, err, errsz) ||
        model_score(&m, cal_imgs, nc, o->threads, cal_scores, NULL, err, errsz))
        goto done;
    if (knn_calibrate(cal_scores, nc, o->false_alarm_rate, &r->threshold)) {
        fail(err, errsz, "out of memory for calibration");
        goto done;
    }
    r->bank_rows = m.bank.n, r->bank_images = nb, r->calib_images = nc;
    rc = save_bank(&m, o, r, bank_path, err, errsz);
done:
    free(bank_idx), free(cal_idx), free(bank_imgs), free(cal_imgs), free(cal_scores);
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
    else if (t->shape[1] != m->vit.cfg.dim || t->shape[0] < 1 || layer_f < 0 ||
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
    int D = m->bank.dim, P = m->gh * m->gw, nfresh = 0;
    for (int i = 0; i < n; i++) nfresh += !model_has_feedback(m, ids[i]);
    float *tok = nfresh > 0 ? patch_tokens(m, fresh, nfresh, threads, err, errsz) : NULL;
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
