/* byol.c — BYOL's normalised-MSE loss between online predictions and target projections, over
 * the pairs of different crops of each image (ssl.h). */
#include "ssl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Row r of x (K) scaled to unit length into u; returns the length used (at least 1e-12). */
static double unit(const float *x, int K, double *u)
{
    double n = 0;
    for (int k = 0; k < K; k++) n += (double)x[k] * x[k];
    n = fmax(sqrt(n), 1e-12);
    for (int k = 0; k < K; k++) u[k] = x[k] / n;
    return n;
}

int byol_loss(const float *target, const float *pred, float *dpred, int B, int n_teacher,
              int n_student, int K, double *loss)
{
    double *zt = malloc(sizeof(double) * ((size_t)n_teacher * B + 2) * K);
    if (!zt) return -1;
    double *u = zt + (size_t)n_teacher * B * K, *g = u + K;
    for (long r = 0; r < (long)n_teacher * B; r++) unit(target + (size_t)r * K, K, zt + r * K);
    /* pairs per image: every student crop with every teacher crop but itself */
    long pairs = (long)n_student * n_teacher - (n_student < n_teacher ? n_student : n_teacher);
    double scale = 1.0 / ((double)pairs * B), total = 0;
    for (int i = 0; i < n_student; i++)
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)i * B + b;
            double norm = unit(pred + r * K, K, u);
            memset(g, 0, sizeof(double) * K);
            for (int j = 0; j < n_teacher; j++) {
                if (j == i) continue;
                const double *z = zt + ((size_t)j * B + b) * K;
                double cos = 0;
                for (int k = 0; k < K; k++) cos += u[k] * z[k];
                total += 2.0 - 2.0 * cos;
                /* d(−2 cos)/dp = −2 (ẑ − cos·û) / ‖p‖ */
                for (int k = 0; k < K; k++) g[k] += z[k] - cos * u[k];
            }
            for (int k = 0; k < K; k++) dpred[r * K + k] = (float)(-2.0 * scale * g[k] / norm);
        }
    *loss = total * scale;
    free(zt);
    return 0;
}
