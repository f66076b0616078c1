/* simclr.c — SimCLR's NT-Xent contrastive loss over a batch's two views (ssl.h). */
#include "ssl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "layers.h"

int simclr_loss(const float *z, float *dz, int B, int K, float tau, double *loss, double *acc)
{
    int N = 2 * B;
    float *u = malloc(sizeof(float) * ((size_t)N * K * 2 + (size_t)N * N * 2 + (size_t)N));
    if (!u) return -1;
    float *du = u + (size_t)N * K, *s = du + (size_t)N * K, *ds = s + (size_t)N * N;
    float *norms = ds + (size_t)N * N;
    l2norm_forward(u, norms, z, N, K);
    gemm(false, true, N, N, K, 1.0f / tau, u, K, u, K, 0.0f, s, N);
    double total = 0;
    int right = 0;
    for (int a = 0; a < N; a++) {
        const float *row = s + (size_t)a * N;
        float *drow = ds + (size_t)a * N;
        int pos = a < B ? a + B : a - B, best = -1;
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < N; k++)
            if (k != a && row[k] > mx) mx = row[k], best = k;
        for (int k = 0; k < N; k++)
            if (k != a) sum += exp(row[k] - mx);
        total += mx + log(sum) - row[pos];
        right += best == pos;
        /* d loss_a / d s_ak = softmax_k − [k = pos], over k ≠ a; averaged over the N rows */
        for (int k = 0; k < N; k++)
            drow[k] =
                k == a ? 0.0f : (float)((exp(row[k] - mx) / sum - (k == pos ? 1.0 : 0.0)) / N);
    }
    *loss = total / N;
    if (acc) *acc = (double)right / N;
    /* s = u uᵀ / τ: du = (ds + dsᵀ) u / τ */
    for (int a = 0; a < N; a++)
        for (int k = a + 1; k < N; k++) {
            float v = ds[(size_t)a * N + k] + ds[(size_t)k * N + a];
            ds[(size_t)a * N + k] = ds[(size_t)k * N + a] = v;
        }
    gemm(false, false, N, K, N, 1.0f / tau, ds, N, u, K, 0.0f, du, K);
    memset(dz, 0, sizeof(float) * (size_t)N * K);
    l2norm_backward(dz, du, u, norms, N, K);
    free(u);
    return 0;
}
