/* auroc.c — Mann-Whitney U with average ranks for ties. */
#include "auroc.h"

#include <stdlib.h>

struct item {
    float s;
    unsigned char pos;
};

static int by_score(const void *a, const void *b)
{
    float x = ((const struct item *)a)->s, y = ((const struct item *)b)->s;
    return (x > y) - (x < y);
}

double auroc(const float *score, const unsigned char *label, size_t n)
{
    struct item *it = malloc(sizeof *it * (n ? n : 1));
    if (!it) return -1.0;
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        it[i].s = score[i];
        it[i].pos = label[i] != 0;
        npos += it[i].pos;
    }
    size_t nneg = n - npos;
    if (!npos || !nneg) {
        free(it);
        return -1.0;
    }
    qsort(it, n, sizeof *it, by_score);
    double rank_sum = 0.0; /* sum of the positives' ranks, ranks from 1 */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        size_t pos_in_tie = 0;
        while (j < n && it[j].s == it[i].s) pos_in_tie += it[j++].pos;
        double avg_rank = 0.5 * (double)(i + 1 + j); /* mean of ranks i+1 .. j */
        rank_sum += avg_rank * (double)pos_in_tie;
        i = j;
    }
    free(it);
    double u = rank_sum - (double)npos * (double)(npos + 1) / 2.0;
    return u / ((double)npos * (double)nneg);
}
