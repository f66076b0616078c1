/* retention.h — keeps the database under its size limit and its filesystem above its free-space
 * floor ([store] max_size_mb, min_free_mb), on the writer's connection, between batches.
 *
 * Before each batch the writer asks retention_prepare() whether the batch fits. When it would not,
 * the oldest frames retention may take (store_delete_oldest(): frames no operator needs first,
 * then confirmed defects older than flagged_days) are deleted in small transactions until the
 * database is 5 % of the limit below it, and the free pages go back to the filesystem (incremental
 * vacuum, passive checkpoint). The webhooks' outbox is treated as the frames' other derived rows:
 * its events older than the frames deleted go with them, and when only protected frames are left
 * (alerts awaiting review, confirmed defects within flagged_days) its oldest events go next (a
 * receiver down for long must not stop the images). Only then are new frames stored without
 * their images, which is logged once and shown by /readyz, until room appears again (looked for
 * every few seconds).
 * A write that fails on a full disk anyway (ENOSPC, SQLITE_FULL) calls retention_after_full(),
 * which frees what it can, or switches images off the same way. The database's hard ceiling is
 * max_size_mb (PRAGMA max_page_count), so a write can never take it past the limit; while images
 * are off, the ceiling is the current size plus a margin for the rows of new frames.
 *
 * A disk filled to its last byte would leave SQLite no room even to delete (the WAL cannot start
 * over before a checkpoint, and the checkpoint may need the database file to grow): a reserve file
 * DB.reserve (three times the WAL's bound plus 64 KiB, at most about 12 MiB) is kept beside the
 * database while the disk has room, and given up on a full disk so that deletes and the checkpoint
 * can run. Retention itself never fills the disk: it keeps twice the reserve free on top of
 * min_free_bytes.
 *
 * The work of one call is bounded (about 200 ms), so capture never waits long: a database far over
 * a lowered limit shrinks over several batches. retention_get_status() may be called from any
 * thread; everything else runs on the writer's thread (or before it starts). */
#ifndef INSPECTD_RETENTION_H
#define INSPECTD_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct retention_config {
    int64_t max_bytes;      /* the database with its WAL; 0: no limit */
    int64_t min_free_bytes; /* free space its filesystem keeps; 0: none */
    double flagged_days;    /* a confirmed defect is kept at least this long */
};

struct retention_status {
    bool images_off;  /* new frames are stored without their images */
    char reason[320]; /* why, when images_off */
    uint64_t frames_deleted, image_bytes_deleted;
    uint64_t outbox_events_deleted; /* webhook events, with the frames or when only protected
                                       frames were left */
    uint64_t full_events;           /* writes that failed on a full disk or database */
};

struct retention;

/* Sets the store's hard ceiling and WAL bound from cfg. Returns NULL with a reason in err. */
struct retention *retention_create(const struct retention_config *cfg, struct store *s, char *err,
                                   size_t errsz);
/* Safe on NULL. */
void retention_free(struct retention *r);

/* Before a retention exists: when the database at db_path could not be opened and its filesystem
 * is full, gives up its reserve file so that a second try can open it. Returns true when it did
 * (logged). */
bool retention_release_reserve_file(const char *db_path);

/* Makes room for a batch of `frames` frames with image_bytes of images. Returns true when the
 * batch is to be stored with its images, false for metadata only (images are off). */
bool retention_prepare(struct retention *r, struct store *s, int64_t image_bytes, int frames);

/* After a write failed with store_error_is_full(): deletes what retention may take to make room
 * for image_bytes (the failed batch's), or, when nothing is left to delete and *images is true,
 * switches images off and sets *images to false. Returns true when the batch is worth retrying
 * now, false when nothing changed (the caller waits before retrying). */
bool retention_after_full(struct retention *r, struct store *s, int64_t image_bytes, bool *images);

/* After a commit (images: with them). Switches images back on when a try with them succeeded, and
 * makes the reserve file again when the disk has room for it. */
void retention_committed(struct retention *r, struct store *s, bool images);

void retention_get_status(struct retention *r, struct retention_status *out);

/* The image bytes one transaction should carry at most, so that the WAL, which holds a whole
 * transaction, stays within what the limit allows it (a sixteenth of max_bytes, 4 MiB at most). */
int64_t retention_transaction_bytes(const struct retention *r);

#endif
