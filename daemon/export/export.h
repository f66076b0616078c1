/* export.h — a tar archive of flagged frames for review or retraining elsewhere, produced a piece
 * at a time so that neither the daemon nor the command line ever holds more than one frame:
 *
 *   images/                      directory entries come before their first file
 *   images/good/FRAME.jpg        alerts an operator marked false_positive
 *   images/defect/FRAME.jpg      confirmed defects
 *   images/unreviewed/FRAME.jpg  alerts still in state new
 *   heatmaps/FRAME.jpg           the overlay GET /api/v1/frames/{id}/heatmap draws
 *   manifest.jsonl               one JSON object per frame, newest first
 *   manifest.csv                 the same rows with a header line
 *
 * (an ImageFolder layout; an image keeps its stored bytes and format, .jpg or .png). Frames are
 * the alerts' frames, newest alert first. Metadata is read a page at a time and each frame's image
 * and heatmap grid through their own short read, each on a connection borrowed from the pool and
 * given back at once. The manifest rows are spooled to two anonymous temporary files as frames go
 * out and become the last two entries, so they list exactly the frames the archive holds (a frame
 * deleted between its page and its read is left out of both).
 *
 * export_read() hands out the archive's bytes; each call does a bounded amount of work (one page,
 * one frame, or up to EXPORT_CHUNK bytes of an entry), which keeps a streaming HTTP reply
 * responsive to a stopping daemon. */
#ifndef INSPECTD_EXPORT_H
#define INSPECTD_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"
#include "store/store_export.h"

#define EXPORT_PAGE  128        /* alerts per metadata page */
#define EXPORT_CHUNK (64 << 10) /* bytes of an entry's body written per step */

/* export_open()'s answer when the filter names a camera the database never stored. */
#define EXPORT_NO_CAMERA (-2)

struct export;

struct export_counts {
    int64_t frames;                   /* images in the archive */
    int64_t good, defect, unreviewed; /* by folder */
    int64_t heatmaps;                 /* heatmap entries */
    int64_t skipped;                  /* listed, then deleted (or stored without an image) */
    int64_t heatmap_errors;           /* a heatmap that could not be drawn (logged; left out) */
    uint64_t bytes;                   /* archive bytes produced so far */
};

/* Checks and fills a filter from its text form (NULL or absent: no bound; "" is refused):
 * state new|defect|false_positive, a camera name, since/until as RFC 3339 or Unix microseconds
 * (parse_time_us) with since < until. Returns 0, or -1 with a message for the user in err. */
int export_filter_parse(struct export_filter *f, const char *state, const char *camera,
                        const char *since, const char *until, char *err, size_t errsz);

/* Starts an export of the alerts matching f, reading through pool (which must outlive it). The
 * first page is read here, so a database error shows before any byte goes out. Returns 0 with
 * *out set, EXPORT_NO_CAMERA, or -1 with the reason in err. */
int export_open(struct export **out, struct store_pool *pool, const struct export_filter *f,
                char *err, size_t errsz);

/* Copies the archive's next bytes into buf. Returns how many (> 0), 0 once the archive is
 * complete, or -1 on an error (export_errmsg; the archive is then incomplete). */
ssize_t export_read(struct export *e, char *buf, size_t max);

const char *export_errmsg(const struct export *e);
void export_get_counts(const struct export *e, struct export_counts *c);
/* Frees everything. Safe on NULL. */
void export_close(struct export *e);

#endif
