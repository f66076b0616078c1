/* sqlite.h — how the store room opens a SQLite connection and reads its errors: one open function
 * (the pragmas every connection has, set in one place) and one "no room" check. Internal to
 * store/: the rest of inspectd speaks to the store's own functions, never to SQLite. */
#ifndef INSPECTD_STORE_SQLITE_H
#define INSPECTD_STORE_SQLITE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

/* How long a statement waits for another connection's lock before SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* Opens path with flags (SQLITE_OPEN_*; SQLITE_OPEN_NOMUTEX is added) and gives the connection
 * the busy timeout, extended result codes, foreign keys and synchronous = NORMAL (the writer adds
 * its WAL and vacuum settings). Returns the connection, or NULL with "PATH: reason" in err. */
sqlite3 *store_sqlite_open(const char *path, int flags, char *err, size_t errsz);

/* The WAL's bound in pages for every read-write connection of the process (1000 until set): past
 * it a commit checkpoints passively, past twice it the checkpoint waits briefly for readers and
 * truncates the WAL file. Retention sets it from max_size_mb and the filesystem's size. */
void store_sqlite_set_wal_bound(int pages);

/* Whether db's last error means "no room": SQLITE_FULL (the disk or max_page_count) or an I/O
 * error from ENOSPC. */
bool store_sqlite_full(sqlite3 *db);

#endif
