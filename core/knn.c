/* knn.c — blocked exact k-NN on sgemm. */
#include "knn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KNN_BLOCK 256

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

/* Keeps the k smallest values seen, sorted ascending, in best[0..k). */
static void keep_smallest(float *best, int k, float v)
{
    if (v >= best[k - 1]) return;
    int i = k - 1;
    while (i > 0 && best[i - 1] > v) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = v;
}

int knn_score(const struct knn_bank *b, const float *q, int nq, int k, bool exclude_self,
              float *scores)
{
    if (k < 1 || k > b->n - (exclude_self ? 1 : 0) || (exclude_self && nq != b->n)) return -1;
    int blk = nq < KNN_BLOCK ? nq : KNN_BLOCK;
    float *dots = malloc(sizeof(float) * (size_t)blk * b->n);
    float *qb = malloc(sizeof(float) * (size_t)blk * b->dim);
    float *qn = malloc(sizeof(float) * (size_t)blk);
    float *best = malloc(sizeof(float) * (size_t)k);
    if (!dots || !qb || !qn || !best) {
        free(dots), free(qb), free(qn), free(best);
        return -1;
    }
    for (int q0 = 0; q0 < nq; q0 += blk) {
        int m = nq - q0 < blk ? nq - q0 : blk;
        memcpy(qb, q + (size_t)q0 * b->dim, sizeof(float) * (size_t)m * b->dim);
        if (b->metric == KNN_COSINE) normalise_rows(qb, m, b->dim);
        row_norms(qn, qb, m, b->dim);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, b->n, b->dim, 1.0f, qb, b->dim,
                    b->x, b->dim, 0.0f, dots, b->n);
        for (int i = 0; i < m; i++) {
            const float *d = dots + (size_t)i * b->n;
            for (int j = 0; j < k; j++) best[j] = INFINITY;
            for (int j = 0; j < b->n; j++) {
                if (exclude_self && j == q0 + i) continue;
                float d2 = qn[i] + b->norm2[j] - 2.0f * d[j];
                keep_smallest(best, k, d2 > 0.0f ? d2 : 0.0f);
            }
            double sum = 0.0;
            for (int j = 0; j < k; j++)
                sum += b->metric == KNN_COSINE ? 0.5 * best[j] : sqrt(best[j]);
            scores[q0 + i] = (float)(sum / k);
        }
    }
    free(dots), free(qb), free(qn), free(best);
    return 0;
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
