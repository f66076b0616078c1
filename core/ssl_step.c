/* ssl_step.c — BYOL, Barlow Twins and SimCLR inside the training step (ssl_step.h). */
#include "ssl_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dino_step.h"
#include "gemm.h"
#include "ssl.h"

struct ssl_step {
    int rows;               /* student rows the predictor runs on */
    float *zs, *zt;         /* (rows, K), (n_global·B, K) the standardised projections */
    float *rstd_s, *rstd_t; /* (n_student·K), (n_global·K) their 1/σ */
    float *dzs;             /* (rows, K) the gradient on zs */
    float *pre, *act;       /* (rows, H) the predictor's activations */
    float *pred, *dpred;    /* (rows, K) its output and that output's gradient */
    float *scratch;         /* (2·rows·H) */
    float *pgrad;           /* the predictor tensors' gradient, laid out as in the model */
    size_t pgrad_offset, pgrad_n;
};

int ssl_step_create(struct dino_step *s, char *err, size_t errsz)
{
    s->ssl = NULL;
    if (s->cfg.method == SSL_DINO) return 0;
    struct ssl_step *q = calloc(1, sizeof *q);
    if (!q) goto oom;
    s->ssl = q;
    if (s->cfg.method != SSL_BYOL) return 0;
    int K = s->model.head_out, H = s->model.pred_hidden;
    q->rows = (s->cfg.n_global + s->cfg.n_local) * s->cfg.batch;
    const struct vit_tensor *t = vit_find_tensor(&s->student, "predictor.fc1.weight");
    q->pgrad_offset = t->offset;
    q->pgrad_n = (size_t)2 * H * K + (size_t)H + (size_t)K;
    q->pre = malloc(sizeof(float) * (size_t)q->rows * H);
    q->act = malloc(sizeof(float) * (size_t)q->rows * H);
    q->pred = malloc(sizeof(float) * (size_t)q->rows * K);
    q->dpred = malloc(sizeof(float) * (size_t)q->rows * K);
    q->scratch = malloc(sizeof(float) * 2 * (size_t)q->rows * H);
    q->pgrad = malloc(sizeof(float) * q->pgrad_n);
    size_t nt = (size_t)s->cfg.n_global * s->cfg.batch;
    q->zs = malloc(sizeof(float) * (size_t)q->rows * K);
    q->dzs = malloc(sizeof(float) * (size_t)q->rows * K);
    q->zt = malloc(sizeof(float) * nt * K);
    q->rstd_s = malloc(sizeof(float) * (size_t)(s->cfg.n_global + s->cfg.n_local) * K);
    q->rstd_t = malloc(sizeof(float) * (size_t)s->cfg.n_global * K);
    if (q->pre && q->act && q->pred && q->dpred && q->scratch && q->pgrad && q->zs && q->dzs &&
        q->zt && q->rstd_s && q->rstd_t)
        return 0;
oom:
    if (errsz)
        snprintf(err, errsz, "out of memory for the %s loss", ssl_method_name(s->cfg.method));
    return -2;
}

void ssl_step_destroy(struct dino_step *s)
{
    struct ssl_step *q = s->ssl;
    if (!q) return;
    free(q->pre), free(q->act), free(q->pred), free(q->dpred), free(q->scratch), free(q->pgrad);
    free(q->zs), free(q->dzs), free(q->zt), free(q->rstd_s), free(q->rstd_t);
    free(q);
    s->ssl = NULL;
}

/* BYOL: the projections of each crop standardised over the batch (the online network's and the
 * target's alike: a projector ending in batch normalisation, which keeps BYOL from settling on
 * the near-constant output of a freshly initialised ViT), the predictor on every student row,
 * the loss against the teacher's global projections, back through the predictor and the
 * standardisation into the head's output. */
static int byol_part(struct dino_step *s, double *loss)
{
    struct ssl_step *q = s->ssl;
    const struct vit_weights *w = &s->student.w;
    int K = s->model.head_out, H = s->model.pred_hidden, B = s->cfg.batch;
    int ns = s->cfg.n_global + s->cfg.n_local, nt = s->cfg.n_global;
    size_t BK = (size_t)B * K;
    for (int i = 0; i < ns; i++)
        ssl_standardise(s->logits_s + i * BK, q->zs + i * BK, q->rstd_s + (size_t)i * K, B, K);
    for (int j = 0; j < nt; j++)
        ssl_standardise(s->logits_t + j * BK, q->zt + j * BK, q->rstd_t + (size_t)j * K, B, K);
    ssl_predictor_forward(q->pred, q->pre, q->act, q->zs, w->pred_w[0], w->pred_b[0], w->pred_w[1],
                          w->pred_b[1], q->rows, K, H);
    if (byol_loss(q->zt, q->pred, q->dpred, B, nt, ns, K, loss)) return -1;
    float *dw1 = q->pgrad, *db1 = dw1 + (size_t)H * K, *dw2 = db1 + H, *db2 = dw2 + (size_t)K * H;
    memset(q->pgrad, 0, sizeof(float) * q->pgrad_n);
    memset(q->dzs, 0, sizeof(float) * (size_t)q->rows * K);
    ssl_predictor_backward(q->dzs, dw1, db1, dw2, db2, q->scratch, q->dpred, q->zs, q->pre, q->act,
                           w->pred_w[0], w->pred_w[1], q->rows, K, H);
    for (int i = 0; i < ns; i++)
        ssl_standardise_backward(s->dlogits_s + i * BK, q->dzs + i * BK, q->zs + i * BK,
                                 q->rstd_s + (size_t)i * K, B, K);
    return 0;
}

int ssl_step_loss(struct dino_step *s, struct dino_stats *st)
{
    const struct dino_step_config *c = &s->cfg;
    int K = s->model.head_out, B = c->batch, rc = -1;
    /* the loss runs on this thread alone: its matrix products may use every core */
    if (s->nworkers > 1) gemm_set_threads(s->nworkers);
    switch (c->method) {
    case SSL_BYOL:
        rc = byol_part(s, &st->loss);
        break;
    case SSL_BARLOW:
        rc = barlow_loss(s->logits_s, s->dlogits_s, B, K, c->barlow_lambda, &st->loss);
        break;
    case SSL_SIMCLR:
        rc = simclr_loss(s->logits_s, s->dlogits_s, B, K, c->simclr_temp, &st->loss, NULL);
        break;
    case SSL_DINO:
        break;
    }
    if (s->nworkers > 1) gemm_set_threads(1);
    st->embed_std = ssl_embed_std(s->logits_s, c->n_global * B, K);
    return rc;
}

void ssl_step_add_grads(struct dino_step *s)
{
    struct ssl_step *q = s->ssl;
    if (!q || !q->pgrad) return;
    float *g = s->student.grads + q->pgrad_offset;
    for (size_t i = 0; i < q->pgrad_n; i++) g[i] += q->pgrad[i];
}
