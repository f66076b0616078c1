/* layers.c — forward/backward kernels of the ViT: GEMMs go to gemm.h's backend, the memory-bound
 * rest is plain loops written so that gcc vectorises them. */
#include "layers.h"

#include "fastmath.h"
#include "gemm.h"

#include <math.h>
#include <string.h>

void linear_forward(float *out, const float *in, const float *w, const float *b, int N, int IC,
                    int OC)
{
    float beta = 0.0f;
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, sizeof(float) * (size_t)OC);
        beta = 1.0f;
    }
    gemm(false, true, N, OC, IC, 1.0f, in, IC, w, IC, beta, out, OC);
}

void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int IC, int OC)
{
    if (din) gemm(false, false, N, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, din, IC);
    gemm(true, false, OC, IC, N, 1.0f, dout, OC, in, IC, 1.0f, dw, IC);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) db[o] += row[o];
        }
    }
}

/* Σ x[i] and Σ (x[i] - m)² of one row, in FM_LANES partial sums. */
static float row_sum(const float *x, int C)
{
    float acc[FM_LANES] = {0}, s = 0.0f;
    int i = 0;
    for (; i + FM_LANES <= C; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) acc[l] += x[i + l];
    for (; i < C; i++) s += x[i];
    for (int l = 0; l < FM_LANES; l++) s += acc[l];
    return s;
}

static float row_sq_dev(const float *x, float m, int C)
{
    float acc[FM_LANES] = {0}, s = 0.0f;
    int i = 0;
    for (; i + FM_LANES <= C; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) {
            float d = x[i + l] - m;
            acc[l] += d * d;
        }
    for (; i < C; i++) s += (x[i] - m) * (x[i] - m);
    for (int l = 0; l < FM_LANES; l++) s += acc[l];
    return s;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *in, const float *w,
                       const float *b, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float m = row_sum(x, C) / (float)C;
        float v = row_sq_dev(x, m, C) / (float)C;
        float s = 1.0f / sqrtf(v + LAYERS_LN_EPS);
        for (int i = 0; i < C; i++) y[i] = (x[i] - m) * s * w[i] + b[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, const float *mean, const float *rstd, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = din + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        float acc_g[FM_LANES] = {0}, acc_gx[FM_LANES] = {0}, sum_g = 0.0f, sum_gx = 0.0f;
        int i = 0;
        for (; i + FM_LANES <= C; i += FM_LANES)
            for (int l = 0; l < FM_LANES; l++) {
                float xhat = (x[i + l] - m) * s;
                float g = dy[i + l] * w[i + l];
                acc_g[l] += g;
                acc_gx[l] += g * xhat;
                dw[i + l] += dy[i + l] * xhat;
                db[i + l] += dy[i + l];
            }
        for (; i < C; i++) {
            float xhat = (x[i] - m) * s;
            float g = dy[i] * w[i];
            sum_g += g;
            sum_gx += g * xhat;
            dw[i] += dy[i] * xhat;
            db[i] += dy[i];
        }
        for (int l = 0; l < FM_LANES; l++) sum_g += acc_g[l], sum_gx += acc_gx[l];
        sum_g /= (float)C;
        sum_gx /= (float)C;
        for (i = 0; i < C; i++) {
            float xhat = (x[i] - m) * s;
            dx[i] += s * (dy[i] * w[i] - sum_g - xhat * sum_gx);
        }
    }
}

#define INV_SQRT2    0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

void gelu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * in[i] * (1.0f + fm_erff(in[i] * INV_SQRT2));
}

void gelu_backward(float *din, const float *in, const float *dout, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float x = in[i], u = x * INV_SQRT2;
        float e = fm_expf(-u * u); /* exp(-x²/2): the density's, and erf's */
        float cdf = 0.5f * (1.0f + fm_erff_exp(u, e));
        float pdf = INV_SQRT_2PI * e;
        din[i] += dout[i] * (cdf + x * pdf);
    }
}

static float row_max(const float *x, int n)
{
    float acc[FM_LANES], mx = x[0];
    for (int l = 0; l < FM_LANES; l++) acc[l] = x[0];
    int i = 0;
    for (; i + FM_LANES <= n; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int l = 0; l < FM_LANES; l++) mx = acc[l] > mx ? acc[l] : mx;
    return mx;
}

static float row_dot(const float *a, const float *b, int n)
{
    float acc[FM_LANES] = {0}, s = 0.0f;
    int i = 0;
    for (; i + FM_LANES <= n; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) acc[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < FM_LANES; l++) s += acc[l];
    return s;
}

/* The exponentials in a loop of their own (a sum beside them would keep it scalar). */
static void softmax_rows(float *s, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        float *row = s + (size_t)r * cols;
        float mx = row_max(row, cols);
        for (int j = 0; j < cols; j++) row[j] = fm_expf(row[j] - mx);
        float inv = 1.0f / row_sum(row, cols);
        for (int j = 0; j < cols; j++) row[j] *= inv;
    }
}

void attention_forward(float *out, float *probs, const float *qkv, int B, int T, int C, int H)
{
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)b * T * 3 * C + (size_t)h * hs;
            const float *k = q + C;
            const float *v = q + 2 * C;
            float *p = probs + ((size_t)b * H + h) * T * T;
            float *o = out + (size_t)b * T * C + (size_t)h * hs;
            gemm(false, true, T, T, hs, scale, q, 3 * C, k, 3 * C, 0.0f, p, T);
            softmax_rows(p, T, T);
            gemm(false, false, T, hs, T, 1.0f, p, T, v, 3 * C, 0.0f, o, C);
        }
    }
}

void attention_backward(float *dqkv, float *dprobs, const float *dout, const float *qkv,
                        const float *probs, int B, int T, int C, int H)
{
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            size_t off = (size_t)b * T * 3 * C + (size_t)h * hs;
            const float *q = qkv + off, *k = q + C, *v = q + 2 * C;
            float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
            const float *p = probs + ((size_t)b * H + h) * T * T;
            const float *dO = dout + (size_t)b * T * C + (size_t)h * hs;
            gemm(false, true, T, T, hs, 1.0f, dO, C, v, 3 * C, 0.0f, dprobs, T);
            gemm(true, false, T, hs, T, 1.0f, p, T, dO, C, 1.0f, dv, 3 * C);
            for (int i = 0; i < T; i++) {
                const float *pr = p + (size_t)i * T;
                float *dr = dprobs + (size_t)i * T;
                float dot = row_dot(pr, dr, T);
                for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - dot);
            }
            gemm(false, false, T, hs, T, scale, dprobs, T, k, 3 * C, 1.0f, dq, 3 * C);
            gemm(true, false, T, hs, T, scale, dprobs, T, q, 3 * C, 1.0f, dk, 3 * C);
        }
    }
}

void im2col_patches(float *cols, const float *img, int B, int Cin, int Himg, int Wimg, int P)
{
    int gh = Himg / P, gw = Wimg / P;
    size_t rowlen = (size_t)Cin * P * P;
    for (int b = 0; b < B; b++) {
        for (int gy = 0; gy < gh; gy++) {
            for (int gx = 0; gx < gw; gx++) {
                float *row = cols + (((size_t)b * gh + gy) * gw + gx) * rowlen;
                for (int c = 0; c < Cin; c++) {
                    const float *plane = img + ((size_t)b * Cin + c) * Himg * Wimg;
                    for (int ky = 0; ky < P; ky++) {
                        const float *src = plane + (size_t)(gy * P + ky) * Wimg + gx * P;
                        memcpy(row + ((size_t)c * P + ky) * P, src, sizeof(float) * (size_t)P);
                    }
                }
            }
        }
    }
}

/* PyTorch's cubic convolution kernel with A = -0.75. */
static float cubic1(float x, float A)
{
    return ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
}

static float cubic2(float x, float A)
{
    return ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

void bicubic_weights(float *w, int gout, int n, double scale)
{
    const float A = -0.75f;
    float inv = (float)(1.0 / scale);
    memset(w, 0, sizeof(float) * (size_t)gout * n);
    for (int o = 0; o < gout; o++) {
        float real = inv * ((float)o + 0.5f) - 0.5f;
        float fl = floorf(real);
        float t = real - fl;
        float c[4] = {cubic2(t + 1.0f, A), cubic1(t, A), cubic1(1.0f - t, A), cubic2(2.0f - t, A)};
        for (int i = 0; i < 4; i++) {
            int idx = (int)fl - 1 + i;
            idx = idx < 0 ? 0 : (idx > n - 1 ? n - 1 : idx);
            w[(size_t)o * n + idx] += c[i];
        }
    }
}

void pos_resample_forward(float *out, const float *in, const float *wy, const float *wx, int n,
                          int gh, int gw, int D)
{
    memset(out, 0, sizeof(float) * (size_t)gh * gw * D);
    for (int oy = 0; oy < gh; oy++) {
        for (int ox = 0; ox < gw; ox++) {
            float *o = out + ((size_t)oy * gw + ox) * D;
            for (int iy = 0; iy < n; iy++) {
                float a = wy[(size_t)oy * n + iy];
                if (a == 0.0f) continue;
                for (int ix = 0; ix < n; ix++) {
                    float c = a * wx[(size_t)ox * n + ix];
                    if (c == 0.0f) continue;
                    const float *src = in + ((size_t)iy * n + ix) * D;
                    for (int d = 0; d < D; d++) o[d] += c * src[d];
                }
            }
        }
    }
}

void pos_resample_backward(float *din, const float *dout, const float *wy, const float *wx, int n,
                           int gh, int gw, int D)
{
    for (int oy = 0; oy < gh; oy++) {
        for (int ox = 0; ox < gw; ox++) {
            const float *g = dout + ((size_t)oy * gw + ox) * D;
            for (int iy = 0; iy < n; iy++) {
                float a = wy[(size_t)oy * n + iy];
                if (a == 0.0f) continue;
                for (int ix = 0; ix < n; ix++) {
                    float c = a * wx[(size_t)ox * n + ix];
                    if (c == 0.0f) continue;
                    float *dst = din + ((size_t)iy * n + ix) * D;
                    for (int d = 0; d < D; d++) dst[d] += c * g[d];
                }
            }
        }
    }
}

#define L2_EPS 1e-12f

void l2norm_forward(float *out, float *norms, const float *in, int N, int C)
{
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        float *y = out + (size_t)n * C;
        float ss = 0.0f;
        for (int i = 0; i < C; i++) ss += x[i] * x[i];
        float nrm = sqrtf(ss);
        norms[n] = nrm;
        float inv = 1.0f / (nrm > L2_EPS ? nrm : L2_EPS);
        for (int i = 0; i < C; i++) y[i] = x[i] * inv;
    }
}

void l2norm_backward(float *din, const float *dout, const float *out, const float *norms, int N,
                     int C)
{
    for (int n = 0; n < N; n++) {
        const float *y = out + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = din + (size_t)n * C;
        if (norms[n] > L2_EPS) {
            float dot = 0.0f;
            for (int i = 0; i < C; i++) dot += y[i] * dy[i];
            float inv = 1.0f / norms[n];
            for (int i = 0; i < C; i++) dx[i] += (dy[i] - y[i] * dot) * inv;
        } else {
            for (int i = 0; i < C; i++) dx[i] += dy[i] / L2_EPS;
        }
    }
}

void weightnorm_forward(float *w, float *vnorm, const float *v, const float *g, int K, int C)
{
    for (int k = 0; k < K; k++) {
        const float *vr = v + (size_t)k * C;
        float ss = 0.0f;
        for (int i = 0; i < C; i++) ss += vr[i] * vr[i];
        vnorm[k] = sqrtf(ss);
        float s = g[k] / vnorm[k];
        float *wr = w + (size_t)k * C;
        for (int i = 0; i < C; i++) wr[i] = vr[i] * s;
    }
}

void weightnorm_backward(float *dv, float *dg, const float *dw, const float *v, const float *g,
                         const float *vnorm, int K, int C)
{
    for (int k = 0; k < K; k++) {
        const float *vr = v + (size_t)k * C;
        const float *dwr = dw + (size_t)k * C;
        float inv = 1.0f / vnorm[k];
        float dot = 0.0f; /* v̂ · dw */
        for (int i = 0; i < C; i++) dot += vr[i] * inv * dwr[i];
        if (dg) dg[k] += dot;
        float s = g[k] * inv;
        float *dvr = dv + (size_t)k * C;
        for (int i = 0; i < C; i++) dvr[i] += s * (dwr[i] - vr[i] * inv * dot);
    }
}
