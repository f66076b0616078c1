/* dino.c — the DINO loss and its centre. */
#include "dino.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* out = softmax(scale · (x − shift)) for one row; returns log Σ exp (of the scaled, shifted row,
 * before normalising) so callers can form log-probabilities. */
static double softmax_row(float *out, const float *x, const float *shift, float scale, int K)
{
    float mx = -INFINITY;
    for (int k = 0; k < K; k++) {
        out[k] = (x[k] - (shift ? shift[k] : 0.0f)) * scale;
        mx = out[k] > mx ? out[k] : mx;
    }
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        out[k] = expf(out[k] - mx);
        sum += out[k];
    }
    float inv = (float)(1.0 / sum);
    for (int k = 0; k < K; k++) out[k] *= inv;
    return mx + log(sum);
}

int dino_loss(const float *teacher, const float *student, const float *center, float *dstudent,
              int B, int n_teacher, int n_student, int K, float tau_t, float tau_s,
              struct dino_stats *stats)
{
    float *q = malloc(sizeof(float) * ((size_t)n_teacher * B * K + 3 * (size_t)K));
    if (!q) return -1;
    float *p = q + (size_t)n_teacher * B * K, *prior = p + K, *zeros = prior + K;
    /* the centre's own distribution softmax(−center/τt): what a collapsed teacher would give */
    memset(zeros, 0, sizeof(float) * (size_t)K);
    softmax_row(prior, zeros, center, 1.0f / tau_t, K);
    double entropy = 0.0, kl = 0.0;
    for (int r = 0; r < n_teacher * B; r++) {
        float *qr = q + (size_t)r * K;
        softmax_row(qr, teacher + (size_t)r * K, center, 1.0f / tau_t, K);
        for (int k = 0; k < K; k++) {
            if (qr[k] <= 0.0f) continue;
            entropy -= qr[k] * log(qr[k]);
            kl += qr[k] * (log(qr[k]) - log(fmax(prior[k], 1e-30)));
        }
    }
    int pairs = n_teacher * n_student - (n_teacher < n_student ? n_teacher : n_student);
    double loss = 0.0;
    float g = 1.0f / ((float)pairs * (float)B * tau_s);
    for (int v = 0; v < n_student; v++) {
        int partners = n_teacher - (v < n_teacher ? 1 : 0);
        for (int b = 0; b < B; b++) {
            size_t row = ((size_t)v * B + b) * K;
            double lse = softmax_row(p, student + row, NULL, 1.0f / tau_s, K);
            float *ds = dstudent + row;
            for (int k = 0; k < K; k++) ds[k] = (float)partners * p[k];
            for (int i = 0; i < n_teacher; i++) {
                if (i == v) continue;
                const float *qr = q + ((size_t)i * B + b) * K;
                const float *sr = student + row;
                double ce = 0.0;
                for (int k = 0; k < K; k++) {
                    ce -= qr[k] * (sr[k] / tau_s - lse);
                    ds[k] -= qr[k];
                }
                loss += ce;
            }
            for (int k = 0; k < K; k++) ds[k] *= g;
        }
    }
    if (stats) {
        stats->loss = loss / ((double)pairs * B);
        stats->teacher_entropy = entropy / ((double)n_teacher * B);
        stats->teacher_kl = kl / ((double)n_teacher * B);
    }
    free(q);
    return 0;
}

void dino_center_update(float *center, const float *teacher, int rows, int K, float momentum)
{
    for (int k = 0; k < K; k++) {
        double sum = 0.0;
        for (int r = 0; r < rows; r++) sum += teacher[(size_t)r * K + k];
        center[k] = center[k] * momentum + (float)(sum / rows) * (1.0f - momentum);
    }
}
