/* eval_case.c — one one-class case of `inspectd eval`: raw-pixel k-NN, the untrained network and
 * the DINO-pretrained network on the same split, and the table they are printed in. */
#define LOG_TAG "eval"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auroc.h"
#include "checkpoint.h"
#include "eval.h"
#include "gemm.h"
#include "heatmap.h"

volatile sig_atomic_t eval_interrupted;

/* AUROC (percent) of k-NN scores of nq queries against a bank; -1 on failure. */
static double knn_auroc(const float *bank, int nb, const float *q, int nq, int dim, int k,
                        enum knn_metric metric, const unsigned char *anomalous)
{
    struct knn_bank b;
    float *scores = malloc(sizeof(float) * (size_t)nq);
    double a = -2;
    if (scores && !knn_bank_build(&b, bank, nb, dim, metric)) {
        if (!knn_score(&b, q, nq, k < nb ? k : nb, false, scores))
            a = auroc(scores, anomalous, (size_t)nq);
        knn_bank_free(&b);
    }
    free(scores);
    if (a == -2) log_error("out of memory for k-NN scores");
    if (a == -1) log_error("AUROC needs both normal and anomalous test images");
    return a < 0 ? -1 : 100.0 * a;
}

/* Rescales every dimension of bank and queries to the bank's zero mean and unit spread. */
static void standardize(float *bank, int nb, float *q, int nq, int dim)
{
    for (int d = 0; d < dim; d++) {
        double s = 0, ss = 0;
        for (int i = 0; i < nb; i++) {
            double v = bank[(size_t)i * dim + d];
            s += v, ss += v * v;
        }
        double mean = s / nb, var = ss / nb - mean * mean;
        float inv = (float)(1.0 / sqrt(var > 1e-12 ? var : 1e-12));
        for (int i = 0; i < nb; i++)
            bank[(size_t)i * dim + d] = (float)(bank[(size_t)i * dim + d] - mean) * inv;
        for (int i = 0; i < nq; i++)
            q[(size_t)i * dim + d] = (float)(q[(size_t)i * dim + d] - mean) * inv;
    }
}

struct progress_ctx {
    const char *name;
    enum ssl_method method;
    int K; /* the head's output dimension */
    double last_log, seconds, entropy;
};

static int on_progress(const struct train_progress *p, void *arg)
{
    struct progress_ctx *c = arg;
    c->seconds = p->seconds;
    bool dino = c->method == SSL_DINO;
    c->entropy = dino ? p->stats.teacher_entropy : p->stats.embed_std * sqrt((double)c->K);
    if (p->seconds - c->last_log >= 15.0 || p->step == 0) {
        c->last_log = p->seconds;
        char monitor[64];
        if (dino)
            snprintf(monitor, sizeof monitor, "entropy %.3f kl %.3f", p->stats.teacher_entropy,
                     p->stats.teacher_kl);
        else
            snprintf(monitor, sizeof monitor, "embed_std %.4f%s", p->stats.embed_std,
                     p->collapsed ? " (collapsed)" : "");
        log_info("%s: %s step %ld/%ld epoch %d loss %.4f %s koleo %.3f aux %.3f (%.0f%% right) "
                 "defects %.3f (%.0f%% right) dense %.3f lr %.2e %.1f img/s",
                 c->name, ssl_method_name(c->method), p->step + 1, p->total_steps, p->epoch,
                 p->stats.loss, monitor, p->stats.koleo, p->stats.aux_loss, 100 * p->stats.aux_acc,
                 p->stats.defect_loss, 100 * p->stats.defect_acc, p->stats.dense_loss, p->lr,
                 p->images_per_s);
    }
    return eval_interrupted;
}

void eval_embedding_name(const struct eval_options *o, char *out, size_t size)
{
    if (!o->layers) {
        snprintf(out, size, "%s", embedding_kind_name(o->embed));
        return;
    }
    int n = snprintf(out, size, "tokens of layers ");
    for (int l = 0; l < 32 && n > 0 && (size_t)n < size; l++)
        if (o->layers >> l & 1u)
            n += snprintf(out + n, size - (size_t)n, "%s%d",
                          (o->layers & ((1u << l) - 1)) ? "," : "", l);
}

static int extract(const struct vit_model *m, const struct eval_options *o, const float *images,
                   int n, int S, int threads, float *out, char *err, size_t errsz)
{
    if (o->layers)
        return embedding_extract_layers(m, images, n, S, S, o->layers, threads, out, err, errsz);
    return embedding_extract(m, images, n, S, S, o->embed, threads, out, err, errsz);
}

/* DIR/<case name with blanks as dashes>.safetensors */
static void case_path(char *path, size_t size, const char *dir, const char *name)
{
    int n = snprintf(path, size, "%s/", dir);
    for (const char *p = name; *p && n + 1 < (int)size; p++) path[n++] = *p == ' ' ? '-' : *p;
    snprintf(path + n, size - (size_t)n, ".safetensors");
}

/* Trains s on the case, or loads the teacher saved by an earlier run with --save. */
static int train_or_load(struct dino_step *s, const struct eval_options *o,
                         const struct train_options *train, const struct eval_case *c,
                         struct eval_result *r)
{
    char err[256], path[4096];
    if (o->load_dir) {
        struct st_file f;
        case_path(path, sizeof path, o->load_dir, c->name);
        int rc = st_load(path, &f, err, sizeof err);
        if (!rc) {
            rc = checkpoint_load_model(&s->teacher, &f, "", err, sizeof err);
            st_free(&f);
        }
        if (rc) log_error("%s: %s", path, err);
        return rc ? -1 : 0;
    }
    struct progress_ctx pc = {c->name, train->method, train->model.head_out, 0, 0, NAN};
    int rc =
        train_run(s, train, c->bank, c->nb, c->size, c->size, on_progress, &pc, err, sizeof err);
    if (rc < 0) {
        log_error("%s", err);
        return rc;
    }
    r->steps = s->student.adam_step;
    r->minutes += pc.seconds / 60.0;
    r->entropy = pc.entropy;
    if (o->save_dir) {
        const struct vit_model *models[1] = {&s->teacher};
        const char *prefixes[1] = {""};
        case_path(path, sizeof path, o->save_dir, c->name);
        if (checkpoint_save_models(path, models, prefixes, 1, NULL, NULL, 0, err, sizeof err)) {
            log_error("%s: %s", path, err);
            return -1;
        }
    }
    return rc;
}

static double model_auroc(const struct vit_model *m, const struct eval_options *o, int threads,
                          const struct eval_case *c)
{
    char err[256];
    int S = c->size;
    int dim =
        o->layers ? embedding_layers_dim(&m->cfg, o->layers) : embedding_dim(&m->cfg, o->embed);
    float *eb = malloc(sizeof(float) * (size_t)c->nb * dim);
    float *eq = malloc(sizeof(float) * (size_t)c->nq * dim);
    double a = -1;
    if (!eb || !eq)
        log_error("out of memory for embeddings");
    else if (extract(m, o, c->bank_norm, c->nb, S, threads, eb, err, sizeof err) ||
             extract(m, o, c->test_norm, c->nq, S, threads, eq, err, sizeof err))
        log_error("%s", err);
    else {
        if (o->standardize) standardize(eb, c->nb, eq, c->nq, dim);
        gemm_set_threads(threads);
        a = knn_auroc(eb, c->nb, eq, c->nq, dim, o->k, o->metric, c->anomalous);
    }
    free(eb), free(eq);
    return a;
}

/* The patch tokens (n, T, D) of the scoring layer (the daemon's: the middle block's output, before
 * any norm) of normalised images, class tokens dropped; NULL on failure (logged). */
static float *layer_patches(const struct vit_model *m, const float *norm, int n, int S, int threads)
{
    char err[256];
    int T = (S / m->cfg.patch) * (S / m->cfg.patch), D = m->cfg.dim;
    unsigned layer = 1u << model_scoring_layer(&m->cfg, -1);
    float *tok = malloc(sizeof(float) * (size_t)n * (T + 1) * D);
    if (!tok) {
        log_error("out of memory for %d images' patch tokens", n);
        return NULL;
    }
    if (embedding_extract_layers(m, norm, n, S, S, layer, threads, tok, err, sizeof err)) {
        log_error("%s", err);
        free(tok);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        memmove(tok + (size_t)i * T * D, tok + ((size_t)i * (T + 1) + 1) * D,
                sizeof(float) * (size_t)T * D);
    return tok;
}

/* Raw-pixel patches (n, T, C·p·p) of images (n, C, S, S): the pixel baseline of the heatmaps. */
static float *pixel_patches(const float *img, int n, int C, int S, int p)
{
    int g = S / p, D = C * p * p;
    float *out = malloc(sizeof(float) * (size_t)n * g * g * D);
    if (!out) {
        log_error("out of memory for %d images' pixel patches", n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        for (int py = 0; py < g; py++)
            for (int px = 0; px < g; px++) {
                float *dst = out + (((size_t)i * g + py) * g + px) * D;
                for (int c = 0; c < C; c++)
                    for (int y = 0; y < p; y++)
                        for (int x = 0; x < p; x++)
                            *dst++ = img[(((size_t)i * C + c) * S + py * p + y) * S + px * p + x];
            }
    return out;
}

/* Pixel-level AUROC (percent) of the heatmaps of nq test images against their masks: every patch
 * (g × g of them, D floats each) scores its distance to the nearest of the nb bank images'
 * patches; the grid is upsampled to S × S and smoothed as the daemon's heatmaps are (sigma 4 px
 * at 256 px). Takes bank and test (frees them). -1 on failure (logged). */
static double heatmap_auroc(float *bank, int nb, float *test, int nq, int g, int D, int S,
                            const unsigned char *masks, int threads)
{
    int T = g * g;
    size_t px = (size_t)S * S;
    struct knn_bank b = {0};
    float *img = malloc(sizeof(float) * (size_t)(nq ? nq : 1));
    float *grid = malloc(sizeof(float) * (size_t)nq * T);
    float *map = malloc(sizeof(float) * (size_t)nq * px);
    double a = -2;
    if (bank && test && img && grid && map && !knn_bank_build(&b, bank, nb * T, D, KNN_L2) &&
        !knn_patch_score(&b, test, nq, T, 0.0f, threads, img, grid)) {
        a = 0;
        for (int i = 0; i < nq && a == 0; i++)
            if (heatmap_upsample(grid + (size_t)i * T, g, g, map + px * i, S, S, 4.0f * S / 256))
                a = -2;
        if (a == 0) a = auroc(map, masks, px * nq);
    }
    knn_bank_free(&b);
    free(bank), free(test), free(img), free(grid), free(map);
    if (a == -2) log_error("out of memory for heatmaps");
    if (a == -1) log_error("pixel AUROC needs both defect and normal pixels in the masks");
    return a < 0 ? -1 : 100.0 * a;
}

static double model_pixel_auroc(const struct vit_model *m, int threads, const struct eval_case *c)
{
    int S = c->size, g = S / m->cfg.patch;
    float *bank = layer_patches(m, c->bank_norm, c->nb, S, threads);
    float *test = bank ? layer_patches(m, c->test_norm, c->nq, S, threads) : NULL;
    gemm_set_threads(threads);
    return heatmap_auroc(bank, c->nb, test, c->nq, g, m->cfg.dim, S, c->masks, threads);
}

static double pixel_pixel_auroc(int patch, int threads, const struct eval_case *c)
{
    int S = c->size, C = c->channels;
    return heatmap_auroc(pixel_patches(c->bank, c->nb, C, S, patch), c->nb,
                         pixel_patches(c->test, c->nq, C, S, patch), c->nq, S / patch,
                         C * patch * patch, S, c->masks, threads);
}

/* The share (percent) of the images with flag `want` scoring above threshold. */
static double share_above(const float *scores, const unsigned char *flags, int n, bool want,
                          float threshold)
{
    int above = 0, total = 0;
    for (int i = 0; i < n; i++)
        if ((bool)flags[i] == want) total++, above += scores[i] > threshold;
    return total ? 100.0 * above / total : NAN;
}

/* The daemon's readout of backbone m: a bank built by model_fit from the normal images, each test
 * image scored by model_score. Returns the AUROC (percent) and, when flagged is not NULL, the
 * shares of normal and anomalous test images above the calibrated threshold; -1 on failure. */
static double patch_auroc(const struct vit_model *m, const struct eval_options *o,
                          const struct train_options *train, const struct eval_case *c,
                          double *flagged, double *caught)
{
    char err[256];
    struct scoring_model sm;
    struct model_build_result res;
    struct model_build_options bo = o->bank;
    bo.threads = train->threads;
    float *scores = malloc(sizeof(float) * (size_t)c->nq);
    double a = -1;
    if (!scores || model_from_vit(&sm, m, train->aug.mean, train->aug.std, err, sizeof err)) {
        log_error("%s: %s", c->name, scores ? err : "out of memory for scores");
        free(scores);
        return -1;
    }
    if (model_fit(&sm, c->bank, c->nb, &bo, &res, err, sizeof err) ||
        model_score(&sm, c->test, c->nq, bo.threads, scores, NULL, err, sizeof err)) {
        log_error("%s: %s", c->name, err);
    } else {
        log_info("%s: %s readout, %d bank rows from %d images, threshold %.4g", c->name,
                 model_readout_name(res.readout), res.bank_rows, res.bank_images, res.threshold);
        a = auroc(scores, c->anomalous, (size_t)c->nq);
        a = a < 0 ? -1 : 100.0 * a;
        if (flagged) *flagged = share_above(scores, c->anomalous, c->nq, false, res.threshold);
        if (caught) *caught = share_above(scores, c->anomalous, c->nq, true, res.threshold);
    }
    model_free(&sm);
    free(scores);
    return a;
}

/* Raw-pixel patches (the model's patch size) through the patch readout: the bank images
 * model_fit would take, coreset-reduced the same way, each test image's worst patch. */
static double pixel_patch_auroc(const struct eval_options *o, const struct train_options *train,
                                const struct eval_case *c)
{
    int p = train->model.patch, S = c->size, C = c->channels, T = (S / p) * (S / p);
    int D = C * p * p, nb = 0, nc = 0;
    size_t per = (size_t)C * S * S;
    int *bank_idx = malloc(sizeof(int) * (size_t)c->nb), *cal_idx = malloc(sizeof(int) * c->nb);
    float *imgs = malloc(sizeof(float) * per * (size_t)c->nb);
    float *scores = malloc(sizeof(float) * (size_t)c->nq);
    float *bank = NULL, *test = NULL;
    struct knn_bank b = {0};
    double a = -2;
    if (bank_idx && cal_idx && imgs && scores) {
        model_bank_split(c->nb, &o->bank, bank_idx, &nb, cal_idx, &nc);
        for (int i = 0; i < nb; i++)
            memcpy(imgs + per * i, c->bank + per * bank_idx[i], sizeof(float) * per);
        bank = pixel_patches(imgs, nb, C, S, p);
        test = bank ? pixel_patches(c->test, c->nq, C, S, p) : NULL;
    }
    if (test && !knn_bank_build_coreset(&b, bank, nb * T, D, o->bank.max_patches, train->threads) &&
        !knn_patch_score(&b, test, c->nq, T, o->bank.top_q, train->threads, scores, NULL))
        a = auroc(scores, c->anomalous, (size_t)c->nq);
    knn_bank_free(&b);
    free(bank_idx), free(cal_idx), free(imgs), free(scores), free(bank), free(test);
    if (a == -2) log_error("out of memory for pixel patch scores");
    return a < 0 ? -1 : 100.0 * a;
}

/* AUROC of backbone m through the chosen readout (flagged/caught only for the patch readout). */
static double readout_auroc(const struct vit_model *m, const struct eval_options *o,
                            const struct train_options *train, const struct eval_case *c,
                            double *flagged, double *caught)
{
    if (o->readout == EVAL_READOUT_GRID) return model_auroc(m, o, train->threads, c);
    return patch_auroc(m, o, train, c, flagged, caught);
}

int eval_case_run(const struct eval_options *o, const struct train_options *train,
                  const struct eval_case *c, struct eval_result *r)
{
    char err[256];
    int dim = c->channels * c->size * c->size;
    struct dino_step s;
    memset(&s, 0, sizeof s);
    memset(r, 0, sizeof *r);
    if (c->nb < train->batch) {
        log_error("%s: %d normal images, fewer than a batch of %d", c->name, c->nb, train->batch);
        return -1;
    }
    gemm_set_threads(train->threads);
    r->pixel = knn_auroc(c->bank, c->nb, c->test, c->nq, dim, EVAL_PIXEL_K, KNN_L2, c->anomalous);
    int rc = train_make_step(&s, train, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        return -1;
    }
    r->pixel_patch = pixel_patch_auroc(o, train, c);
    r->untrained = readout_auroc(&s.teacher, o, train, c, NULL, NULL);
    r->px_pixel = r->px_untrained = r->px_trained = NAN;
    r->flagged = r->caught = r->entropy = NAN;
    if (c->masks) {
        r->px_pixel = pixel_pixel_auroc(train->model.patch, train->threads, c);
        r->px_untrained = model_pixel_auroc(&s.teacher, train->threads, c);
    }
    /* each run after the first is a warm start from the last one's weights, centre and optimiser
     * state (train_warm_start: the step count goes on, the schedules are the run's own), as the
     * daemon's runs continue its active model */
    struct train_options run_train = *train;
    for (int run = 1; run <= (o->runs > 1 ? o->runs : 1); run++) {
        if (run > 1) train_warm_start(&run_train, &s);
        rc = train_or_load(&s, o, &run_train, c, r);
        if (rc < 0) break;
        r->trained = readout_auroc(&s.teacher, o, train, c, &r->flagged, &r->caught);
        if (o->runs > 1) {
            printf("%s run %d: %ld steps, trained %.2f\n", c->name, run, r->steps, r->trained);
            fflush(stdout);
        }
        if (rc == 1) break;
    }
    if (rc >= 0 && c->masks) r->px_trained = model_pixel_auroc(&s.teacher, train->threads, c);
    dino_step_destroy(&s);
    bool px_failed = c->masks && (r->px_pixel < 0 || r->px_untrained < 0 || r->px_trained < 0);
    return rc < 0 || r->pixel < 0 || r->pixel_patch < 0 || r->untrained < 0 || r->trained < 0 ||
                   px_failed
               ? -1
               : rc;
}

void eval_table_header(struct eval_table *t, const char *first_column, int width, bool pixel_level,
                       enum ssl_method method)
{
    *t = (struct eval_table){.width = width, .pixel_level = pixel_level};
    printf("%-*s %8s %10s %8s", width, first_column, "pixels", "untrained", "trained");
    if (pixel_level) printf(" %9s %12s %10s", "px-pixels", "px-untrained", "px-trained");
    printf(" %7s %8s %12s %6s %7s %8s %7s\n", "steps", "minutes", "pixels-patch", "gain",
           method == SSL_DINO ? "entropy" : "spread", "flagged%", "caught%");
}

/* A pixel-level column: the figure, or "-" for a case without masks. */
static void px_cell(int width, double v)
{
    if (isnan(v))
        printf(" %*s", width, "-");
    else
        printf(" %*.2f", width, v);
}

void eval_table_row(struct eval_table *t, const char *name, const struct eval_result *r)
{
    printf("%-*s %8.2f %10.2f %8.2f", t->width, name, r->pixel, r->untrained, r->trained);
    if (t->pixel_level) {
        px_cell(9, r->px_pixel), px_cell(12, r->px_untrained), px_cell(10, r->px_trained);
        if (!isnan(r->px_trained)) {
            t->px_sum[0] += r->px_pixel, t->px_sum[1] += r->px_untrained;
            t->px_sum[2] += r->px_trained;
            t->px_done++;
        }
    }
    printf(" %7ld %8.2f", r->steps, r->minutes);
    double extra[4] = {r->pixel_patch, r->entropy, r->flagged, r->caught};
    px_cell(12, extra[0]), px_cell(6, r->trained - r->untrained), px_cell(7, extra[1]);
    px_cell(8, extra[2]), px_cell(7, extra[3]);
    printf("\n");
    for (int i = 0; i < 4; i++)
        if (!isnan(extra[i])) t->extra_sum[i] += extra[i], t->extra_done[i]++;
    fflush(stdout);
    t->sum[0] += r->pixel, t->sum[1] += r->untrained, t->sum[2] += r->trained;
    t->done++;
}

int eval_table_end(struct eval_table *t)
{
    if (!t->done) return 1;
    double n = t->done, m = t->px_done;
    printf("%-*s %8.2f %10.2f %8.2f", t->width, "mean", t->sum[0] / n, t->sum[1] / n,
           t->sum[2] / n);
    if (t->pixel_level) {
        px_cell(9, m ? t->px_sum[0] / m : NAN), px_cell(12, m ? t->px_sum[1] / m : NAN);
        px_cell(10, m ? t->px_sum[2] / m : NAN);
    }
    printf(" %7s %8s", "", "");
    double ex[4];
    for (int i = 0; i < 4; i++) ex[i] = t->extra_done[i] ? t->extra_sum[i] / t->extra_done[i] : NAN;
    px_cell(12, ex[0]), px_cell(6, (t->sum[2] - t->sum[1]) / n), px_cell(7, ex[1]);
    px_cell(8, ex[2]), px_cell(7, ex[3]);
    printf("\n");
    if (t->pixel_level && m) {
        printf("mean_pixel_auroc_pixels: %.2f\n", t->px_sum[0] / m);
        printf("mean_pixel_auroc_untrained: %.2f\n", t->px_sum[1] / m);
        printf("mean_pixel_auroc: %.2f\n", t->px_sum[2] / m);
    }
    printf("mean_auroc_pixels: %.2f\n", t->sum[0] / n);
    printf("mean_auroc_untrained: %.2f\n", t->sum[1] / n);
    if (t->extra_done[0]) printf("mean_auroc_pixels_patch: %.2f\n", ex[0]);
    if (t->extra_done[2]) printf("mean_flagged_normal_pct: %.2f\n", ex[2]);
    if (t->extra_done[3]) printf("mean_caught_anomalous_pct: %.2f\n", ex[3]);
    printf("mean_auroc: %.2f\n", t->sum[2] / n);
    return 0;
}
