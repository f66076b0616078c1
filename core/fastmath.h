/* fastmath.h — exp and erf in plain arithmetic so that gcc vectorises the loops that use them
 * (libm's expf/erff are calls that block vectorisation), and the lane count of vectorised sums.
 * Accuracy: fm_expf ~2 ulp over
 * [-87, 88]; fm_erff absolute error < 2e-7 (Abramowitz & Stegun 7.1.26). */
#ifndef INSPECTD_FASTMATH_H
#define INSPECTD_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float fm_expf(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* x = n·ln2 + r, |r| ≤ ln2/2; ln2 split in two parts for an exact reduction */
    const float shifter = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Abramowitz & Stegun's polynomial in t = 1 / (1 + p·a), a = |x|: erf(x) = 1 - poly · exp(-a²). */
static inline float fm_erf_poly(float a)
{
    float t = 1.0f / (1.0f + 0.3275911f * a);
    return ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
            0.254829592f) *
           t;
}

static inline float fm_erff(float x)
{
    float a = x < 0.0f ? -x : x;
    float y = 1.0f - fm_erf_poly(a) * fm_expf(-a * a);
    return x < 0.0f ? -y : y;
}

/* erf(x) from e = exp(-x²), which a caller that needs it too computes once (GELU's backward). */
static inline float fm_erff_exp(float x, float e)
{
    float a = x < 0.0f ? -x : x;
    float y = 1.0f - fm_erf_poly(a) * e;
    return x < 0.0f ? -y : y;
}

/* Row reductions in FM_LANES interleaved partial sums: C fixes the order of a plain float sum,
 * which keeps such a loop scalar; this order is one gcc vectorises. */
#define FM_LANES 16

#endif
