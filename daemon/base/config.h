/* config.h — the daemon's configuration: an INI file (inih) read once at start-up into a plain
 * struct, every value validated, every error reported as "FILE:LINE: message".
 *
 * Sections: [http] [store] [pipeline] [trainer] [engine] [log] [results] [mqtt]
 * (line/line_config.h) and one [camera.NAME] per camera. [engine]'s keys (gemm, precision) are
 * training knobs kept in trainer_knobs: the daemon selects them at start and passes them to every
 * training child. Camera parameters other than `driver` go to the driver unchanged after
 * source_check_param() accepted them. systemd/inspectd.conf documents every key; it is compiled in
 * and used when no file is given.
 *
 * Invariants after a successful load: every field holds a validated value (defaults where the file
 * is silent); camera names are unique, [A-Za-z0-9_-]{1,63}; ncameras >= 1. */
#ifndef INSPECTD_CONFIG_H
#define INSPECTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sysexits.h>

#include "log.h"
#include "region.h"
#include "source.h"
#include "line/line_config.h"
#include "train/train_cli.h"

#define CONFIG_MAX_CAMERAS 16
#define CONFIG_MAX_PARAMS  32
#define CONFIG_NAME_MAX    64
#define CONFIG_MAX_RECIPES 32

struct config_camera {
    char name[CONFIG_NAME_MAX];
    char driver[CONFIG_NAME_MAX];
    char recipe[CONFIG_NAME_MAX]; /* `recipe`, a daemon key (never the driver's): the camera's own
                                     name when the section does not say */
    char roi[32];   /* `roi`, a daemon key: "x,y,w,h" as validated; "" for the whole frame */
    char mask[512]; /* `mask`, a daemon key: a PNG file (read and decoded when the file loads);
                       "" for none */
    struct source_param params[CONFIG_MAX_PARAMS]; /* key/value strings owned by the config */
    size_t nparams;
};

/* A [recipe.NAME] section: the trainer's policy and knobs for that recipe's runs, each key the
 * [trainer] value where the section is silent (keep_models stays global). A recipe with no
 * section has [trainer]'s (config_recipe_settings). */
struct config_recipe {
    char name[CONFIG_NAME_MAX];
    int number;              /* the recipe's number for a PLC; -1 when not set */
    double false_alarm_rate; /* share of normal frames allowed above the threshold, (0, 1) */
    double threshold;        /* a fixed threshold in raw score units; 0: none */
    int enabled, every, min_frames;
    double first_minutes;
    struct train_knobs knobs;
    uint64_t knobs_set;
    char import[512];
};

struct config {
    char path[512]; /* the file read, or "(embedded default)" */

    /* [http] */
    char http_host[256];       /* numeric IPv4/IPv6 address */
    int http_port;             /* 0..65535; 0 picks a free port */
    char http_token[256];      /* bearer token; "" for none (only allowed on loopback) */
    char http_token_file[512]; /* file holding the token (created if missing); "" for none */
    int http_threads;          /* database connections requests read through */
    int http_max_connections;  /* connections served at once */
    int http_timeout_s;        /* an idle connection is closed after this long */
    long http_max_upload;      /* bytes of request body (POST /score images) */
    char http_tls_cert[512];   /* PEM files: HTTPS when both are set */
    char http_tls_key[512];
    char http_public_url[256]; /* the API's address as others reach it, for absolute links in
                                  line messages ("": relative links); no trailing '/' */

    /* [store] */
    char store_path[512];
    int jpeg_quality; /* for raw frames, 1..100 */
    int batch_frames; /* at most this many frames per transaction */
    int batch_ms;     /* a transaction collects frames for at most this long */
    /* retention (retention.h) */
    int store_max_size_mb;     /* the database with its WAL; 0: no limit */
    int store_min_free_mb;     /* free space kept on its filesystem; 0: none */
    double store_flagged_days; /* confirmed defects kept at least this long */

    /* [pipeline] */
    int queue_size;      /* frames waiting for the writer; the oldest is dropped when full */
    int max_score_lag_s; /* frames stored longer ago than this when their turn to be scored
                            comes are skipped (counted); 0: every frame is scored, however late */

    /* [trainer] retraining by policy: `inspectd train --db --register` as an idle child */
    int trainer_enabled;     /* 0 or 1 */
    int trainer_every;       /* retrain once this many frames arrived since the active model */
    int trainer_min_frames;  /* no first model before this many frames */
    int trainer_keep_models; /* model files kept: the newest this many models' (and the active's) */
    double trainer_first_minutes; /* the budget of the runs before the first model exists */
    /* the child's training knobs (train/train_cli.h): those in trainer_knobs_set (bit i: knob i)
     * are passed to it, the others keep `inspectd train`'s defaults */
    struct train_knobs trainer_knobs;
    uint64_t trainer_knobs_set;
    char trainer_import[512]; /* weights trained elsewhere every run starts from; "" for none */
    double false_alarm_rate;  /* the recipes' sensitivity where [recipe.NAME] does not say */
    double threshold;         /* 0: none */

    /* [log] */
    enum log_level log_level;

    /* the line's outputs: [results] */
    struct line_config line;

    struct config_camera cameras[CONFIG_MAX_CAMERAS];
    size_t ncameras;

    struct config_recipe recipes[CONFIG_MAX_RECIPES]; /* the [recipe.NAME] sections, in order */
    size_t nrecipes;
};

/* Loads a config file, or the embedded default when path is NULL. Returns 0, or -1 with
 * "FILE:LINE: message" (or "FILE: message" when no line applies, e.g. a missing file) in err.
 * On error *cfg is freed; on success free it with config_free(). */
int config_load(struct config *cfg, const char *path, char *err, size_t errsz);

/* Parses INI text as if it came from the file `name` (for tests and the embedded default).
 * Same contract as config_load(). */
int config_parse_string(struct config *cfg, const char *text, const char *name, char *err,
                        size_t errsz);

/* Fills http_token from http_token_file when the token is not set inline: reads the file (its
 * first line), or creates it (mode 0600) with a new random token when it does not exist.
 * Returns 0, or -1 with the reason in err (an unreadable or empty file, no entropy, ...). */
int config_load_token(struct config *cfg, char *err, size_t errsz);

/* Frees the camera parameter strings. Safe on a zeroed or already freed config. */
void config_free(struct config *cfg);

/* Whether a numeric listen address is a loopback one (127.0.0.0/8, ::1). */
bool config_is_loopback(const char *host);

/* The embedded default config text (systemd/inspectd.conf). Never NULL. */
const char *config_default_text(void);

/* ---- cameras outliving their config (a reload restarts only the cameras that changed) ---- */

/* Deep-copies a camera (its parameter strings too). Returns 0, or -1 when out of memory (dst is
 * then empty). Free the copy with config_camera_free(). */
int config_camera_copy(struct config_camera *dst, const struct config_camera *src);
void config_camera_free(struct config_camera *cam);
/* Same name, driver and parameters (in any order): what the driver sees (recipe, roi and mask are
 * the daemon's). */
bool config_camera_equal(const struct config_camera *a, const struct config_camera *b);

/* The camera's region: its roi parsed and its mask read again from its file (config_load
 * checked both), the mask's bytes into *mask_bytes (malloc'ed, NULL when it has none). Returns 0,
 * or -1 with the reason in err (the file changed since). Free r with region_free. */
int config_camera_region(const struct config_camera *cam, struct region *r, uint8_t **mask_bytes,
                         size_t *mask_len, char *err, size_t errsz);

/* The [recipe.NAME] section of that name, or NULL. */
const struct config_recipe *config_recipe_find(const struct config *c, const char *name);
/* The settings a recipe trains with: its section's, or [trainer]'s when it has none. */
void config_recipe_settings(const struct config *c, const char *name, struct config_recipe *out);
/* Whether the config names that recipe: a [recipe.NAME] section or some camera's recipe. */
bool config_recipe_known(const struct config *c, const char *name);
/* [A-Za-z0-9_-]{1,63}: what a camera or recipe may be called. */
bool config_valid_name(const char *s);

/* The [trainer] keys (and the [recipe.NAME] sections) of src into dst, the rest of dst left as it
 * is (a reload). */
void config_copy_trainer(struct config *dst, const struct config *src);
bool config_trainer_equal(const struct config *a, const struct config *b);

#endif
