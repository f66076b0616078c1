/* window.c — the inspection window's thread: frames past their deadline get 'late'. */
#define LOG_TAG "window"
#include "log.h"

#include "window.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "store/scoring_store.h"

struct line_window {
    pthread_t thread;
    struct scoring_store *db;
    int64_t window_us;
    int tick_ms;
    int64_t last_id; /* frames up to this one are past their deadline and have a verdict */
    atomic_bool stop;
    bool failing;
};

/* One look: the frames stored before the deadline since the last look get 'late' unless they
 * have a verdict. */
static void look(struct line_window *w)
{
    int64_t last;
    int rc = scoring_store_stored_before(w->db, w->last_id, clock_wall_us() - w->window_us, &last);
    if (!rc && last > w->last_id)
        rc = scoring_store_unscored_verdicts(w->db, 0, w->last_id, last, "late");
    if (rc && !w->failing) log_error("%s (tried again)", scoring_store_errmsg(w->db));
    if (!rc && w->failing) log_info("late verdicts are written again");
    w->failing = rc != 0;
    if (rc) return;
    w->last_id = last;
}

static void *window_main(void *arg)
{
    struct line_window *w = arg;
    while (!atomic_load(&w->stop)) {
        look(w);
        struct timespec ts = {0, (long)w->tick_ms * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

struct line_window *line_window_start(const char *db_path, int window_ms, char *err, size_t errsz)
{
    struct line_window *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errsz, "out of memory for the inspection window");
        return NULL;
    }
    w->window_us = (int64_t)window_ms * 1000;
    w->tick_ms = window_ms / 10 < 2 ? 2 : window_ms / 10 > 50 ? 50 : window_ms / 10;
    atomic_init(&w->stop, false);
    if (!(w->db = scoring_store_open(db_path, err, errsz))) {
        free(w);
        return NULL;
    }
    /* frames stored before the window started are the scorer's to answer */
    if (scoring_store_stored_before(w->db, 0, INT64_MAX, &w->last_id) ||
        pthread_create(&w->thread, NULL, window_main, w) != 0) {
        snprintf(err, errsz, "cannot start the inspection window: %s", scoring_store_errmsg(w->db));
        scoring_store_close(w->db);
        free(w);
        return NULL;
    }
    log_info("inspection window %d ms: a part without a verdict by then is unscored (late)",
             window_ms);
    return w;
}

void line_window_stop(struct line_window *w)
{
    if (!w) return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    scoring_store_close(w->db);
    free(w);
}
