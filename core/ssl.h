/* ssl.h — the self-supervised objectives beside DINO's (dino.h): BYOL (an online predictor
 * regressing an EMA target network's projections), Barlow Twins (the cross-correlation of two
 * views pushed to the identity) and SimCLR (NT-Xent over the batch's two views), with the method
 * names the training knobs take.
 *
 * Every method reads the ViT head's outputs (its projector: the 3-layer MLP, L2-normalised
 * bottleneck and weight-normed linear of vit.h) as crop-major stacks, crop 0's batch first, like
 * dino_loss. Each loss writes d loss / d input into its gradient argument (overwriting it) and
 * returns 0, or -1 when out of memory (gradient untouched). */
#ifndef INSPECTD_SSL_H
#define INSPECTD_SSL_H

#include <stdbool.h>

enum ssl_method { SSL_DINO, SSL_BYOL, SSL_BARLOW, SSL_SIMCLR };

#define SSL_METHODS 4

/* "dino", "byol", "barlow", "simclr". */
const char *ssl_method_name(enum ssl_method m);

/* The method of that name. Returns 0, or -1 for another word (out unchanged). */
int ssl_method_parse(const char *s, enum ssl_method *out);

/* DINO and BYOL learn from an EMA teacher (target network); Barlow Twins and SimCLR have none
 * (their teacher is kept equal to the student, which scores). */
bool ssl_method_has_teacher(enum ssl_method m);

/* DINO and BYOL use the local crops (multi-crop); Barlow Twins and SimCLR the two global views. */
bool ssl_method_uses_locals(enum ssl_method m);

/* BYOL's normalised regression: each student crop's prediction p (n_student·B rows, the first
 * n_teacher being the teacher's crops in the same order) against the target projection z of
 * every other global crop of the same image (n_teacher·B rows):
 *   loss = mean over images b and pairs (i, j), i ≠ j, of 2 − 2 cos(p_ib, z_jb),
 * symmetric in the global crops, the local crops against the global targets. */
int byol_loss(const float *target, /* (n_teacher*B, K) */
              const float *pred,   /* (n_student*B, K) */
              float *dpred,        /* (n_student*B, K) */
              int B, int n_teacher, int n_student, int K, double *loss);

/* Barlow Twins on two views z (2B, K), view 0's batch first: each dimension of each view is
 * standardised over the batch (BatchNorm without affine, biased variance, eps 1e-5), c = z0ᵀ z1 / B
 * (K, K) the cross-correlation, loss = Σ_i (1 − c_ii)² + lambda · Σ_{i≠j} c_ij². B >= 2. */
int barlow_loss(const float *z, /* (2B, K) */
                float *dz,      /* (2B, K) */
                int B, int K, float lambda, double *loss);

/* SimCLR's NT-Xent on two views z (2B, K): rows L2-normalised, s_ab = u_a·u_b / tau; each of the
 * 2B rows a has the other view of its image as the positive and the other 2B − 2 rows as
 * negatives: loss = mean_a [log Σ_{k≠a} exp(s_ak) − s_a,pos(a)]. *acc (may be NULL): share of rows
 * whose most similar other row is their positive. B >= 1. */
int simclr_loss(const float *z, /* (2B, K) */
                float *dz,      /* (2B, K) */
                int B, int K, float tau, double *loss, double *acc);

#define SSL_BN_EPS 1e-5

/* Batch normalisation without its affine part, as Barlow Twins and BYOL's projections use it:
 * each of the K columns of x (B, K) standardised over its B rows into y (mean 0, biased variance
 * 1 after eps SSL_BN_EPS), 1/σ kept in rstd (K). B >= 2. */
void ssl_standardise(const float *x, float *y, float *rstd, int B, int K);
/* Its backward: dx = rstd · (dy − mean(dy) − y · mean(dy · y)) per column (overwrites dx). */
void ssl_standardise_backward(float *dx, const float *dy, const float *y, const float *rstd, int B,
                              int K);

/* BYOL's predictor, a 2-layer MLP on the projections: p = fc2(GELU(fc1(z))). Forward keeps
 * pre (N, H) and act (N, H) for backward; backward adds into dz (N, K) (may be NULL) and into the
 * weights' gradients, as every backward in layers.h does, with scratch (2·N·H) floats. */
void ssl_predictor_forward(float *p,                         /* (N, K) */
                           float *pre,                       /* (N, H) */
                           float *act,                       /* (N, H) */
                           const float *z,                   /* (N, K) */
                           const float *w1, const float *b1, /* (H, K), (H) */
                           const float *w2, const float *b2, /* (K, H), (K) */
                           int N, int K, int H);
void ssl_predictor_backward(float *dz,                        /* (N, K) or NULL */
                            float *dw1, float *db1,           /* (H, K), (H) */
                            float *dw2, float *db2,           /* (K, H), (K) */
                            float *scratch,                   /* (2*N*H) */
                            const float *dp,                  /* (N, K) */
                            const float *z, const float *pre, /* (N, K), (N, H) */
                            const float *act,                 /* (N, H) */
                            const float *w1, const float *w2, int N, int K, int H);

/* The collapse monitor of BYOL, Barlow Twins and SimCLR: the mean over the K dimensions of the
 * standard deviation over the n rows of the L2-normalised rows of z (n, K). About 1/√K when the
 * embeddings spread over the sphere, 0 when every image gives the same. n >= 2. */
double ssl_embed_std(const float *z, int n, int K);

#endif
