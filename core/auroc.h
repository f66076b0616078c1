/* auroc.h — area under the ROC curve from scores and binary labels (rank statistic). */
#ifndef INSPECTD_AUROC_H
#define INSPECTD_AUROC_H

#include <stddef.h>

/* AUROC of `score` ranking positives (label != 0) above negatives: the probability that a random
 * positive scores higher than a random negative, ties counting one half (average ranks).
 * Returns a value in [0, 1], or -1 when a class is empty or memory runs out. */
double auroc(const float *score, const unsigned char *label, size_t n);

#endif
