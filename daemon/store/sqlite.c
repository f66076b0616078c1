/* sqlite.c — opening a connection with inspectd's pragmas, and the "no room" check (sqlite.h). */
#include "sqlite.h"

#include <errno.h>
#include <stdio.h>

/* bytes of WAL file kept after a checkpoint by connections other than the frame writer */
#define STORE_SQLITE_WAL_KEEP "65536"

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
    return db;
}

bool store_sqlite_full(sqlite3 *db)
{
    int code = sqlite3_extended_errcode(db) & 0xff;
    return code == SQLITE_FULL || (code == SQLITE_IOERR && sqlite3_system_errno(db) == ENOSPC);
}
