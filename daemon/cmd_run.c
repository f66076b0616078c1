/* cmd_run.c — `inspectd run`: the daemon. Loads the config, opens the store, starts the pipeline
 * and the HTTP API, tells systemd it is ready, and on SIGTERM/SIGINT stops capture, drains the
 * queue, commits, closes the database and exits 0. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "app.h"
#include "commands.h"
#include "config.h"
#include "http.h"
#include "pipeline.h"
#include "store.h"
#include "version.h"

#define LOG_TAG "main"
#include "log.h"

#define STATUS_EVERY_S 5

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd run [--config FILE]\n"
            "Captures frames from the configured cameras into SQLite and serves the HTTP API\n"
            "until SIGTERM or SIGINT (Ctrl-C), then drains the queue and exits 0.\n"
            "  --config FILE  INI configuration (default: the embedded one, which is\n"
            "                 systemd/inspectd.conf: a synthetic camera, ./var/inspectd.db,\n"
            "                 http://127.0.0.1:8080)\n"
            "Exit codes: 0 clean stop, 64 bad usage, 78 bad configuration, 1 start-up failed.\n");
}

/* Creates the directories above the database file (mkdir -p of its dirname). */
static int make_parent_dirs(const char *file)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void notify_status(struct pipeline *p)
{
    size_t streaming = 0;
    uint64_t stored = 0, dropped = 0;
    for (size_t i = 0; i < pipeline_ncameras(p); i++) {
        struct pipeline_camera_status st;
        pipeline_camera_status(p, i, &st);
        streaming += st.state == CAMERA_STREAMING;
        stored += st.stored;
        dropped += st.dropped;
    }
    sd_notifyf(0, "STATUS=%zu/%zu cameras streaming, %llu frames stored, %llu dropped", streaming,
               pipeline_ncameras(p), (unsigned long long)stored, (unsigned long long)dropped);
}

/* Waits for SIGTERM/SIGINT (blocked in every thread), pinging the watchdog and refreshing STATUS
 * meanwhile. Returns the signal. */
static int wait_for_stop(struct pipeline *p, const sigset_t *stop)
{
    uint64_t watchdog_us = 0;
    int tick_ms = 1000;
    if (sd_watchdog_enabled(0, &watchdog_us) > 0 && watchdog_us / 2000 < (uint64_t)tick_ms)
        tick_ms = (int)(watchdog_us / 2000);
    int64_t last_status = 0;
    for (;;) {
        struct timespec ts = {.tv_sec = tick_ms / 1000, .tv_nsec = (tick_ms % 1000) * 1000000L};
        int sig = sigtimedwait(stop, NULL, &ts);
        if (sig > 0) return sig;
        if (watchdog_us) sd_notify(0, "WATCHDOG=1");
        if (now_us() - last_status >= STATUS_EVERY_S * 1000000LL) {
            notify_status(p);
            last_status = now_us();
        }
    }
}

static void log_summary(struct pipeline *p)
{
    for (size_t i = 0; i < pipeline_ncameras(p); i++) {
        struct pipeline_camera_status st;
        pipeline_camera_status(p, i, &st);
        log_info("camera %s: %llu frames captured, %llu stored, %llu dropped, %llu failed", st.name,
                 (unsigned long long)st.captured, (unsigned long long)st.stored,
                 (unsigned long long)st.dropped, (unsigned long long)st.failed);
    }
}

/* Scoring shares the cores with capture and training: one worker keeps a core for the rest. */
#define SCORER_THREADS 1

/* Opens everything in order; on failure closes what was opened. Returns 0 or 1. */
static int serve(struct config *cfg, const sigset_t *stop)
{
    char err[512];
    struct app app = {.cfg = cfg, .started_us = now_us()};
    struct store *store = NULL;
    struct http_server *http = NULL;
    int rc = 1;

    if (make_parent_dirs(cfg->store_path) < 0) {
        log_error("cannot create the directory of %s: %s", cfg->store_path, strerror(errno));
        return 1;
    }
    if (!(store = store_open(cfg->store_path, err, sizeof err))) goto out;
    if (cfg->http_token_file[0] && make_parent_dirs(cfg->http_token_file) < 0) {
        snprintf(err, sizeof err, "cannot create the directory of %.300s: %s", cfg->http_token_file,
                 strerror(errno));
        goto out;
    }
    if (config_load_token(cfg, err, sizeof err)) goto out;
    log_info("database %s at schema version %d", cfg->store_path, store_schema_version(store));
    if (!(app.readers = store_pool_open(cfg->store_path, cfg->http_threads, err, sizeof err)))
        goto out;
    if (!(app.pipeline = pipeline_start(cfg, store, err, sizeof err))) goto out;
    if (!(app.scorer = scorer_start(cfg->store_path, SCORER_THREADS, err, sizeof err))) goto out;
    if (!(app.trainer = trainer_start(cfg, err, sizeof err))) goto out;
    if (!(http = http_start(&app, err, sizeof err))) goto out;

    sd_notifyf(0, "READY=1\nSTATUS=capturing from %zu camera(s)", cfg->ncameras);
    log_info("inspectd %s running (config %s)", INSPECTD_VERSION, cfg->path);
    int sig = wait_for_stop(app.pipeline, stop);
    sd_notify(0, "STOPPING=1\nSTATUS=stopping: draining the queue");
    log_info("%s: stopping capture, draining the queue", strsignal(sig));
    rc = 0;
out:
    if (rc) log_error("%s", err);
    pipeline_stop(app.pipeline); /* capture stops, the writer drains and commits */
    http_stop(http);             /* no request can reach the pipeline or the store after this */
    trainer_stop(app.trainer);   /* a running training child is stopped; its model is not used */
    scorer_stop(app.scorer);
    if (app.pipeline && rc == 0) log_summary(app.pipeline);
    pipeline_free(app.pipeline);
    store_pool_close(app.readers);
    store_close(store);
    if (rc == 0) log_info("database closed; stopped cleanly");
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
    const char *config_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c')
            config_path = optarg;
        else if (c == 'h')
            return usage(stdout), 0;
        else
            return usage(stderr), 64;
    }
    if (optind != argc) return usage(stderr), 64;

    struct config cfg;
    char err[600];
    if (config_load(&cfg, config_path, err, sizeof err) < 0) {
        fprintf(stderr, "inspectd: %s\n", err);
        return CONFIG_EXIT_CODE;
    }
    log_set_level(cfg.log_level);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* before any thread exists: all inherit it */
    signal(SIGPIPE, SIG_IGN);

    int rc = serve(&cfg, &stop);
    config_free(&cfg);
    return rc;
}
