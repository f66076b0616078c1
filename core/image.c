/* image.c — decode (TurboJPEG, libspng), encode, resize and convert 8-bit images. */
#include "image.h"

#include <limits.h>
#include <spng.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#define IMAGE_DEFAULT_MAX_PIXELS 100000000ull

static int fail(int status, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(int status, char *err, size_t errsz, const char *fmt, ...)
{
    if (errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *image_strerror(int status)
{
    switch (status) {
    case IMAGE_OK:
        return "ok";
    case IMAGE_EINVAL:
        return "invalid argument";
    case IMAGE_ECORRUPT:
        return "corrupt or truncated image";
    case IMAGE_ETOOBIG:
        return "image too large";
    case IMAGE_ENOMEM:
        return "out of memory";
    case IMAGE_EUNSUPPORTED:
        return "unsupported image format";
    default:
        return "unknown error";
    }
}

int image_alloc(struct image *im, int width, int height, int channels)
{
    memset(im, 0, sizeof *im);
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || width > 1 << 16 ||
        height > 1 << 16)
        return IMAGE_EINVAL;
    size_t stride = (size_t)width * channels;
    im->data = malloc(stride * (size_t)height);
    if (!im->data) return IMAGE_ENOMEM;
    im->width = width, im->height = height, im->channels = channels, im->stride = stride;
    return IMAGE_OK;
}

void image_free(struct image *im)
{
    free(im->data);
    memset(im, 0, sizeof *im);
}

enum image_codec image_sniff(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return IMAGE_CODEC_JPEG;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return IMAGE_CODEC_PNG;
    return IMAGE_CODEC_UNKNOWN;
}

static uint64_t limit_of(const struct image_decode_opts *o)
{
    return o && o->max_pixels ? o->max_pixels : IMAGE_DEFAULT_MAX_PIXELS;
}

/* ---- JPEG ---- */

static int jpeg_header(tjhandle tj, const void *buf, size_t len, int *w, int *h, int *subsamp,
                       int *colorspace)
{
    if (len > ULONG_MAX) return -1;
    return tjDecompressHeader3(tj, buf, (unsigned long)len, w, h, subsamp, colorspace);
}

/* The smallest TurboJPEG scaling factor that keeps the image at least min_w x min_h. */
static void pick_scale(int w, int h, int min_w, int min_h, int *sw, int *sh)
{
    *sw = w, *sh = h;
    if (min_w <= 0 && min_h <= 0) return;
    int n;
    tjscalingfactor *f = tjGetScalingFactors(&n);
    for (int i = 0; f && i < n; i++) {
        if (f[i].num > f[i].denom) continue; /* never upscale */
        int cw = TJSCALED(w, f[i]), ch = TJSCALED(h, f[i]);
        if (cw >= min_w && ch >= min_h && (long)cw * ch < (long)*sw * *sh) *sw = cw, *sh = ch;
    }
}

static int decode_jpeg(const void *buf, size_t len, const struct image_decode_opts *o,
                       struct image *out, char *err, size_t errsz)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) return fail(IMAGE_ENOMEM, err, errsz, "cannot start the JPEG decoder");
    int w, h, sub, cs, rc;
    if (jpeg_header(tj, buf, len, &w, &h, &sub, &cs)) {
        rc = fail(IMAGE_ECORRUPT, err, errsz, "corrupt JPEG header: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > limit_of(o)) {
        rc = fail(IMAGE_ETOOBIG, err, errsz, "JPEG of %dx%d exceeds the %llu-pixel limit", w, h,
                  (unsigned long long)limit_of(o));
        goto done;
    }
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        rc = fail(IMAGE_EUNSUPPORTED, err, errsz, "CMYK JPEG is not supported");
        goto done;
    }
    int ch = o && o->channels ? o->channels : (cs == TJCS_GRAY ? 1 : 3);
    int sw, sh;
    pick_scale(w, h, o ? o->min_width : 0, o ? o->min_height : 0, &sw, &sh);
    if ((rc = image_alloc(out, sw, sh, ch)) != IMAGE_OK) {
        rc = fail(rc, err, errsz, "cannot allocate %dx%d", sw, sh);
        goto done;
    }
    if (tjDecompress2(tj, buf, (unsigned long)len, out->data, sw, (int)out->stride, sh,
                      ch == 1 ? TJPF_GRAY : TJPF_RGB, TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING)) {
        rc = fail(IMAGE_ECORRUPT, err, errsz, "corrupt JPEG data: %s", tjGetErrorStr2(tj));
        image_free(out);
        goto done;
    }
    rc = IMAGE_OK;
done:
    tjDestroy(tj);
    return rc;
}

/* ---- PNG ---- */

static int decode_png(const void *buf, size_t len, const struct image_decode_opts *o,
                      struct image *out, char *err, size_t errsz)
{
    /* a complete PNG ends with the constant 12-byte IEND chunk */
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    if (len < 12 || memcmp((const uint8_t *)buf + len - 12, iend, 12) != 0)
        return fail(IMAGE_ECORRUPT, err, errsz, "truncated PNG (no IEND chunk at the end)");
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return fail(IMAGE_ENOMEM, err, errsz, "cannot start the PNG decoder");
    int rc;
    struct spng_ihdr ihdr;
    spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
    spng_set_chunk_limits(ctx, 1 << 24, 1 << 26);
    spng_set_image_limits(ctx, 1 << 24, 1 << 24);
    int e = spng_set_png_buffer(ctx, buf, len);
    if (!e) e = spng_get_ihdr(ctx, &ihdr);
    if (e) {
        rc = fail(IMAGE_ECORRUPT, err, errsz, "corrupt PNG header: %s", spng_strerror(e));
        goto done;
    }
    if ((uint64_t)ihdr.width * ihdr.height > limit_of(o)) {
        rc = fail(IMAGE_ETOOBIG, err, errsz, "PNG of %ux%u exceeds the %llu-pixel limit",
                  ihdr.width, ihdr.height, (unsigned long long)limit_of(o));
        goto done;
    }
    bool grey = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE ||
                ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    int ch = o && o->channels ? o->channels : (grey ? 1 : 3);
    /* decode to 8-bit RGB (alpha dropped), then convert to grey when asked */
    struct image rgb;
    if ((rc = image_alloc(&rgb, (int)ihdr.width, (int)ihdr.height, 3)) != IMAGE_OK) {
        rc = fail(rc, err, errsz, "cannot allocate %ux%u", ihdr.width, ihdr.height);
        goto done;
    }
    e = spng_decode_image(ctx, rgb.data, rgb.stride * (size_t)rgb.height, SPNG_FMT_RGB8,
                          SPNG_DECODE_TRNS);
    if (!e) e = spng_decode_chunks(ctx); /* the chunks after the image data, through IEND */
    if (e) {
        image_free(&rgb);
        rc = fail(IMAGE_ECORRUPT, err, errsz, "corrupt PNG data: %s", spng_strerror(e));
        goto done;
    }
    if (ch == 3) {
        *out = rgb;
        rc = IMAGE_OK;
    } else {
        rc = image_convert(&rgb, 1, out);
        image_free(&rgb);
        if (rc) rc = fail(rc, err, errsz, "cannot convert to grey");
    }
done:
    spng_ctx_free(ctx);
    return rc;
}

int image_probe(const void *buf, size_t len, int *width, int *height)
{
    enum image_codec c = image_sniff(buf, len);
    if (c == IMAGE_CODEC_JPEG) {
        tjhandle tj = tjInitDecompress();
        if (!tj) return IMAGE_ENOMEM;
        int sub, cs, rc = jpeg_header(tj, buf, len, width, height, &sub, &cs);
        tjDestroy(tj);
        return rc ? IMAGE_ECORRUPT : IMAGE_OK;
    }
    if (c == IMAGE_CODEC_PNG) {
        spng_ctx *ctx = spng_ctx_new(0);
        if (!ctx) return IMAGE_ENOMEM;
        struct spng_ihdr ihdr;
        int e = spng_set_png_buffer(ctx, buf, len);
        if (!e) e = spng_get_ihdr(ctx, &ihdr);
        spng_ctx_free(ctx);
        if (e) return IMAGE_ECORRUPT;
        *width = (int)ihdr.width, *height = (int)ihdr.height;
        return IMAGE_OK;
    }
    return IMAGE_EUNSUPPORTED;
}

int image_decode(const void *buf, size_t len, const struct image_decode_opts *opts,
                 struct image *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (!buf || (opts && opts->channels != 0 && opts->channels != 1 && opts->channels != 3))
        return fail(IMAGE_EINVAL, err, errsz, "invalid decode arguments");
    switch (image_sniff(buf, len)) {
    case IMAGE_CODEC_JPEG:
        return decode_jpeg(buf, len, opts, out, err, errsz);
    case IMAGE_CODEC_PNG:
        return decode_png(buf, len, opts, out, err, errsz);
    default:
        return fail(IMAGE_EUNSUPPORTED, err, errsz, "neither JPEG nor PNG");
    }
}

/* ---- encode ---- */

int image_encode_jpeg(const struct image *im, int quality, uint8_t **out, size_t *outlen, char *err,
                      size_t errsz)
{
    *out = NULL, *outlen = 0;
    if (!im->data || (im->channels != 1 && im->channels != 3) || quality < 1 || quality > 100)
        return fail(IMAGE_EINVAL, err, errsz, "invalid JPEG encode arguments");
    tjhandle tj = tjInitCompress();
    if (!tj) return fail(IMAGE_ENOMEM, err, errsz, "cannot start the JPEG encoder");
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    int gray = im->channels == 1;
    int rc = tjCompress2(tj, im->data, im->width, (int)im->stride, im->height,
                         gray ? TJPF_GRAY : TJPF_RGB, &jpeg, &size, gray ? TJSAMP_GRAY : TJSAMP_420,
                         quality, TJFLAG_ACCURATEDCT);
    if (rc) {
        rc = fail(IMAGE_ENOMEM, err, errsz, "JPEG encode failed: %s", tjGetErrorStr2(tj));
        tjFree(jpeg);
        tjDestroy(tj);
        return rc;
    }
    tjDestroy(tj);
    *out = malloc(size);
    if (!*out) {
        tjFree(jpeg);
        return fail(IMAGE_ENOMEM, err, errsz, "out of memory");
    }
    memcpy(*out, jpeg, size);
    tjFree(jpeg);
    *outlen = size;
    return IMAGE_OK;
}

int image_encode_png(const struct image *im, uint8_t **out, size_t *outlen, char *err, size_t errsz)
{
    *out = NULL, *outlen = 0;
    if (!im->data || (im->channels != 1 && im->channels != 3))
        return fail(IMAGE_EINVAL, err, errsz, "invalid PNG encode arguments");
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    if (!ctx) return fail(IMAGE_ENOMEM, err, errsz, "cannot start the PNG encoder");
    struct spng_ihdr ihdr = {.width = (uint32_t)im->width,
                             .height = (uint32_t)im->height,
                             .bit_depth = 8,
                             .color_type = im->channels == 1 ? SPNG_COLOR_TYPE_GRAYSCALE
                                                             : SPNG_COLOR_TYPE_TRUECOLOR};
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    int e = spng_set_ihdr(ctx, &ihdr);
    /* the encoder wants tightly packed rows */
    size_t row = (size_t)im->width * im->channels;
    uint8_t *packed = im->stride == row ? im->data : malloc(row * (size_t)im->height);
    if (!packed) e = SPNG_EMEM;
    if (!e && packed != im->data)
        for (int y = 0; y < im->height; y++)
            memcpy(packed + row * y, im->data + im->stride * y, row);
    if (!e)
        e = spng_encode_image(ctx, packed, row * (size_t)im->height, SPNG_FMT_PNG,
                              SPNG_ENCODE_FINALIZE);
    if (packed != im->data) free(packed);
    int rc = IMAGE_OK;
    if (!e) {
        int e2;
        *out = spng_get_png_buffer(ctx, outlen, &e2);
        if (!*out) e = e2 ? e2 : SPNG_EMEM;
    }
    if (e) rc = fail(IMAGE_ENOMEM, err, errsz, "PNG encode failed: %s", spng_strerror(e));
    spng_ctx_free(ctx);
    return rc;
}

/* ---- resize and convert ---- */

static void resize_area(const struct image *s, struct image *d)
{
    double sx = (double)s->width / d->width, sy = (double)s->height / d->height;
    for (int oy = 0; oy < d->height; oy++) {
        double y0 = oy * sy, y1 = y0 + sy;
        for (int ox = 0; ox < d->width; ox++) {
            double x0 = ox * sx, x1 = x0 + sx;
            for (int c = 0; c < d->channels; c++) {
                double acc = 0.0, area = 0.0;
                for (int y = (int)y0; y < s->height && y < y1; y++) {
                    double wy = (y + 1 < y1 ? y + 1 : y1) - (y > y0 ? y : y0);
                    for (int x = (int)x0; x < s->width && x < x1; x++) {
                        double wx = (x + 1 < x1 ? x + 1 : x1) - (x > x0 ? x : x0);
                        acc +=
                            wx * wy * s->data[(size_t)y * s->stride + (size_t)x * s->channels + c];
                        area += wx * wy;
                    }
                }
                double v = area > 0 ? acc / area : 0.0;
                d->data[(size_t)oy * d->stride + (size_t)ox * d->channels + c] =
                    (uint8_t)(v + 0.5 > 255 ? 255 : v + 0.5);
            }
        }
    }
}

static void resize_bilinear(const struct image *s, struct image *d)
{
    float sx = (float)s->width / d->width, sy = (float)s->height / d->height;
    for (int oy = 0; oy < d->height; oy++) {
        float fy = (oy + 0.5f) * sy - 0.5f;
        fy = fy < 0 ? 0 : (fy > s->height - 1 ? (float)(s->height - 1) : fy);
        int y0 = (int)fy, y1 = y0 + 1 < s->height ? y0 + 1 : y0;
        float wy = fy - (float)y0;
        for (int ox = 0; ox < d->width; ox++) {
            float fx = (ox + 0.5f) * sx - 0.5f;
            fx = fx < 0 ? 0 : (fx > s->width - 1 ? (float)(s->width - 1) : fx);
            int x0 = (int)fx, x1 = x0 + 1 < s->width ? x0 + 1 : x0;
            float wx = fx - (float)x0;
            for (int c = 0; c < d->channels; c++) {
                const uint8_t *r0 = s->data + (size_t)y0 * s->stride + c;
                const uint8_t *r1 = s->data + (size_t)y1 * s->stride + c;
                int k0 = x0 * s->channels, k1 = x1 * s->channels;
                float top = r0[k0] * (1 - wx) + r0[k1] * wx;
                float bot = r1[k0] * (1 - wx) + r1[k1] * wx;
                d->data[(size_t)oy * d->stride + (size_t)ox * d->channels + c] =
                    (uint8_t)(top * (1 - wy) + bot * wy + 0.5f);
            }
        }
    }
}

int image_resize(const struct image *src, struct image *dst, enum image_filter filter)
{
    if (!src->data || !dst->data || src->channels != dst->channels) return IMAGE_EINVAL;
    if (filter == IMAGE_FILTER_AREA)
        resize_area(src, dst);
    else
        resize_bilinear(src, dst);
    return IMAGE_OK;
}

int image_convert(const struct image *src, int channels, struct image *out)
{
    int rc = image_alloc(out, src->width, src->height, channels);
    if (rc) return rc;
    for (int y = 0; y < src->height; y++) {
        const uint8_t *s = src->data + (size_t)y * src->stride;
        uint8_t *d = out->data + (size_t)y * out->stride;
        for (int x = 0; x < src->width; x++) {
            if (src->channels == channels) {
                memcpy(d + (size_t)x * channels, s + (size_t)x * channels, (size_t)channels);
            } else if (channels == 1) {
                const uint8_t *p = s + (size_t)x * 3;
                d[x] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
            } else {
                d[x * 3] = d[x * 3 + 1] = d[x * 3 + 2] = s[x];
            }
        }
    }
    return IMAGE_OK;
}
