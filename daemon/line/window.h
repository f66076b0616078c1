/* window.h — the inspection window ([plc] window_ms): a thread that gives every frame still
 * without a verdict window_ms after it was stored the verdict 'unscored' (late), at the deadline,
 * so the line always has an answer in time and treats the part as a reject. A score that comes
 * later is stored beside that verdict, which stays the verdict of record (scoring_store_result).
 * It looks every few milliseconds (window_ms / 10, 2 to 50 ms) through a connection of its own. */
#ifndef INSPECTD_LINE_WINDOW_H
#define INSPECTD_LINE_WINDOW_H

#include <stddef.h>

struct line_window;

/* Starts the thread on the database at path (migrated) for frames stored from now on. Returns
 * NULL with the reason in err. */
struct line_window *line_window_start(const char *db_path, int window_ms, char *err, size_t errsz);
/* Stops and frees; NULL is fine. The late verdicts are counted with every other verdict
 * (inspectd_results_unscored_total{reason="late"}). */
void line_window_stop(struct line_window *w);

#endif
