/* knn.c — blocked exact k-NN on sgemm. */
#include "knn.h"

#include <cblas.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "vit.h"

static void normalise_rows(float *x, int n, int dim)
{
    for (int i = 0; i < n; i++) {
        float *r = x + (size_t)i * dim;
        double ss = 0.0;
        for (int j = 0; j < dim; j++) ss += (double)r[j] * r[j];
        float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (int j = 0; j < dim; j++) r[j] *= inv;
    }
}

static void row_norms(float *out, const float *x, int n, int dim)
{
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += r[j] * r[j];
        out[i] = ss;
    }
}

int knn_bank_build(struct knn_bank *b, const float *x, int n, int dim, enum knn_metric metric)
{
    memset(b, 0, sizeof *b);
    if (n < 1 || dim < 1) return -1;
    b->x = malloc(sizeof(float) * (size_t)n * dim);
    b->norm2 = malloc(sizeof(float) * (size_t)n);
    if (!b->x || !b->norm2) {
        knn_bank_free(b);
        return -1;
    }
    memcpy(b->x, x, sizeof(float) * (size_t)n * dim);
    if (metric == KNN_COSINE) normalise_rows(b->x, n, dim);
    row_norms(b->norm2, b->x, n, dim);
    b->n = n;
    b->dim = dim;
    b->metric = metric;
    return 0;
}

void knn_bank_free(struct knn_bank *b)
{
    free(b->x);
    free(b->norm2);
    memset(b, 0, sizeof *b);
}

#define KNN_QBLOCK 64   /* queries per distance tile */
#define KNN_BBLOCK 2048 /* bank rows per distance tile: 64 x 2048 floats = 512 KiB */

/* Inserts (v, j) into the ascending list (dist, idx) of k entries if v beats its last. */
static void keep_smallest(float *dist, int *idx, int k, float v, int j)
{
    if (v >= dist[k - 1]) return;
    int i = k - 1;
    while (i > 0 && dist[i - 1] > v) {
        dist[i] = dist[i - 1], idx[i] = idx[i - 1];
        i--;
    }
    dist[i] = v, idx[i] = j;
}

struct search_job {
    const struct knn_bank *b;
    const float *q, *qn; /* (nq, dim) queries (normalised for cosine), their squared norms */
    int nq, k;
    bool exclude_self;
    int nworkers;
    float *dist; /* (nworkers, nq, k) each worker's best squared distances, ascending */
    int *idx;    /* (nworkers, nq, k) */
    float *tile; /* (nworkers, QBLOCK * BBLOCK) */
};

/* Worker w scans its share of the bank for every query, tile by tile. */
static void search_part(void *arg, int w, int nw)
{
    struct search_job *j = arg;
    const struct knn_bank *b = j->b;
    long begin, end;
    pool_share(b->n, w, nw, &begin, &end);
    float *tile = j->tile + (size_t)w * KNN_QBLOCK * KNN_BBLOCK;
    float *dist = j->dist + (size_t)w * j->nq * j->k;
    int *idx = j->idx + (size_t)w * j->nq * j->k;
    for (size_t i = 0; i < (size_t)j->nq * j->k; i++) dist[i] = INFINITY, idx[i] = -1;
    for (long b0 = begin; b0 < end; b0 += KNN_BBLOCK) {
        int nb = (int)(end - b0 < KNN_BBLOCK ? end - b0 : KNN_BBLOCK);
        const float *bx = b->x + (size_t)b0 * b->dim;
        for (int q0 = 0; q0 < j->nq; q0 += KNN_QBLOCK) {
            int m = j->nq - q0 < KNN_QBLOCK ? j->nq - q0 : KNN_QBLOCK;
            const float *qx = j->q + (size_t)q0 * b->dim;
            if (m == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, nb, b->dim, 1.0f, bx, b->dim, qx, 1, 0.0f,
                            tile, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nb, b->dim, 1.0f, qx,
                            b->dim, bx, b->dim, 0.0f, tile, nb);
            for (int i = 0; i < m; i++) {
                const float *dots = tile + (size_t)i * nb, *bn = b->norm2 + b0;
                float qn = j->qn[q0 + i];
                float *di = dist + (size_t)(q0 + i) * j->k;
                int *ii = idx + (size_t)(q0 + i) * j->k;
                for (int r = 0; r < nb; r++) {
                    float d2 = qn + bn[r] - 2.0f * dots[r];
                    if (d2 >= di[j->k - 1]) continue;
                    if (j->exclude_self && b0 + r == q0 + i) continue;
                    keep_smallest(di, ii, j->k, d2 > 0.0f ? d2 : 0.0f, (int)(b0 + r));
                }
            }
        }
    }
}

int knn_search(const struct knn_bank *b, const float *q, int nq, int k, bool exclude_self,
               int threads, float *dist, int *idx)
{
    if (k < 1 || k > b->n - (exclude_self ? 1 : 0) || (exclude_self && nq != b->n) || nq < 1)
        return -1;
    if (threads < 1) threads = 1;
    if (threads > b->n) threads = b->n;
    struct search_job j = {
        .b = b, .nq = nq, .k = k, .exclude_self = exclude_self, .nworkers = threads};
    float *qcopy = NULL, *qn = malloc(sizeof(float) * (size_t)nq);
    if (b->metric == KNN_COSINE) {
        qcopy = malloc(sizeof(float) * (size_t)nq * b->dim);
        if (qcopy) {
            memcpy(qcopy, q, sizeof(float) * (size_t)nq * b->dim);
            normalise_rows(qcopy, nq, b->dim);
        }
    }
    j.q = qcopy ? qcopy : q;
    j.qn = qn;
    j.dist = malloc(sizeof(float) * (size_t)threads * nq * k);
    j.idx = malloc(sizeof(int) * (size_t)threads * nq * k);
    j.tile = malloc(sizeof(float) * (size_t)threads * KNN_QBLOCK * KNN_BBLOCK);
    struct pool *p = threads > 1 ? pool_create(threads) : NULL;
    int rc = -1;
    if (qn && j.dist && j.idx && j.tile && (b->metric != KNN_COSINE || qcopy) &&
        (threads == 1 || p)) {
        row_norms(qn, j.q, nq, b->dim);
        if (p) {
            vit_set_threads(1);
            pool_run(p, search_part, &j);
        } else {
            search_part(&j, 0, 1);
        }
        /* merge: the k smallest of every worker's k, ties to the lower bank row */
        for (int i = 0; i < nq; i++) {
            float *d = dist + (size_t)i * k;
            int *x = idx + (size_t)i * k;
            memcpy(d, j.dist + (size_t)i * k, sizeof(float) * k);
            memcpy(x, j.idx + (size_t)i * k, sizeof(int) * k);
            for (int w = 1; w < threads; w++)
                for (int r = 0; r < k; r++) {
                    size_t o = ((size_t)w * nq + i) * k + r;
                    if (j.idx[o] >= 0) keep_smallest(d, x, k, j.dist[o], j.idx[o]);
                }
        }
        rc = 0;
    }
    pool_destroy(p);
    free(qcopy), free(qn), free(j.dist), free(j.idx), free(j.tile);
    return rc;
}

int knn_score(const struct knn_bank *b, const float *q, int nq, int k, bool exclude_self,
              float *scores)
{
    if (k < 1 || k > b->n - (exclude_self ? 1 : 0) || (exclude_self && nq != b->n)) return -1;
    float *dist = malloc(sizeof(float) * (size_t)nq * k);
    int *idx = malloc(sizeof(int) * (size_t)nq * k);
    int rc = dist && idx ? knn_search(b, q, nq, k, exclude_self, 1, dist, idx) : -1;
    for (int i = 0; !rc && i < nq; i++) {
        double sum = 0.0;
        for (int j = 0; j < k; j++) {
            float d2 = dist[(size_t)i * k + j];
            sum += b->metric == KNN_COSINE ? 0.5 * d2 : sqrt(d2);
        }
        scores[i] = (float)(sum / k);
    }
    free(dist), free(idx);
    return rc;
}

int knn_metric_parse(const char *s, enum knn_metric *out)
{
    if (strcmp(s, "l2") == 0)
        *out = KNN_L2;
    else if (strcmp(s, "cosine") == 0)
        *out = KNN_COSINE;
    else
        return -1;
    return 0;
}
