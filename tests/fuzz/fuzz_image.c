/* fuzz_image.c — libFuzzer target: image_probe and image_decode (JPEG via TurboJPEG, PNG via
 * libspng) on arbitrary bytes, the way frames from cameras, uploads and the database reach them.
 *
 * Each input is decoded twice: as stored (then converted to the other channel count and resized
 * bilinearly to 7x5), and as training and scoring ask (grey, DCT-scaled down to at least 32x32,
 * a 4-Mpx limit, then shrunk by area averaging to 32x32, as imageset.c does). Invariants checked
 * beyond "no crash, no leak": a decode either fails with a negative status, a message and an
 * empty image, or gives an image whose fields agree with each other and, at full size, with
 * image_probe's header dimensions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

static void check(int rc, const struct image *im, const char *err, int want_ch)
{
    if (rc != IMAGE_OK) {
        if (rc >= 0 || im->data || im->width || err[0] == '\0') abort();
        return;
    }
    if (!im->data || im->width <= 0 || im->height <= 0) abort();
    if (im->channels != 1 && im->channels != 3) abort();
    if (want_ch && im->channels != want_ch) abort();
    if (im->stride < (size_t)im->width * (size_t)im->channels) abort();
    /* every pixel is readable: the last row's last byte */
    volatile uint8_t last = im->data[im->stride * (size_t)(im->height - 1) + im->stride - 1];
    (void)last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int pw = 0, ph = 0;
    int probed = image_probe(data, size, &pw, &ph);

    struct image im;
    char err[256] = "";
    int rc = image_decode(data, size, NULL, &im, err, sizeof err);
    check(rc, &im, err, 0);
    if (rc == IMAGE_OK && (probed != IMAGE_OK || pw != im.width || ph != im.height)) abort();
    if (rc == IMAGE_OK) {
        struct image other, small;
        if (image_convert(&im, 4 - im.channels, &other) != IMAGE_OK) abort();
        check(IMAGE_OK, &other, "", 4 - im.channels);
        if (image_alloc(&small, 7, 5, other.channels) ||
            image_resize(&other, &small, IMAGE_FILTER_BILINEAR))
            abort();
        image_free(&other);
        image_free(&small);
    }
    image_free(&im);

    struct image_decode_opts grey = {
        .channels = 1, .max_pixels = 4u << 20, .min_width = 32, .min_height = 32};
    err[0] = '\0';
    rc = image_decode(data, size, &grey, &im, err, sizeof err);
    check(rc, &im, err, 1);
    if (rc == IMAGE_OK && (im.width > pw || im.height > ph)) abort();
    if (rc == IMAGE_OK) {
        struct image small;
        if (image_alloc(&small, 32, 32, 1) || image_resize(&im, &small, IMAGE_FILTER_AREA)) abort();
        image_free(&small);
    }
    image_free(&im);
    return 0;
}
