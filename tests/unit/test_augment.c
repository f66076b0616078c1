/* test_augment.c — multi-crop augmentation: each operation against hand-computed pixels (crop box,
 * antialiased resampling, brightness, contrast, saturation, HSV hue, grey, blur, solarise), the
 * identity crop and flips exactly, determinism under a seed, ranges of default crops (RGB and
 * grey), config checks. */
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
    float img[3 * S * S], out[3 * S * S], scratch[3 * S * S];
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
    float img[S * S], out[S * S], scratch[S * S];
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
    float img[S * S], out[S * S], scratch[S * S];
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
    float img[3 * H * H], a[3 * H * H], b[3 * H * H], scratch[3 * H * H];
    for (int i = 0; i < 3 * H * H; i++) img[i] = (float)((i * 37) % 101) / 100.0f;
    struct augment_config c;
    augment_defaults(&c, H, 12);
    assert_true(augment_scratch_floats(&c, 3, H, H) <= 3 * H * H);
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

static void grey_crops_stay_one_channel(void **state)
{
    enum { H = 28 };
    float img[H * H], a[H * H], scratch[H * H];
    for (int i = 0; i < H * H; i++) img[i] = (float)((i * 13) % 29) / 28.0f;
    struct augment_config c;
    augment_defaults(&c, H, 12);
    c.jitter_p = c.gray_p = 1.0f;
    c.mean[0] = 0.5f, c.std[0] = 0.5f;
    for (int i = 0; i < 50; i++) {
        struct rng r = rng_seed(11, (uint64_t)i);
        augment_crop(&c, (enum augment_kind)(i % 3), img, 1, H, H, &r, scratch, a);
        int n = i % 3 == AUG_LOCAL ? 12 * 12 : H * H;
        for (int j = 0; j < n; j++) assert_true(a[j] >= -1.0f - 1e-6f && a[j] <= 1.0f + 1e-6f);
    }
}

static void crop_boxes_by_hand(void **state)
{
    struct rng r = rng_seed(5, 0);
    int box[4];
    const float full[2] = {1, 1}, square[2] = {1, 1}, quarter[2] = {0.25f, 0.25f};
    augment_random_box(full, square, 8, 8, &r, box);
    assert_true(box[0] == 0 && box[1] == 0 && box[2] == 8 && box[3] == 8);
    for (int i = 0; i < 20; i++) {
        augment_random_box(quarter, square, 8, 8, &r, box);
        assert_true(box[2] == 4 && box[3] == 4 && box[0] >= 0 && box[0] <= 4 && box[1] >= 0 &&
                    box[1] <= 4);
    }
    /* a 2:1 box of the whole area never fits a square: torchvision's fallback, the central
     * 8 × round(8 / 2) strip */
    const float wide[2] = {2, 2};
    augment_random_box(full, wide, 8, 8, &r, box);
    assert_true(box[0] == 0 && box[1] == 2 && box[2] == 8 && box[3] == 4);
    /* DINO's global range: area 0.4–1 and aspect 3/4–4/3, up to rounding */
    const float gs[2] = {0.4f, 1.0f}, ratio[2] = {0.75f, 4.0f / 3.0f};
    for (int i = 0; i < 200; i++) {
        augment_random_box(gs, ratio, 100, 100, &r, box);
        double area = box[2] * box[3] / 1e4, aspect = (double)box[2] / box[3];
        assert_true(area > 0.38 && area < 1.0 + 1e-9 && aspect > 0.73 && aspect < 1.36);
        assert_true(box[0] + box[2] <= 100 && box[1] + box[3] <= 100);
    }
}

static void resampling_by_hand(void **state)
{
    /* 8 → 4 (scale 2): PIL's triangle of radius 2 source pixels; inside, taps 1/8, 3/8, 3/8, 1/8;
     * at the left border the tap outside is dropped and the rest renormalised: 3/7, 3/7, 1/7. */
    float img[8 * 8], out[4 * 4], scratch[8 * 4];
    const float row[8] = {0, 1, 4, 9, 16, 25, 36, 49};
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) img[y * 8 + x] = row[x];
    int box[4] = {0, 0, 8, 8};
    augment_resize_box(img, 1, 8, 8, box, 4, false, scratch, out);
    for (int y = 0; y < 4; y++) {
        assert_float_equal(out[y * 4 + 0], (3 * 0 + 3 * 1 + 4) / 7.0, 1e-5);
        assert_float_equal(out[y * 4 + 1], (1 + 3 * 4 + 3 * 9 + 16) / 8.0, 1e-5);
        assert_float_equal(out[y * 4 + 2], (9 + 3 * 16 + 3 * 25 + 36) / 8.0, 1e-5);
        assert_float_equal(out[y * 4 + 3], (25 + 3 * 36 + 3 * 49) / 7.0, 1e-5);
    }
    /* 2 → 4 (scale ½): plain bilinear with half-pixel centres, edges replicated */
    float two[4] = {0, 1, 2, 3}, up[16], s2[2 * 4];
    int b2[4] = {0, 0, 2, 2};
    augment_resize_box(two, 1, 2, 2, b2, 4, false, s2, up);
    const float xs[4] = {0, 0.25f, 0.75f, 1};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) assert_float_equal(up[y * 4 + x], xs[x] + 2 * xs[y], 1e-6);
    /* a box inside the image, mirrored: pixels (2..5) of rows 1..4, read right to left */
    int b3[4] = {2, 1, 4, 4};
    float s3[4 * 4];
    augment_resize_box(img, 1, 8, 8, b3, 4, true, s3, out);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) assert_float_equal(out[y * 4 + x], row[5 - x], 1e-6);
}

static void colour_operations_by_hand(void **state)
{
    /* grey 2×2 (0.2, 0.4, 0.6, 0.8), mean 0.5 */
    float g[4] = {0.2f, 0.4f, 0.6f, 0.8f};
    augment_contrast(g, 1, 2, 1.5f); /* 1.5x − 0.25 */
    assert_float_equal(g[0], 0.05f, 1e-6);
    assert_float_equal(g[3], 0.95f, 1e-6);
    float g2[4] = {0.2f, 0.4f, 0.6f, 0.8f};
    augment_contrast(g2, 1, 2, 3.0f); /* 3x − 1, clamped */
    assert_true(g2[0] == 0.0f && g2[3] == 1.0f);
    assert_float_equal(g2[1], 0.2f, 1e-6);
    augment_brightness(g2, 1, 2, 2.0f);
    assert_float_equal(g2[1], 0.4f, 1e-6);
    assert_float_equal(g2[2], 1.0f, 0);
    /* one RGB pixel per call (planes of one value) */
    float red[3] = {1, 0, 0};
    augment_saturation(red, 3, 1, 0.5f); /* halfway to grey 0.2989 */
    assert_float_equal(red[0], 0.5f + 0.14945f, 1e-6);
    assert_float_equal(red[1], 0.14945f, 1e-6);
    float orange[3] = {1, 0.5f, 0};
    augment_grayscale(orange, 3, 1);
    for (int c = 0; c < 3; c++) assert_float_equal(orange[c], 0.2989f + 0.2935f, 1e-6);
    /* contrast of RGB blends with the mean grey level: pixel (1, 0.5, 0) → grey 0.5924 */
    float o2[3] = {1, 0.5f, 0};
    augment_contrast(o2, 3, 1, 0.0f);
    assert_float_equal(o2[0], 0.5924f, 1e-6);
    assert_float_equal(o2[2], 0.5924f, 1e-6);
}

static void hue_rotates_in_hsv(void **state)
{
    float px[3] = {1, 0, 0};
    augment_hue(px, 3, 1, 1.0f / 3.0f); /* red → green */
    assert_float_equal(px[0], 0, 1e-6);
    assert_float_equal(px[1], 1, 1e-6);
    assert_float_equal(px[2], 0, 1e-6);
    float m[3] = {1, 0, 0};
    augment_hue(m, 3, 1, -1.0f / 6.0f); /* red → magenta */
    assert_float_equal(m[0], 1, 1e-6);
    assert_float_equal(m[1], 0, 1e-6);
    assert_float_equal(m[2], 1, 1e-6);
    /* (0.5, 0.25, 0.25): h 0, s ½, v ½; half a turn → h ½: (p, q, v) = (0.25, 0.5, 0.5) */
    float d[3] = {0.5f, 0.25f, 0.25f};
    augment_hue(d, 3, 1, 0.5f);
    assert_float_equal(d[0], 0.25f, 1e-6);
    assert_float_equal(d[1], 0.5f, 1e-6);
    assert_float_equal(d[2], 0.5f, 1e-6);
    /* (0.2, 0.6, 0.4): max g, chroma 0.4, rc = 1, bc = ½ → h = (2 + rc − bc)/6 = 5/12,
     * s = ⅔, v = 0.6; + 1/12 → h ½: sector 3, f 0: (p, q, v) = (0.2, 0.6, 0.6) */
    float e[3] = {0.2f, 0.6f, 0.4f};
    augment_hue(e, 3, 1, 1.0f / 12.0f);
    assert_float_equal(e[0], 0.2f, 1e-5);
    assert_float_equal(e[1], 0.6f, 1e-5);
    assert_float_equal(e[2], 0.6f, 1e-5);
    /* grey input and grey pixels are left alone */
    float grey[3] = {0.3f, 0.3f, 0.3f};
    augment_hue(grey, 3, 1, 0.37f);
    assert_float_equal(grey[0], 0.3f, 1e-6);
    assert_float_equal(grey[2], 0.3f, 1e-6);
}

static void blur_and_solarise_by_hand(void **state)
{
    enum { N = 9 };
    float x[N * N] = {0}, tmp[N * N];
    x[4 * N + 4] = 1.0f;
    augment_blur(x, 1, N, 1.0f, tmp); /* radius 3: k_i = e^(−i²/2) / Σ_{|j|≤3} e^(−j²/2) */
    double z = 0;
    for (int j = -3; j <= 3; j++) z += exp(-0.5 * j * j);
    assert_float_equal(x[4 * N + 4], 1.0 / (z * z), 1e-6);
    assert_float_equal(x[4 * N + 5], exp(-0.5) / (z * z), 1e-6);
    assert_float_equal(x[2 * N + 7], exp(-0.5 * 4) * exp(-0.5 * 9) / (z * z), 1e-7);
    assert_float_equal(x[0], 0.0f, 0);
    double sum = 0;
    for (int i = 0; i < N * N; i++) sum += x[i];
    assert_float_equal(sum, 1.0, 1e-5);
    float flat[4] = {0.3f, 0.3f, 0.3f, 0.3f}, t2[4];
    augment_blur(flat, 1, 2, 2.0f, t2);
    assert_float_equal(flat[3], 0.3f, 1e-6);
    float s[4] = {0.1f, 0.5f, 0.7f, 0.49f};
    augment_solarize(s, 1, 2, 0.5f);
    assert_float_equal(s[0], 0.1f, 0);
    assert_float_equal(s[1], 0.5f, 1e-7);
    assert_float_equal(s[2], 0.3f, 1e-6);
    assert_float_equal(s[3], 0.49f, 0);
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

/* The eight symmetries of a 3x3 image: a quarter turn counter-clockwise moves the top-right
 * pixel to the top-left, four turns are the identity, the mirror flips columns, and all eight
 * are different. */
static void dihedral_symmetries(void **state)
{
    float img[9], out[8][9], tmp[9], back[9];
    for (int i = 0; i < 9; i++) img[i] = (float)i;
    for (int t = 0; t < 8; t++) augment_dihedral(img, 1, 3, t, out[t]);
    assert_memory_equal(out[0], img, sizeof img);
    assert_float_equal(out[1][0], img[2], 0); /* top-right → top-left */
    assert_float_equal(out[1][6], img[0], 0); /* top-left → bottom-left */
    assert_float_equal(out[4][0], img[2], 0); /* mirrored */
    memcpy(back, img, sizeof img);
    for (int k = 0; k < 4; k++) {
        augment_dihedral(back, 1, 3, 1, tmp);
        memcpy(back, tmp, sizeof tmp);
    }
    assert_memory_equal(back, img, sizeof img);
    for (int a = 0; a < 8; a++)
        for (int b = a + 1; b < 8; b++) assert_true(memcmp(out[a], out[b], sizeof img) != 0);
}

/* A pasted defect changes exactly the pixels its blend weight covers, covers some of them, and
 * is the same for the same rng state (every shape drawn over 30 draws). */
static void pasted_defects_change_only_their_mask(void **state)
{
    enum { C = 3, S = 32 };
    static float src[C * S * S], base[C * S * S], a[C * S * S], b[C * S * S];
    static float alpha[S * S], alpha2[S * S];
    for (int i = 0; i < C * S * S; i++) src[i] = (float)((i * 37) % 101) / 100.0f;
    for (int i = 0; i < C * S * S; i++) base[i] = (float)((i * 11) % 97) / 96.0f;
    for (int k = 0; k < 30; k++) {
        memcpy(a, base, sizeof a), memcpy(b, base, sizeof b);
        struct rng r1 = rng_seed(3, (uint64_t)k), r2 = rng_seed(3, (uint64_t)k);
        augment_paste_defect(a, src, C, S, &r1, alpha);
        augment_paste_defect(b, src, C, S, &r2, alpha2);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(alpha, alpha2, sizeof alpha);
        int covered = 0;
        for (int p = 0; p < S * S; p++) {
            assert_true(alpha[p] >= 0.0f && alpha[p] <= 1.0f);
            covered += alpha[p] > 0.0f;
            for (int c = 0; c < C; c++)
                if (alpha[p] == 0.0f) assert_float_equal(a[c * S * S + p], base[c * S * S + p], 0);
        }
        assert_true(covered >= 4 && covered < S * S / 2);
        int changed = 0;
        for (int i = 0; i < C * S * S; i++) changed += a[i] != base[i];
        assert_true(changed > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dihedral_symmetries),
        cmocka_unit_test(pasted_defects_change_only_their_mask),
        cmocka_unit_test(identity_crop_is_exact),
        cmocka_unit_test(solarise_and_normalise_by_hand),
        cmocka_unit_test(brightness_scales_every_pixel_alike),
        cmocka_unit_test(default_crops_are_deterministic_and_finite),
        cmocka_unit_test(grey_crops_stay_one_channel),
        cmocka_unit_test(crop_boxes_by_hand),
        cmocka_unit_test(resampling_by_hand),
        cmocka_unit_test(colour_operations_by_hand),
        cmocka_unit_test(hue_rotates_in_hsv),
        cmocka_unit_test(blur_and_solarise_by_hand),
        cmocka_unit_test(bad_configs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
