/* test_export.c — the export archive on a real SQLite file, read back with libarchive: 300 alerts
 * (more than two pages) in the ImageFolder layout by state, images byte for byte (a PNG keeps
 * .png), heatmaps as decodable JPEGs of the frame's size, no heatmap entry for a frame without a
 * grid, directories before their files and the manifests last, manifest rows newest first equal
 * to the database's; the state, camera and [since, until) filters; an unknown camera; a frame
 * deleted while the export runs left out of both the images and the manifests; filter parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "image.h"
#include "store/store.h"

#define NFRAMES  300
#define T0       1800000000000000LL /* flagged_at of alert i: T0 + i ms */
#define NO_MAP   7                  /* the frame without a heatmap grid */
#define PNG      5                  /* the frame stored as PNG */
#define MAX_ENTS (3 * NFRAMES + 16)

struct fixture {
    char dir[64];
    char path[128];
    struct store_pool *pool;
};

static const char *const states[] = {"new", "defect", "false_positive"};

static const char *state_of(int i)
{
    return states[(i / 2) % 3];
}

static const char *camera_of(int i)
{
    return i % 3 == 0 ? "side" : "line";
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
}

/* A small image whose pixels depend on i, so that every frame's bytes differ. */
static void encode(int i, bool png, uint8_t **out, size_t *len)
{
    struct image im;
    char err[128];
    assert_int_equal(image_alloc(&im, 32, 24, 3), IMAGE_OK);
    for (size_t k = 0; k < im.stride * 24; k++) im.data[k] = (uint8_t)(k * 7 + i * 13);
    int rc = png ? image_encode_png(&im, out, len, err, sizeof err)
                 : image_encode_jpeg(&im, 80, out, len, err, sizeof err);
    assert_int_equal(rc, IMAGE_OK);
    image_free(&im);
}

static void insert_frames(const char *path)
{
    char err[512];
    struct store *s = store_open(path, err, sizeof err);
    if (!s) fail_msg("store_open: %s", err);
    int64_t line, side;
    assert_int_equal(store_camera(s, "line", "synthetic", &line), 0);
    assert_int_equal(store_camera(s, "side", "synthetic", &side), 0);
    assert_int_equal(store_camera(s, "idle", "synthetic", &side), 0); /* never flagged */
    assert_int_equal(store_camera(s, "side", "synthetic", &side), 0);
    assert_int_equal(store_begin(s), 0);
    for (int i = 1; i <= NFRAMES; i++) {
        struct store_frame f = {.camera_id = strcmp(camera_of(i), "side") == 0 ? side : line,
                                .seq = (uint64_t)i,
                                .captured_at_us = T0 + i * 1000 - 400,
                                .width = 32,
                                .height = 24,
                                .format = i == PNG ? FRAME_PNG : FRAME_JPEG};
        uint8_t *data;
        encode(i, i == PNG, &data, &f.image_size);
        f.image = data;
        int64_t id;
        assert_int_equal(store_insert_frame(s, &f, &id), 0);
        assert_int_equal(id, i);
        free(data);
    }
    assert_int_equal(store_commit(s), 0);
    store_close(s);
}

/* The model, one alert per frame (alert i for frame i) and the heatmap grids. */
static void insert_alerts(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *alert, *map;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_sql(db, "BEGIN");
    exec_sql(db, "INSERT INTO models (id, version, path, created_at, threshold, status) "
                 "VALUES (1, 'v-test', '/none', 0, 0.5, 'retired')");
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO alerts (id, frame_id, model_id, camera_id, "
                                        "created_at, score, score_norm, threshold, state, note) "
                                        "SELECT ?1, ?1, 1, camera_id, ?2, ?3, ?3 / 0.5, 0.5, ?4, "
                                        "?5 FROM frames WHERE id = ?1",
                                        -1, &alert, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO heatmaps (frame_id, model_id, grid_w, grid_h, "
                                        "data) VALUES (?, 1, 4, 3, ?)",
                                        -1, &map, NULL),
                     SQLITE_OK);
    for (int i = 1; i <= NFRAMES; i++) {
        sqlite3_bind_int(alert, 1, i);
        sqlite3_bind_int64(alert, 2, T0 + i * 1000LL);
        sqlite3_bind_double(alert, 3, 0.5 + i / 1000.0);
        sqlite3_bind_text(alert, 4, state_of(i), -1, SQLITE_STATIC);
        if (i % 10 == 1) sqlite3_bind_text(alert, 5, "a \"note\", with\nlines", -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(alert), SQLITE_DONE);
        sqlite3_reset(alert);
        sqlite3_clear_bindings(alert);
        if (i == NO_MAP) continue;
        float grid[12];
        for (int k = 0; k < 12; k++) grid[k] = (float)((k + i) % 5) * 0.25f;
        sqlite3_bind_int(map, 1, i);
        sqlite3_bind_blob(map, 2, grid, sizeof grid, SQLITE_TRANSIENT);
        assert_int_equal(sqlite3_step(map), SQLITE_DONE);
        sqlite3_reset(map);
    }
    sqlite3_finalize(alert);
    sqlite3_finalize(map);
    exec_sql(db, "COMMIT");
    sqlite3_close(db);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/test_export_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    insert_frames(f->path);
    insert_alerts(f->path);
    char err[512];
    if (!(f->pool = store_pool_open(f->path, 2, err, sizeof err))) fail_msg("pool: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_pool_close(f->pool);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- the archive, read back ---- */

struct entry {
    char name[128];
    bool dir;
    char *data;
    size_t len;
};

struct tar {
    struct entry ents[MAX_ENTS];
    int n;
    struct export_counts counts;
};

static void tar_free(struct tar *t)
{
    for (int i = 0; i < t->n; i++) free(t->ents[i].data);
    free(t);
}

static void read_entries(struct tar *t, const char *bytes, size_t len)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, bytes, len), ARCHIVE_OK);
    struct archive_entry *ae;
    int rc;
    while ((rc = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
        assert_true(t->n < MAX_ENTS);
        struct entry *e = &t->ents[t->n++];
        snprintf(e->name, sizeof e->name, "%s", archive_entry_pathname(ae));
        e->dir = archive_entry_filetype(ae) == AE_IFDIR;
        e->len = (size_t)archive_entry_size(ae);
        e->data = malloc(e->len + 1);
        assert_int_equal(archive_read_data(a, e->data, e->len), (la_ssize_t)e->len);
        e->data[e->len] = '\0';
    }
    if (rc != ARCHIVE_EOF) fail_msg("tar: %s", archive_error_string(a));
    archive_read_free(a);
}

/* Runs an export to memory in reads of odd sizes, and reads the tar back. */
static struct tar *run_export(struct store_pool *pool, const struct export_filter *flt)
{
    char err[320];
    struct export *e;
    if (export_open(&e, pool, flt, err, sizeof err) != 0) fail_msg("export_open: %s", err);
    size_t cap = 1 << 20, len = 0;
    char *bytes = malloc(cap);
    ssize_t n;
    for (size_t step = 1; (n = export_read(e, bytes + len, 1 + step % 7000)) > 0; step++) {
        len += (size_t)n;
        if (cap - len < 8192) bytes = realloc(bytes, cap *= 2);
    }
    if (n < 0) fail_msg("export_read: %s", export_errmsg(e));
    assert_int_equal(export_read(e, bytes, 100), 0); /* stays at the end */
    struct tar *t = calloc(1, sizeof *t);
    export_get_counts(e, &t->counts);
    assert_int_equal(t->counts.bytes, len);
    export_close(e);
    read_entries(t, bytes, len);
    free(bytes);
    return t;
}

static const struct entry *find(const struct tar *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->ents[i].name, name) == 0) return &t->ents[i];
    return NULL;
}

static int index_of(const struct tar *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->ents[i].name, name) == 0) return i;
    return -1;
}

static const char *folder_of(const char *state)
{
    return strcmp(state, "new") == 0 ? "unreviewed"
                                     : (strcmp(state, "defect") == 0 ? "defect" : "good");
}

/* The stored bytes of frame id. */
static void *stored_image(struct store_pool *pool, int id, size_t *len)
{
    struct store_frame_info info;
    void *data = NULL;
    struct store_reader *r = store_pool_get(pool);
    assert_int_equal(store_get_image(r, id, &data, len, &info), 1);
    store_pool_put(pool, r);
    return data;
}

/* Checks the manifests against the frames expected (ids, newest first) and returns the rows. */
static json_t *check_manifests(const struct tar *t, const int *ids, int n)
{
    const struct entry *jl = find(t, "manifest.jsonl"), *csv = find(t, "manifest.csv");
    assert_non_null(jl);
    assert_non_null(csv);
    assert_string_equal(t->ents[t->n - 2].name, "manifest.jsonl");
    assert_string_equal(t->ents[t->n - 1].name, "manifest.csv");
    assert_true(strncmp(csv->data,
                        "frame_id,alert_id,camera,captured_at,flagged_at,score,score_norm,"
                        "threshold,state,verdict,note,model_version,image,heatmap\n",
                        strlen("frame_id,alert_id")) == 0);
    json_t *rows = json_array();
    char *save, *copy = strdup(jl->data);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *row = json_loads(line, 0, &je);
        if (!row) fail_msg("manifest.jsonl: %s in %s", je.text, line);
        json_array_append_new(rows, row);
    }
    free(copy);
    assert_int_equal(json_array_size(rows), n);
    for (int k = 0; k < n; k++) {
        json_t *row = json_array_get(rows, k);
        int i = ids[k];
        char image[96];
        snprintf(image, sizeof image, "images/%s/%d.%s", folder_of(state_of(i)), i,
                 i == PNG ? "png" : "jpg");
        assert_int_equal(json_integer_value(json_object_get(row, "frame_id")), i);
        assert_int_equal(json_integer_value(json_object_get(row, "alert_id")), i);
        assert_string_equal(json_string_value(json_object_get(row, "camera")), camera_of(i));
        assert_string_equal(json_string_value(json_object_get(row, "state")), state_of(i));
        assert_string_equal(json_string_value(json_object_get(row, "verdict")),
                            folder_of(state_of(i)));
        assert_string_equal(json_string_value(json_object_get(row, "model_version")), "v-test");
        assert_string_equal(json_string_value(json_object_get(row, "image")), image);
        assert_true(json_real_value(json_object_get(row, "score")) == 0.5 + i / 1000.0);
        assert_true(json_real_value(json_object_get(row, "threshold")) == 0.5);
        json_t *note = json_object_get(row, "note");
        if (i % 10 == 1)
            assert_string_equal(json_string_value(note), "a \"note\", with\nlines");
        else
            assert_true(json_is_null(note));
        json_t *heat = json_object_get(row, "heatmap");
        if (i == NO_MAP) {
            assert_true(json_is_null(heat));
        } else {
            char want[64];
            snprintf(want, sizeof want, "heatmaps/%d.jpg", i);
            assert_string_equal(json_string_value(heat), want);
        }
    }
    /* one CSV line per row after the header (the notes' line breaks are inside quotes) */
    size_t lines = 0;
    bool quoted = false;
    for (const char *p = csv->data; *p; p++) {
        if (*p == '"') quoted = !quoted;
        if (*p == '\n' && !quoted) lines++;
    }
    assert_int_equal(lines, (size_t)n + 1);
    return rows;
}

/* Every image is the stored bytes in its folder after the folder's entry; every heatmap is a
 * JPEG of the frame's size. */
static void check_images(struct fixture *f, const struct tar *t, const int *ids, int n)
{
    for (int k = 0; k < n; k++) {
        int i = ids[k];
        char name[96], dir[64];
        snprintf(dir, sizeof dir, "images/%s/", folder_of(state_of(i)));
        snprintf(name, sizeof name, "%s%d.%s", dir, i, i == PNG ? "png" : "jpg");
        const struct entry *e = find(t, name);
        if (!e) fail_msg("no %s in the archive", name);
        assert_true(index_of(t, dir) >= 0 && index_of(t, dir) < index_of(t, name));
        size_t len;
        void *want = stored_image(f->pool, i, &len);
        assert_int_equal(e->len, len);
        assert_memory_equal(e->data, want, len);
        free(want);
        snprintf(name, sizeof name, "heatmaps/%d.jpg", i);
        const struct entry *h = find(t, name);
        if (i == NO_MAP) {
            assert_null(h);
            continue;
        }
        if (!h) fail_msg("no %s in the archive", name);
        struct image im;
        char err[128];
        assert_int_equal(image_sniff(h->data, h->len), IMAGE_CODEC_JPEG);
        assert_int_equal(image_decode(h->data, h->len, NULL, &im, err, sizeof err), IMAGE_OK);
        assert_int_equal(im.width, 32);
        assert_int_equal(im.height, 24);
        image_free(&im);
    }
}

static struct export_filter no_filter(void)
{
    struct export_filter flt;
    char err[320];
    assert_int_equal(export_filter_parse(&flt, NULL, NULL, NULL, NULL, err, sizeof err), 0);
    return flt;
}

static void everything(void **state)
{
    struct fixture *f = *state;
    struct export_filter flt = no_filter();
    struct tar *t = run_export(f->pool, &flt);
    int ids[NFRAMES];
    for (int k = 0; k < NFRAMES; k++) ids[k] = NFRAMES - k; /* newest first */
    assert_string_equal(t->ents[0].name, "images/");
    assert_true(t->ents[0].dir);
    assert_string_equal(t->ents[1].name, "heatmaps/");
    /* 2 + 3 directories, 300 images, 299 heatmaps, 2 manifests */
    assert_int_equal(t->n, 5 + NFRAMES + NFRAMES - 1 + 2);
    json_decref(check_manifests(t, ids, NFRAMES));
    check_images(f, t, ids, NFRAMES);
    assert_int_equal(t->counts.frames, NFRAMES);
    assert_int_equal(t->counts.heatmaps, NFRAMES - 1);
    assert_int_equal(t->counts.good + t->counts.defect + t->counts.unreviewed, NFRAMES);
    assert_int_equal(t->counts.skipped, 0);
    tar_free(t);
}

static void filters(void **state)
{
    struct fixture *f = *state;
    struct export_filter flt;
    char err[320], since[32], until[32];
    /* defects of camera side flagged in [T0 + 50 ms, T0 + 250 ms) */
    snprintf(since, sizeof since, "%lld", T0 + 50000);
    snprintf(until, sizeof until, "%lld", T0 + 250000);
    assert_int_equal(export_filter_parse(&flt, "defect", "side", since, until, err, sizeof err), 0);
    struct tar *t = run_export(f->pool, &flt);
    int ids[NFRAMES], n = 0;
    for (int i = 249; i >= 50; i--)
        if (strcmp(state_of(i), "defect") == 0 && strcmp(camera_of(i), "side") == 0) ids[n++] = i;
    assert_true(n > 10);
    json_decref(check_manifests(t, ids, n));
    check_images(f, t, ids, n);
    assert_null(find(t, "images/good/"));
    assert_null(find(t, "images/unreviewed/"));
    assert_int_equal(t->counts.defect, n);
    tar_free(t);

    /* RFC 3339 bounds: T0 is 2027-01-15T08:00:00Z */
    assert_int_equal(export_filter_parse(&flt, "new", NULL, "2027-01-15T08:00:00.1Z",
                                         "2027-01-15T09:00:00.102+01:00", err, sizeof err),
                     0);
    t = run_export(f->pool, &flt);
    n = 0;
    for (int i = 101; i >= 100; i--)
        if (strcmp(state_of(i), "new") == 0) ids[n++] = i;
    json_decref(check_manifests(t, ids, n));
    tar_free(t);

    /* a camera that flagged nothing: an archive with empty manifests */
    assert_int_equal(export_filter_parse(&flt, NULL, "idle", NULL, NULL, err, sizeof err), 0);
    t = run_export(f->pool, &flt);
    json_decref(check_manifests(t, ids, 0));
    assert_int_equal(t->n, 4); /* images/, heatmaps/, the manifests */
    tar_free(t);
}

static void unknown_camera(void **state)
{
    struct fixture *f = *state;
    struct export_filter flt;
    char err[320];
    assert_int_equal(export_filter_parse(&flt, NULL, "nosuch", NULL, NULL, err, sizeof err), 0);
    struct export *e = (struct export *)1;
    assert_int_equal(export_open(&e, f->pool, &flt, err, sizeof err), EXPORT_NO_CAMERA);
    assert_null(e);
}

static void frame_deleted_meanwhile(void **state)
{
    struct fixture *f = *state;
    struct export_filter flt = no_filter();
    char err[320];
    struct export *e;
    assert_int_equal(export_open(&e, f->pool, &flt, err, sizeof err), 0); /* first page read */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    exec_sql(db, "PRAGMA foreign_keys = ON; DELETE FROM frames WHERE id = 290");
    sqlite3_close(db);
    size_t cap = 8 << 20, len = 0;
    char *bytes = malloc(cap);
    ssize_t n;
    while ((n = export_read(e, bytes + len, cap - len)) > 0) {
        len += (size_t)n;
        assert_true(len < cap);
    }
    assert_int_equal(n, 0);
    struct tar *t = calloc(1, sizeof *t);
    export_get_counts(e, &t->counts);
    export_close(e);
    assert_int_equal(t->counts.skipped, 1);
    assert_int_equal(t->counts.frames, NFRAMES - 1);
    read_entries(t, bytes, len);
    free(bytes);
    int ids[NFRAMES], k = 0;
    for (int i = NFRAMES; i >= 1; i--)
        if (i != 290) ids[k++] = i;
    json_decref(check_manifests(t, ids, k));
    assert_null(find(t, "heatmaps/290.jpg"));
    tar_free(t);
}

static void bad_filters(void **state)
{
    struct export_filter flt;
    char err[320];
    assert_int_equal(export_filter_parse(&flt, "reviewed", NULL, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "state must be new, defect or false_positive"));
    assert_int_equal(export_filter_parse(&flt, "", NULL, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(export_filter_parse(&flt, NULL, "", NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "camera"));
    char long_name[100];
    memset(long_name, 'c', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(export_filter_parse(&flt, NULL, long_name, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(export_filter_parse(&flt, NULL, NULL, "yesterday", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "since must be an RFC 3339 time"));
    assert_int_equal(export_filter_parse(&flt, NULL, NULL, NULL, "2026-11-29", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "until must be"));
    assert_int_equal(export_filter_parse(&flt, NULL, NULL, "2026-11-29T12:00:00Z",
                                         "2026-11-29T12:00:00Z", err, sizeof err),
                     -1);
    assert_string_equal(err, "since must be before until");
    assert_int_equal(export_filter_parse(&flt, "false_positive", "line", "0",
                                         "2026-11-29T12:00:00Z", err, sizeof err),
                     0);
    assert_string_equal(flt.state, "false_positive");
    assert_string_equal(flt.camera, "line");
    assert_int_equal(flt.since_us, 0);
    assert_int_equal(flt.until_us, 1795953600LL * 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(everything, setup, teardown),
        cmocka_unit_test_setup_teardown(filters, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_camera, setup, teardown),
        cmocka_unit_test_setup_teardown(frame_deleted_meanwhile, setup, teardown),
        cmocka_unit_test(bad_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
