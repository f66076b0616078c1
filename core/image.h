/* image.h — 8-bit images in memory: decode (JPEG via TurboJPEG, PNG via libspng), encode JPEG,
 * resize, colour conversion.
 *
 * Invariants: an image owns `data` (malloc'ed, `stride * height` bytes, stride >= width *
 * channels); channels is 1 (grey) or 3 (RGB, interleaved). A zeroed struct image is empty and safe
 * to free. Decoders check the header's pixel count against a limit before allocating anything, so a
 * decompression bomb costs nothing; corrupt or truncated input is an error, never a crash. */
#ifndef INSPECTD_IMAGE_H
#define INSPECTD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

enum image_status {
    IMAGE_OK = 0,
    IMAGE_EINVAL = -1,      /* bad argument */
    IMAGE_ECORRUPT = -2,    /* not a valid image, or truncated */
    IMAGE_ETOOBIG = -3,     /* over the pixel limit */
    IMAGE_ENOMEM = -4,      /* allocation failed */
    IMAGE_EUNSUPPORTED = -5 /* unknown format or unsupported variant (e.g. 16-bit, CMYK) */
};

enum image_codec { IMAGE_CODEC_UNKNOWN = 0, IMAGE_CODEC_JPEG, IMAGE_CODEC_PNG };

enum image_filter { IMAGE_FILTER_AREA = 0, IMAGE_FILTER_BILINEAR };

struct image {
    int width, height;
    int channels;  /* 1 or 3 */
    size_t stride; /* bytes per row */
    uint8_t *data; /* stride * height bytes */
};

struct image_decode_opts {
    int channels;        /* 0: as stored (grey stays grey, else RGB); 1: grey; 3: RGB */
    uint64_t max_pixels; /* refuse width*height above this; 0 means the default, 100 Mpx */
    int min_width;       /* JPEG only: allow DCT scaling down (1/2, 1/4, 1/8) as long as the */
    int min_height;      /* result stays >= min_width x min_height; 0 decodes at full size */
};

/* Human-readable name of a status, e.g. "corrupt image". Never NULL. */
const char *image_strerror(int status);

/* Allocates a w x h image with the given channels (stride = w * channels). Returns IMAGE_OK,
 * IMAGE_EINVAL or IMAGE_ENOMEM; on error *im is left empty. */
int image_alloc(struct image *im, int width, int height, int channels);
void image_free(struct image *im);

/* Detects JPEG or PNG by magic bytes. */
enum image_codec image_sniff(const void *buf, size_t len);

/* Reads width/height from the header only. Returns IMAGE_OK or an error status. */
int image_probe(const void *buf, size_t len, int *width, int *height);

/* Decodes a JPEG or PNG. `opts` may be NULL (defaults). On error returns a negative status,
 * writes a one-line reason into err (if errsz > 0) and leaves *out empty. */
int image_decode(const void *buf, size_t len, const struct image_decode_opts *opts,
                 struct image *out, char *err, size_t errsz);

/* Encodes as baseline JPEG (4:2:0 for RGB, grey stays grey). *out is malloc'ed; the caller frees
 * it. Returns IMAGE_OK or a negative status. */
int image_encode_jpeg(const struct image *im, int quality, uint8_t **out, size_t *outlen, char *err,
                      size_t errsz);

/* Encodes as 8-bit PNG. Same contract as image_encode_jpeg. */
int image_encode_png(const struct image *im, uint8_t **out, size_t *outlen, char *err,
                     size_t errsz);

/* Resizes src into dst, which the caller has allocated with the target size and the same
 * channel count. AREA averages (use it to shrink), BILINEAR interpolates (half-pixel centres).
 * Returns IMAGE_OK or IMAGE_EINVAL. */
int image_resize(const struct image *src, struct image *dst, enum image_filter filter);

/* Converts to 1 (BT.601 luma) or 3 (grey replicated) channels into a new image *out.
 * Returns IMAGE_OK, IMAGE_EINVAL or IMAGE_ENOMEM. */
int image_convert(const struct image *src, int channels, struct image *out);

#endif
