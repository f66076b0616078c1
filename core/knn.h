/* knn.h — exact k-nearest-neighbour scoring against a memory bank of embeddings.
 * Distances come from one sgemm per block of queries (‖q‖² + ‖b‖² − 2 q·b, norms precomputed);
 * a query's score is the mean distance to its k nearest bank rows. For the cosine metric the bank
 * and the queries are L2-normalised and the distance is 1 − cos. */
#ifndef INSPECTD_KNN_H
#define INSPECTD_KNN_H

#include <stdbool.h>

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

/* Parses "l2" or "cosine". Returns 0 or -1. */
int knn_metric_parse(const char *s, enum knn_metric *out);

#endif
