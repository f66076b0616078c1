/* barlow.c — the Barlow Twins redundancy-reduction loss on two views' projections (ssl.h). */
#include "ssl.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"

int barlow_loss(const float *z, float *dz, int B, int K, float lambda, double *loss)
{
    size_t BK = (size_t)B * K;
    float *y = malloc(sizeof(float) * (4 * BK + 2 * (size_t)K + (size_t)K * K));
    if (!y) return -1;
    float *dy = y + 2 * BK, *rstd = dy + 2 * BK, *c = rstd + 2 * K;
    ssl_standardise(z, y, rstd, B, K);
    ssl_standardise(z + BK, y + BK, rstd + K, B, K);
    gemm(true, false, K, K, B, 1.0f / B, y, K, y + BK, K, 0.0f, c, K);
    /* the loss, then c becomes its gradient G = d loss / d c in place */
    double on = 0, off = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            float *v = &c[(size_t)i * K + j];
            if (i == j) {
                on += (1.0 - *v) * (1.0 - *v);
                *v = -2.0f * (1.0f - *v);
            } else {
                off += (double)*v * *v;
                *v *= 2.0f * lambda;
            }
        }
    *loss = on + lambda * off;
    /* c_ij = Σ_b y0_bi y1_bj / B: dy0 = y1 Gᵀ / B, dy1 = y0 G / B */
    gemm(false, true, B, K, K, 1.0f / B, y + BK, K, c, K, 0.0f, dy, K);
    gemm(false, false, B, K, K, 1.0f / B, y, K, c, K, 0.0f, dy + BK, K);
    ssl_standardise_backward(dz, dy, y, rstd, B, K);
    ssl_standardise_backward(dz + BK, dy + BK, y + BK, rstd + K, B, K);
    free(y);
    return 0;
}
