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
    set->pixels = p, set->cap = want;
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
                !load_one(path, set->size, set->channels, set->pixels + img * set->n))
                set->n++, added++;
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
    set->n++;
    return 1;
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

void image_set_free(struct image_set *set)
{
    free(set->pixels);
    set->pixels = NULL;
    set->n = 0, set->cap = 0;
}
