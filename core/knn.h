/* knn.h — exact k-nearest-neighbour scoring against a memory bank of embeddings.
 * Distances come from one sgemm per block of queries (‖q‖² + ‖b‖² − 2 q·b, norms precomputed);
 * a query's score is the mean distance to its k nearest bank rows. For the cosine metric the bank
 * and the queries are L2-normalised and the distance is 1 − cos. */
#ifndef INSPECTD_KNN_H
#define INSPECTD_KNN_H

#include <stdbool.h>
#include <stdint.h>

enum knn_metric { KNN_L2 = 0, KNN_COSINE };

struct knn_bank {
    int n, dim;
    enum knn_metric metric;
    float *x;     /* (n, dim), normalised rows for cosine */
    float *norm2; /* (n) squared norms */
};

/* Copies x (n, dim) into a bank. Returns 0, or -1 when out of memory or n/dim < 1. */
int knn_bank_build(struct knn_bank *b, const float *x, int n, int dim, enum knn_metric metric);
void knn_bank_free(struct knn_bank *b);

/* scores[i] = mean distance from query i (row of q, (nq, dim)) to its k nearest bank rows
 * (Euclidean for L2, 1 − cos for cosine). With exclude_self, query i is bank row i and is skipped
 * (leave-one-out scoring of the bank itself; needs nq == n). Returns 0, or -1 when out of memory
 * or k is out of [1, n − exclude_self]. */
int knn_score(const struct knn_bank *b, const float *q, int nq, int k, bool exclude_self,
              float *scores);

/* The k nearest bank rows of each query: dist (nq, k) squared Euclidean distances (for cosine:
 * of the normalised rows, = 2 − 2 cos) ascending, idx (nq, k) their bank rows; equal distances
 * keep the lower row first. The bank is split across `threads` workers (single-threaded BLAS
 * each), scanned in tiles of 64 queries × 2048 rows with the selection fused in. With
 * exclude_self, query i is bank row i and is skipped. Returns 0, or -1 when out of memory or k is
 * out of [1, n − exclude_self]. */
int knn_search(const struct knn_bank *b, const float *q, int nq, int k, bool exclude_self,
               int threads, float *dist, int *idx);

/* Patch-level scoring (PatchCore): tokens (nq, T, dim) are the T patch tokens of each of nq
 * images; each patch's score is its distance to the nearest bank row (Euclidean, or 1 − cos),
 * written to patch_scores (nq, T) when not NULL. An image's score is its largest patch score
 * (top_q <= 0) or the mean of its ceil(top_q · T) largest. Returns 0, or -1 when out of memory. */
int knn_patch_score(const struct knn_bank *b, const float *tokens, int nq, int T, float top_q,
                    int threads, float *image_scores, float *patch_scores);

/* Greedy k-centre (farthest point first) choice of m of the n rows of x (n, dim), distances taken
 * on a seeded Gaussian random projection to proj_dim dimensions (the rows themselves when
 * proj_dim <= 0 or >= dim). Starts from a seeded random row; every later pick is the row farthest
 * from those already chosen, so the chosen set covers x within twice the best possible radius.
 * Writes the rows in the order chosen to idx (m) and, when radius is not NULL, the covering
 * radius after the last pick (in the projected space). Returns 0, or -1 when out of memory or m
 * is out of [1, n]. */
int knn_coreset(const float *x, int n, int dim, int m, int proj_dim, uint64_t seed, int threads,
                int *idx, float *radius);

/* A bank of the rows of x (n, dim) with the L2 metric, or of a k-centre coreset of max_rows of
 * them when n > max_rows (knn_coreset on a 64-dimensional projection, seed 1): the memory bank
 * the scorer searches. Returns 0, or -1 when out of memory. */
int knn_bank_build_coreset(struct knn_bank *b, const float *x, int n, int dim, int max_rows,
                           int threads);

/* The flagging threshold from scores of normal items only (e.g. leave-one-out k-NN scores of
 * recent normal frames): the (1 − false_alarm_rate) quantile, linearly interpolated, so about
 * that fraction of normal items scores above it. n >= 1, rate in [0, 1). Returns 0, or -1 when
 * out of memory. */
int knn_calibrate(const float *normal_scores, int n, double false_alarm_rate, float *threshold);

/* Parses "l2" or "cosine". Returns 0 or -1. */
int knn_metric_parse(const char *s, enum knn_metric *out);

#endif
