/* tmpdb.h — the fixture of the unit tests that need a real SQLite file: a fresh temporary
 * directory per test, with path naming t.db inside it (not created), removed with everything in
 * it afterwards. A test file defines `static int setup(void **state)` as
 * `return tmpdb_setup(state, "/tmp/test_NAME_XXXXXX");` and uses tmpdb_teardown. */
#ifndef INSPECTD_TESTS_TMPDB_H
#define INSPECTD_TESTS_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    char dir[64];
    char path[128];
};

static inline int tmpdb_setup(void **state, const char *template)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    snprintf(f->dir, sizeof f->dir, "%s", template);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    *state = f;
    return 0;
}

static inline int tmpdb_teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

#endif
