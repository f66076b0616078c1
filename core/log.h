/* log.h — levelled, tagged log lines on stderr (journald keeps them).
 *
 * Every .c file that logs defines LOG_TAG before including this header:
 *     #define LOG_TAG "store"
 *     #include "log.h"
 *     log_warn("frame %llu dropped: %s", seq, why);
 * Lines look like `W store: frame 12 dropped: queue full`. Under journald (JOURNAL_STREAM set) the
 * level is sent as a `<N>` syslog priority prefix instead of a letter, and no timestamp is added.
 * Thread-safe: one write(2) per line. */
#ifndef INSPECTD_LOG_H
#define INSPECTD_LOG_H

enum log_level { LOGL_ERROR = 0, LOGL_WARN = 1, LOGL_INFO = 2, LOGL_DEBUG = 3 };

/* Messages above this level are dropped. Default LOGL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug". Returns 0, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOGL_ERROR, LOG_TAG, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, LOG_TAG, __VA_ARGS__)
#define log_info(...)  log_msg(LOGL_INFO, LOG_TAG, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, LOG_TAG, __VA_ARGS__)

#endif
