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
    double last_log, seconds;
};

static int on_progress(const struct train_progress *p, void *arg)
{
    struct progress_ctx *c = arg;
    c->seconds = p->seconds;
    if (p->seconds - c->last_log >= 15.0 || p->step == 0) {
        c->last_log = p->seconds;
        log_info("%s: step %ld/%ld epoch %d loss %.4f entropy %.3f kl %.3f koleo %.3f lr %.2e "
                 "%.1f img/s",
                 c->name, p->step + 1, p->total_steps, p->epoch, p->stats.loss,
                 p->stats.teacher_entropy, p->stats.teacher_kl, p->stats.koleo, p->lr,
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
    struct progress_ctx pc = {c->name, 0, 0};
    int rc =
        train_run(s, train, c->bank, c->nb, c->size, c->size, on_progress, &pc, err, sizeof err);
    if (rc < 0) {
        log_error("%s", err);
        return rc;
    }
    r->steps = s->student.adam_step;
    r->minutes = pc.seconds / 60.0;
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
        vit_set_threads(threads);
        a = knn_auroc(eb, c->nb, eq, c->nq, dim, o->k, o->metric, c->anomalous);
    }
    free(eb), free(eq);
    return a;
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
    vit_set_threads(train->threads);
    r->pixel = knn_auroc(c->bank, c->nb, c->test, c->nq, dim, EVAL_PIXEL_K, KNN_L2, c->anomalous);
    int rc = train_make_step(&s, train, err, sizeof err);
    if (rc) {
        log_error("%s", err);
        return -1;
    }
    r->untrained = model_auroc(&s.teacher, o, train->threads, c);
    rc = train_or_load(&s, o, train, c, r);
    if (rc >= 0) r->trained = model_auroc(&s.teacher, o, train->threads, c);
    dino_step_destroy(&s);
    return rc < 0 || r->pixel < 0 || r->untrained < 0 || r->trained < 0 ? -1 : rc;
}

void eval_table_header(struct eval_table *t, const char *first_column, int width)
{
    *t = (struct eval_table){.width = width};
    printf("%-*s %8s %10s %8s %7s %8s\n", width, first_column, "pixels", "untrained", "trained",
           "steps", "minutes");
}

void eval_table_row(struct eval_table *t, const char *name, const struct eval_result *r)
{
    printf("%-*s %8.2f %10.2f %8.2f %7ld %8.2f\n", t->width, name, r->pixel, r->untrained,
           r->trained, r->steps, r->minutes);
    fflush(stdout);
    t->sum[0] += r->pixel, t->sum[1] += r->untrained, t->sum[2] += r->trained;
    t->done++;
}

int eval_table_end(struct eval_table *t)
{
    if (!t->done) return 1;
    double n = t->done;
    printf("%-*s %8.2f %10.2f %8.2f\n", t->width, "mean", t->sum[0] / n, t->sum[1] / n,
           t->sum[2] / n);
    printf("mean_auroc_pixels: %.2f\n", t->sum[0] / n);
    printf("mean_auroc_untrained: %.2f\n", t->sum[1] / n);
    printf("mean_auroc: %.2f\n", t->sum[2] / n);
    return 0;
}
