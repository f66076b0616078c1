/* region.c — a frame seen through its ROI and mask: parsing, checking, fitting and tiling. */
#include "region.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parse.h"

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errsz) vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return -1;
}

int region_parse_roi(const char *s, struct region *r, char *err, size_t errsz)
{
    char buf[64] = "", *save = NULL;
    int v[4], n = 0, commas = 0;
    for (const char *c = s; *c; c++) commas += *c == ',';
    if (strlen(s) >= sizeof buf || commas != 3)
        n = 5;
    else
        strcpy(buf, s);
    for (char *tok = n ? NULL : strtok_r(buf, ",", &save); tok && n < 5;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (n == 4 || parse_int(tok, n < 2 ? 0 : 1, 65535, &v[n]))
            n = 5;
        else
            n++;
    }
    if (n != 4)
        return fail(err, errsz,
                    "roi must be x,y,w,h in pixels of the frame (x, y >= 0; w, h >= 1; at most "
                    "65535)");
    r->x = v[0], r->y = v[1], r->w = v[2], r->h = v[3];
    return 0;
}

int region_set_mask(struct region *r, const void *buf, size_t len, char *err, size_t errsz)
{
    struct image_decode_opts o = {.channels = 1, .max_pixels = 64ull << 20};
    image_free(&r->mask);
    if (image_decode(buf, len, &o, &r->mask, err, errsz)) return -1;
    return 0;
}

int region_read_mask(struct region *r, const char *path, uint8_t **bytes, size_t *len, char *err,
                     size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errsz, "mask %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(err, errsz, "mask %s: not a regular file", path);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= (16u << 20)) break;
        uint8_t *more = realloc(buf, cap * 2);
        if (!more) free(buf);
        buf = more, cap *= 2;
    }
    bool failed = ferror(f), big = n == cap;
    fclose(f);
    char why[256] = "";
    int rc = !buf     ? fail(why, sizeof why, "out of memory")
             : failed ? fail(why, sizeof why, "cannot read it")
             : big    ? fail(why, sizeof why, "larger than 16 MiB")
                      : region_set_mask(r, buf, n, why, sizeof why);
    if (rc) {
        free(buf);
        return fail(err, errsz, "mask %s: %s", path, why);
    }
    if (bytes)
        *bytes = buf, *len = n;
    else
        free(buf);
    return 0;
}

bool region_is_set(const struct region *r)
{
    return r && (r->w > 0 || r->mask.data);
}

int region_rect(const struct region *r, int width, int height, int rect[4], char *err, size_t errsz)
{
    if (!r || r->w == 0) {
        rect[0] = rect[1] = 0, rect[2] = width, rect[3] = height;
        return 0;
    }
    if ((long)r->x + r->w > width || (long)r->y + r->h > height)
        return fail(err, errsz, "roi %d,%d,%d,%d lies outside the %dx%d frame", r->x, r->y, r->w,
                    r->h, width, height);
    rect[0] = r->x, rect[1] = r->y, rect[2] = r->w, rect[3] = r->h;
    return 0;
}

/* Whether ROI pixel (u, v) of a w × h ROI is inspected: the mask's nearest pixel, scaled. */
static bool inspected(const struct region *r, int u, int v, int w, int h)
{
    const struct image *m = r ? &r->mask : NULL;
    if (!m || !m->data) return true;
    int mx = (int)(((double)u + 0.5) * m->width / w), my = (int)(((double)v + 0.5) * m->height / h);
    mx = mx < 0 ? 0 : mx >= m->width ? m->width - 1 : mx;
    my = my < 0 ? 0 : my >= m->height ? m->height - 1 : my;
    return m->data[(size_t)my * m->stride + mx] >= 128;
}

/* im's rectangle rect as an image of C channels (a view when im has C channels, else a converted
 * copy in *owned). Returns 0, or -1 when out of memory. */
static int view(const struct image *im, const int rect[4], int C, struct image *out,
                struct image *owned)
{
    struct image v = {.width = rect[2],
                      .height = rect[3],
                      .channels = im->channels,
                      .stride = im->stride,
                      .data =
                          im->data + (size_t)rect[1] * im->stride + (size_t)rect[0] * im->channels};
    memset(owned, 0, sizeof *owned);
    if (im->channels == C) {
        *out = v;
        return 0;
    }
    if (image_convert(&v, C, owned)) return -1;
    *out = *owned;
    return 0;
}

int region_fit(const struct image *im, const struct region *r, int S, int C, float *dst,
               uint8_t *mask, char *err, size_t errsz)
{
    int rect[4] = {0, 0, 0, 0};
    if (region_rect(r, im->width, im->height, rect, err, errsz)) return -1;
    struct image src, owned, small;
    if (view(im, rect, C, &src, &owned)) return fail(err, errsz, "out of memory");
    int rc = image_alloc(&small, S, S, C) || image_resize(&src, &small, IMAGE_FILTER_AREA);
    image_free(&owned);
    if (rc) {
        image_free(&small);
        return fail(err, errsz, "out of memory");
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            /* the mask is sampled at the input pixel's centre, in ROI pixels */
            int u = (int)(((double)x + 0.5) * rect[2] / S),
                v = (int)(((double)y + 0.5) * rect[3] / S);
            bool keep = inspected(r, u, v, rect[2], rect[3]);
            if (mask) mask[y * S + x] = keep;
            for (int c = 0; c < C; c++)
                dst[((size_t)c * S + y) * S + x] =
                    keep ? small.data[y * small.stride + x * C + c] / 255.0f : REGION_IGNORED_VALUE;
        }
    image_free(&small);
    return 0;
}

int region_tile_starts(int len, int S, int overlap, int *starts, int max)
{
    if (len <= S || max < 2) {
        starts[0] = 0;
        return 1;
    }
    int stride = S - overlap > 0 ? S - overlap : 1;
    int n = (len - S + stride - 1) / stride + 1;
    n = n > max ? max : n;
    for (int i = 0; i < n; i++) {
        /* spread evenly between 0 and len - S, so the last tile is flush with the edge */
        starts[i] = n == 1 ? 0 : (int)((long)i * (len - S) / (n - 1));
    }
    return n;
}

int region_tile(const struct image *im, const struct region *r, int tx, int ty, int S, int C,
                float *dst, uint8_t *mask, char *err, size_t errsz)
{
    int rect[4] = {0, 0, 0, 0};
    if (region_rect(r, im->width, im->height, rect, err, errsz)) return -1;
    struct image src, owned;
    if (view(im, rect, C, &src, &owned)) return fail(err, errsz, "out of memory");
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int u = tx + x, v = ty + y;
            bool keep = u < rect[2] && v < rect[3] && inspected(r, u, v, rect[2], rect[3]);
            if (mask) mask[y * S + x] = keep;
            const uint8_t *px = keep ? src.data + (size_t)v * src.stride + (size_t)u * C : NULL;
            for (int c = 0; c < C; c++)
                dst[((size_t)c * S + y) * S + x] = keep ? px[c] / 255.0f : REGION_IGNORED_VALUE;
        }
    image_free(&owned);
    return 0;
}

void region_free(struct region *r)
{
    if (r) image_free(&r->mask);
}
