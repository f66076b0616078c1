/* trainer.h — retraining by policy ([trainer] in the config, [recipe.NAME] per recipe): when
 * enough frames of a recipe arrived since its active model (or, before its first one, when enough
 * are stored), run `inspectd train --db DB --register --recipe NAME` as a child process at low
 * priority (nice 19, its own BLAS thread count), its log going to the daemon's. Recipes are
 * served one run at a time (the line keeps its cores): of those due, the one with the most new
 * frames since its model first; each run starts from its own recipe's model (train/start.h). The
 * child trains, builds the bank, calibrates and makes its model the active one in one transaction
 * at the end; the scorer picks it up. A child that fails or is killed changes nothing: the previous
 * model keeps scoring, and the policy tries again after a back-off. Checkpoints go to DIR/models/
 * beside the database.
 *
 * Crash safety: the child gets SIGTERM when the daemon dies, however it dies (it saves its
 * checkpoint and exits), and holds DIR/models/.training.lock for its whole life, so a restarted
 * daemon waits for its predecessor's child instead of running a second one. A run interrupted
 * before it registered (its checkpoint named by no model row) is resumed (`--resume`) by the next
 * run rather than started over; one that cannot be resumed is left and a fresh run starts.
 *
 * Disk: before each run, the files in DIR/models/ of models older than the `keep_models` newest
 * are removed (the active model's are always kept), and so are checkpoints no model names but
 * the one to resume, so months of retraining keep a bounded number of files. The model rows stay
 * (results name them). */
#ifndef INSPECTD_TRAINER_H
#define INSPECTD_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/config.h"

struct trainer;

struct trainer_status {
    bool enabled, running;
    pid_t pid;          /* of the running child, 0 when none */
    int64_t started_us; /* wall clock start of the running or last run */
    uint64_t runs, failures;
    uint64_t resumed;           /* runs that resumed an interrupted one */
    int last_exit;              /* exit status of the last child (-signal when killed) */
    int64_t frames_since_model; /* the most new frames any recipe has since its model */
    char recipe[64];            /* the recipe of the running or last run */
    bool requested; /* a run was asked for (POST /api/v1/train) and starts within seconds */
    bool fresh;     /* the running or last run was asked to start fresh */
    /* the running child's progress (valid when has_progress) */
    bool has_progress;
    char phase[16]; /* "training", then "registering" (bank, calibration, validation) */
    long step, total_steps;
    double loss, eta_s, images_per_s;
};

/* Starts the policy thread (also when disabled: then it only reports). Returns NULL with the
 * reason in err. */
struct trainer *trainer_start(const struct config *cfg, char *err, size_t errsz);

/* Stops the thread; a running child gets SIGTERM (it saves its checkpoint and exits, registering
 * nothing), and SIGKILL if it has not ended 5 s later. NULL is fine. */
void trainer_stop(struct trainer *t);

/* The status, with the running child's progress read from its progress file. */
void trainer_get_status(struct trainer *t, struct trainer_status *out);

/* The trainer's /metrics lines: whether a run is on (its progress and loss), runs and failures. */
void trainer_write_metrics(FILE *out, struct trainer *t);

/* Asks for a run now, whatever the policy says (also when [trainer] enabled = false), of recipe
 * (NULL: the one with the most new frames since its model); a fresh one neither resumes an
 * interrupted run nor continues the recipe's model (train/start.h). Returns 0 (it starts within a
 * second), or 1 when a run is already going on. */
int trainer_request(struct trainer *t, bool fresh, const char *recipe);

/* Takes cfg's [trainer] keys (a reload): they decide the next run; a run going on keeps the
 * settings it started with. Disabling lets a running child finish. */
void trainer_set_policy(struct trainer *t, const struct config *cfg);

#endif
