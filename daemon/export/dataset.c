/* dataset.c — an MVTec AD category from a database (see dataset.h): three passes over the frames,
 * normal, false positive and defect, each a keyset page of metadata at a time, every image read
 * alone and written to its file before the next is read. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rfc3339.h"
#include "dataset.h"

struct writer {
    struct store_pool *pool;
    const struct dataset_filter *f;
    const volatile sig_atomic_t *stop;
    char tmp[PATH_MAX];
    FILE *manifest;
    struct dataset_counts *c;
    char *err;
    size_t errsz;
};

static int fail(struct writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errsz, fmt, ap);
    va_end(ap);
    return -1;
}

/* 1 when path does not exist or is an empty directory, else 0 (reason in err). */
static int usable_target(struct writer *w, const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT) return 1;
        return fail(w, "%s: %s", path, strerror(errno)) + 1;
    }
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    if (!empty) fail(w, "%s exists and is not empty", path);
    return empty;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* The temporary tree with its four folders and the open manifest. Returns 0 or -1. */
static int make_tree(struct writer *w, const char *dir)
{
    if (snprintf(w->tmp, sizeof w->tmp, "%s.partial-XXXXXX", dir) >= (int)sizeof w->tmp - 64)
        return fail(w, "%s: path too long", dir);
    if (!mkdtemp(w->tmp)) {
        w->tmp[0] = '\0';
        return fail(w, "%s: cannot create a directory beside it: %s", dir, strerror(errno));
    }
    static const char *const sub[] = {"train", "train/good", "test", "test/good", "test/defect"};
    char path[PATH_MAX + 128];
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
        snprintf(path, sizeof path, "%s/%s", w->tmp, sub[i]);
        if (mkdir(path, 0777) < 0) return fail(w, "%s: %s", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/manifest.jsonl", w->tmp);
    if (!(w->manifest = fopen(path, "w"))) return fail(w, "%s: %s", path, strerror(errno));
    return 0;
}

static json_t *text_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

static int manifest_row(struct writer *w, const struct dataset_row *r, const char *image,
                        const char *split, const char *label, const char *kind)
{
    char when[40];
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:s, s:o}", "image", image, "split", split,
        "label", label, "kind", kind, "frame_id", (json_int_t)r->frame_id, "alert_id",
        r->alert_id ? json_integer(r->alert_id) : json_null(), "camera", r->camera, "recipe",
        text_or_null(r->recipe), "captured_at",
        rfc3339_format(r->captured_at_us, when, sizeof when), "defect", text_or_null(r->defect));
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    int rc = line && fprintf(w->manifest, "%s\n", line) > 0 ? 0 : -1;
    free(line);
    return rc ? fail(w, "manifest.jsonl: %s", line ? strerror(errno) : "out of memory") : 0;
}

static int write_bytes(struct writer *w, const char *path, const void *data, size_t size)
{
    FILE *out = fopen(path, "wb");
    bool ok = out && fwrite(data, 1, size, out) == size;
    if (out) ok = fclose(out) == 0 && ok;
    return ok ? 0 : fail(w, "%s: %s", path, strerror(errno));
}

/* Writes frame r to split/label/ID.ext and its manifest row. Returns 1 when written, 0 when the
 * frame was deleted (or lost its image) since it was listed, or -1. */
static int write_frame(struct writer *w, const struct dataset_row *r, const char *split,
                       const char *label, const char *kind)
{
    void *data = NULL;
    size_t size = 0;
    struct store_frame_info info;
    struct store_reader *rd = store_pool_get(w->pool);
    int found = store_get_image(rd, r->frame_id, &data, &size, &info);
    if (found < 0) fail(w, "frame %lld: %s", (long long)r->frame_id, store_reader_errmsg(rd));
    store_pool_put(w->pool, rd);
    if (found != 1) {
        free(data);
        if (found < 0) return -1;
        w->c->skipped++;
        return 0;
    }
    char image[96], path[PATH_MAX + 128];
    snprintf(image, sizeof image, "%s/%s/%lld.%s", split, label, (long long)r->frame_id,
             strcmp(r->format, "png") == 0 ? "png" : "jpg");
    snprintf(path, sizeof path, "%s/%s", w->tmp, image);
    int rc = write_bytes(w, path, data, size);
    free(data);
    if (rc == 0) rc = manifest_row(w, r, image, split, label, kind);
    return rc < 0 ? -1 : 1;
}

/* The rank of the k-th of n picks spread evenly over m ranks (n <= m). */
static int64_t pick(int64_t k, int64_t n, int64_t m)
{
    return (int64_t)(((__int128)(2 * k + 1) * m) / (2 * n));
}

/* Reads the next page of kind after *key into rows. Returns the count or -1. */
static int next_page(struct writer *w, enum dataset_kind kind, struct dataset_key *key,
                     struct dataset_row *rows)
{
    if (w->stop && *w->stop) return fail(w, "interrupted");
    struct store_reader *rd = store_pool_get(w->pool);
    int n = store_dataset_page(rd, kind, w->f, *key, rows, DATASET_PAGE);
    if (n < 0) fail(w, "%s", store_reader_errmsg(rd));
    store_pool_put(w->pool, rd);
    if (n > 0) *key = (struct dataset_key){rows[n - 1].captured_at_us, rows[n - 1].frame_id};
    return n;
}

/* The normal frames: n of the m there are to train/good, h of the others to test/good. */
static int write_normals(struct writer *w, struct dataset_row *rows, int64_t n, int64_t m,
                         int64_t h)
{
    struct dataset_key key = {INT64_MIN, 0};
    int64_t rank = 0, k = 0, left = 0, l = 0;
    for (int got = DATASET_PAGE; got == DATASET_PAGE;) {
        if ((got = next_page(w, DATASET_NORMAL, &key, rows)) < 0) return -1;
        for (int i = 0; i < got; i++, rank++) {
            int rc = 0;
            if (k < n && rank == pick(k, n, m)) {
                k++;
                rc = write_frame(w, &rows[i], "train", "good", "normal");
                if (rc > 0) w->c->train_good++;
            } else {
                if (l < h && left == pick(l, h, m - n)) {
                    l++;
                    rc = write_frame(w, &rows[i], "test", "good", "normal");
                    if (rc > 0) w->c->test_good_normal++;
                }
                left++;
            }
            if (rc < 0) return -1;
        }
    }
    if (w->c->train_good != n)
        return fail(w,
                    "%lld of the %lld normal frames were deleted while exporting (retention); "
                    "train/good would hold %lld, not %lld: run it again",
                    (long long)(n - w->c->train_good), (long long)m, (long long)w->c->train_good,
                    (long long)n);
    return 0;
}

/* Every frame of kind to test/label. */
static int write_all(struct writer *w, struct dataset_row *rows, enum dataset_kind kind,
                     const char *label, const char *kind_name, int64_t *count)
{
    struct dataset_key key = {INT64_MIN, 0};
    for (int got = DATASET_PAGE; got == DATASET_PAGE;) {
        if ((got = next_page(w, kind, &key, rows)) < 0) return -1;
        for (int i = 0; i < got; i++) {
            int rc = write_frame(w, &rows[i], "test", label, kind_name);
            if (rc < 0) return -1;
            *count += rc;
        }
    }
    return 0;
}

/* The counts and checks before any image is written. Returns 0, DATASET_NO_CAMERA,
 * DATASET_TOO_FEW or -1. */
static int plan(struct writer *w, int64_t *normals)
{
    struct store_reader *rd = store_pool_get(w->pool);
    int known = w->f->camera[0] ? store_has_camera(rd, w->f->camera) : 1;
    int64_t m = known == 1 ? store_dataset_count(rd, DATASET_NORMAL, w->f) : 0;
    if (known < 0 || m < 0) fail(w, "%s", store_reader_errmsg(rd));
    store_pool_put(w->pool, rd);
    if (known < 0 || m < 0) return -1;
    if (known == 0) return DATASET_NO_CAMERA;
    w->c->normals_available = m;
    if (*normals < 0) *normals = m;
    if (m == 0)
        fail(w, "no normal frames match (never flagged, not reviewed as a defect, not drawn "
                "with a defect by the synthetic camera)");
    else if (*normals > m)
        fail(w,
             "only %lld normal frames match (never flagged, not reviewed as a defect, not "
             "drawn with a defect by the synthetic camera); --normals asks for %lld",
             (long long)m, (long long)*normals);
    if (m == 0 || *normals > m) return DATASET_TOO_FEW;
    return 0;
}

int dataset_write(struct store_pool *pool, const struct dataset_filter *f, const char *dir,
                  int64_t normals, const volatile sig_atomic_t *stop, struct dataset_counts *c,
                  char *err, size_t errsz)
{
    memset(c, 0, sizeof *c);
    struct writer w = {.pool = pool, .f = f, .stop = stop, .c = c, .err = err, .errsz = errsz};
    if (usable_target(&w, dir) != 1) return -1;
    int rc = plan(&w, &normals);
    if (rc) return rc;
    int64_t m = c->normals_available, rest = m - normals;
    int64_t held = (normals + 3) / 4;
    if (held > rest) held = rest;
    struct dataset_row *rows = malloc(sizeof *rows * DATASET_PAGE);
    if (!rows) return fail(&w, "out of memory");
    rc = make_tree(&w, dir);
    if (!rc) rc = write_normals(&w, rows, normals, m, held);
    if (!rc)
        rc = write_all(&w, rows, DATASET_FALSE_POSITIVE, "good", "false_positive",
                       &c->test_good_false_pos);
    if (!rc) rc = write_all(&w, rows, DATASET_DEFECT, "defect", "defect", &c->test_defect);
    free(rows);
    if (w.manifest && fclose(w.manifest) != 0 && !rc)
        rc = fail(&w, "manifest.jsonl: %s", strerror(errno));
    if (!rc && rename(w.tmp, dir) < 0)
        rc = fail(&w, "%s: rename from %s: %s", dir, w.tmp, strerror(errno));
    if (rc && w.tmp[0]) nftw(w.tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
