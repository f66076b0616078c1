/* layers.h — the ViT's building blocks as forward/backward pairs on explicit buffers.
 *
 * Conventions: row-major float32; N is a number of rows (tokens or images), shapes are written
 * next to every argument. Forward functions overwrite their outputs. Backward functions ADD into
 * every gradient they produce (din, dweight, dbias), so callers zero gradients once and several
 * passes (global and local crops) accumulate. Pointers may be NULL only where a comment says so.
 * Nothing here allocates, logs or fails: wrong sizes are caller bugs. */
#ifndef INSPECTD_LAYERS_H
#define INSPECTD_LAYERS_H

#include <stddef.h>

#define LAYERS_LN_EPS 1e-6f

/* out = in · wᵀ + b */
void linear_forward(float *out,      /* (N, OC) */
                    const float *in, /* (N, IC) */
                    const float *w,  /* (OC, IC) */
                    const float *b,  /* (OC) or NULL */
                    int N, int IC, int OC);
/* din may be NULL (input needs no gradient); db may be NULL (no bias). */
void linear_backward(float *din,        /* (N, IC) */
                     float *dw,         /* (OC, IC) */
                     float *db,         /* (OC) */
                     const float *dout, /* (N, OC) */
                     const float *in,   /* (N, IC) */
                     const float *w,    /* (OC, IC) */
                     int N, int IC, int OC);

void layernorm_forward(float *out,      /* (N, C) */
                       float *mean,     /* (N) saved for backward */
                       float *rstd,     /* (N) saved for backward */
                       const float *in, /* (N, C) */
                       const float *w,  /* (C) */
                       const float *b,  /* (C) */
                       int N, int C);
void layernorm_backward(float *din,        /* (N, C) */
                        float *dw,         /* (C) */
                        float *db,         /* (C) */
                        const float *dout, /* (N, C) */
                        const float *in,   /* (N, C) */
                        const float *w,    /* (C) */
                        const float *mean, /* (N) */
                        const float *rstd, /* (N) */
                        int N, int C);

/* GELU, erf form: x/2 · (1 + erf(x/√2)). */
void gelu_forward(float *out, const float *in, size_t n);
void gelu_backward(float *din, const float *in, const float *dout, size_t n);

/* Multi-head self-attention core (after the qkv projection, before the output projection).
 * qkv rows hold [q | k | v], each split into H heads of C/H. probs keeps the softmax for backward.
 */
void attention_forward(float *out,       /* (B, T, C) */
                       float *probs,     /* (B, H, T, T) */
                       const float *qkv, /* (B, T, 3C) */
                       int B, int T, int C, int H);
void attention_backward(float *dqkv,        /* (B, T, 3C) */
                        float *dprobs,      /* (T, T) scratch, one head at a time */
                        const float *dout,  /* (B, T, C) */
                        const float *qkv,   /* (B, T, 3C) */
                        const float *probs, /* (B, H, T, T) */
                        int B, int T, int C, int H);

/* Patch embedding's im2col: (B, Cin, Himg, Wimg) images to (B·gh·gw, Cin·P·P) rows, each row in
 * the conv weight's (c, ky, kx) order, tokens in row-major grid order. */
void im2col_patches(float *cols,      /* (B*gh*gw, Cin*P*P) */
                    const float *img, /* (B, Cin, Himg, Wimg) */
                    int B, int Cin, int Himg, int Wimg, int P);

/* Bicubic resampling of a square grid of position embeddings, exactly as PyTorch's
 * F.interpolate(mode="bicubic", align_corners=False, scale_factor=s) with s = (g + 0.1) / n (the
 * offset DINO adds). The resampling is linear: weights (gout, n) are precomputed once per grid
 * size, and out[oy, ox] = Σ wy[oy, iy] · wx[ox, ix] · in[iy, ix]. */
void bicubic_weights(float *w, /* (gout, n) */ int gout, int n, double scale);
void pos_resample_forward(float *out,      /* (gh*gw, D) */
                          const float *in, /* (n*n, D) */
                          const float *wy, /* (gh, n) */
                          const float *wx, /* (gw, n) */
                          int n, int gh, int gw, int D);
void pos_resample_backward(float *din,        /* (n*n, D) */
                           const float *dout, /* (gh*gw, D) */
                           const float *wy, const float *wx, int n, int gh, int gw, int D);

/* Row-wise L2 normalisation, y = x / max(‖x‖, 1e-12) (F.normalize). */
void l2norm_forward(float *out, float *norms /* (N) */, const float *in, int N, int C);
void l2norm_backward(float *din, const float *dout, const float *out, const float *norms, int N,
                     int C);

/* Weight normalisation of a (K, C) matrix: w = g · v / ‖v_row‖ (PyTorch weight_norm, dim 0). */
void weightnorm_forward(float *w, float *vnorm /* (K) */, const float *v, const float *g, int K,
                        int C);
/* dv: (K, C), dg: (K) or NULL when g is frozen. */
void weightnorm_backward(float *dv, float *dg, const float *dw, const float *v, const float *g,
                         const float *vnorm, int K, int C);

#endif
