/* store.c — SQLite: opening with the right pragmas, migrations from the embedded schema/NNNN_*.sql,
 * batched frame inserts on the write connection, and the queries the HTTP API reads with. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "clock.h"
#include "base/embedded.h"
#include "sqlite.h"
#include "store.h"

struct store {
    sqlite3 *db;
    sqlite3_stmt *insert_frame;
    sqlite3_stmt *find_camera, *insert_camera, *update_camera;
    sqlite3_stmt *oldest_free, *oldest_defects, *delete_frame; /* retention */
    sqlite3_stmt *delete_outbox_before, *oldest_outbox, *delete_outbox_row;
    bool full; /* the last error was SQLITE_FULL or ENOSPC */
    char err[256];
};

struct store_reader {
    sqlite3 *db;
    const char *path; /* the pool's */
    sqlite3_stmt *list_all, *list_camera, *list_recipe, *get_frame, *get_image, *count_frames,
        *has_camera;
    char err[256];
};

struct store_pool {
    char *path;
    pthread_mutex_t lock;
    pthread_cond_t available;
    int n, nfree;
    struct store_reader *readers;
    struct store_reader **free_list; /* nfree entries */
};

#define FRAME_COLUMNS                                                                              \
    "f.id, c.name, f.seq, f.captured_at, f.created_at, f.width, f.height, f.format, "              \
    "length(f.image), f.defect, f.defect_x0, f.defect_y0, f.defect_x1, f.defect_y1, "              \
    "f.image_missing, f.part_id, (SELECT name FROM recipes WHERE id = f.recipe_id)"

__attribute__((format(printf, 3, 4))) static int set_err(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int db_fail(struct store *s, const char *what)
{
    s->full = store_sqlite_full(s->db);
    return set_err(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int reader_fail(struct store_reader *r, const char *what)
{
    return set_err(r->err, sizeof r->err, "%s: %s", what, sqlite3_errmsg(r->db));
}

const char *store_errmsg(const struct store *s)
{
    return s->err;
}

const char *store_reader_errmsg(const struct store_reader *r)
{
    return r->err;
}

int store_reader_error(struct store_reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- migrations ---- */

/* The number NNNN of "schema/NNNN_name.sql", or -1 for any other embedded file. */
static int migration_number(const char *path)
{
    const char *prefix = "schema/";
    size_t n = strlen(path);
    if (strncmp(path, prefix, strlen(prefix)) != 0 || n < 4 || strcmp(path + n - 4, ".sql") != 0)
        return -1;
    const char *s = path + strlen(prefix);
    if (strspn(s, "0123456789") != 4 || s[4] != '_') return -1;
    return atoi(s);
}

static const struct embed_file *find_migration(int number)
{
    for (const struct embed_file *e = embed_files; e->path; e++)
        if (migration_number(e->path) == number) return e;
    return NULL;
}

int store_schema_latest(void)
{
    int latest = 0;
    for (const struct embed_file *e = embed_files; e->path; e++) {
        int n = migration_number(e->path);
        if (n > latest) latest = n;
    }
    return latest;
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int store_schema_version(struct store *s)
{
    int v;
    return pragma_int(s->db, "PRAGMA user_version", &v) == 0 ? v : -1;
}

/* Whether PRAGMA foreign_key_check finds a row whose reference is broken. Returns 1, 0 or -1. */
static int broken_references(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* One migration in one transaction. Foreign keys are off while it runs (a table rebuilt in place
 * keeps the rows that refer to it, as SQLite's ALTER TABLE procedure has it) and every reference
 * is checked before it commits. */
static int apply_migration(struct store *s, const struct embed_file *m, int number)
{
    char *msg = NULL;
    char version[64];
    snprintf(version, sizeof version, "PRAGMA user_version = %d", number);
    int broken = 0;
    if (sqlite3_exec(s->db, "PRAGMA foreign_keys = OFF", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, (const char *)m->data, NULL, NULL, &msg) != SQLITE_OK ||
        (broken = broken_references(s->db)) != 0 ||
        sqlite3_exec(s->db, version, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        set_err(s->err, sizeof s->err, "%s: %s", m->path,
                msg      ? msg
                : broken ? "it leaves rows whose references are broken"
                         : "failed");
        sqlite3_free(msg);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
        return -1;
    }
    if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, &msg) != SQLITE_OK) {
        set_err(s->err, sizeof s->err, "foreign keys: %s", msg ? msg : "failed");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int migrate(struct store *s)
{
    int current = store_schema_version(s);
    if (current < 0) return db_fail(s, "read user_version");
    int latest = store_schema_latest();
    if (current > latest)
        return set_err(s->err, sizeof s->err,
                       "database schema version %d is newer than this inspectd (%d)", current,
                       latest);
    for (int v = current + 1; v <= latest; v++) {
        const struct embed_file *m = find_migration(v);
        if (!m) return set_err(s->err, sizeof s->err, "migration %04d is missing", v);
        if (apply_migration(s, m, v) < 0) return -1;
    }
    return 0;
}

/* ---- write connection ---- */

static int exec(struct store *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    s->full = store_sqlite_full(s->db);
    set_err(s->err, sizeof s->err, "%s: %s", sql, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

/* A database created without auto_vacuum (by another tool, or by hand) is rebuilt with it once,
 * so that retention can give space back to the filesystem. The VACUUM rewrites the whole file:
 * it takes a while and free space of the database's size, once. */
static int make_incremental(struct store *s)
{
    int mode;
    if (pragma_int(s->db, "PRAGMA auto_vacuum", &mode) < 0) return db_fail(s, "read auto_vacuum");
    if (mode == 2) return 0;
    return exec(s, "PRAGMA auto_vacuum = INCREMENTAL") < 0 || exec(s, "VACUUM") < 0 ? -1 : 0;
}

/* auto_vacuum only takes effect before the first table exists, so it comes first. */
static int set_pragmas(struct store *s)
{
    int wal = 0;
    sqlite3_stmt *st;
    if (exec(s, "PRAGMA auto_vacuum = INCREMENTAL") < 0) return -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "journal_mode");
    if (sqlite3_step(st) == SQLITE_ROW)
        wal = strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (!wal) return set_err(s->err, sizeof s->err, "cannot switch the database to WAL mode");
    /* Debian's SQLite overwrites deleted content by default: deleting a megabyte of images would
     * write a megabyte to the WAL, which a full disk may not have room for. Freed pages are given
     * back (incremental vacuum) or reused soon enough. */
    if (exec(s, "PRAGMA secure_delete = OFF") < 0) return -1;
    return 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0
                                                                                             : -1;
}

static int prepare_writes(struct store *s)
{
    if (prepare(
            s->db,
            "INSERT INTO frames (camera_id, seq, captured_at, width, height, format, image, "
            "created_at, defect, defect_x0, defect_y0, defect_x1, defect_y1, image_missing, "
            "part_id, recipe_id, region_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            &s->insert_frame) < 0 ||
        prepare(s->db, "SELECT id, driver FROM cameras WHERE name = ?", &s->find_camera) < 0 ||
        prepare(s->db, "INSERT INTO cameras (name, driver, created_at) VALUES (?, ?, ?)",
                &s->insert_camera) < 0 ||
        prepare(s->db, "UPDATE cameras SET driver = ? WHERE id = ?", &s->update_camera) < 0 ||
        prepare(s->db,
                "SELECT f.id, length(f.image) FROM frames f WHERE f.id < (SELECT max(id) FROM "
                "frames) AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.frame_id = f.id AND "
                "a.state <> 'false_positive') ORDER BY f.id LIMIT ?1",
                &s->oldest_free) < 0 ||
        prepare(s->db,
                "SELECT f.id, length(f.image) FROM alerts a JOIN frames f ON f.id = a.frame_id "
                "WHERE a.state = 'defect' AND f.created_at < ?2 AND f.id < (SELECT max(id) FROM "
                "frames) ORDER BY a.frame_id LIMIT ?1",
                &s->oldest_defects) < 0 ||
        prepare(s->db, "DELETE FROM frames WHERE id = ?1", &s->delete_frame) < 0 ||
        prepare(s->db,
                "DELETE FROM webhook_outbox WHERE created_at <= (SELECT created_at FROM frames "
                "WHERE id = ?1)",
                &s->delete_outbox_before) < 0 ||
        prepare(s->db, "SELECT id, length(body) FROM webhook_outbox ORDER BY id LIMIT ?1",
                &s->oldest_outbox) < 0 ||
        prepare(s->db, "DELETE FROM webhook_outbox WHERE id = ?1", &s->delete_outbox_row) < 0)
        return db_fail(s, "prepare");
    return 0;
}

struct store *store_open(const char *path, char *err, size_t errsz)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errsz, "%s: out of memory", path);
        return NULL;
    }
    s->db = store_sqlite_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errsz);
    if (!s->db) {
        free(s);
        return NULL;
    }
    if (set_pragmas(s) < 0 || migrate(s) < 0 || make_incremental(s) < 0 || prepare_writes(s) < 0)
        goto fail;
    return s;
fail:
    set_err(err, errsz, "%s: %s", path, s->err);
    store_close(s);
    return NULL;
}

void store_close(struct store *s)
{
    if (!s) return;
    sqlite3_finalize(s->insert_frame);
    sqlite3_finalize(s->find_camera);
    sqlite3_finalize(s->insert_camera);
    sqlite3_finalize(s->update_camera);
    sqlite3_finalize(s->oldest_free);
    sqlite3_finalize(s->oldest_defects);
    sqlite3_finalize(s->delete_outbox_before);
    sqlite3_finalize(s->oldest_outbox);
    sqlite3_finalize(s->delete_outbox_row);
    sqlite3_finalize(s->delete_frame);
    if (s->db && !sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", 0, 0, 0);
    sqlite3_close(s->db);
    free(s);
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int fail = rc == SQLITE_DONE ? 0 : db_fail(s, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return fail;
}

int store_camera(struct store *s, const char *name, const char *driver, int64_t *id)
{
    sqlite3_stmt *st = s->find_camera;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        int same = strcmp((const char *)sqlite3_column_text(st, 1), driver) == 0;
        sqlite3_reset(st);
        if (same) return 0;
        sqlite3_bind_text(s->update_camera, 1, driver, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->update_camera, 2, *id);
        return step_done(s, s->update_camera, "update camera");
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return db_fail(s, "find camera");
    sqlite3_bind_text(s->insert_camera, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->insert_camera, 2, driver, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->insert_camera, 3, clock_wall_us());
    if (step_done(s, s->insert_camera, "insert camera") < 0) return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_recipe(struct store *s, const char *name, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO recipes (name, created_at) VALUES (?1, ?2) "
                           "ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "recipe");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, clock_wall_us());
    if (sqlite3_step(st) == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        db_fail(s, "recipe");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs sql with camera_id (?1) and up to two text arguments (?2, ?3; NULL binds NULL). */
static int camera_update(struct store *s, const char *sql, int64_t camera_id, const char *a,
                         const char *b)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "camera recipe");
    sqlite3_bind_int64(st, 1, camera_id);
    if (a) sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
    if (b) sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, "camera recipe");
    sqlite3_finalize(st);
    return rc;
}

int store_region(struct store *s, const char *roi, const void *mask, size_t mask_len,
                 const char *mask_file, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT id FROM regions WHERE roi IS ?1 AND mask IS ?2", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, "region");
    if (roi) sqlite3_bind_text(st, 1, roi, -1, SQLITE_STATIC);
    if (mask) sqlite3_bind_blob(st, 2, mask, (int)mask_len, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_finalize(st);
    if (step != SQLITE_DONE) return db_fail(s, "region");
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO regions (roi, mask, mask_file, created_at) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "region");
    if (roi) sqlite3_bind_text(st, 1, roi, -1, SQLITE_STATIC);
    if (mask) sqlite3_bind_blob(st, 2, mask, (int)mask_len, SQLITE_STATIC);
    if (mask_file) sqlite3_bind_text(st, 3, mask_file, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, clock_wall_us());
    if (sqlite3_step(st) == SQLITE_DONE) {
        *id = sqlite3_last_insert_rowid(s->db);
        rc = 0;
    } else {
        db_fail(s, "region");
    }
    sqlite3_finalize(st);
    return rc;
}

int store_camera_recipe(struct store *s, int64_t camera_id, const char *file_recipe, char *recipe,
                        size_t recipesz, int64_t *recipe_id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT recipe, recipe_file FROM cameras WHERE id = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, "camera recipe");
    sqlite3_bind_int64(st, 1, camera_id);
    char switched[128] = "", file[128] = "";
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        store_column_text(switched, sizeof switched, st, 0);
        store_column_text(file, sizeof file, st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(s, "camera recipe");
    bool holds = switched[0] && strcmp(file, file_recipe) == 0;
    if (switched[0] && !holds &&
        camera_update(s, "UPDATE cameras SET recipe = NULL, recipe_file = NULL WHERE id = ?1",
                      camera_id, NULL, NULL) < 0)
        return -1;
    snprintf(recipe, recipesz, "%s", holds ? switched : file_recipe);
    return store_recipe(s, recipe, recipe_id);
}

int store_switch_recipe(struct store *s, int64_t camera_id, const char *recipe,
                        const char *file_recipe, int64_t *recipe_id)
{
    if (exec(s, "BEGIN IMMEDIATE") < 0) return -1;
    int rc = store_recipe(s, recipe, recipe_id);
    if (!rc)
        rc = camera_update(s, "UPDATE cameras SET recipe = ?2, recipe_file = ?3 WHERE id = ?1",
                           camera_id, recipe, file_recipe);
    if (!rc) rc = exec(s, "COMMIT");
    if (rc) store_rollback(s);
    return rc;
}

int store_begin(struct store *s)
{
    return exec(s, "BEGIN IMMEDIATE");
}

int store_commit(struct store *s)
{
    return exec(s, "COMMIT");
}

void store_rollback(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int store_insert_frame(struct store *s, const struct store_frame *f, int64_t *id)
{
    assert(f->format == FRAME_JPEG || f->format == FRAME_PNG);
    assert(f->image_size <= INT32_MAX);
    assert(f->image_missing || f->image);
    sqlite3_stmt *st = s->insert_frame;
    sqlite3_bind_int64(st, 1, f->camera_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)f->seq);
    sqlite3_bind_int64(st, 3, f->captured_at_us);
    sqlite3_bind_int(st, 4, f->width);
    sqlite3_bind_int(st, 5, f->height);
    sqlite3_bind_text(st, 6, f->format == FRAME_JPEG ? "jpeg" : "png", -1, SQLITE_STATIC);
    if (f->image_missing) {
        sqlite3_bind_zeroblob(st, 7, 0); /* an empty blob, not NULL */
        sqlite3_bind_text(st, 14, f->image_missing, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_blob(st, 7, f->image, (int)f->image_size, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 8, clock_wall_us());
    if (f->recipe_id > 0) sqlite3_bind_int64(st, 16, f->recipe_id);
    if (f->region_id > 0) sqlite3_bind_int64(st, 17, f->region_id);
    if (f->has_truth) {
        assert(f->truth.defect >= DEFECT_NONE && f->truth.defect <= DEFECT_STAIN);
        sqlite3_bind_text(st, 9, frame_defect_name(f->truth.defect), -1, SQLITE_STATIC);
        if (f->truth.defect != DEFECT_NONE) {
            sqlite3_bind_int(st, 10, f->truth.x0);
            sqlite3_bind_int(st, 11, f->truth.y0);
            sqlite3_bind_int(st, 12, f->truth.x1);
            sqlite3_bind_int(st, 13, f->truth.y1);
        }
    }
    if (f->part_id && f->part_id[0]) sqlite3_bind_text(st, 15, f->part_id, -1, SQLITE_STATIC);
    if (step_done(s, st, "insert frame") < 0) return -1;
    if (id) *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

/* ---- retention ---- */

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

bool store_error_is_full(const struct store *s)
{
    return s->full;
}

const char *store_path(struct store *s)
{
    return sqlite3_db_filename(s->db, "main");
}

int store_usage(struct store *s, struct store_usage *u)
{
    int page_size, pages, free_pages;
    if (pragma_int(s->db, "PRAGMA page_size", &page_size) < 0 ||
        pragma_int(s->db, "PRAGMA page_count", &pages) < 0 ||
        pragma_int(s->db, "PRAGMA freelist_count", &free_pages) < 0)
        return db_fail(s, "database size");
    const char *path = sqlite3_db_filename(s->db, "main");
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct statvfs fs;
    if (statvfs(path, &fs) < 0)
        return set_err(s->err, sizeof s->err, "free space of %s: %s", path, strerror(errno));
    *u = (struct store_usage){.page_size = page_size,
                              .pages = pages,
                              .free_pages = free_pages,
                              .file_bytes = file_size(path),
                              .wal_bytes = file_size(wal),
                              .fs_free = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize};
    return 0;
}

/* The ids of the rows st selects (frames, or webhook events; ?1 limit, ?2 defect cutoff), up to
 * max of them or until their images (bodies) add up to max_bytes (at least one); their bytes are
 * added to *bytes. */
static int select_frames(struct store *s, sqlite3_stmt *st, int max, int64_t max_bytes,
                         int64_t cutoff, int64_t *ids, int64_t *bytes)
{
    sqlite3_bind_int(st, 1, max);
    sqlite3_bind_int64(st, 2, cutoff);
    int n = 0, rc = SQLITE_DONE;
    while (n < max && *bytes < max_bytes && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(st, 0);
        *bytes += sqlite3_column_int64(st, 1);
        n++;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) n = db_fail(s, "select frames to delete");
    sqlite3_reset(st);
    return n;
}

#define DELETE_MAX 256

/* The webhook events created before the newest of the frames ids[0..n) (in id order) was stored
 * go with them. Returns how many, or -1. */
static int delete_outbox_before_frame(struct store *s, const int64_t *ids, int n)
{
    if (n == 0) return 0;
    sqlite3_bind_int64(s->delete_outbox_before, 1, ids[n - 1]);
    if (step_done(s, s->delete_outbox_before, "delete webhook events") < 0) return -1;
    return sqlite3_changes(s->db);
}

int store_delete_oldest(struct store *s, int max, int64_t max_bytes, int64_t defects_before_us,
                        int64_t *image_bytes, int64_t *outbox_rows)
{
    int64_t ids[DELETE_MAX], bytes = 0;
    if (max > DELETE_MAX) max = DELETE_MAX;
    if (max_bytes <= 0) max_bytes = INT64_MAX;
    if (store_begin(s) < 0) return -1;
    /* cascades to results, heatmaps and alerts (foreign_keys is on for this connection) */
    int n = select_frames(s, s->oldest_free, max, max_bytes, 0, ids, &bytes);
    if (n == 0)
        n = select_frames(s, s->oldest_defects, max, max_bytes, defects_before_us, ids, &bytes);
    int events = n > 0 ? delete_outbox_before_frame(s, ids, n) : 0;
    for (int i = 0; i < n && events >= 0; i++) {
        sqlite3_bind_int64(s->delete_frame, 1, ids[i]);
        if (step_done(s, s->delete_frame, "delete frame") < 0) n = -1;
    }
    if (n < 0 || events < 0 || store_commit(s) < 0) {
        store_rollback(s);
        return -1;
    }
    if (image_bytes) *image_bytes = bytes;
    if (outbox_rows) *outbox_rows = events;
    return n;
}

int store_delete_oldest_outbox(struct store *s, int max, int64_t max_bytes, int64_t *body_bytes)
{
    int64_t ids[DELETE_MAX], bytes = 0;
    if (max > DELETE_MAX) max = DELETE_MAX;
    if (max_bytes <= 0) max_bytes = INT64_MAX;
    if (store_begin(s) < 0) return -1;
    int n = select_frames(s, s->oldest_outbox, max, max_bytes, 0, ids, &bytes);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(s->delete_outbox_row, 1, ids[i]);
        if (step_done(s, s->delete_outbox_row, "delete a webhook event") < 0) n = -1;
    }
    if (n < 0 || store_commit(s) < 0) {
        store_rollback(s);
        return -1;
    }
    if (body_bytes) *body_bytes = bytes;
    return n;
}

int store_deletable_bytes(struct store *s, int64_t defects_before_us, int64_t *bytes)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT coalesce(sum((length(f.image) + ?2 - 5) / (?2 - 4) * ?2), 0) "
                           "+ (SELECT coalesce(sum(length(body)), 0) FROM webhook_outbox) "
                           "FROM frames f LEFT JOIN alerts a ON a.frame_id = f.id WHERE f.id < "
                           "(SELECT max(id) FROM frames) AND (a.state IS NULL OR a.state = "
                           "'false_positive' OR (a.state = 'defect' AND f.created_at < ?1))",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "deletable bytes");
    int page_size;
    if (pragma_int(s->db, "PRAGMA page_size", &page_size) < 0) page_size = 4096;
    sqlite3_bind_int64(st, 1, defects_before_us);
    sqlite3_bind_int(st, 2, page_size);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *bytes = sqlite3_column_int64(st, 0);
    int fail = rc == SQLITE_ROW ? 0 : db_fail(s, "deletable bytes");
    sqlite3_finalize(st);
    return fail;
}

int store_vacuum(struct store *s, int pages)
{
    int before, after;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", pages > 0 ? pages : 1);
    if (pragma_int(s->db, "PRAGMA freelist_count", &before) < 0) return db_fail(s, "vacuum");
    /* the pragma returns no row; exec steps it to the end */
    if (exec(s, sql) < 0) return -1;
    if (pragma_int(s->db, "PRAGMA freelist_count", &after) < 0) return db_fail(s, "vacuum");
    /* a passive checkpoint never waits: with readers in the way the file shrinks at a later one */
    if (exec(s, "PRAGMA wal_checkpoint(PASSIVE)") < 0) return -1;
    return before - after;
}

int store_set_limits(struct store *s, int64_t max_bytes, int64_t wal_bytes)
{
    int page_size, got;
    if (pragma_int(s->db, "PRAGMA page_size", &page_size) < 0) return db_fail(s, "page size");
    char sql[96];
    int64_t max_pages = max_bytes > 0 ? max_bytes / page_size : 0xfffffffe;
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)max_pages);
    if (pragma_int(s->db, sql, &got) < 0) return db_fail(s, "max_page_count");
    int64_t wal_pages = wal_bytes > 0 ? wal_bytes / page_size : 1000;
    store_sqlite_set_wal_bound((int)(wal_pages > 0 ? wal_pages : 1));
    snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %lld",
             (long long)(wal_bytes > 0 ? wal_bytes : -1));
    return exec(s, sql);
}

/* ---- read-only connections ---- */

static int reader_open(struct store_reader *r, const char *path, char *err, size_t errsz)
{
    r->path = path;
    if (!(r->db = store_sqlite_open(path, SQLITE_OPEN_READONLY, err, errsz))) return -1;
    if (prepare(r->db,
                "SELECT " FRAME_COLUMNS " FROM frames f JOIN cameras c ON c.id = f.camera_id"
                " WHERE f.id < ?2 ORDER BY f.id DESC LIMIT ?3",
                &r->list_all) < 0 ||
        prepare(r->db,
                "SELECT " FRAME_COLUMNS " FROM frames f JOIN cameras c ON c.id = f.camera_id"
                " WHERE c.name = ?1 AND f.id < ?2 ORDER BY f.id DESC LIMIT ?3",
                &r->list_camera) < 0 ||
        prepare(r->db,
                "SELECT " FRAME_COLUMNS " FROM frames f JOIN cameras c ON c.id = f.camera_id"
                " WHERE f.recipe_id = (SELECT id FROM recipes WHERE name = ?1) AND f.id < ?2"
                " ORDER BY f.id DESC LIMIT ?3",
                &r->list_recipe) < 0 ||
        prepare(r->db,
                "SELECT " FRAME_COLUMNS " FROM frames f JOIN cameras c ON c.id = f.camera_id"
                " WHERE f.id = ?1",
                &r->get_frame) < 0 ||
        prepare(r->db, "SELECT image FROM frames WHERE id = ?1", &r->get_image) < 0 ||
        prepare(r->db, "SELECT count(*) FROM frames", &r->count_frames) < 0 ||
        prepare(r->db, "SELECT 1 FROM cameras WHERE name = ?1", &r->has_camera) < 0) {
        reader_fail(r, "prepare");
        return set_err(err, errsz, "%s: %s", path, r->err);
    }
    return 0;
}

static void reader_close(struct store_reader *r)
{
    sqlite3_finalize(r->list_all);
    sqlite3_finalize(r->list_camera);
    sqlite3_finalize(r->list_recipe);
    sqlite3_finalize(r->get_frame);
    sqlite3_finalize(r->get_image);
    sqlite3_finalize(r->count_frames);
    sqlite3_finalize(r->has_camera);
    sqlite3_close(r->db);
}

struct store_pool *store_pool_open(const char *path, int n, char *err, size_t errsz)
{
    assert(n > 0);
    struct store_pool *p = calloc(1, sizeof *p);
    if (!p) {
        set_err(err, errsz, "%s: out of memory", path);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->available, NULL);
    if (!(p->path = strdup(path)) || !(p->readers = calloc((size_t)n, sizeof *p->readers)) ||
        !(p->free_list = calloc((size_t)n, sizeof *p->free_list))) {
        set_err(err, errsz, "%s: out of memory", path);
        store_pool_close(p);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        p->n++; /* counted before opening, so a failed open is still closed */
        if (reader_open(&p->readers[i], p->path, err, errsz) < 0) {
            p->nfree = p->n;
            store_pool_close(p);
            return NULL;
        }
        p->free_list[p->nfree++] = &p->readers[i];
    }
    return p;
}

void store_pool_close(struct store_pool *p)
{
    if (!p) return;
    assert(p->nfree == p->n);
    for (int i = 0; i < p->n; i++) reader_close(&p->readers[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->available);
    free(p->readers);
    free(p->free_list);
    free(p->path);
    free(p);
}

struct store_reader *store_pool_get(struct store_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0) pthread_cond_wait(&p->available, &p->lock);
    struct store_reader *r = p->free_list[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    return r;
}

void store_pool_put(struct store_pool *p, struct store_reader *r)
{
    pthread_mutex_lock(&p->lock);
    assert(p->nfree < p->n);
    p->free_list[p->nfree++] = r;
    pthread_cond_signal(&p->available);
    pthread_mutex_unlock(&p->lock);
}

static enum defect_kind parse_defect(const unsigned char *name)
{
    enum defect_kind k = DEFECT_NONE;
    int known = frame_defect_parse((const char *)name, &k);
    assert(known == 0 && "the schema's CHECK allows only known defect names");
    (void)known;
    return k;
}

/* Reads a row of FRAME_COLUMNS. */
static void read_info(sqlite3_stmt *st, struct store_frame_info *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    snprintf(out->camera, sizeof out->camera, "%s", (const char *)sqlite3_column_text(st, 1));
    out->seq = (uint64_t)sqlite3_column_int64(st, 2);
    out->captured_at_us = sqlite3_column_int64(st, 3);
    out->created_at_us = sqlite3_column_int64(st, 4);
    out->width = sqlite3_column_int(st, 5);
    out->height = sqlite3_column_int(st, 6);
    snprintf(out->format, sizeof out->format, "%s", (const char *)sqlite3_column_text(st, 7));
    out->image_size = sqlite3_column_int64(st, 8);
    if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
        out->has_truth = true;
        out->truth.defect = parse_defect(sqlite3_column_text(st, 9));
        out->truth.x0 = sqlite3_column_int(st, 10);
        out->truth.y0 = sqlite3_column_int(st, 11);
        out->truth.x1 = sqlite3_column_int(st, 12);
        out->truth.y1 = sqlite3_column_int(st, 13);
    }
    const unsigned char *missing = sqlite3_column_text(st, 14);
    if (missing) snprintf(out->image_missing, sizeof out->image_missing, "%s", missing);
    const unsigned char *part = sqlite3_column_text(st, 15);
    if (part) snprintf(out->part_id, sizeof out->part_id, "%s", part);
    store_column_text(out->recipe, sizeof out->recipe, st, 16);
}

int store_list_recipe_frames(struct store_reader *r, const char *recipe, int64_t before,
                             struct store_frame_info *out, int max)
{
    sqlite3_stmt *st = r->list_recipe;
    sqlite3_bind_text(st, 1, recipe, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) read_info(st, &out[n++]);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? n : reader_fail(r, "list frames");
}

int store_list_frames(struct store_reader *r, const char *camera, int64_t before,
                      struct store_frame_info *out, int max)
{
    sqlite3_stmt *st = camera ? r->list_camera : r->list_all;
    if (camera) sqlite3_bind_text(st, 1, camera, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(st, 3, max);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        assert(n < max);
        read_info(st, &out[n++]);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? n : reader_fail(r, "list frames");
}

int store_get_frame(struct store_reader *r, int64_t id, struct store_frame_info *out)
{
    sqlite3_stmt *st = r->get_frame;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) read_info(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : reader_fail(r, "get frame");
}

int store_get_image(struct store_reader *r, int64_t id, void **data, size_t *size,
                    struct store_frame_info *info)
{
    /* Both reads in one read transaction, so the image belongs to the metadata. */
    if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return reader_fail(r, "begin");
    int found = store_get_frame(r, id, info);
    if (found == 1 && info->image_missing[0]) {
        *data = NULL;
        *size = 0;
        found = STORE_NO_IMAGE;
    } else if (found == 1) {
        sqlite3_stmt *st = r->get_image;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *size = (size_t)sqlite3_column_bytes(st, 0);
            *data = malloc(*size ? *size : 1);
            if (*data)
                memcpy(*data, sqlite3_column_blob(st, 0), *size);
            else
                found = set_err(r->err, sizeof r->err, "get image: out of memory");
        } else {
            found = reader_fail(r, "get image");
        }
        sqlite3_reset(st);
    }
    sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    return found;
}

int store_stats(struct store_reader *r, int64_t *frames, int64_t *bytes)
{
    sqlite3_stmt *st = r->count_frames;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *frames = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return reader_fail(r, "count frames");
    char wal[1024];
    snprintf(wal, sizeof wal, "%s-wal", r->path);
    *bytes = file_size(r->path) + file_size(wal);
    return 0;
}

int store_has_camera(struct store_reader *r, const char *name)
{
    sqlite3_stmt *st = r->has_camera;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : reader_fail(r, "find camera");
}

struct sqlite3 *store_reader_db(struct store_reader *r)
{
    return r->db;
}

void store_column_text(char *dst, size_t n, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

int store_reader_fail(struct store_reader *r, const char *what)
{
    return reader_fail(r, what);
}

int store_get_heatmap(struct store_reader *r, int64_t frame_id, float **grid, int *gw, int *gh,
                      double *threshold)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT h.grid_w, h.grid_h, h.data, m.threshold FROM heatmaps h "
                           "JOIN models m ON m.id = h.model_id WHERE h.frame_id = ? "
                           "ORDER BY h.model_id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return reader_fail(r, "get heatmap");
    sqlite3_bind_int64(st, 1, frame_id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *gw = sqlite3_column_int(st, 0), *gh = sqlite3_column_int(st, 1);
        size_t n = (size_t)*gw * *gh;
        *threshold = sqlite3_column_double(st, 3);
        *grid = malloc(sizeof(float) * n);
        if (!*grid)
            found = set_err(r->err, sizeof r->err, "get heatmap: out of memory");
        else if ((size_t)sqlite3_column_bytes(st, 2) != sizeof(float) * n)
            found = set_err(r->err, sizeof r->err, "heatmap of frame %lld: bad size",
                            (long long)frame_id);
        else
            memcpy(*grid, sqlite3_column_blob(st, 2), sizeof(float) * n), found = 1;
        if (found < 0) free(*grid), *grid = NULL;
    } else if (rc != SQLITE_DONE) {
        found = reader_fail(r, "get heatmap");
    }
    sqlite3_finalize(st);
    return found;
}
