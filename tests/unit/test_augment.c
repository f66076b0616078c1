/* test_augment.c — multi-crop augmentation: exact pixels for the identity crop, flips, solarising
 * and brightness; determinism under a seed; sizes and ranges of default crops; config checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "augment.h"

enum { S = 8 };

static void ramp(float *img, int C)
{
    for (int c = 0; c < C; c++)
        for (int i = 0; i < S * S; i++) img[c * S * S + i] = (float)(i + c) / (S * S + 2);
}

/* A config that changes nothing: full-image crop at the same size, no jitter, no blur. */
static struct augment_config plain(void)
{
    struct augment_config c;
    augment_defaults(&c, S, 4);
    c.global_scale[0] = c.global_scale[1] = 1.0f;
    c.ratio[0] = c.ratio[1] = 1.0f;
    c.flip_p = c.jitter_p = c.gray_p = c.solarize_p = 0.0f;
    c.blur_p[0] = c.blur_p[1] = c.blur_p[2] = 0.0f;
    for (int i = 0; i < 3; i++) c.mean[i] = 0.0f, c.std[i] = 1.0f;
    return c;
}

static void identity_crop_is_exact(void **state)
{
    float img[3 * S * S], out[3 * S * S], scratch[6 * S * S];
    ramp(img, 3);
    struct augment_config c = plain();
    struct rng r = rng_seed(1, 0);
    augment_crop(&c, AUG_GLOBAL1, img, 3, S, S, &r, scratch, out);
    assert_memory_equal(out, img, sizeof img);
    c.flip_p = 1.0f;
    augment_crop(&c, AUG_GLOBAL1, img, 3, S, S, &r, scratch, out);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) assert_float_equal(out[y * S + x], img[y * S + S - 1 - x], 0);
}

static void solarise_and_normalise_by_hand(void **state)
{
    float img[S * S], out[S * S], scratch[2 * S * S];
    ramp(img, 1);
    struct augment_config c = plain();
    c.solarize_p = 1.0f;
    c.mean[0] = 0.5f, c.std[0] = 0.25f;
    struct rng r = rng_seed(2, 0);
    augment_crop(&c, AUG_GLOBAL2, img, 1, S, S, &r, scratch, out);
    for (int i = 0; i < S * S; i++) {
        float v = img[i] >= 0.5f ? 1.0f - img[i] : img[i];
        assert_float_equal(out[i], (v - 0.5f) / 0.25f, 1e-6);
    }
    /* global 1 is never solarised */
    augment_crop(&c, AUG_GLOBAL1, img, 1, S, S, &r, scratch, out);
    assert_float_equal(out[S * S - 1], (img[S * S - 1] - 0.5f) / 0.25f, 1e-6);
}

static void brightness_scales_every_pixel_alike(void **state)
{
    float img[S * S], out[S * S], scratch[2 * S * S];
    for (int i = 0; i < S * S; i++) img[i] = 0.1f + 0.5f * i / (S * S);
    struct augment_config c = plain();
    c.jitter_p = 1.0f;
    c.contrast = c.saturation = c.hue = 0.0f;
    struct rng r = rng_seed(3, 0);
    augment_crop(&c, AUG_GLOBAL1, img, 1, S, S, &r, scratch, out);
    float f = out[0] / img[0];
    assert_true(f >= 0.6f && f <= 1.4f && fabsf(f - 1.0f) > 1e-4f);
    for (int i = 0; i < S * S; i++)
        if (out[i] < 1.0f) assert_float_equal(out[i], f * img[i], 1e-5);
}

static void default_crops_are_deterministic_and_finite(void **state)
{
    enum { H = 28 };
    float img[3 * H * H], a[3 * H * H], b[3 * H * H], scratch[6 * H * H];
    for (int i = 0; i < 3 * H * H; i++) img[i] = (float)((i * 37) % 101) / 100.0f;
    struct augment_config c;
    augment_defaults(&c, H, 12);
    for (int kind = 0; kind < 3; kind++) {
        int S2 = kind == AUG_LOCAL ? 12 : H;
        struct rng r1 = rng_seed(7, 5), r2 = rng_seed(7, 5), r3 = rng_seed(8, 5);
        augment_crop(&c, (enum augment_kind)kind, img, 3, H, H, &r1, scratch, a);
        augment_crop(&c, (enum augment_kind)kind, img, 3, H, H, &r2, scratch, b);
        assert_memory_equal(a, b, sizeof(float) * 3 * S2 * S2);
        for (int i = 0; i < 3 * S2 * S2; i++) assert_true(isfinite(a[i]) && fabsf(a[i]) < 5.0f);
        augment_crop(&c, (enum augment_kind)kind, img, 3, H, H, &r3, scratch, b);
        assert_true(memcmp(a, b, sizeof(float) * 3 * S2 * S2) != 0);
    }
}

static void bad_configs_are_refused(void **state)
{
    struct augment_config c;
    char err[128];
    augment_defaults(&c, 28, 12);
    assert_int_equal(augment_check(&c, err, sizeof err), 0);
    c.flip_p = 1.5f;
    assert_int_equal(augment_check(&c, err, sizeof err), -1);
    augment_defaults(&c, 28, 12);
    c.local_scale[0] = 0.5f;
    assert_int_equal(augment_check(&c, err, sizeof err), -1);
    assert_non_null(strstr(err, "scale"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_crop_is_exact),
        cmocka_unit_test(solarise_and_normalise_by_hand),
        cmocka_unit_test(brightness_scales_every_pixel_alike),
        cmocka_unit_test(default_crops_are_deterministic_and_finite),
        cmocka_unit_test(bad_configs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
