/* knn.c — blocked exact k-NN on sgemm. */
#include "knn.h"

#include <assert.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"
#include "rng.h"

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
            gemm_f32(false, true, m, nb, b->dim, 1.0f, qx, b->dim, bx, b->dim, 0.0f, tile, nb);
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
            gemm_set_threads(1);
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

int knn_patch_score(const struct knn_bank *b, const float *tokens, int nq, int T, float top_q,
                    int threads, float *image_scores, float *patch_scores)
{
    size_t np = (size_t)nq * T;
    float *dist = malloc(sizeof(float) * np), *sorted = malloc(sizeof(float) * (size_t)T);
    int *idx = malloc(sizeof(int) * np);
    int rc =
        dist && idx && sorted ? knn_search(b, tokens, (int)np, 1, false, threads, dist, idx) : -1;
    int top = top_q > 0.0f ? (int)ceilf(top_q * (float)T) : 1;
    if (top < 1) top = 1;
    if (top > T) top = T;
    for (int i = 0; !rc && i < nq; i++) {
        float *d = dist + (size_t)i * T;
        for (int t = 0; t < T; t++) d[t] = b->metric == KNN_COSINE ? 0.5f * d[t] : sqrtf(d[t]);
        if (patch_scores) memcpy(patch_scores + (size_t)i * T, d, sizeof(float) * (size_t)T);
        memcpy(sorted, d, sizeof(float) * (size_t)T);
        /* partial selection sort of the `top` largest: T is a few hundred at most */
        double sum = 0;
        for (int r = 0; r < top; r++) {
            int best = r;
            for (int t = r + 1; t < T; t++)
                if (sorted[t] > sorted[best]) best = t;
            float v = sorted[best];
            sorted[best] = sorted[r], sorted[r] = v;
            sum += v;
        }
        image_scores[i] = (float)(sum / top);
    }
    free(dist), free(idx), free(sorted);
    return rc;
}

struct coreset_job {
    const float *p; /* (n, d) rows in the space distances are taken in */
    int n, d;
    float *mind;    /* (n) squared distance to the nearest chosen row */
    const float *c; /* the row just chosen */
    int *arg;       /* (nworkers) each worker's farthest row after the update */
};

static void coreset_part(void *arg, int w, int nw)
{
    struct coreset_job *j = arg;
    long begin, end;
    pool_share(j->n, w, nw, &begin, &end);
    int far = (int)begin;
    for (long i = begin; i < end; i++) {
        const float *r = j->p + (size_t)i * j->d;
        float d2 = 0.0f;
        for (int c = 0; c < j->d; c++) d2 += (r[c] - j->c[c]) * (r[c] - j->c[c]);
        if (d2 < j->mind[i]) j->mind[i] = d2;
        if (j->mind[i] > j->mind[far]) far = (int)i;
    }
    j->arg[w] = far;
}

int knn_coreset(const float *x, int n, int dim, int m, int proj_dim, uint64_t seed, int threads,
                int *idx, float *radius)
{
    if (m < 1 || m > n) return -1;
    if (threads < 1) threads = 1;
    int d = proj_dim > 0 && proj_dim < dim ? proj_dim : dim;
    float *proj = d < dim ? malloc(sizeof(float) * (size_t)n * d) : NULL;
    float *R = d < dim ? malloc(sizeof(float) * (size_t)dim * d) : NULL;
    struct coreset_job j = {.n = n, .d = d};
    j.mind = malloc(sizeof(float) * (size_t)n);
    j.arg = malloc(sizeof(int) * (size_t)threads);
    struct pool *p = threads > 1 ? pool_create(threads) : NULL;
    int rc = -1;
    if (!j.mind || !j.arg || (d < dim && (!proj || !R)) || (threads > 1 && !p)) goto done;
    struct rng r = rng_seed(seed, 0x636f7265);
    if (d < dim) {
        float scale = 1.0f / sqrtf((float)d);
        for (size_t i = 0; i < (size_t)dim * d; i++) R[i] = (float)rng_normal(&r) * scale;
        gemm_f32(false, false, n, d, dim, 1.0f, x, dim, R, d, 0.0f, proj, d);
    }
    j.p = d < dim ? proj : x;
    for (int i = 0; i < n; i++) j.mind[i] = INFINITY;
    int pick = (int)(rng_next(&r) % (uint64_t)n);
    for (int s = 0; s < m; s++) {
        idx[s] = pick;
        j.c = j.p + (size_t)pick * d;
        if (p)
            pool_run(p, coreset_part, &j);
        else
            coreset_part(&j, 0, 1);
        pick = j.arg[0];
        for (int w = 1; w < threads; w++)
            if (j.mind[j.arg[w]] > j.mind[pick]) pick = j.arg[w];
    }
    if (radius) *radius = sqrtf(j.mind[pick]);
    rc = 0;
done:
    pool_destroy(p);
    free(proj), free(R), free(j.mind), free(j.arg);
    return rc;
}

int knn_bank_build_coreset(struct knn_bank *b, const float *x, int n, int dim, int max_rows,
                           int threads)
{
    if (n <= max_rows) return knn_bank_build(b, x, n, dim, KNN_L2);
    int *idx = malloc(sizeof(int) * (size_t)max_rows);
    float *rows = malloc(sizeof(float) * (size_t)max_rows * dim);
    int rc = -1;
    if (idx && rows && !knn_coreset(x, n, dim, max_rows, 64, 1, threads, idx, NULL)) {
        for (int i = 0; i < max_rows; i++)
            memcpy(rows + (size_t)i * dim, x + (size_t)idx[i] * dim, sizeof(float) * dim);
        rc = knn_bank_build(b, rows, max_rows, dim, KNN_L2);
    }
    free(idx), free(rows);
    return rc;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int knn_calibrate(const float *normal_scores, int n, double false_alarm_rate, float *threshold)
{
    assert(n >= 1 && false_alarm_rate >= 0.0 && false_alarm_rate < 1.0);
    float *s = malloc(sizeof(float) * (size_t)n);
    if (!s) return -1;
    memcpy(s, normal_scores, sizeof(float) * (size_t)n);
    qsort(s, (size_t)n, sizeof(float), cmp_float);
    double pos = (1.0 - false_alarm_rate) * (n - 1);
    int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    *threshold = (float)(s[lo] + (pos - lo) * (s[hi] - s[lo]));
    free(s);
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
