/* export.c — the tar archive of flagged frames (see export.h), written with libarchive into a
 * buffer that export_read() drains.
 *
 * Invariants: libarchive's output goes to e->out, which export_read() empties before it asks for
 * more, so the buffer never holds more than one step's output (an entry header, or EXPORT_CHUNK
 * bytes of a body, plus libarchive's 10 KiB block). At most one frame's image and heatmap are in
 * memory. A manifest row is spooled when its frame's entries are queued, in the same order. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heatmap.h"
#include "array.h"
#include "clock.h"
#include "parse.h"
#include "rfc3339.h"
#include "export.h"
#include "scoring/model.h"

#define LOG_TAG "export"
#include "log.h"

#define MAX_QUEUE 4 /* entries queued at once: a class directory, an image, a heatmap */

/* The columns of both manifests, in order. */
static const char *const columns[] = {
    "frame_id",  "alert_id", "camera",  "captured_at", "flagged_at",    "score", "score_norm",
    "threshold", "state",    "verdict", "note",        "model_version", "image", "heatmap"};
#define NCOLUMNS ARRAY_LEN(columns)

/* A folder per alert state: the ImageFolder class of the frame. */
static const struct {
    const char *state, *folder;
} classes[] = {{"false_positive", "good"}, {"defect", "defect"}, {"new", "unreviewed"}};
#define NCLASSES ARRAY_LEN(classes)

/* An entry waiting to be written: a directory, or a file whose body is in memory or in a spool
 * file. */
struct entry {
    char path[96];
    bool dir;
    const void *mem;
    FILE *file;
    int64_t size;
    int64_t mtime_us;
};

/* The body of the entry being written. */
struct body {
    const unsigned char *mem;
    FILE *file;
    int64_t left;
};

enum phase { PH_START, PH_ROWS, PH_MANIFESTS, PH_CLOSE, PH_DONE };

struct export
{
    struct store_pool *pool;
    struct export_filter filter;
    struct archive *ar;
    struct archive_entry *ae;
    char *out; /* archive bytes not yet read: [out_off, out_len) */
    size_t out_len, out_off, out_cap;
    enum phase phase;
    bool failed;
    bool discard; /* closing a cut archive: its end blocks go nowhere */

    struct export_row rows[EXPORT_PAGE]; /* the current page */
    int nrows, next;
    bool last_page;

    struct entry queue[MAX_QUEUE];
    int nqueued, iqueued;
    struct body body;
    void *image; /* the current frame's image and heatmap, freed once written */
    uint8_t *heatmap;
    bool class_dir[NCLASSES];

    FILE *jsonl, *csv; /* manifest spools */
    char *chunk;       /* EXPORT_CHUNK bytes: a spool file's body on its way out */
    int64_t started_us;
    struct export_counts counts;
    char err[320];
};

__attribute__((format(printf, 2, 3))) static int fail(struct export *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
    e->failed = true;
    return -1;
}

/* ---- the filter ---- */

static int time_arg(const char *name, const char *s, int64_t *us, char *err, size_t errsz)
{
    if (parse_time_us(s, us) == 0) return 0;
    snprintf(err, errsz,
             "%s must be an RFC 3339 time (2026-11-29T12:00:00Z) or Unix microseconds, not "
             "'%.64s'",
             name, s);
    return -1;
}

int export_filter_parse(struct export_filter *f, const char *state, const char *camera,
                        const char *since, const char *until, char *err, size_t errsz)
{
    memset(f, 0, sizeof *f);
    f->since_us = INT64_MIN;
    f->until_us = INT64_MAX;
    if (state) {
        bool known = false;
        for (size_t i = 0; i < NCLASSES; i++) known |= strcmp(state, classes[i].state) == 0;
        if (!known) {
            snprintf(err, errsz, "state must be new, defect or false_positive, not '%.64s'", state);
            return -1;
        }
        snprintf(f->state, sizeof f->state, "%s", state);
    }
    if (camera) {
        if (camera[0] == '\0' || strlen(camera) >= sizeof f->camera) {
            snprintf(err, errsz, "camera must be a camera name");
            return -1;
        }
        snprintf(f->camera, sizeof f->camera, "%s", camera);
    }
    if (since && time_arg("since", since, &f->since_us, err, errsz) < 0) return -1;
    if (until && time_arg("until", until, &f->until_us, err, errsz) < 0) return -1;
    if (f->since_us >= f->until_us) {
        snprintf(err, errsz, "since must be before until");
        return -1;
    }
    return 0;
}

/* ---- libarchive's output ---- */

static la_ssize_t on_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
    struct export *e = ctx;
    if (e->discard) return (la_ssize_t)n;
    if (e->out_len + n > e->out_cap) {
        size_t cap = e->out_cap ? e->out_cap : EXPORT_CHUNK;
        while (cap < e->out_len + n) cap *= 2;
        char *grown = realloc(e->out, cap);
        if (!grown) {
            archive_set_error(a, ENOMEM, "out of memory");
            return -1;
        }
        e->out = grown;
        e->out_cap = cap;
    }
    memcpy(e->out + e->out_len, buf, n);
    e->out_len += n;
    e->counts.bytes += n;
    return (la_ssize_t)n;
}

static int archive_fail(struct export *e, const char *what)
{
    return fail(e, "%s: %s", what, archive_error_string(e->ar));
}

/* ---- entries ---- */

static void queue_entry(struct export *e, const char *path, bool dir, const void *mem, FILE *file,
                        int64_t size, int64_t mtime_us)
{
    struct entry *q = &e->queue[e->nqueued++];
    snprintf(q->path, sizeof q->path, "%s", path);
    q->dir = dir;
    q->mem = mem;
    q->file = file;
    q->size = size;
    q->mtime_us = mtime_us;
}

/* Writes the next queued entry's header and makes its contents the body to write. */
static int write_header(struct export *e)
{
    struct entry *q = &e->queue[e->iqueued++];
    archive_entry_clear(e->ae);
    archive_entry_set_pathname(e->ae, q->path);
    archive_entry_set_filetype(e->ae, q->dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e->ae, q->dir ? 0755 : 0644);
    archive_entry_set_size(e->ae, q->dir ? 0 : q->size);
    archive_entry_set_mtime(e->ae, (time_t)(q->mtime_us / 1000000),
                            (long)(q->mtime_us % 1000000) * 1000);
    if (archive_write_header(e->ar, e->ae) < ARCHIVE_WARN) return archive_fail(e, q->path);
    e->body = (struct body){q->dir ? NULL : q->mem, q->file, q->dir ? 0 : q->size};
    return 0;
}

/* Writes up to EXPORT_CHUNK bytes of the current body. */
static int write_body(struct export *e)
{
    size_t n = e->body.left < EXPORT_CHUNK ? (size_t)e->body.left : EXPORT_CHUNK;
    const void *p = e->body.mem;
    if (e->body.file) {
        if (fread(e->chunk, 1, n, e->body.file) != n)
            return fail(e, "manifest spool: %s",
                        ferror(e->body.file) ? strerror(errno) : "shorter than written");
        p = e->chunk;
    }
    la_ssize_t w = archive_write_data(e->ar, p, n);
    if (w < 0 || (size_t)w != n) return archive_fail(e, "write");
    if (e->body.mem) e->body.mem += n;
    e->body.left -= (int64_t)n;
    return 0;
}

/* ---- manifest rows ---- */

/* A JSON string of text; bytes that are not UTF-8 become '?' (jansson takes UTF-8 only). */
static json_t *text_json(const char *s)
{
    if (!s) return json_null();
    json_t *j = json_string(s);
    if (j) return j;
    char *copy = strdup(s);
    if (!copy) return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

/* Unix microseconds as an RFC 3339 string, or null for 0 (never). */
static json_t *time_json(int64_t us)
{
    char buf[RFC3339_LEN];
    return us > 0 ? json_string(rfc3339_format(us, buf, sizeof buf)) : json_null();
}

static json_t *row_json(const struct export_row *r, const char *verdict, const char *image,
                        const char *heatmap)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:f, s:f, s:f, s:s, s:s, s:o, s:o, s:s, s:s?}",
                     "frame_id", (json_int_t)r->frame_id, "alert_id", (json_int_t)r->alert_id,
                     "camera", text_json(r->camera), "captured_at", time_json(r->captured_at_us),
                     "flagged_at", time_json(r->flagged_at_us), "score", r->score, "score_norm",
                     r->score_norm, "threshold", r->threshold, "state", r->state, "verdict",
                     verdict, "note", text_json(r->note), "model_version",
                     text_json(r->model_version), "image", image, "heatmap", heatmap);
}

/* One CSV field (RFC 4180: quoted when it holds a comma, quote, line break or edge space). */
static void csv_field(FILE *f, const json_t *v)
{
    if (json_is_integer(v)) {
        fprintf(f, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%.17g", json_real_value(v));
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        bool quote = strpbrk(s, ",\"\r\n") || (n && (s[0] == ' ' || s[n - 1] == ' '));
        if (!quote) {
            fputs(s, f);
            return;
        }
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } /* null: an empty field */
}

static int spool_row(struct export *e, const json_t *row)
{
    char *line = json_dumps(row, JSON_COMPACT);
    if (!line)
        return fail(e, "manifest: cannot encode the row of frame %lld",
                    (long long)json_integer_value(json_object_get(row, "frame_id")));
    fputs(line, e->jsonl);
    fputc('\n', e->jsonl);
    free(line);
    for (size_t i = 0; i < NCOLUMNS; i++) {
        if (i) fputc(',', e->csv);
        csv_field(e->csv, json_object_get(row, columns[i]));
    }
    fputc('\n', e->csv);
    if (ferror(e->jsonl) || ferror(e->csv)) return fail(e, "manifest spool: %s", strerror(errno));
    return 0;
}

/* ---- frames ---- */

/* The class folder of an alert state, or -1 for a state this code does not know. */
static int class_of(const char *state)
{
    for (size_t i = 0; i < NCLASSES; i++)
        if (strcmp(state, classes[i].state) == 0) return (int)i;
    return -1;
}

/* Frees the frame whose entries are all written. */
static void release_frame(struct export *e)
{
    free(e->image);
    free(e->heatmap);
    e->image = NULL;
    e->heatmap = NULL;
    e->nqueued = e->iqueued = 0;
}

/* Reads the next page: alerts older than the last one of the current page. */
static int next_page(struct export *e)
{
    int64_t before = e->nrows ? e->rows[e->nrows - 1].alert_id : 0;
    store_export_rows_free(e->rows, e->nrows);
    e->nrows = e->next = 0;
    struct store_reader *rd = store_pool_get(e->pool);
    int n = store_export_page(rd, &e->filter, before, e->rows, EXPORT_PAGE);
    if (n < 0) fail(e, "%s", store_reader_errmsg(rd));
    store_pool_put(e->pool, rd);
    if (n < 0) return -1;
    e->nrows = n;
    e->last_page = n < EXPORT_PAGE;
    return 0;
}

/* Draws the heatmap of the current image into e->heatmap (NULL when it cannot be drawn). */
static size_t draw_heatmap(struct export *e, int64_t id, size_t size, const float *grid, int gw,
                           int gh, double threshold)
{
    char err[256];
    size_t len = 0;
    if (heatmap_jpeg(e->image, size, grid, gh, gw, (float)threshold, &e->heatmap, &len, err,
                     sizeof err) == 0)
        return len;
    log_warn("frame %lld: exported without its heatmap: %s", (long long)id, err);
    e->counts.heatmap_errors++;
    e->heatmap = NULL;
    return 0;
}

/* Queues the entries of the row's frame (its class folder first when new) and spools its
 * manifest row. Returns 0, also for a frame deleted since its page was read (left out). */
static int load_frame(struct export *e, const struct export_row *row)
{
    long long id = (long long)row->frame_id;
    int c = class_of(row->state);
    if (c < 0)
        return fail(e, "alert %lld: unknown state '%s'", (long long)row->alert_id, row->state);
    struct store_frame_info info;
    size_t size = 0;
    float *grid = NULL;
    int gw = 0, gh = 0;
    double threshold = 0;
    struct store_reader *rd = store_pool_get(e->pool);
    int found = store_get_image(rd, row->frame_id, &e->image, &size, &info);
    int has_map =
        found == 1 ? store_get_heatmap(rd, row->frame_id, &grid, &gw, &gh, &threshold) : 0;
    if (found < 0 || has_map < 0) fail(e, "frame %lld: %s", id, store_reader_errmsg(rd));
    store_pool_put(e->pool, rd);
    if (found < 0 || has_map < 0) return -1;
    if (found == 0 || found == STORE_NO_IMAGE) { /* deleted, or stored without its image */
        e->counts.skipped++;
        return 0;
    }
    size_t heat_len = has_map ? draw_heatmap(e, row->frame_id, size, grid, gw, gh, threshold) : 0;
    free(grid);

    const char *folder = classes[c].folder;
    char image[96], heatmap[96];
    snprintf(image, sizeof image, "images/%s/%lld.%s", folder, id,
             strcmp(info.format, "png") == 0 ? "png" : "jpg");
    snprintf(heatmap, sizeof heatmap, "heatmaps/%lld.jpg", id);
    if (!e->class_dir[c]) {
        char dir[64];
        snprintf(dir, sizeof dir, "images/%s/", folder);
        queue_entry(e, dir, true, NULL, NULL, 0, e->started_us);
        e->class_dir[c] = true;
    }
    queue_entry(e, image, false, e->image, NULL, (int64_t)size, row->flagged_at_us);
    if (e->heatmap)
        queue_entry(e, heatmap, false, e->heatmap, NULL, (int64_t)heat_len, row->flagged_at_us);

    json_t *j = row_json(row, folder, image, e->heatmap ? heatmap : NULL);
    int rc = j ? spool_row(e, j) : fail(e, "manifest: out of memory");
    json_decref(j);
    e->counts.frames++;
    e->counts.heatmaps += e->heatmap != NULL;
    e->counts.good += c == 0;
    e->counts.defect += c == 1;
    e->counts.unreviewed += c == 2;
    return rc;
}

/* Queues both manifests, their spools rewound. */
static int queue_manifests(struct export *e)
{
    FILE *files[] = {e->jsonl, e->csv};
    const char *names[] = {"manifest.jsonl", "manifest.csv"};
    for (int i = 0; i < 2; i++) {
        long size = fflush(files[i]) == 0 ? ftell(files[i]) : -1;
        if (size < 0 || fseek(files[i], 0, SEEK_SET) != 0)
            return fail(e, "%s spool: %s", names[i], strerror(errno));
        queue_entry(e, names[i], false, NULL, files[i], size, e->started_us);
    }
    return 0;
}

/* One bounded piece of work: a body chunk, a header, a frame, a page or the archive's end. */
static int step(struct export *e)
{
    if (e->body.left > 0) return write_body(e);
    if (e->iqueued < e->nqueued) return write_header(e);
    release_frame(e);
    switch (e->phase) {
    case PH_START:
        queue_entry(e, "images/", true, NULL, NULL, 0, e->started_us);
        queue_entry(e, "heatmaps/", true, NULL, NULL, 0, e->started_us);
        e->phase = PH_ROWS;
        return 0;
    case PH_ROWS:
        if (e->next < e->nrows) return load_frame(e, &e->rows[e->next++]);
        if (!e->last_page) return next_page(e);
        e->phase = PH_MANIFESTS;
        return 0;
    case PH_MANIFESTS:
        e->phase = PH_CLOSE;
        return queue_manifests(e);
    case PH_CLOSE:
        if (archive_write_close(e->ar) != ARCHIVE_OK) return archive_fail(e, "end of archive");
        e->phase = PH_DONE;
        return 0;
    case PH_DONE:
        break;
    }
    return 0;
}

ssize_t export_read(struct export *e, char *buf, size_t max)
{
    if (e->failed) return -1;
    while (e->out_off == e->out_len) {
        e->out_off = e->out_len = 0;
        if (e->phase == PH_DONE) return 0;
        if (step(e) < 0) return -1;
    }
    size_t n = e->out_len - e->out_off < max ? e->out_len - e->out_off : max;
    memcpy(buf, e->out + e->out_off, n);
    e->out_off += n;
    return (ssize_t)n;
}

/* ---- opening and closing ---- */

static int open_archive(struct export *e)
{
    if (!(e->ar = archive_write_new()) || !(e->ae = archive_entry_new()))
        return fail(e, "out of memory");
    if (archive_write_set_format_pax_restricted(e->ar) != ARCHIVE_OK ||
        archive_write_open(e->ar, e, NULL, on_write, NULL) != ARCHIVE_OK)
        return archive_fail(e, "tar");
    return 0;
}

static int open_spools(struct export *e)
{
    if (!(e->chunk = malloc(EXPORT_CHUNK))) return fail(e, "out of memory");
    if (!(e->jsonl = tmpfile()) || !(e->csv = tmpfile()))
        return fail(e, "cannot create a temporary file for the manifests: %s", strerror(errno));
    for (size_t i = 0; i < NCOLUMNS; i++) fprintf(e->csv, "%s%s", i ? "," : "", columns[i]);
    fputc('\n', e->csv);
    return 0;
}

/* 1 when the filter's camera was ever stored (or there is no camera filter), 0, -1. */
static int camera_known(struct export *e)
{
    if (!e->filter.camera[0]) return 1;
    struct store_reader *rd = store_pool_get(e->pool);
    int known = store_has_camera(rd, e->filter.camera);
    if (known < 0) fail(e, "%s", store_reader_errmsg(rd));
    store_pool_put(e->pool, rd);
    return known;
}

int export_open(struct export **out, struct store_pool *pool, const struct export_filter *f,
                char *err, size_t errsz)
{
    *out = NULL;
    struct export *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    e->pool = pool;
    e->filter = *f;
    e->started_us = clock_wall_us();
    int known = 0;
    if (open_spools(e) == 0 && open_archive(e) == 0 && (known = camera_known(e)) == 1 &&
        next_page(e) == 0) {
        *out = e;
        return 0;
    }
    int rc = known == 0 ? EXPORT_NO_CAMERA : -1;
    snprintf(err, errsz, "%s", known == 0 ? "no such camera" : e->err);
    export_close(e);
    return rc;
}

const char *export_errmsg(const struct export *e)
{
    return e->err;
}

void export_get_counts(const struct export *e, struct export_counts *c)
{
    *c = e->counts;
}

void export_close(struct export *e)
{
    if (!e) return;
    /* archive_write_fail() would skip closing and leak libarchive's block buffer: close, and
     * drop what closing writes instead */
    e->discard = true;
    archive_write_free(e->ar);
    archive_entry_free(e->ae);
    release_frame(e);
    store_export_rows_free(e->rows, e->nrows);
    if (e->jsonl) fclose(e->jsonl);
    if (e->csv) fclose(e->csv);
    free(e->chunk);
    free(e->out);
    free(e);
}
