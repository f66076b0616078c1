/* store.h — the SQLite database, and the only code in inspectd that speaks SQL.
 *
 * Two kinds of connection to one file:
 *   struct store         the write connection. Exactly one per database, used by one thread at a
 *                        time (the writer thread; start-up and tests before it runs). Opening it
 *                        sets the pragmas (WAL, synchronous=NORMAL, busy timeout, foreign keys,
 *                        auto_vacuum=INCREMENTAL on a new file) and applies the migrations of
 *                        schema/NNNN_*.sql that PRAGMA user_version has not seen, in order.
 *   struct store_pool    read-only connections for the HTTP threads: store_pool_get() lends one
 *                        (waiting when all are lent), store_pool_put() gives it back.
 * Frames are written with prepared statements inside store_begin() / store_commit(), so a batch
 * costs one fsync-free WAL commit.
 *
 * Every function returning int returns 0 on success and -1 on an error unless it says otherwise;
 * nothing here logs: store_errmsg() / store_reader_errmsg() say what the last error was, and the
 * caller decides how often to log it (the writer logs once per change of state). */
#ifndef INSPECTD_STORE_H
#define INSPECTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* The longest part id the line may give a frame, in bytes. */
#define STORE_PART_ID_MAX 64

struct store;
struct store_reader;
struct store_pool;

/* A frame to write. image is the encoded JPEG or PNG; with image_missing set (why the image is not
 * kept, e.g. "storage full") only the metadata is written and image may be NULL. */
struct store_frame {
    int64_t camera_id;
    int64_t recipe_id; /* the recipe its camera had when it was captured (0: none) */
    int64_t region_id; /* the region its camera had then (0: the whole frame) */
    uint64_t seq;
    int64_t captured_at_us;
    int width, height;
    enum frame_format format; /* FRAME_JPEG or FRAME_PNG */
    const void *image;
    size_t image_size;
    bool has_truth;
    struct frame_truth truth;
    const char *image_missing; /* NULL: store the image */
    const char *part_id; /* the line's part id (1..STORE_PART_ID_MAX bytes); NULL or "": none */
};

/* A stored frame's metadata, as read back. */
struct store_frame_info {
    int64_t id;
    char camera[64];
    uint64_t seq;
    int64_t captured_at_us;
    int64_t created_at_us;
    int width, height;
    char format[8];     /* "jpeg" or "png" */
    int64_t image_size; /* 0 when the image is not stored */
    bool has_truth;
    struct frame_truth truth;
    char image_missing[128];             /* why the image is not stored; "" when it is */
    char part_id[STORE_PART_ID_MAX + 1]; /* the line's part id; "" when none was given */
    char recipe[64];                     /* the recipe it was captured for; "" for none */
};

/* store_get_image(): the frame exists but was stored without its image (image_missing says why). */
#define STORE_NO_IMAGE 2

/* ---- write connection ---- */

/* Opens (creating if needed) and migrates the database. Returns NULL with a reason in err. */
struct store *store_open(const char *path, char *err, size_t errsz);
/* Closes the connection (an open transaction is rolled back). Safe on NULL. */
void store_close(struct store *s);

/* The last error's message ("insert frame: database or disk is full"). Never NULL. */
const char *store_errmsg(const struct store *s);

/* The schema version the database is at (PRAGMA user_version), or -1. */
int store_schema_version(struct store *s);
/* The highest migration compiled in. */
int store_schema_latest(void);

/* Finds the camera by name, inserting it if new (a changed driver is updated). Sets *id. */
int store_camera(struct store *s, const char *name, const char *driver, int64_t *id);

/* Finds the recipe by name, inserting it if new. Sets *id. */
int store_recipe(struct store *s, const char *name, int64_t *id);
/* Finds the region of that ROI ("x,y,w,h", NULL: the whole frame) and mask bytes (NULL: none),
 * inserting it if new (with mask_file, the name it was read from). Sets *id. Returns 0 or -1. */
int store_region(struct store *s, const char *roi, const void *mask, size_t mask_len,
                 const char *mask_file, int64_t *id);
/* The recipe in force for a camera whose config file says file_recipe: the one switched over the
 * API while the file still says what it said at the switch, else file_recipe (a switch the file
 * has since overridden is cleared). Its name into recipe (recipesz bytes), its id (created if
 * new) into *recipe_id. */
int store_camera_recipe(struct store *s, int64_t camera_id, const char *file_recipe, char *recipe,
                        size_t recipesz, int64_t *recipe_id);
/* Switches a camera to recipe (created if new; *recipe_id set) until the file's recipe for it
 * is no longer file_recipe. One transaction. */
int store_switch_recipe(struct store *s, int64_t camera_id, const char *recipe,
                        const char *file_recipe, int64_t *recipe_id);

int store_begin(struct store *s);
/* Inserts one frame inside a transaction; sets *id (may be NULL). */
int store_insert_frame(struct store *s, const struct store_frame *f, int64_t *id);
int store_commit(struct store *s);
/* Rolls back the open transaction, if any. Never fails. */
void store_rollback(struct store *s);

/* ---- retention, on the write connection ---- */

/* What the database occupies and what its filesystem has left. */
struct store_usage {
    int64_t page_size;
    int64_t pages;      /* PRAGMA page_count: the database in pages, free ones included */
    int64_t free_pages; /* PRAGMA freelist_count: reused by new rows, or given back by a vacuum */
    int64_t file_bytes; /* the database file on disk now */
    int64_t wal_bytes;  /* its write-ahead log on disk now */
    int64_t fs_free;    /* bytes an unprivileged writer may still use on its filesystem */
};

/* Measures the database and its filesystem. Returns 0 or -1. */
int store_usage(struct store *s, struct store_usage *u);

/* Deletes, in one short transaction, up to max of the oldest frames retention may take (fewer
 * when their images add up to max_bytes: a deleted page goes through the WAL; <= 0: no bound),
 * with their results, heatmaps and alerts: first frames no operator needs (no alert, or one marked
 * false_positive); only when none of those is left, confirmed defects stored before
 * defects_before_us. A frame whose alert awaits review ('new') is never taken, nor the newest frame
 * (so that frame ids, which scoring follows, are never reused). The webhooks' outbox is derived
 * rows too (copies of results, alerts and model changes): the events created up to the storing of
 * the newest frame deleted go in the same transaction, so the outbox never holds an event older
 * than the frames kept. Returns the number of frames deleted (0: only protected frames are left)
 * or -1; *image_bytes and *outbox_rows (each may be NULL) get the bytes of the images deleted and
 * the number of webhook events. */
int store_delete_oldest(struct store *s, int max, int64_t max_bytes, int64_t defects_before_us,
                        int64_t *image_bytes, int64_t *outbox_rows);

/* When only protected frames are left: deletes, in one short transaction, up to max of the
 * webhooks' oldest waiting events (fewer when their bodies add up to max_bytes; <= 0: no bound),
 * before images have to go off. Returns the number deleted (0: the outbox is empty) or -1;
 * *body_bytes (may be NULL) gets their bodies' bytes. */
int store_delete_oldest_outbox(struct store *s, int max, int64_t max_bytes, int64_t *body_bytes);

/* Sets *bytes to the pages (in bytes) the images of the frames store_delete_oldest() may take
 * occupy (all of them, the newest excepted), as overflow pages estimate it, and the bodies of the
 * webhooks' outbox. A scan of the frames: for the rare look while images are off. Returns 0 or
 * -1. */
int store_deletable_bytes(struct store *s, int64_t defects_before_us, int64_t *bytes);

/* Gives up to `pages` free pages back to the filesystem (PRAGMA incremental_vacuum, one short
 * transaction), then checkpoints the WAL without waiting for readers so that the file shrinks.
 * Returns the number of pages released, or -1. */
int store_vacuum(struct store *s, int pages);

/* Bounds the files: the database to max_bytes (PRAGMA max_page_count; 0: SQLite's own maximum) —
 * a write beyond it fails as on a full disk — and the WAL to about wal_bytes between checkpoints
 * (the WAL hook of every read-write connection, store_sqlite_set_wal_bound, and journal_size_limit;
 * 0: SQLite's defaults). A database already larger than max_bytes keeps its current size as the
 * ceiling until it shrinks and this is called again.
 * Returns 0 or -1. */
int store_set_limits(struct store *s, int64_t max_bytes, int64_t wal_bytes);

/* The database file's full path. Valid while the store is open. */
const char *store_path(struct store *s);

/* True when the last error was a full disk or a database at its max_page_count (SQLITE_FULL, or an
 * I/O error with ENOSPC): freeing space and retrying can help. */
bool store_error_is_full(const struct store *s);

/* ---- read-only connections ---- */

/* Opens n read-only connections to an existing database. Returns NULL with a reason in err. */
struct store_pool *store_pool_open(const char *path, int n, char *err, size_t errsz);
/* Closes every connection; none may be lent. Safe on NULL. */
void store_pool_close(struct store_pool *p);
/* Lends a connection, waiting while all are lent. Never NULL. */
struct store_reader *store_pool_get(struct store_pool *p);
void store_pool_put(struct store_pool *p, struct store_reader *r);

/* The last error's message on this connection. Never NULL. */
const char *store_reader_errmsg(const struct store_reader *r);

/* For the other store_*.c files: the connection's SQLite handle, and recording an error on it
 * ("what: SQLite's message"; returns -1). */
struct sqlite3;
struct sqlite3 *store_reader_db(struct store_reader *r);
int store_reader_fail(struct store_reader *r, const char *what);
/* Copies a text column into dst (n bytes, truncated, "" for NULL). */
struct sqlite3_stmt;
void store_column_text(char *dst, size_t n, struct sqlite3_stmt *st, int col);
/* Records a message of its own as the reader's error (out of memory, bad data). Returns -1. */
int store_reader_error(struct store_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Lists frames newest first: of one camera (NULL: all), with id < before (0: no bound), at most
 * `max` (out holds max entries). Returns the number listed, or -1. */
int store_list_frames(struct store_reader *r, const char *camera, int64_t before,
                      struct store_frame_info *out, int max);
/* The same for the frames of one recipe (the frames captured for it, of any camera). */
int store_list_recipe_frames(struct store_reader *r, const char *recipe, int64_t before,
                             struct store_frame_info *out, int max);
/* Reads one frame's metadata. Returns 1 when found, 0 when there is no such frame, or -1. */
int store_get_frame(struct store_reader *r, int64_t id, struct store_frame_info *out);
/* Copies one frame's image into *data (malloc'ed; the caller frees it). Returns 1 when found,
 * STORE_NO_IMAGE when the frame was stored without its image (*data NULL, info->image_missing
 * says why), 0 when there is no such frame, or -1. */
int store_get_image(struct store_reader *r, int64_t id, void **data, size_t *size,
                    struct store_frame_info *info);
/* Frame count and the database's size on disk (main file + WAL). Returns 0 or -1. */
int store_stats(struct store_reader *r, int64_t *frames, int64_t *bytes);
/* 1 when a camera of that name was ever stored, 0 when not, -1 on error. */
int store_has_camera(struct store_reader *r, const char *name);

/* The newest model's heatmap of a frame: its patch grid (gh, gw) (malloc'ed, caller frees) and
 * that model's threshold. Returns 1, 0 when the frame has none (not flagged or not scored), -1 on
 * error. */
int store_get_heatmap(struct store_reader *r, int64_t frame_id, float **grid, int *gw, int *gh,
                      double *threshold);

#endif
