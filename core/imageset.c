/* imageset.c — reading, decoding and shrinking directories of images into one float array. */
#define LOG_TAG "images"
#include "log.h"

#include "imageset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    struct stat st;
    if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size < (1 << 28) &&
        (buf = malloc((size_t)st.st_size)) &&
        fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        buf = NULL;
    }
    if (buf) *len = (size_t)st.st_size;
    fclose(f);
    return buf;
}

/* Decodes, converts and shrinks one encoded image into dst (C, S, S). Returns 0, or -1 (logged
 * as skipping `what`). */
static int decode_into(const void *buf, size_t len, const char *what, int S, int C, float *dst)
{
    char err[256];
    struct image im, small;
    struct image_decode_opts o = {.channels = C, .min_width = S, .min_height = S};
    if (image_decode(buf, len, &o, &im, err, sizeof err)) {
        log_warn("skipping %s: %s", what, err);
        return -1;
    }
    if (image_alloc(&small, S, S, C) || image_resize(&im, &small, IMAGE_FILTER_AREA)) {
        image_free(&im);
        log_warn("skipping %s: out of memory", what);
        return -1;
    }
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                dst[((size_t)c * S + y) * S + x] =
                    small.data[y * small.stride + x * C + c] / 255.0f;
    image_free(&im);
    image_free(&small);
    return 0;
}

static int load_one(const char *path, int S, int C, float *dst)
{
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) {
        log_warn("skipping %s: cannot read it", path);
        return -1;
    }
    int rc = decode_into(buf, len, path, S, C, dst);
    free(buf);
    return rc;
}

static bool full(const struct image_set *set)
{
    return set->max > 0 && set->n >= set->max;
}

static int reserve(struct image_set *set, size_t more)
{
    size_t want = (size_t)set->n + more;
    if (want <= set->cap) return 0;
    size_t img = (size_t)set->channels * set->size * set->size;
    float *p = realloc(set->pixels, sizeof(float) * img * want);
    if (!p) return -1;
    set->pixels = p;
    if (set->masks) {
        uint8_t *m = realloc(set->masks, (size_t)set->size * set->size * want);
        if (!m) return -1;
        set->masks = m;
    }
    set->cap = want;
    return 0;
}

/* The images added since the last frame make one frame. Returns 0, or -1 when out of memory. */
static int end_frame(struct image_set *set)
{
    if ((size_t)set->frames + 2 > set->first_cap) {
        size_t cap = set->first_cap ? set->first_cap * 2 : 64;
        int *f = realloc(set->first, sizeof(int) * cap);
        if (!f) return -1;
        if (!set->first_cap) f[0] = 0;
        set->first = f, set->first_cap = cap;
    }
    set->first[++set->frames] = set->n;
    return 0;
}

/* Image n (being added) is inspected whole. */
static void inspect_whole(struct image_set *set)
{
    size_t plane = (size_t)set->size * set->size;
    if (set->masks) memset(set->masks + plane * (size_t)set->n, 1, plane);
}

/* The masks, once an image has ignored pixels: every image before it inspected whole. */
static int want_masks(struct image_set *set)
{
    if (set->masks) return 0;
    size_t plane = (size_t)set->size * set->size;
    if (!(set->masks = malloc(plane * (set->cap ? set->cap : 1)))) return -1;
    memset(set->masks, 1, plane * (size_t)set->n);
    return 0;
}

int image_set_add_dir(struct image_set *set, const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name);
    if (n < 0) {
        log_error("%s: %s", dir, strerror(errno));
        return -1;
    }
    size_t want = (size_t)n;
    if (set->max > 0 && want > (size_t)(set->max - set->n)) want = (size_t)(set->max - set->n);
    int added = 0, oom = reserve(set, want);
    size_t img = (size_t)set->channels * set->size * set->size;
    char path[4096];
    for (int i = 0; i < n; i++) {
        if (!oom && list[i]->d_name[0] != '.' && !full(set)) {
            snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
            struct stat st;
            if (!stat(path, &st) && S_ISREG(st.st_mode) &&
                !load_one(path, set->size, set->channels, set->pixels + img * set->n)) {
                inspect_whole(set);
                set->n++, added++;
                if (end_frame(set)) oom = 1;
            }
        }
        free(list[i]);
    }
    free(list);
    if (oom) {
        log_error("out of memory for %d more images", n);
        return -1;
    }
    return added;
}

int image_set_add_encoded(struct image_set *set, const void *buf, size_t len, const char *what)
{
    if (full(set)) {
        log_warn("skipping %s: already %d images", what, set->n);
        return 0;
    }
    if (reserve(set, set->cap > (size_t)set->n ? 1 : set->cap + 64)) {
        log_error("out of memory for %d images", set->n + 1);
        return -1;
    }
    size_t img = (size_t)set->channels * set->size * set->size;
    if (decode_into(buf, len, what, set->size, set->channels, set->pixels + img * set->n)) return 0;
    inspect_whole(set);
    set->n++;
    if (end_frame(set)) {
        set->n--;
        log_error("out of memory for %d images", set->n + 1);
        return -1;
    }
    return 1;
}

int image_set_add_images(struct image_set *set, const struct image_set *from, const int *idx, int n)
{
    if (set->max > 0 && n > set->max - set->n) n = set->max - set->n;
    if (n <= 0) return 0;
    size_t img = (size_t)set->channels * set->size * set->size,
           plane = (size_t)set->size * set->size;
    if (reserve(set, (size_t)n) || (from->masks && want_masks(set))) {
        log_error("out of memory for %d images", set->n + n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        memcpy(set->pixels + img * set->n, from->pixels + img * idx[i], sizeof(float) * img);
        if (from->masks)
            memcpy(set->masks + plane * set->n, from->masks + plane * idx[i], plane);
        else
            inspect_whole(set);
        set->n++;
    }
    if (end_frame(set)) {
        log_error("out of memory for %d images", set->n);
        return -1;
    }
    return n;
}

int image_set_add_file(struct image_set *set, const char *path)
{
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) {
        log_warn("skipping %s: cannot read it", path);
        return 0;
    }
    int rc = image_set_add_encoded(set, buf, len, path);
    free(buf);
    return rc;
}

void image_set_stats(struct image_set *set)
{
    size_t plane = (size_t)set->size * set->size, img = plane * set->channels;
    for (int c = 0; c < set->channels; c++) {
        double s = 0, ss = 0;
        for (int i = 0; i < set->n; i++)
            for (size_t p = 0; p < plane; p++) {
                double v = set->pixels[img * i + (size_t)c * plane + p];
                s += v, ss += v * v;
            }
        double cnt = (double)set->n * plane;
        set->mean[c] = cnt > 0 ? s / cnt : 0.5;
        double var = cnt > 0 ? ss / cnt - set->mean[c] * set->mean[c] : 0.0625;
        set->std[c] = var > 1e-6 ? sqrt(var) : 0.25;
    }
}

int image_view_tiles(const struct image_view *v, int size, int width, int height, int *nx, int *ny,
                     int *x0, int *y0, char *err, size_t errsz)
{
    int rect[4] = {0, 0, 0, 0};
    if (region_rect(v->region, width, height, rect, err, errsz)) return -1;
    *nx = region_tile_starts(rect[2], size, v->overlap, x0, IMAGE_VIEW_MAX_TILES);
    *ny = region_tile_starts(rect[3], size, v->overlap, y0, IMAGE_VIEW_MAX_TILES);
    for (int i = 0; i < *nx; i++) x0[i] += rect[0];
    for (int i = 0; i < *ny; i++) y0[i] += rect[1];
    return 0;
}

/* Appends the images of frame im as v sees it; err says why not. Returns the count, 0 (err
 * set), or -1 when out of memory. */
static int add_view(struct image_set *set, const struct image *im, const struct image_view *v,
                    char *err, size_t errsz)
{
    int S = set->size, C = set->channels, nx = 1, ny = 1, x0[IMAGE_VIEW_MAX_TILES],
        y0[IMAGE_VIEW_MAX_TILES], rect[4] = {0, 0, 0, 0};
    if (v->tiles ? image_view_tiles(v, S, im->width, im->height, &nx, &ny, x0, y0, err, errsz)
                 : region_rect(v->region, im->width, im->height, rect, err, errsz))
        return 0;
    int room = set->max > 0 ? set->max - set->n : nx * ny, added = 0;
    if (reserve(set, (size_t)(nx * ny < room ? nx * ny : room))) return -1;
    size_t img = (size_t)C * S * S, plane = (size_t)S * S;
    uint8_t *mask = malloc(plane);
    if (!mask) return -1;
    for (int ty = 0; ty < ny && added < room; ty++)
        for (int tx = 0; tx < nx && added < room; tx++) {
            float *dst = set->pixels + img * set->n;
            int rc = v->tiles ? region_tile(im, v->region, x0[tx] - x0[0], y0[ty] - y0[0], S, C,
                                            dst, mask, err, errsz)
                              : region_fit(im, v->region, S, C, dst, mask, err, errsz);
            bool all = !rc && memchr(mask, 0, plane) == NULL;
            if (!rc && !all && want_masks(set)) rc = -2;
            if (rc) {
                free(mask);
                return rc == -2 ? -1 : added;
            }
            if (set->masks) memcpy(set->masks + plane * set->n, mask, plane);
            set->n++, added++;
        }
    free(mask);
    return added;
}

int image_set_add_region(struct image_set *set, const void *buf, size_t len, const char *what,
                         const struct image_view *v)
{
    if (!v || (!region_is_set(v->region) && !v->tiles))
        return image_set_add_encoded(set, buf, len, what);
    if (full(set)) {
        log_warn("skipping %s: already %d images", what, set->n);
        return 0;
    }
    char err[256];
    struct image im;
    struct image_decode_opts o = {.channels = set->channels};
    if (image_decode(buf, len, &o, &im, err, sizeof err)) {
        log_warn("skipping %s: %s", what, err);
        return 0;
    }
    int n = add_view(set, &im, v, err, sizeof err);
    image_free(&im);
    if (n > 0 && end_frame(set)) n = -1;
    if (n < 0) log_error("out of memory for %d images", set->n + 1);
    if (n == 0) log_warn("skipping %s: %s", what, err);
    return n;
}

void image_set_free(struct image_set *set)
{
    free(set->pixels);
    free(set->masks);
    free(set->first);
    set->masks = NULL;
    set->first = NULL;
    set->frames = 0, set->first_cap = 0;
    set->pixels = NULL;
    set->n = 0, set->cap = 0;
}
