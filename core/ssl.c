/* ssl.c — the method names, BYOL's predictor and the embedding-spread monitor (ssl.h). */
#include "ssl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

static const char *const method_names[SSL_METHODS] = {"dino", "byol", "barlow", "simclr"};

const char *ssl_method_name(enum ssl_method m)
{
    return (unsigned)m < SSL_METHODS ? method_names[m] : "dino";
}

int ssl_method_parse(const char *s, enum ssl_method *out)
{
    for (int i = 0; s && i < SSL_METHODS; i++)
        if (strcmp(s, method_names[i]) == 0) {
            *out = (enum ssl_method)i;
            return 0;
        }
    return -1;
}

bool ssl_method_has_teacher(enum ssl_method m)
{
    return m == SSL_DINO || m == SSL_BYOL;
}

bool ssl_method_uses_locals(enum ssl_method m)
{
    return m == SSL_DINO || m == SSL_BYOL;
}

void ssl_standardise(const float *x, float *y, float *rstd, int B, int K)
{
    for (int k = 0; k < K; k++) {
        double mean = 0, var = 0;
        for (int b = 0; b < B; b++) mean += x[(size_t)b * K + k];
        mean /= B;
        for (int b = 0; b < B; b++) {
            double d = x[(size_t)b * K + k] - mean;
            var += d * d;
        }
        double r = 1.0 / sqrt(var / B + SSL_BN_EPS);
        rstd[k] = (float)r;
        for (int b = 0; b < B; b++)
            y[(size_t)b * K + k] = (float)((x[(size_t)b * K + k] - mean) * r);
    }
}

void ssl_standardise_backward(float *dx, const float *dy, const float *y, const float *rstd, int B,
                              int K)
{
    for (int k = 0; k < K; k++) {
        double m = 0, my = 0;
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * K + k;
            m += dy[i], my += (double)dy[i] * y[i];
        }
        m /= B, my /= B;
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * K + k;
            dx[i] = (float)(rstd[k] * (dy[i] - m - y[i] * my));
        }
    }
}

void ssl_predictor_forward(float *p, float *pre, float *act, const float *z, const float *w1,
                           const float *b1, const float *w2, const float *b2, int N, int K, int H)
{
    linear_forward(pre, z, w1, b1, N, K, H);
    gelu_forward(act, pre, (size_t)N * H);
    linear_forward(p, act, w2, b2, N, H, K);
}

void ssl_predictor_backward(float *dz, float *dw1, float *db1, float *dw2, float *db2,
                            float *scratch, const float *dp, const float *z, const float *pre,
                            const float *act, const float *w1, const float *w2, int N, int K, int H)
{
    size_t n = (size_t)N * H;
    float *dact = scratch, *dpre = scratch + n;
    memset(scratch, 0, sizeof(float) * 2 * n);
    linear_backward(dact, dw2, db2, dp, act, w2, N, H, K);
    gelu_backward(dpre, pre, dact, n);
    linear_backward(dz, dw1, db1, dpre, z, w1, N, K, H);
}

double ssl_embed_std(const float *z, int n, int K)
{
    double *sum = calloc((size_t)2 * K, sizeof *sum);
    if (!sum) return NAN;
    double *sq = sum + K;
    for (int r = 0; r < n; r++) {
        const float *x = z + (size_t)r * K;
        double norm = 0;
        for (int k = 0; k < K; k++) norm += (double)x[k] * x[k];
        double inv = 1.0 / fmax(sqrt(norm), 1e-12);
        for (int k = 0; k < K; k++) {
            double u = x[k] * inv;
            sum[k] += u, sq[k] += u * u;
        }
    }
    double std = 0;
    for (int k = 0; k < K; k++) {
        double mean = sum[k] / n;
        std += sqrt(fmax(sq[k] / n - mean * mean, 0.0));
    }
    free(sum);
    return std / K;
}
