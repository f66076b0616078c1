/* test_image.c — JPEG/PNG decode and encode round trips, resize against hand-computed pixels,
 * DCT-scaled decoding, and hostile input: corrupt bytes, every truncation, decompression bombs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "image.h"

static void gradient(struct image *im, int w, int h, int ch)
{
    assert_int_equal(image_alloc(im, w, h, ch), IMAGE_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                im->data[y * im->stride + x * ch + c] =
                    (uint8_t)(x * 128 / w + y * 96 / h + c * 30);
}

static double psnr(const struct image *a, const struct image *b)
{
    double se = 0;
    for (int y = 0; y < a->height; y++)
        for (size_t i = 0; i < (size_t)a->width * a->channels; i++) {
            double d = (double)a->data[y * a->stride + i] - b->data[y * b->stride + i];
            se += d * d;
        }
    double mse = se / ((double)a->width * a->height * a->channels);
    return mse == 0 ? 99.0 : 10 * log10(255.0 * 255.0 / mse);
}

static void jpeg_and_png_round_trips(void **state)
{
    char err[256];
    for (int ch = 1; ch <= 3; ch += 2) {
        struct image im, back;
        gradient(&im, 64, 48, ch);
        uint8_t *buf;
        size_t len;
        assert_int_equal(image_encode_jpeg(&im, 95, &buf, &len, err, sizeof err), IMAGE_OK);
        assert_int_equal(image_sniff(buf, len), IMAGE_CODEC_JPEG);
        assert_int_equal(image_decode(buf, len, NULL, &back, err, sizeof err), IMAGE_OK);
        assert_int_equal(back.width, 64);
        assert_int_equal(back.channels, ch);
        assert_true(psnr(&im, &back) > 30.0);
        image_free(&back), free(buf);
        assert_int_equal(image_encode_png(&im, &buf, &len, err, sizeof err), IMAGE_OK);
        assert_int_equal(image_decode(buf, len, NULL, &back, err, sizeof err), IMAGE_OK);
        assert_memory_equal(back.data, im.data, im.stride * im.height);
        image_free(&back);
        struct image_decode_opts o = {.channels = 3 - ch + 1 == 3 ? 3 : 1};
        assert_int_equal(image_decode(buf, len, &o, &back, err, sizeof err), IMAGE_OK);
        assert_int_equal(back.channels, o.channels);
        image_free(&back), free(buf), image_free(&im);
    }
}

static void resize_matches_hand_computed_pixels(void **state)
{
    struct image s, d;
    assert_int_equal(image_alloc(&s, 4, 2, 1), IMAGE_OK);
    const uint8_t px[8] = {0, 10, 20, 30, 40, 50, 60, 70};
    memcpy(s.data, px, 8);
    assert_int_equal(image_alloc(&d, 2, 1, 1), IMAGE_OK);
    image_resize(&s, &d, IMAGE_FILTER_AREA); /* means of 2x2 blocks: (0+10+40+50)/4, ... */
    assert_int_equal(d.data[0], 25);
    assert_int_equal(d.data[1], 45);
    image_resize(&s, &d, IMAGE_FILTER_BILINEAR); /* centres at (0.5, 0.5) and (2.5, 0.5) */
    assert_int_equal(d.data[0], 25);
    assert_int_equal(d.data[1], 45);
    image_free(&d);
    struct image g;
    assert_int_equal(image_alloc(&g, 1, 1, 3), IMAGE_OK);
    g.data[0] = 255, g.data[1] = 0, g.data[2] = 0;
    assert_int_equal(image_convert(&g, 1, &d), IMAGE_OK);
    assert_int_equal(d.data[0], 76); /* 0.299 · 255 */
    image_free(&d), image_free(&g), image_free(&s);
}

static void jpeg_dct_scaling_keeps_the_minimum_size(void **state)
{
    char err[256];
    struct image im, back;
    gradient(&im, 640, 480, 3);
    uint8_t *buf;
    size_t len;
    assert_int_equal(image_encode_jpeg(&im, 90, &buf, &len, err, sizeof err), IMAGE_OK);
    struct image_decode_opts o = {.min_width = 64, .min_height = 64};
    assert_int_equal(image_decode(buf, len, &o, &back, err, sizeof err), IMAGE_OK);
    /* scaling is in eighths: 1/8 gives 80x60 (too low), so 1/4: 160x120 */
    assert_int_equal(back.width, 160);
    assert_int_equal(back.height, 120);
    image_free(&back);
    o.min_width = 100, o.min_height = 100;
    assert_int_equal(image_decode(buf, len, &o, &back, err, sizeof err), IMAGE_OK);
    assert_true(back.width >= 100 && back.height >= 100 && back.width < 640);
    image_free(&back), free(buf), image_free(&im);
}

static void every_truncation_fails_cleanly(void **state)
{
    char err[256];
    struct image im, back;
    gradient(&im, 24, 16, 3);
    uint8_t *bufs[2];
    size_t lens[2];
    assert_int_equal(image_encode_jpeg(&im, 90, &bufs[0], &lens[0], err, sizeof err), IMAGE_OK);
    assert_int_equal(image_encode_png(&im, &bufs[1], &lens[1], err, sizeof err), IMAGE_OK);
    for (int k = 0; k < 2; k++) {
        for (size_t cut = 0; cut < lens[k]; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, bufs[k], cut);
            int rc = image_decode(copy, cut, NULL, &back, err, sizeof err);
            if (rc >= 0) printf("  codec %d decoded a file cut at %zu of %zu\n", k, cut, lens[k]);
            assert_true(rc < 0);
            assert_null(back.data);
            free(copy);
        }
        /* flipped bytes in the body: an error or a decoded image, never a crash */
        for (size_t i = 20; i < lens[k]; i += 7) {
            bufs[k][i] ^= 0x5A;
            if (image_decode(bufs[k], lens[k], NULL, &back, err, sizeof err) == IMAGE_OK)
                image_free(&back);
            bufs[k][i] ^= 0x5A;
        }
        free(bufs[k]);
    }
    assert_int_equal(image_decode("GIF89a", 6, NULL, &back, err, sizeof err), IMAGE_EUNSUPPORTED);
    image_free(&im);
}

static void decompression_bombs_are_refused(void **state)
{
    char err[256];
    struct image im, back;
    gradient(&im, 8, 8, 1);
    uint8_t *png, *jpg;
    size_t plen, jlen;
    assert_int_equal(image_encode_png(&im, &png, &plen, err, sizeof err), IMAGE_OK);
    assert_int_equal(image_encode_jpeg(&im, 90, &jpg, &jlen, err, sizeof err), IMAGE_OK);
    /* PNG: IHDR data starts at byte 16 (width, height big-endian); fix its CRC */
    const uint8_t big[8] = {0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60}; /* 60000 x 60000 */
    memcpy(png + 16, big, 8);
    uint32_t crc = (uint32_t)crc32(0, png + 12, 17);
    png[29] = crc >> 24, png[30] = crc >> 16, png[31] = crc >> 8, png[32] = (uint8_t)crc;
    assert_int_equal(image_decode(png, plen, NULL, &back, err, sizeof err), IMAGE_ETOOBIG);
    /* JPEG: the SOF0 segment holds height and width after the precision byte */
    for (size_t i = 0; i + 8 < jlen; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
            jpg[i + 5] = 0xEA, jpg[i + 6] = 0x60, jpg[i + 7] = 0xEA, jpg[i + 8] = 0x60;
            break;
        }
    assert_int_equal(image_decode(jpg, jlen, NULL, &back, err, sizeof err), IMAGE_ETOOBIG);
    free(png), free(jpg), image_free(&im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jpeg_and_png_round_trips),
        cmocka_unit_test(resize_matches_hand_computed_pixels),
        cmocka_unit_test(jpeg_dct_scaling_keeps_the_minimum_size),
        cmocka_unit_test(every_truncation_fails_cleanly),
        cmocka_unit_test(decompression_bombs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
