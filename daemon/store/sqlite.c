/* sqlite.c — opening a connection with inspectd's pragmas, and the "no room" check (sqlite.h). */
#include "sqlite.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

/* bytes of WAL file kept after a checkpoint by connections other than the frame writer */
#define STORE_SQLITE_WAL_KEEP "65536"

/* ---- the WAL's bound ----
 * SQLite's own autocheckpoint is a passive checkpoint once the WAL holds N pages: it never waits,
 * so while some reader (the scorer, the results feed, an HTTP request) always holds a snapshot the
 * WAL is never started over and grows past any bound. Every read-write connection gets this hook
 * instead: a passive checkpoint past the bound, as SQLite's; past twice the bound, a truncating one
 * that waits a moment for the readers (their transactions are short) and cuts the file to zero.
 * A reader that holds on longer (an export streaming a large tar) costs one short wait per quarter
 * bound of growth, never a stall per commit. */

static atomic_int wal_bound = 1000;    /* pages; SQLite's default autocheckpoint */
static _Thread_local int wal_next_try; /* this thread's next truncating try, in WAL pages */

#define WAL_TRUNCATE_WAIT_MS 250

void store_sqlite_set_wal_bound(int pages)
{
    atomic_store(&wal_bound, pages > 0 ? pages : 1);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)arg;
    int bound = atomic_load(&wal_bound);
    if (pages < bound) {
        wal_next_try = 0;
        return SQLITE_OK;
    }
    if (pages >= 2 * bound && pages >= wal_next_try) {
        sqlite3_busy_timeout(db, WAL_TRUNCATE_WAIT_MS);
        int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
        if (rc == SQLITE_OK) return SQLITE_OK;
        wal_next_try = pages + bound / 4;
    }
    /* errors here are not the commit's: it is durable; the next commit tries again */
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

sqlite3 *store_sqlite_open(const char *path, int flags, char *err, size_t errsz)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 1);
    char *why = NULL;
    /* journal_size_limit: whichever connection starts the WAL over after a checkpoint cuts the
     * file back to this (the frame writer sets its own from retention's bound); without it a WAL
     * that one busy moment grew stays that size on disk, past a max_size_mb */
    const char *pragmas = (flags & SQLITE_OPEN_READWRITE)
                              ? "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; "
                                "PRAGMA journal_size_limit = " STORE_SQLITE_WAL_KEEP
                              : "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL";
    if (sqlite3_exec(db, pragmas, NULL, NULL, &why) != SQLITE_OK) {
        snprintf(err, errsz, "%s: %s", path, why ? why : sqlite3_errmsg(db));
        sqlite3_free(why);
        sqlite3_close(db);
        return NULL;
    }
    if (flags & SQLITE_OPEN_READWRITE) sqlite3_wal_hook(db, wal_hook, NULL);
    return db;
}

bool store_sqlite_full(sqlite3 *db)
{
    int code = sqlite3_extended_errcode(db) & 0xff;
    return code == SQLITE_FULL || (code == SQLITE_IOERR && sqlite3_system_errno(db) == ENOSPC);
}
