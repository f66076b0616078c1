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
#include "parse.h"

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
                                      .readout = MODEL_READOUT_BOTH,
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
    json_t *defect = j ? json_object_get(j, "defect_head") : NULL;
    if (ok && defect) {
        ok = json_is_integer(defect);
        c->defect_head = (int)json_integer_value(defect);
    }
    json_t *pred = j ? json_object_get(j, "predictor") : NULL;
    if (ok && pred) {
        ok = json_is_integer(pred);
        c->pred_hidden = (int)json_integer_value(pred);
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
/* model_score's activations for one thread: a replica of the backbone and buffers for batches of
 * up to MODEL_SCRATCH_BATCH frames, tapped at the scored layer. */
#define MODEL_SCRATCH_BATCH 16
struct model_scratch {
    struct vit_model replica;
    struct vit_acts acts;
};

static void scratch_free(struct model_scratch *s)
{
    if (!s) return;
    free(s->acts.taps);
    vit_acts_destroy(&s->acts);
    vit_destroy(&s->replica);
    free(s);
}

static struct model_scratch *scratch_get(struct scoring_model *m, char *err, size_t errsz)
{
    if (m->scratch) return m->scratch;
    struct model_scratch *s = calloc(1, sizeof *s);
    int rc = s ? vit_replica_create(&s->replica, &m->vit, false, err, errsz) : -2;
    if (!rc)
        rc = vit_acts_create(&s->acts, &s->replica, MODEL_SCRATCH_BATCH, m->size, m->size, false,
                             false, err, errsz);
    if (!rc) {
        s->acts.tap_mask = 1u << m->layer;
        s->acts.taps = malloc(sizeof(float) * MODEL_SCRATCH_BATCH * s->acts.T * m->vit.cfg.dim);
        if (!s->acts.taps) rc = -2;
    }
    if (rc) {
        if (rc == -2) fail(err, errsz, "out of memory for the scoring buffers");
        scratch_free(s);
        return NULL;
    }
    m->scratch = s;
    return s;
}

/* embedding_extract_layers' tokens (n, 1 + P, D) of normalised images with one thread, through
 * the model's scratch. Returns 0, or -1 with the reason in err. */
static int tokens_one_thread(struct scoring_model *m, const float *norm, int n, float *tok,
                             char *err, size_t errsz)
{
    struct model_scratch *s = scratch_get(m, err, errsz);
    if (!s) return -1;
    size_t img = (size_t)m->channels * m->size * m->size;
    size_t per = (size_t)s->acts.T * m->vit.cfg.dim;
    for (int i = 0; i < n; i += MODEL_SCRATCH_BATCH) {
        int b = n - i < MODEL_SCRATCH_BATCH ? n - i : MODEL_SCRATCH_BATCH;
        vit_acts_set_batch(&s->acts, b);
        vit_forward(&s->replica, &s->acts, norm + (size_t)i * img);
        memcpy(tok + (size_t)i * per, s->acts.taps, sizeof(float) * (size_t)b * per);
    }
    return 0;
}

/* Each image's patch tokens tok (n, gh·gw, D) replaced by the mean over the (2r+1)² neighbourhood
 * that lies on the grid; scratch holds one image (gh·gw·D). */
static void aggregate_tokens(float *tok, int n, int gh, int gw, int D, int r, float *scratch)
{
    size_t P = (size_t)gh * gw;
    for (int i = 0; i < n; i++) {
        float *img = tok + (size_t)i * P * D;
        memcpy(scratch, img, sizeof(float) * P * D);
        for (int y = 0; y < gh; y++)
            for (int x = 0; x < gw; x++) {
                float *out = img + ((size_t)y * gw + x) * D;
                memset(out, 0, sizeof(float) * D);
                int cnt = 0;
                for (int yy = y - r; yy <= y + r; yy++)
                    for (int xx = x - r; xx <= x + r; xx++) {
                        if (yy < 0 || yy >= gh || xx < 0 || xx >= gw) continue;
                        const float *src = scratch + ((size_t)yy * gw + xx) * D;
                        for (int d = 0; d < D; d++) out[d] += src[d];
                        cnt++;
                    }
                float inv = 1.0f / (float)cnt;
                for (int d = 0; d < D; d++) out[d] *= inv;
            }
    }
}

static float *patch_tokens(struct scoring_model *m, const float *images, int n, int threads,
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
    int rc = threads == 1 ? tokens_one_thread(m, norm, n, tok, err, errsz)
                          : embedding_extract_layers(&m->vit, norm, n, S, S, 1u << m->layer,
                                                     threads, tok, err, errsz);
    free(norm);
    if (rc) {
        free(tok);
        return NULL;
    }
    /* drop each image's class token: rows 1..P */
    for (int i = 0; i < n; i++)
        memmove(tok + (size_t)i * P * D, tok + ((size_t)i * (P + 1) + 1) * D,
                sizeof(float) * (size_t)P * D);
    if (m->aggregate > 0) {
        float *scratch = malloc(sizeof(float) * (size_t)P * D);
        if (!scratch) {
            free(tok);
            fail(err, errsz, "out of memory for %d images' tokens", n);
            return NULL;
        }
        aggregate_tokens(tok, n, m->gh, m->gw, D, m->aggregate, scratch);
        free(scratch);
    }
    return tok;
}

static bool has_patch(const struct scoring_model *m)
{
    return m->readout != MODEL_READOUT_ALIGNED;
}

static bool has_grid(const struct scoring_model *m)
{
    return m->readout != MODEL_READOUT_PATCH;
}

static size_t grid_dim(const struct scoring_model *m)
{
    return (size_t)m->gh * m->gw * m->vit.cfg.dim;
}

/* The standardised grids of n images' patch tokens tok (n, gh·gw, D); NULL when out of memory. */
static float *standardised(const struct scoring_model *m, const float *tok, int n)
{
    size_t F = grid_dim(m);
    float *x = malloc(sizeof(float) * F * (size_t)(n ? n : 1));
    for (size_t i = 0; x && i < (size_t)n * F; i++)
        x[i] = (tok[i] - m->grid_mean[i % F]) * m->grid_scale[i % F];
    return x;
}

/* The nearest-k search of x (n, F) in rows [first, first + count) of bank: mean distance in
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

/* ALIGNED on standardised grids x (n, F): each grid's mean distance to its k nearest grids of the
 * bank file, or its distance to the nearest operator-feedback grid when that is smaller (a frame
 * marked normal scores 0); grids (n, P), when not NULL, hold each position's distance to the
 * nearest grid's same position. */
static int score_aligned(const struct scoring_model *m, const float *x, int n, int threads,
                         float *scores, float *grids)
{
    int P = m->gh * m->gw, D = m->vit.cfg.dim, nfb = m->grid_bank.n - m->grid_base_rows;
    size_t F = grid_dim(m);
    float *fb_dist = malloc(sizeof(float) * (size_t)n);
    int *nearest = malloc(sizeof(int) * (size_t)n), *fb_nearest = malloc(sizeof(int) * (size_t)n);
    int rc = fb_dist && nearest && fb_nearest
                 ? search_rows(&m->grid_bank, 0, m->grid_base_rows, MODEL_ALIGNED_K, x, n, threads,
                               scores, nearest)
                 : -1;
    if (!rc && nfb > 0)
        rc = search_rows(&m->grid_bank, m->grid_base_rows, nfb, 1, x, n, threads, fb_dist,
                         fb_nearest);
    for (int i = 0; !rc && i < n; i++) {
        if (nfb > 0 && fb_dist[i] < scores[i]) scores[i] = fb_dist[i], nearest[i] = fb_nearest[i];
        const float *q = x + F * i, *b = m->grid_bank.x + F * (size_t)nearest[i];
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

/* Which of an image's gh·gw patches are inspected (cells, 1 or 0) from its pixel mask (S, S):
 * those with at least half of their pixels inspected. Returns how many are. */
static int mask_cells(const struct scoring_model *m, const uint8_t *mask, uint8_t *cells)
{
    int p = m->size / m->gw, S = m->size, n = 0;
    for (int gy = 0; gy < m->gh; gy++)
        for (int gx = 0; gx < m->gw; gx++) {
            int on = 0;
            for (int y = gy * p; y < (gy + 1) * p; y++)
                for (int x = gx * p; x < (gx + 1) * p; x++) on += mask[y * S + x] != 0;
            cells[gy * m->gw + gx] = 2 * on >= p * p;
            n += 2 * on >= p * p;
        }
    return n;
}

/* The patch readout of one image's inspected patches only (cells; every patch when NULL): score
 * and, when not NULL, grid (P), 0 at an ignored patch. scratch holds P·D floats. An image with no
 * inspected patch scores 0. */
static int score_patches(const struct scoring_model *m, const float *tok, const uint8_t *cells,
                         int threads, float *scratch, float *score, float *grid)
{
    int P = m->gh * m->gw, D = m->vit.cfg.dim, kept = 0;
    if (!cells) return knn_patch_score(&m->bank, tok, 1, P, m->top_q, threads, score, grid);
    for (int t = 0; t < P; t++)
        if (cells[t]) memcpy(scratch + (size_t)kept++ * D, tok + (size_t)t * D, sizeof(float) * D);
    float *part = grid ? malloc(sizeof(float) * (size_t)(kept ? kept : 1)) : NULL;
    *score = 0;
    int rc = grid && !part ? -1
             : kept ? knn_patch_score(&m->bank, scratch, 1, kept, m->top_q, threads, score, part)
                    : 0;
    for (int t = 0, k = 0; !rc && grid && t < P; t++) grid[t] = cells[t] ? part[k++] : 0.0f;
    free(part);
    return rc;
}

/* One image's scores from its patch tokens tok (P, D), its inspected patches cells (NULL: all):
 * score and, when not NULL, grid (P); pg, gg and scratch (P·D) are work space. */
static int score_one(const struct scoring_model *m, const float *tok, const uint8_t *cells,
                     int threads, float *score, float *grid, float *pg, float *gg, float *scratch)
{
    int P = m->gh * m->gw;
    float ps = 0, gs = 0;
    if (has_patch(m) && score_patches(m, tok, cells, threads, scratch, &ps, grid ? pg : NULL))
        return -1;
    if (has_grid(m)) {
        /* the ignored pixels are mid-grey in every frame: their positions of the grid barely
         * move, and the heatmap leaves them out */
        float *x = standardised(m, tok, 1);
        int rc = x ? score_aligned(m, x, 1, threads, &gs, grid ? gg : NULL) : -1;
        free(x);
        if (rc) return -1;
        for (int t = 0; grid && cells && t < P; t++)
            if (!cells[t]) gg[t] = 0;
    }
    switch (m->readout) {
    case MODEL_READOUT_PATCH:
        *score = ps;
        if (grid) memcpy(grid, pg, sizeof(float) * (size_t)P);
        break;
    case MODEL_READOUT_ALIGNED:
        *score = gs;
        if (grid) memcpy(grid, gg, sizeof(float) * (size_t)P);
        break;
    default:
        *score = fmaxf(ps / m->patch_unit, gs / m->grid_unit);
        for (int t = 0; grid && t < P; t++)
            grid[t] = fmaxf(pg[t] / m->patch_unit, gg[t] / m->grid_unit);
    }
    return 0;
}

/* The first image of frame f of in. */
static int input_first(const struct model_input *in, int f)
{
    return in->first ? in->first[f] : f;
}

static int input_frames(const struct model_input *in)
{
    return in->first ? in->frames : in->n;
}

int model_score_input(struct scoring_model *m, const struct model_input *in, int threads,
                      float *scores, float *grids, char *err, size_t errsz)
{
    float *tok = patch_tokens(m, in->images, in->n, threads, err, errsz);
    if (!tok) return -1;
    int P = m->gh * m->gw, D = m->vit.cfg.dim, rc = 0;
    float *pg = malloc(sizeof(float) * (size_t)P), *gg = malloc(sizeof(float) * (size_t)P);
    float *scratch = malloc(sizeof(float) * (size_t)P * D);
    uint8_t *cells = in->masks ? malloc((size_t)P) : NULL;
    if (!pg || !gg || !scratch || (in->masks && !cells)) rc = -1;
    /* the backbone ran on the batch; each image's k-NN runs alone, in tiles of its own patches,
     * so that an image scores the same, bit for bit, in any batch; a frame of tiles scores its
     * worst tile */
    size_t plane = (size_t)m->size * m->size;
    for (int f = 0; !rc && f < input_frames(in); f++) {
        scores[f] = 0;
        for (int i = input_first(in, f); !rc && i < input_first(in, f + 1); i++) {
            float one = 0;
            if (cells) mask_cells(m, in->masks + plane * i, cells);
            rc = score_one(m, tok + (size_t)i * P * D, cells, threads, &one,
                           grids ? grids + (size_t)i * P : NULL, pg, gg, scratch);
            if (!rc && (i == input_first(in, f) || one > scores[f])) scores[f] = one;
        }
    }
    free(pg), free(gg), free(scratch), free(cells);
    free(tok);
    return rc ? fail(err, errsz, "out of memory for patch scores") : 0;
}

int model_score(struct scoring_model *m, const float *images, int n, int threads, float *scores,
                float *grids, char *err, size_t errsz)
{
    struct model_input in = {.images = images, .n = n};
    return model_score_input(m, &in, threads, scores, grids, err, errsz);
}

/* grid_mean and grid_scale from the raw grids x (n, F): each feature's mean and the inverse of its
 * spread, floored at a hundredth of the mean spread (a position that never varies in the bank,
 * such as an empty background, must not turn sensor noise into a defect). */
static int fit_standardisation(struct scoring_model *m, const float *x, int n)
{
    size_t F = grid_dim(m);
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

/* The patch bank's rows from the tokens tok of n images with masks (NULL: every patch): their
 * inspected patches only, compacted in place. Returns the row count, or -1 when out of memory. */
static int inspected_rows(const struct scoring_model *m, float *tok, const uint8_t *masks, int n)
{
    int P = m->gh * m->gw, D = m->vit.cfg.dim, rows = 0;
    if (!masks) return n * P;
    uint8_t *cells = malloc((size_t)P);
    if (!cells) return -1;
    size_t plane = (size_t)m->size * m->size;
    for (int i = 0; i < n; i++) {
        mask_cells(m, masks + plane * i, cells);
        for (int t = 0; t < P; t++)
            if (cells[t])
                memmove(tok + (size_t)rows++ * D, tok + ((size_t)i * P + t) * D, sizeof(float) * D);
    }
    free(cells);
    return rows;
}

/* The banks of the model's readout from the patch tokens of nb patch-bank images (tok, every
 * inspected patch (masks; NULL: all) or a k-centre coreset of them) and of ng grid-bank images
 * (tok's first ng; tok is overwritten). */
static int build_banks(struct scoring_model *m, float *tok, int nb, int ng, const uint8_t *masks,
                       const struct model_build_options *o)
{
    /* the grids first: the patch bank's rows are then compacted in tok, ignored patches out */
    float *x = !has_grid(m) || fit_standardisation(m, tok, ng) ? NULL : standardised(m, tok, ng);
    int rc =
        has_grid(m) ? x ? knn_bank_build(&m->grid_bank, x, ng, (int)grid_dim(m), KNN_L2) : -1 : 0;
    free(x);
    if (rc || !has_patch(m)) return rc;
    int rows = inspected_rows(m, tok, masks, nb);
    if (rows < 1) return -1;
    return knn_bank_build_coreset(&m->bank, tok, rows, m->vit.cfg.dim, o->max_patches, o->threads);
}

static int save_bank(const struct scoring_model *m, const struct model_build_options *o,
                     const struct model_build_result *r, const char *path, char *err, size_t errsz)
{
    char layer[16], thr[32], rate[32], topq[32], bi[16], ci[16], pu[32], gu[32], agg[16];
    snprintf(layer, sizeof layer, "%d", m->layer);
    snprintf(thr, sizeof thr, "%.9g", r->threshold);
    snprintf(rate, sizeof rate, "%g", o->false_alarm_rate);
    snprintf(topq, sizeof topq, "%g", o->top_q);
    snprintf(bi, sizeof bi, "%d", r->bank_images);
    snprintf(ci, sizeof ci, "%d", r->calib_images);
    snprintf(pu, sizeof pu, "%.9g", m->patch_unit);
    snprintf(gu, sizeof gu, "%.9g", m->grid_unit);
    snprintf(agg, sizeof agg, "%d", m->aggregate);
    char overlap[16];
    snprintf(overlap, sizeof overlap, "%d", m->tile_overlap);
    const char *keys[] = {"format",    "layer",   "threshold",          "false_alarm_rate",
                          "top_q",     "readout", "calibration_images", "bank_images",
                          "aggregate", "input",   "tile_overlap",       "patch_unit",
                          "grid_unit"};
    const char *vals[] = {"inspectd-bank",
                          layer,
                          thr,
                          rate,
                          topq,
                          model_readout_name(m->readout),
                          ci,
                          bi,
                          agg,
                          model_input_name(m->input),
                          overlap,
                          pu,
                          gu};
    int shape[2] = {m->bank.n, m->bank.dim}, gshape[2] = {m->grid_bank.n, m->grid_bank.dim};
    int fshape[1] = {(int)grid_dim(m)}, cshape[1] = {m->n_calibration}, nt = 0;
    struct st_out t[5];
    if (has_patch(m))
        t[nt++] = (struct st_out){.name = "bank", .ndim = 2, .shape = shape, .data = m->bank.x};
    if (has_grid(m)) {
        t[nt++] = (struct st_out){"grid_bank", 2, gshape, m->grid_bank.x};
        t[nt++] = (struct st_out){"grid_mean", 1, fshape, m->grid_mean};
        t[nt++] = (struct st_out){"grid_scale", 1, fshape, m->grid_scale};
    }
    if (m->n_calibration > 0) t[nt++] = (struct st_out){"calibration", 1, cshape, m->calibration};
    return st_save(path, t, nt, keys, vals, m->readout == MODEL_READOUT_BOTH ? 13 : 11, err, errsz);
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

/* The median of n scores (n >= 1), at least a tiny positive unit. */
static float median_unit(const float *x, int n)
{
    float q;
    if (knn_calibrate(x, n, 0.5, &q)) return -1.0f;
    return q > 1e-12f ? q : 1e-12f;
}

/* Both readouts of frame f of in (the worst of its tiles each; only what the model has), from
 * the tokens tok of in's images [first, ...), first being frame f's first: ps and gs. */
static int frame_readouts(const struct scoring_model *m, const struct model_input *in, int f,
                          const float *tok, int first, int threads, float *ps, float *gs)
{
    int P = m->gh * m->gw, D = m->vit.cfg.dim, rc = 0;
    float *scratch = malloc(sizeof(float) * (size_t)P * D);
    uint8_t *cells = in->masks ? malloc((size_t)P) : NULL;
    if (!scratch || (in->masks && !cells)) rc = -1;
    *ps = *gs = 0;
    size_t plane = (size_t)m->size * m->size;
    for (int i = input_first(in, f); !rc && i < input_first(in, f + 1); i++) {
        const float *t = tok + (size_t)(i - first) * P * D;
        float p = 0, g = 0;
        if (cells) mask_cells(m, in->masks + plane * i, cells);
        if (has_patch(m)) rc = score_patches(m, t, cells, threads, scratch, &p, NULL);
        if (!rc && has_grid(m)) {
            float *x = standardised(m, t, 1);
            rc = x ? score_aligned(m, x, 1, threads, &g, NULL) : -1;
            free(x);
        }
        *ps = fmaxf(*ps, p), *gs = fmaxf(*gs, g);
    }
    free(scratch), free(cells);
    return rc;
}

/* The threshold of m from the readouts of nc held-out frames (ps: scratch[0, nc), gs: scratch[nc,
 * 2 nc)): for BOTH the readouts' units first (their medians on these frames), then each frame's
 * score (fused for BOTH), its (1 − rate) quantile, and the scores kept as m's calibration. */
static int calibrate(struct scoring_model *m, const float *scratch, int nc,
                     const struct model_build_options *o, struct model_build_result *r, char *err,
                     size_t errsz)
{
    float *cal = malloc(sizeof(float) * (size_t)(nc ? nc : 1));
    if (!cal) return fail(err, errsz, "out of memory for calibration");
    if (m->readout == MODEL_READOUT_BOTH) {
        m->patch_unit = median_unit(scratch, nc), m->grid_unit = median_unit(scratch + nc, nc);
        if (m->patch_unit < 0 || m->grid_unit < 0) {
            free(cal);
            return fail(err, errsz, "out of memory");
        }
    }
    for (int i = 0; i < nc; i++)
        cal[i] = m->readout == MODEL_READOUT_PATCH ? scratch[i]
                 : m->readout == MODEL_READOUT_ALIGNED
                     ? scratch[nc + i]
                     : fmaxf(scratch[i] / m->patch_unit, scratch[nc + i] / m->grid_unit);
    int rc = knn_calibrate(cal, nc, o->false_alarm_rate, &r->threshold) ||
             model_set_calibration(m, cal, nc);
    free(cal);
    if (rc) return fail(err, errsz, "out of memory for calibration");
    m->threshold = r->threshold;
    m->trained_rate = (float)o->false_alarm_rate;
    r->calib_images = nc;
    return 0;
}

/* The readouts (scratch: ps in [0, nc), gs in [nc, 2 nc)) of the held-out frames cal of in. */
static int calibration_readouts(struct scoring_model *m, const struct model_input *in,
                                const int *cal, int nc, int threads, float *scratch, char *err,
                                size_t errsz)
{
    int rc = 0;
    for (int k = 0; !rc && k < nc; k++) {
        int f = cal[k], first = input_first(in, f), count = input_first(in, f + 1) - first;
        size_t per = (size_t)m->channels * m->size * m->size;
        float *tok = patch_tokens(m, in->images + per * first, count, threads, err, errsz);
        if (!tok) return -1;
        rc = frame_readouts(m, in, f, tok, first, threads, &scratch[k], &scratch[nc + k]);
        free(tok);
    }
    return rc ? fail(err, errsz, "out of memory for patch scores") : 0;
}

/* The images and masks of the frames idx (n of them) of in, one after the other, into images
 * and masks (when in has masks). Returns how many images that is. */
static int gather_frames(const struct scoring_model *m, const struct model_input *in,
                         const int *idx, int n, float *images, uint8_t *masks)
{
    size_t per = (size_t)m->channels * m->size * m->size, plane = (size_t)m->size * m->size;
    int k = 0;
    for (int j = 0; j < n; j++)
        for (int i = input_first(in, idx[j]); i < input_first(in, idx[j] + 1); i++, k++) {
            memcpy(images + per * k, in->images + per * i, sizeof(float) * per);
            if (masks) memcpy(masks + plane * k, in->masks + plane * i, plane);
        }
    return k;
}

/* m's scoring settings from o, before its banks are built. Returns 0, or -1 with the reason. */
static int fit_settings(struct scoring_model *m, const struct model_build_options *o,
                        struct model_build_result *r, char *err, size_t errsz)
{
    memset(r, 0, sizeof *r);
    m->layer = model_scoring_layer(&m->vit.cfg, o->layer);
    m->top_q = o->top_q;
    m->aggregate = o->aggregate;
    m->readout = r->readout = o->readout;
    m->input = o->input, m->tile_overlap = o->tile_overlap;
    m->patch_unit = m->grid_unit = 1.0f;
    if (m->layer > m->vit.cfg.depth)
        return fail(err, errsz, "layer %d: the model has %d blocks", m->layer, m->vit.cfg.depth);
    return 0;
}

int model_fit_input(struct scoring_model *m, const struct model_input *in,
                    const struct model_build_options *o, struct model_build_result *r, char *err,
                    size_t errsz)
{
    int F = input_frames(in), n = in->n;
    if (fit_settings(m, o, r, err, errsz)) return -1;
    if (F < 2) return fail(err, errsz, "need at least 2 normal images");
    /* a grid bank holds as many images as fit its memory budget; the patch bank the first of
     * them; a frame of tiles counts as its tiles */
    int per_frame = (n + F - 1) / F;
    struct model_build_options split = *o;
    long fit = o->aligned_bank_bytes / (long)(sizeof(float) * grid_dim(m));
    fit = fit < 1 ? 1 : fit > MODEL_ALIGNED_MAX_IMAGES ? MODEL_ALIGNED_MAX_IMAGES : fit;
    if (has_grid(m) && fit > split.bank_images) split.bank_images = (int)fit;
    /* frames of tiles: at least a few frames' tiles, each tile's patches all in the bank */
    split.bank_images = split.bank_images / per_frame > 4 ? split.bank_images / per_frame : 4;
    if (per_frame == 1)
        split.bank_images = o->bank_images > fit || !has_grid(m) ? o->bank_images : (int)fit;
    size_t per = (size_t)m->channels * m->size * m->size, plane = (size_t)m->size * m->size;
    float *bank_imgs = malloc(sizeof(float) * per * (size_t)n);
    uint8_t *bank_masks = in->masks ? malloc(plane * (size_t)n) : NULL;
    float *cal_scores = malloc(sizeof(float) * (size_t)F * 3);
    int *bank_idx = malloc(sizeof(int) * (size_t)F), *cal_idx = malloc(sizeof(int) * (size_t)F);
    float *tok = NULL;
    int rc = -1, nb = 0, nc = 0;
    if (!bank_imgs || !cal_scores || !bank_idx || !cal_idx || (in->masks && !bank_masks)) {
        fail(err, errsz, "out of memory");
        goto done;
    }
    model_bank_split(F, &split, bank_idx, &nb, cal_idx, &nc);
    int nbi = gather_frames(m, in, bank_idx, nb, bank_imgs, bank_masks);
    knn_bank_free(&m->bank), knn_bank_free(&m->grid_bank);
    tok = patch_tokens(m, bank_imgs, nbi, o->threads, err, errsz);
    if (!tok) goto done;
    int n_patch = per_frame > 1 || nbi < o->bank_images ? nbi : o->bank_images;
    if (build_banks(m, tok, n_patch, nbi, bank_masks, o)) {
        fail(err, errsz, "out of memory for the bank (or no inspected patch in it)");
        goto done;
    }
    m->base_rows = m->bank.n, m->grid_base_rows = m->grid_bank.n;
    if (calibration_readouts(m, in, cal_idx, nc, o->threads, cal_scores, err, errsz) ||
        calibrate(m, cal_scores, nc, o, r, err, errsz))
        goto done;
    r->bank_rows = has_patch(m) ? m->bank.n : m->grid_bank.n;
    r->bank_images = nbi;
    rc = 0;
done:
    free(bank_imgs), free(bank_masks), free(cal_scores), free(bank_idx), free(cal_idx), free(tok);
    return rc;
}

int model_fit(struct scoring_model *m, const float *images, int n,
              const struct model_build_options *o, struct model_build_result *r, char *err,
              size_t errsz)
{
    struct model_input in = {.images = images, .n = n};
    return model_fit_input(m, &in, o, r, err, errsz);
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
    struct model_input in = model_input_of(normal);
    if (normal->size != m.size || normal->channels != m.channels || normal->n < 2)
        fail(err, errsz, "need at least 2 normal images of %dx%d with %d channel(s)", m.size,
             m.size, m.channels);
    else if (!model_fit_input(&m, &in, o, r, err, errsz))
        rc = save_bank(&m, o, r, bank_path, err, errsz);
    model_free(&m);
    return rc;
}

int model_build_streamed(const char *ckpt, const struct image_set *bank,
                         int (*next)(void *arg, struct image_set *one), void *arg,
                         const struct model_build_options *o, const char *bank_path,
                         struct model_build_result *r, char *err, size_t errsz)
{
    struct scoring_model m;
    memset(&m, 0, sizeof m);
    memset(r, 0, sizeof *r);
    if (load_teacher(&m, ckpt, err, errsz)) return -1;
    int rc = -1, nc = 0, cap = 64;
    float *tok = NULL, *ps = malloc(sizeof(float) * (size_t)cap), *gs = NULL;
    if (bank->size != m.size || bank->channels != m.channels || bank->n < 1) {
        fail(err, errsz, "need normal images of %dx%d with %d channel(s) for the bank", m.size,
             m.size, m.channels);
        goto done;
    }
    if (!ps || fit_settings(&m, o, r, err, errsz) ||
        !(tok = patch_tokens(&m, bank->pixels, bank->n, o->threads, err, errsz)))
        goto done;
    if (build_banks(&m, tok, bank->n, bank->n, bank->masks, o)) {
        fail(err, errsz, "out of memory for the bank (or no inspected patch in it)");
        goto done;
    }
    m.base_rows = m.bank.n, m.grid_base_rows = m.grid_bank.n;
    free(tok), tok = NULL;
    gs = malloc(sizeof(float) * (size_t)cap);
    struct image_set one = {.size = m.size, .channels = m.channels};
    int got = 0;
    while (gs && (got = next(arg, &one)) == 1) {
        struct model_input in = model_input_of(&one);
        float *t = patch_tokens(&m, one.pixels, one.n, o->threads, err, errsz);
        int bad = !t || frame_readouts(&m, &in, 0, t, 0, o->threads, &ps[nc], &gs[nc]);
        free(t);
        image_set_free(&one);
        if (bad) goto done;
        if (++nc == cap) {
            float *p2 = realloc(ps, sizeof(float) * (size_t)cap * 2);
            if (p2) ps = p2;
            float *g2 = p2 ? realloc(gs, sizeof(float) * (size_t)cap * 2) : NULL;
            if (!p2 || !g2) goto done;
            gs = g2, cap *= 2;
        }
    }
    if (!gs || got < 0 || nc < 1) {
        fail(err, errsz, "%s",
             !gs       ? "out of memory"
             : got < 0 ? "cannot read the held-out frames"
                       : "no held-out frame to calibrate on");
        goto done;
    }
    float *scratch = malloc(sizeof(float) * 2 * (size_t)nc);
    if (scratch) {
        memcpy(scratch, ps, sizeof(float) * nc), memcpy(scratch + nc, gs, sizeof(float) * nc);
        rc = calibrate(&m, scratch, nc, o, r, err, errsz);
        free(scratch);
    } else {
        fail(err, errsz, "out of memory");
    }
    r->bank_rows = has_patch(&m) ? m.bank.n : m.grid_bank.n;
    r->bank_images = bank->n;
    if (!rc) rc = save_bank(&m, o, r, bank_path, err, errsz);
done:
    free(tok), free(ps), free(gs);
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

/* A (rows, cols) tensor of the bank file into bank, cols as given. Returns 0, or -1 with the
 * reason in err. */
static int load_rows(struct knn_bank *bank, const struct st_file *f, const char *name, int cols,
                     const char *path, char *err, size_t errsz)
{
    const struct st_tensor *t = st_find(f, name);
    if (!t || t->ndim != 2 || t->shape[0] < 1 || t->shape[1] != cols)
        return fail(err, errsz, "%s: no %s tensor of (rows, %d) for this model", path, name, cols);
    float *x = malloc(sizeof(float) * t->numel);
    int rc = x ? 0 : -1;
    if (x) st_read_f32(t, x);
    if (x && knn_bank_build(bank, x, (int)t->shape[0], cols, KNN_L2)) rc = -1;
    free(x);
    return rc ? fail(err, errsz, "out of memory for the bank") : 0;
}

/* A (F) tensor of the bank file into a new array *out. */
static int load_vector(float **out, const struct st_file *f, const char *name, size_t F,
                       const char *path, char *err, size_t errsz)
{
    const struct st_tensor *t = st_find(f, name);
    if (!t || t->numel != F)
        return fail(err, errsz, "%s: no %s tensor of %zu floats for this model", path, name, F);
    *out = malloc(sizeof(float) * F);
    if (!*out) return fail(err, errsz, "out of memory for the bank");
    st_read_f32(t, *out);
    return 0;
}

/* The banks of the file's readout ("readout" metadata; PATCH when absent, as in the files of
 * earlier versions). Returns 0, or -1 with the reason in err. */
static int load_banks(struct scoring_model *m, const struct st_file *f, const char *path, char *err,
                      size_t errsz)
{
    const char *name = st_meta(f, "readout");
    if (name && model_readout_parse(name, &m->readout))
        return fail(err, errsz, "%s: unknown readout '%s'", path, name);
    m->patch_unit = m->grid_unit = 1.0f;
    if (m->readout == MODEL_READOUT_BOTH &&
        (meta_float(f, "patch_unit", &m->patch_unit) || meta_float(f, "grid_unit", &m->grid_unit) ||
         !(m->patch_unit > 0.0f) || !(m->grid_unit > 0.0f)))
        return fail(err, errsz, "%s: no readout units", path);
    size_t F = grid_dim(m);
    if (has_patch(m) && load_rows(&m->bank, f, "bank", m->vit.cfg.dim, path, err, errsz)) return -1;
    if (has_grid(m) && (load_rows(&m->grid_bank, f, "grid_bank", (int)F, path, err, errsz) ||
                        load_vector(&m->grid_mean, f, "grid_mean", F, path, err, errsz) ||
                        load_vector(&m->grid_scale, f, "grid_scale", F, path, err, errsz)))
        return -1;
    m->base_rows = m->bank.n, m->grid_base_rows = m->grid_bank.n;
    /* the held-out scores the threshold came from (absent from files of earlier versions) */
    const struct st_tensor *cal = st_find(f, "calibration");
    if (cal && cal->ndim == 1 && cal->numel > 0 && cal->numel <= INT32_MAX) {
        if (!(m->calibration = malloc(sizeof(float) * cal->numel)))
            return fail(err, errsz, "out of memory for the calibration scores");
        st_read_f32(cal, m->calibration);
        m->n_calibration = (int)cal->numel;
    }
    return 0;
}

int model_save_calibration(const struct scoring_model *m, const char *bank_path, char *err,
                           size_t errsz)
{
    struct st_file f;
    char why[256];
    if (m->n_calibration < 1) return fail(err, errsz, "no calibration scores to keep");
    if (st_load(bank_path, &f, why, sizeof why)) return fail(err, errsz, "%s", why);
    struct st_out *t = calloc((size_t)f.ntensors + 1, sizeof *t);
    float **data = calloc((size_t)f.ntensors + 1, sizeof *data);
    int(*shapes)[ST_MAX_DIMS] = calloc((size_t)f.ntensors + 1, sizeof *shapes);
    int nt = 0, rc = t && data && shapes ? 0 : fail(err, errsz, "out of memory");
    for (int i = 0; !rc && i < f.ntensors; i++) {
        const struct st_tensor *x = &f.tensors[i];
        if (strcmp(x->name, "calibration") == 0) continue; /* replaced below */
        if (!(data[nt] = malloc(sizeof(float) * (x->numel ? x->numel : 1)))) {
            rc = fail(err, errsz, "out of memory");
            break;
        }
        st_read_f32(x, data[nt]);
        for (int d = 0; d < x->ndim; d++) shapes[nt][d] = (int)x->shape[d];
        t[nt] = (struct st_out){x->name, x->ndim, shapes[nt], data[nt]};
        nt++;
    }
    int cshape[1] = {m->n_calibration};
    if (!rc) {
        t[nt++] = (struct st_out){"calibration", 1, cshape, m->calibration};
        rc = st_save(bank_path, t, nt, (const char *const *)f.meta_keys,
                     (const char *const *)f.meta_values, f.nmeta, err, errsz);
    }
    for (int i = 0; data && i < f.ntensors; i++) free(data[i]);
    free(t), free(data), free(shapes);
    st_free(&f);
    return rc;
}

int model_threshold_at(const struct scoring_model *m, double rate, float *threshold)
{
    if (m->n_calibration < 1) return -1;
    return knn_calibrate(m->calibration, m->n_calibration, rate, threshold);
}

int model_set_calibration(struct scoring_model *m, const float *scores, int n)
{
    float *c = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!c) return -1;
    memcpy(c, scores, sizeof(float) * (size_t)n);
    free(m->calibration);
    m->calibration = c;
    m->n_calibration = n;
    return 0;
}

/* The bank file's "aggregate" (0 when absent, as in the files of earlier versions). */
/* The input mode and tile overlap of a bank file (fit when it does not say). */
static int load_input(struct scoring_model *m, const struct st_file *f, const char *path, char *err,
                      size_t errsz)
{
    const char *v = st_meta(f, "input"), *o = st_meta(f, "tile_overlap");
    m->input = MODEL_INPUT_FIT, m->tile_overlap = 0;
    if (v && model_input_parse(v, &m->input))
        return fail(err, errsz, "%s: input '%s' is neither fit nor tiles", path, v);
    if (o && parse_int(o, 0, MODEL_TILE_OVERLAP_MAX, &m->tile_overlap))
        return fail(err, errsz, "%s: tile_overlap '%s' is not 0 to %d pixels", path, o,
                    MODEL_TILE_OVERLAP_MAX);
    return 0;
}

static int load_aggregate(struct scoring_model *m, const struct st_file *f, const char *path,
                          char *err, size_t errsz)
{
    const char *v = st_meta(f, "aggregate");
    m->aggregate = 0;
    if (!v) return 0;
    if (parse_int(v, 0, MODEL_AGGREGATE_MAX, &m->aggregate))
        return fail(err, errsz, "%s: aggregate '%s' is not a radius of 0 to %d", path, v,
                    MODEL_AGGREGATE_MAX);
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
    const char *format = st_meta(&f, "format"), *layer = st_meta(&f, "layer");
    float layer_f = 0;
    int rc = 0;
    if (!format || strcmp(format, "inspectd-bank") != 0 || !layer ||
        meta_float(&f, "threshold", &m->threshold) || meta_float(&f, "top_q", &m->top_q) ||
        meta_float(&f, "layer", &layer_f) || !(m->threshold > 0.0f))
        rc = fail(err, errsz, "%s: not an inspectd bank file", bank_path);
    else if (meta_float(&f, "false_alarm_rate", &m->trained_rate))
        m->trained_rate = 0.005f; /* the rate every version calibrated at */
    else if (layer_f < 0 || layer_f > m->vit.cfg.depth)
        rc = fail(err, errsz, "%s: layer %s does not fit %s (%d blocks)", bank_path, layer, ckpt,
                  m->vit.cfg.depth);
    else if (load_aggregate(m, &f, bank_path, err, errsz) ||
             load_input(m, &f, bank_path, err, errsz) || load_banks(m, &f, bank_path, err, errsz))
        rc = -1;
    m->layer = (int)layer_f;
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

/* bank's file rows (base of them) followed by per rows of each frame ids[0..n): the rows it had
 * for a frame already in old_ids (old_n of them, in the same layout), else the next of fresh.
 * Returns 0 or -1 when out of memory. */
static int bank_with_feedback(const struct knn_bank *bank, int base, int per,
                              const int64_t *old_ids, int old_n, const int64_t *ids, int n,
                              const float *fresh, struct knn_bank *out)
{
    size_t D = (size_t)bank->dim, head = (size_t)base * D, block = (size_t)per * D;
    float *x = malloc(sizeof(float) * (head + block * (size_t)n + 1));
    if (!x) return -1;
    memcpy(x, bank->x, sizeof(float) * head);
    for (int i = 0, f = 0; i < n; i++) {
        int old = -1;
        for (int j = 0; j < old_n && old < 0; j++)
            if (old_ids[j] == ids[i]) old = j;
        const float *rows = old >= 0 ? bank->x + head + block * old : fresh + block * f++;
        memcpy(x + head + block * i, rows, sizeof(float) * block);
    }
    int rc = knn_bank_build(out, x, base + n * per, bank->dim, KNN_L2);
    free(x);
    return rc;
}

int model_set_feedback(struct scoring_model *m, const int64_t *ids, int n, const float *fresh,
                       int threads, char *err, size_t errsz)
{
    int P = m->gh * m->gw, nfresh = 0;
    for (int i = 0; i < n; i++) nfresh += !model_has_feedback(m, ids[i]);
    float *tok = nfresh > 0 ? patch_tokens(m, fresh, nfresh, threads, err, errsz) : NULL;
    if (nfresh > 0 && !tok) return -1;
    float *grids = has_grid(m) && tok ? standardised(m, tok, nfresh) : NULL;
    int64_t *kept = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    struct knn_bank b = {0}, g = {0};
    int rc = 0;
    if (!kept || (has_grid(m) && tok && !grids) ||
        (has_patch(m) && bank_with_feedback(&m->bank, m->base_rows, P, m->feedback, m->feedback_n,
                                            ids, n, tok, &b)) ||
        (has_grid(m) && bank_with_feedback(&m->grid_bank, m->grid_base_rows, 1, m->feedback,
                                           m->feedback_n, ids, n, grids, &g)))
        rc = fail(err, errsz, "out of memory for the bank");
    if (!rc) {
        if (n) memcpy(kept, ids, sizeof(int64_t) * (size_t)n);
        knn_bank_free(&m->bank), knn_bank_free(&m->grid_bank);
        m->bank = b, m->grid_bank = g;
        free(m->feedback);
        m->feedback = kept, m->feedback_n = n;
        kept = NULL;
    } else {
        knn_bank_free(&b), knn_bank_free(&g);
    }
    free(tok), free(grids), free(kept);
    return rc;
}

void model_free(struct scoring_model *m)
{
    scratch_free(m->scratch);
    free(m->feedback);
    free(m->grid_mean), free(m->grid_scale);
    free(m->calibration);
    knn_bank_free(&m->bank), knn_bank_free(&m->grid_bank);
    vit_destroy(&m->vit);
    memset(m, 0, sizeof *m);
}

void model_bank_path(const char *ckpt, char *out, size_t outsz)
{
    static const char ext[] = ".safetensors";
    size_t n = strlen(ckpt), k = sizeof ext - 1;
    int stem = n > k && strcmp(ckpt + n - k, ext) == 0 ? (int)(n - k) : (int)n;
    snprintf(out, outsz, "%.*s.bank%s", stem, ckpt, ext);
}

static const char *const input_names[] = {"fit", "tiles"};

const char *model_input_name(enum model_input_mode i)
{
    return input_names[i];
}

int model_input_parse(const char *s, enum model_input_mode *out)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(s, input_names[i]) == 0) return *out = (enum model_input_mode)i, 0;
    return -1;
}

struct image_view model_view(const struct scoring_model *m, const struct region *r)
{
    return (struct image_view){
        .region = r, .tiles = m->input == MODEL_INPUT_TILES, .overlap = m->tile_overlap};
}

struct model_input model_input_of(const struct image_set *set)
{
    bool grouped = set->first && set->frames > 0;
    return (struct model_input){.images = set->pixels,
                                .masks = set->masks,
                                .n = set->n,
                                .first = grouped ? set->first : NULL,
                                .frames = grouped ? set->frames : set->n};
}

int model_frame_grid(const struct scoring_model *m, const struct region *r, int width, int height,
                     const float *grids, float *out, int *gh, int *gw)
{
    struct image_view v = model_view(m, r);
    int nx = 1, ny = 1, x0[IMAGE_VIEW_MAX_TILES], y0[IMAGE_VIEW_MAX_TILES], rect[4];
    char err[160];
    if (region_rect(r, width, height, rect, err, sizeof err) ||
        (v.tiles &&
         image_view_tiles(&v, m->size, width, height, &nx, &ny, x0, y0, err, sizeof err)))
        return -1;
    struct heatmap_part *parts = malloc(sizeof *parts * (size_t)nx * ny);
    if (!parts) return -1;
    for (int ty = 0; ty < ny; ty++)
        for (int tx = 0; tx < nx; tx++) {
            struct heatmap_part *p = &parts[ty * nx + tx];
            *p = (struct heatmap_part){grids + (size_t)(ty * nx + tx) * m->gh * m->gw,
                                       m->gh,
                                       m->gw,
                                       {rect[0], rect[1], rect[2], rect[3]}};
            if (v.tiles) /* a tile's padding beyond the ROI is 0: ignored */
                p->rect[0] = x0[tx], p->rect[1] = y0[ty], p->rect[2] = p->rect[3] = m->size;
        }
    double cw = (double)(v.tiles ? m->size : rect[2]) / m->gw;
    double ch = (double)(v.tiles ? m->size : rect[3]) / m->gh;
    heatmap_frame_grid(parts, nx * ny, width, height, cw, ch, out, gh, gw);
    free(parts);
    return 0;
}

static const char *const readout_names[] = {"patch", "aligned", "both"};

const char *model_readout_name(enum model_readout r)
{
    return (unsigned)r <= MODEL_READOUT_BOTH ? readout_names[r] : "patch";
}

int model_readout_parse(const char *s, enum model_readout *out)
{
    for (int i = 0; i <= MODEL_READOUT_BOTH; i++)
        if (strcmp(s, readout_names[i]) == 0) {
            *out = (enum model_readout)i;
            return 0;
        }
    return -1;
}
