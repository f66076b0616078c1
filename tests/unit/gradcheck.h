/* gradcheck.h — central-difference gradient checking for the layer tests.
 *
 * The loss is L = Σ out ⊙ R for a fixed random R, so dL/dout = R feeds the backward pass. A test
 * supplies a function computing L (in double) from the current inputs; gradcheck perturbs inputs
 * one at a time and compares (L(x+ε) − L(x−ε)) / 2ε with the analytic gradient. */
#ifndef INSPECTD_GRADCHECK_H
#define INSPECTD_GRADCHECK_H

#include <math.h>
#include <stdio.h>
#include <stddef.h>

#include "rng.h"

typedef double (*gradcheck_loss_fn)(void *ctx);

static inline void gradcheck_fill(float *p, size_t n, float scale, struct rng *r)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(rng_normal(r) * scale);
}

static inline double gradcheck_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Checks up to `samples` entries of x (spread over the tensor) against `analytic`. Returns the
 * worst error, each relative to max(|numeric|, |analytic|, 1e-2 · max|analytic|). */
static inline double gradcheck(const char *name, float *x, const float *analytic, size_t n,
                               gradcheck_loss_fn loss, void *ctx, float eps, int samples)
{
    double amax = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(analytic[i]));
    double worst = 0.0;
    size_t stride = n > (size_t)samples ? n / (size_t)samples : 1;
    for (size_t i = 0; i < n; i += stride) {
        float save = x[i];
        x[i] = save + eps;
        double lp = loss(ctx);
        x[i] = save - eps;
        double lm = loss(ctx);
        x[i] = save;
        double num = (lp - lm) / (2.0 * (double)eps);
        double denom = fmax(fmax(fabs(num), fabs(analytic[i])), 1e-2 * amax);
        double err = denom > 0.0 ? fabs(num - analytic[i]) / denom : 0.0;
        worst = fmax(worst, err);
    }
    printf("  gradcheck %-28s max rel err %.2e (|g|max %.2e)\n", name, worst, amax);
    return worst;
}

#endif
