/* reload.h — SIGHUP (`systemctl reload inspectd`): read the config file again and apply what can
 * change while the daemon runs, without losing a frame.
 *
 * Applied at once: [log] level; the [trainer] policy and [recipe.NAME] sections (from the next
 * run on; a recipe's sensitivity from the next frame); [http] token or
 * token_file (the file read again); [store] jpeg_quality (the next raw frames); cameras added,
 * removed or changed (only those are restarted, see pipeline_reconfigure()). Needing a restart
 * (logged by name, the running value kept): [http] listen, threads, max_connections, timeout,
 * max_upload, tls_cert and tls_key, [store] path, batch_frames and batch_ms, [pipeline]
 * queue_size, and any other key reload does not know.
 *
 * A file that does not load (syntax, bad value, a driver refusing a parameter) is refused with
 * its FILE:LINE message and nothing changes; so is a file that drops [http] token while the
 * running listener is not on loopback. The daemon never exits on a reload.
 *
 * Invariant: the running config struct holds what is in effect: the values loaded at start for
 * keys that need a restart, the last reload's for the others. */
#ifndef INSPECTD_RELOAD_H
#define INSPECTD_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"
#include "http/http.h"
#include "scoring/scorer.h"
#include "capture/pipeline.h"
#include "train/trainer.h"

/* What differs between the running config and a new one (cameras aside: the pipeline compares
 * those with what it runs). */
struct reload_diff {
    bool log_level, trainer, token, jpeg_quality;
    char restart[512]; /* "[store] path, [http] listen": differing keys that need a restart */
};

/* Pure: compares every key of running and next. */
void reload_diff(const struct config *running, const struct config *next, struct reload_diff *d);

/* Why next cannot replace running live (a token dropped on a non-loopback listener), or NULL. */
const char *reload_refusal(const struct config *running, const struct config *next);

struct reload_targets {
    struct pipeline *pipeline;
    struct trainer *trainer;
    struct http_server *http;
    struct scorer *scorer; /* the recipes' sensitivity ([trainer], [recipe.NAME]) */
};

/* Loads path (NULL: the embedded default) and applies it to the running daemon as above, updating
 * *running. Logs what changed, what needs a restart, or why the file was refused. Writes a
 * one-line summary for systemd's STATUS= into summary. Returns 0, or -1 when refused. */
int reload_config(struct config *running, const char *path, const struct reload_targets *t,
                  char *summary, size_t summarysz);

#endif
