/* retention.c — deciding when to delete, how much, when to stop storing images, and keeping the
 * reserve file that lets a full disk be recovered. */
#define LOG_TAG "retention"
#include "clock.h"
#include "log.h"

#include "retention.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SLACK_DIV       20           /* a pass deletes down to 1/20 below a limit */
#define DELETE_CHUNK    32           /* frames per delete transaction, at most */
#define OUTBOX_CHUNK    256          /* webhook events per delete transaction, at most */
#define VACUUM_CHUNK    1024         /* pages per incremental_vacuum transaction, at most */
#define BUDGET_NS       200000000    /* work of one call */
#define RECHECK_NS      2000000000LL /* images off: how often to look for room again */
#define META_BYTES      1024         /* a frame row without its image, with its result */
#define PAGE_SLACK      4096         /* per frame: the last, partly filled page of its image */
#define WAL_MAX_BYTES   (4 << 20)    /* SQLite's default autocheckpoint: 1000 pages of 4 KiB */
#define WAL_MIN_BYTES   (64 << 10)
#define FULL_FREE_BYTES (1 << 20)  /* a write failed on a full disk: free up to this */
#define RESERVE_EXTRA   (64 << 10) /* the reserve file: three times the WAL's bound and this */

enum room { ROOM_OK, ROOM_PARTIAL /* out of time, still over */, ROOM_EXHAUSTED };

struct retention {
    struct retention_config cfg;
    int64_t wal_bytes;       /* what the WAL may take between checkpoints */
    char reserve[PATH_MAX];  /* the reserve file beside the database */
    int64_t reserve_bytes;   /* its size */
    bool reserve_held;       /* it exists */
    int64_t next_reserve_ns; /* when to try making it again */
    bool images;             /* images are stored (writer's thread) */
    int64_t next_check_ns;   /* images off: when to look for room again */
    bool passes_logged;      /* the first pass is logged at info, the others at debug */
    char last_error[256];    /* logged once until it changes */
    pthread_mutex_t lock;    /* guards status */
    struct retention_status status;
};

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void store_error(struct retention *r, struct store *s)
{
    if (strcmp(r->last_error, store_errmsg(s)) == 0) return;
    snprintf(r->last_error, sizeof r->last_error, "%s", store_errmsg(s));
    log_error("%s", r->last_error);
}

/* ---- the reserve file ----
 * A checkpoint copies the WAL into the database file, which may have to grow: on a disk filled to
 * the last byte it cannot, the WAL cannot start over, and even a delete finds no room. Retention
 * never fills the disk itself (it keeps twice the reserve free, on top of min_free_bytes), but
 * something else may: the reserve file (DB.reserve: room for a WAL at its bound, a transaction and
 * the deletes) is given up then, so that the checkpoint and the deletes can run; it is made again
 * once retention has brought the free space back. */

static void reserve_make(struct retention *r, const struct store_usage *u)
{
    if (r->reserve_held || u->fs_free < 2 * r->reserve_bytes + r->cfg.min_free_bytes) return;
    int fd = open(r->reserve, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return;
    int rc = posix_fallocate(fd, 0, r->reserve_bytes);
    close(fd);
    if (rc == 0)
        r->reserve_held = true;
    else
        unlink(r->reserve);
}

static bool reserve_release(struct retention *r)
{
    if (!r->reserve_held) return false;
    r->reserve_held = false;
    if (unlink(r->reserve) < 0 && errno != ENOENT) return false;
    log_warn("the disk is full: gave up the reserve %s (%lld KiB) so that room can be made",
             r->reserve, (long long)(r->reserve_bytes >> 10));
    return true;
}

bool retention_release_reserve_file(const char *db_path)
{
    char path[PATH_MAX];
    struct statvfs fs;
    snprintf(path, sizeof path, "%s.reserve", db_path);
    if (statvfs(db_path, &fs) != 0 || (int64_t)fs.f_bavail * (int64_t)fs.f_frsize >= 1 << 20 ||
        unlink(path) != 0)
        return false;
    log_warn("the disk is full: gave up the reserve %s so that the database can be opened", path);
    return true;
}

/* ---- creation ---- */

struct retention *retention_create(const struct retention_config *cfg, struct store *s, char *err,
                                   size_t errsz)
{
    struct retention *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errsz, "retention: out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->images = true;
    /* the WAL counts against the limit and the reserve holds its bound: keep it to a sixteenth of
     * the limit and a thirty-second of the filesystem */
    r->wal_bytes = WAL_MAX_BYTES;
    if (cfg->max_bytes > 0) r->wal_bytes = min64(r->wal_bytes, cfg->max_bytes / 16);
    struct statvfs fs;
    if (statvfs(store_path(s), &fs) == 0)
        r->wal_bytes = min64(r->wal_bytes, (int64_t)fs.f_blocks * (int64_t)fs.f_frsize / 32);
    r->wal_bytes = max64(r->wal_bytes, WAL_MIN_BYTES);
    r->reserve_bytes = 3 * r->wal_bytes + RESERVE_EXTRA;
    snprintf(r->reserve, sizeof r->reserve, "%s.reserve", store_path(s));
    if (store_set_limits(s, cfg->max_bytes, r->wal_bytes) < 0) {
        snprintf(err, errsz, "retention: %s", store_errmsg(s));
        free(r);
        return NULL;
    }
    struct store_usage u;
    if (access(r->reserve, F_OK) == 0)
        r->reserve_held = true; /* a previous run's: on a full disk it is what gets things going */
    else if (store_usage(s, &u) == 0)
        reserve_make(r, &u);
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void retention_free(struct retention *r)
{
    if (!r) return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int64_t retention_transaction_bytes(const struct retention *r)
{
    return r->wal_bytes;
}

void retention_get_status(struct retention *r, struct retention_status *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->status;
    pthread_mutex_unlock(&r->lock);
}

/* ---- measuring ---- */

/* Bytes over max_bytes once `need` more bytes are written, with the slack a pass leaves when
 * `slack`; <= 0: it fits. Free pages count as room: new rows reuse them. A batch is counted twice:
 * at its commit it is in the WAL and, checkpointed, in the database file before the WAL is cut back
 * to its bound at the next write. The WAL is counted at twice its bound: the writer is not its only
 * writer (every frame's verdict, the webhook outbox), and a checkpoint cannot start the WAL over
 * while a reader (the scorer, the results feed, an HTTP request) holds an older snapshot, so it
 * may run past the bound by up to a bound's worth before it is cut back. */
static int64_t excess_db(const struct retention *r, const struct store_usage *u, int64_t need,
                         bool slack)
{
    if (r->cfg.max_bytes <= 0) return INT64_MIN;
    int64_t used = (u->pages - u->free_pages) * u->page_size + 2 * r->wal_bytes + 2 * need;
    return used - (r->cfg.max_bytes - (slack ? r->cfg.max_bytes / SLACK_DIV : 0));
}

/* The same for the free-space floor of the filesystem: min_free_bytes and twice the reserve file
 * (which counts as free space while it is held). */
static int64_t excess_fs(const struct retention *r, const struct store_usage *u, int64_t need,
                         bool slack)
{
    int64_t floor = r->cfg.min_free_bytes + 2 * r->reserve_bytes;
    floor += slack ? floor / SLACK_DIV : 0;
    int64_t room = u->fs_free + u->free_pages * u->page_size;
    if (r->reserve_held) room += r->reserve_bytes;
    return floor + need - room;
}

static int64_t excess(const struct retention *r, const struct store_usage *u, int64_t need,
                      bool slack)
{
    return max64(excess_db(r, u, need, slack), excess_fs(r, u, need, slack));
}

static int64_t defects_cutoff_us(const struct retention *r)
{
    return clock_wall_us() - (int64_t)(r->cfg.flagged_days * 86400e6);
}

/* ---- images on and off ---- */

/* Why images go off, for the log and /readyz. */
static void describe(const struct retention *r, const struct store_usage *u, int64_t need,
                     bool full, char *buf, size_t n)
{
    const char *tail = "; only frames awaiting review or confirmed defects within flagged_days are "
                       "left to delete: new frames are stored without their images";
    if (full)
        snprintf(buf, n, "the disk is full%s", tail);
    else if (excess_fs(r, u, need, false) > 0)
        snprintf(buf, n,
                 "free space on the filesystem is down to min_free_mb = %lld and the room kept for "
                 "the reserve file (%lld KiB)%s",
                 (long long)(r->cfg.min_free_bytes >> 20), (long long)(2 * r->reserve_bytes >> 10),
                 tail);
    else
        snprintf(buf, n, "the database is at max_size_mb = %lld%s",
                 (long long)(r->cfg.max_bytes >> 20), tail);
}

/* The hard ceiling (max_page_count) and the WAL bound. While images are stored the ceiling is
 * max_bytes; while they are off it is the current size plus a margin (a twentieth of the larger
 * limit, 1 MiB at least) so that the rows of new frames still fit, the oldest of those rows making
 * room when the margin is used up. */
static void set_ceiling(struct retention *r, struct store *s)
{
    int64_t ceiling = r->cfg.max_bytes;
    struct store_usage u;
    if (!r->images && store_usage(s, &u) == 0)
        ceiling = u.pages * u.page_size +
                  max64(max64(r->cfg.max_bytes, r->cfg.min_free_bytes) / SLACK_DIV, 1 << 20);
    if (store_set_limits(s, ceiling, r->wal_bytes) < 0) store_error(r, s);
}

static void set_images(struct retention *r, struct store *s, bool on, const char *why)
{
    if (r->images == on) return;
    r->images = on;
    set_ceiling(r, s);
    pthread_mutex_lock(&r->lock);
    r->status.images_off = !on;
    snprintf(r->status.reason, sizeof r->status.reason, "%s", on ? "" : why);
    pthread_mutex_unlock(&r->lock);
    if (on)
        log_info("room again: new frames are stored with their images");
    else
        log_error("%s (until operators review the alerts, or the limit is raised)", why);
}

/* ---- deleting ---- */

/* What one pass deleted, for its log line. */
struct pass {
    int frames;
    int64_t image_bytes, events;
};

static void count_deleted(struct retention *r, int frames, int64_t bytes, int64_t events)
{
    pthread_mutex_lock(&r->lock);
    r->status.frames_deleted += (uint64_t)frames;
    r->status.image_bytes_deleted += (uint64_t)bytes;
    r->status.outbox_events_deleted += (uint64_t)events;
    pthread_mutex_unlock(&r->lock);
}

/* Deletes one chunk of the oldest frames retention may take (at most the WAL's bound of images),
 * with the webhook events older than them; when only protected frames are left, a chunk of the
 * oldest webhook events instead (copies of rows the database keeps). Returns the number of rows
 * deleted, 0 when nothing but protected frames is left, -1 on error (logged). */
static int delete_chunk(struct retention *r, struct store *s, struct pass *p)
{
    int64_t b = 0, events = 0;
    int n = store_delete_oldest(s, DELETE_CHUNK, r->wal_bytes, defects_cutoff_us(r), &b, &events);
    if (n == 0) {
        int e = store_delete_oldest_outbox(s, OUTBOX_CHUNK, r->wal_bytes, NULL);
        events = e;
        n = e < 0 ? -1 : 0;
    }
    if (n < 0) {
        store_error(r, s);
        return -1;
    }
    count_deleted(r, n, b, events);
    p->frames += n;
    p->image_bytes += b;
    p->events += events;
    return n + (int)events;
}

/* "the 12 oldest frames (3.1 MB of images) and 40 webhook events" into buf. */
static const char *describe_pass(const struct pass *p, char *buf, size_t n)
{
    int off = snprintf(buf, n, "the %d oldest frames (%.1f MB of images)", p->frames,
                       p->image_bytes / 1e6);
    if (p->events && off >= 0 && (size_t)off < n)
        snprintf(buf + off, n - (size_t)off, " and %lld webhook events of the outbox",
                 (long long)p->events);
    return buf;
}

/* Gives free pages back to the filesystem until none is left or the deadline passes. */
static void give_back(struct retention *r, struct store *s, int64_t deadline)
{
    struct store_usage u;
    while (store_usage(s, &u) == 0 && u.free_pages > 0) {
        /* a chunk at a time, each checkpointed, so that the WAL stays within its bound */
        int64_t chunk = min64(max64(r->wal_bytes / u.page_size, 1), VACUUM_CHUNK);
        int released = store_vacuum(s, (int)chunk);
        if (released < 0) {
            store_error(r, s); /* on a full disk the moves may not fit; the pages get reused */
            return;
        }
        if (released == 0 || clock_mono_ns() > deadline) return;
    }
}

/* Deletes until `need` bytes fit with the slack, within the time budget. */
static enum room make_room(struct retention *r, struct store *s, int64_t need,
                           struct store_usage *u)
{
    int64_t deadline = clock_mono_ns() + BUDGET_NS;
    if (store_usage(s, u) < 0) {
        store_error(r, s); /* cannot measure: write, the hard ceiling still holds */
        return ROOM_OK;
    }
    if (excess(r, u, need, false) <= 0) {
        /* pages a pass out of time left behind */
        bool limited = r->cfg.max_bytes > 0 || r->cfg.min_free_bytes > 0;
        if (limited && u->free_pages > 0) give_back(r, s, deadline);
        return ROOM_OK;
    }
    int n = 0;
    struct pass p = {0};
    while (excess(r, u, need, true) > 0 && (n = delete_chunk(r, s, &p)) > 0) {
        if (store_usage(s, u) < 0 || clock_mono_ns() > deadline) break;
    }
    if (p.frames > 0 || p.events > 0) {
        char what[160];
        describe_pass(&p, what, sizeof what);
        if (r->passes_logged)
            log_debug("deleted %s", what);
        else
            log_info("making room: deleted %s; frames awaiting review and confirmed defects "
                     "within flagged_days are kept",
                     what);
        r->passes_logged = true;
        give_back(r, s, deadline);
        set_ceiling(r, s); /* SQLite keeps a ceiling at least the size the file had */
    }
    if (store_usage(s, u) < 0 || excess(r, u, need, false) <= 0) return ROOM_OK;
    return n == 0 ? ROOM_EXHAUSTED : ROOM_PARTIAL;
}

/* Images off: whether deleting what retention may take would now make room for `need` (an
 * operator reviewed alerts, defects aged past flagged_days, the disk got space): without this,
 * every look would delete the rows of the frames stored without images, to no avail. */
static bool room_in_sight(struct retention *r, struct store *s, int64_t need)
{
    struct store_usage u;
    int64_t deletable;
    if (store_usage(s, &u) < 0) return false;
    int64_t over = excess(r, &u, need, false);
    if (over <= 0) return true;
    int64_t t0 = clock_mono_ns();
    if (store_deletable_bytes(s, defects_cutoff_us(r), &deletable) < 0) {
        store_error(r, s);
        return false;
    }
    /* the scan reads every frame's row: on a large database, look less often */
    r->next_check_ns = max64(r->next_check_ns, clock_mono_ns() + 20 * (clock_mono_ns() - t0));
    return deletable >= over;
}

/* ---- the writer's calls ---- */

bool retention_prepare(struct retention *r, struct store *s, int64_t image_bytes, int frames)
{
    int64_t need = image_bytes + (int64_t)frames * (META_BYTES + PAGE_SLACK);
    struct store_usage u;
    if (!r->images) {
        /* rows without images are stored anyway, within the ceiling's margin; now and then the
         * images are tried again (retention_committed() switches them back on) */
        if (clock_mono_ns() < r->next_check_ns) return false;
        r->next_check_ns = clock_mono_ns() + RECHECK_NS;
        if (!room_in_sight(r, s, need)) return false;
    }
    if (make_room(r, s, need, &u) != ROOM_EXHAUSTED) return true;
    char why[sizeof r->status.reason];
    describe(r, &u, need, false, why, sizeof why);
    set_images(r, s, false, why);
    r->next_check_ns = clock_mono_ns() + RECHECK_NS;
    return false;
}

void retention_committed(struct retention *r, struct store *s, bool images)
{
    if (images) set_images(r, s, true, NULL);
    if (!r->reserve_held && clock_mono_ns() >= r->next_reserve_ns) {
        struct store_usage u;
        if (store_usage(s, &u) == 0) reserve_make(r, &u);
        r->next_reserve_ns = clock_mono_ns() + RECHECK_NS;
    }
}

bool retention_after_full(struct retention *r, struct store *s, int64_t image_bytes, bool *images)
{
    pthread_mutex_lock(&r->lock);
    r->status.full_events++;
    pthread_mutex_unlock(&r->lock);
    bool released = reserve_release(r);
    /* free twice the batch, and up to 1 MiB or a twentieth of the database, whichever is smaller;
     * measured in free pages, so rows without images count too */
    struct store_usage u = {0};
    if (store_usage(s, &u) < 0) store_error(r, s);
    int64_t db = u.pages * u.page_size, free0 = u.free_pages;
    int64_t want = max64(2 * image_bytes, min64(db / SLACK_DIV, FULL_FREE_BYTES));
    int64_t deadline = clock_mono_ns() + BUDGET_NS;
    int n = 0;
    struct pass p = {0};
    while (clock_mono_ns() < deadline && (n = delete_chunk(r, s, &p)) > 0) {
        if (store_usage(s, &u) < 0 || (u.free_pages - free0) * u.page_size >= want) break;
    }
    if (p.frames > 0 || p.events > 0) {
        char what[160];
        log_warn("the disk or database is full: deleted %s", describe_pass(&p, what, sizeof what));
        give_back(r, s, deadline);
        set_ceiling(r, s);
        return true;
    }
    if (n < 0 || !*images) return released; /* a delete failed too: wait for room */
    char why[sizeof r->status.reason];
    describe(r, &u, 0, true, why, sizeof why);
    set_images(r, s, false, why);
    r->next_check_ns = clock_mono_ns() + RECHECK_NS;
    *images = false;
    return true;
}
