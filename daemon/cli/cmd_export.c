/* cmd_export.c — `inspectd export`: the flagged frames of a database as a tar archive, the same
 * archive GET /api/v1/export streams (see export.h), or with --dataset one MVTec AD category of
 * its normal frames, false positives and confirmed defects (see dataset.h). The database is opened
 * read-only, so this runs beside the daemon. A file is written under a temporary name beside it
 * and renamed once complete, so FILE is either the whole archive or untouched (a dataset's
 * directory likewise); `--out -` streams to stdout. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sysexits.h>

#include "base/config.h"
#include "commands.h"
#include "export/dataset.h"
#include "export/export.h"
#include "parse.h"
#include "store/store.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: inspectd export --db FILE --out FILE.tar [--state S] [--since T] [--until T]\n"
            "                       [--camera NAME] [--recipe NAME]\n"
            "       inspectd export --dataset DIR --db FILE [--normals N|all] [--camera NAME]\n"
            "                       [--recipe NAME] [--since T] [--until T]\n"
            "Writes the flagged frames (the alerts' frames, newest first) as a tar archive:\n"
            "images/{good,defect,unreviewed}/FRAME.jpg|png (false positives, confirmed defects,\n"
            "not yet reviewed), heatmaps/FRAME.jpg, manifest.jsonl and manifest.csv.\n"
            "  --db FILE       the database (opened read-only: the daemon may be running)\n"
            "  --out FILE.tar  where to write it; - for stdout (not a terminal)\n"
            "  --state S       only alerts in state new, defect or false_positive\n"
            "  --since T       only frames flagged at or after T (RFC 3339 such as\n"
            "                  2026-11-29T12:00:00Z, or Unix microseconds)\n"
            "  --until T       only frames flagged before T\n"
            "  --camera NAME   only this camera's frames\n"
            "  --recipe NAME   only the frames captured for this recipe\n"
            "With --dataset, one MVTec AD category at DIR (which must not exist, or be empty):\n"
            "train/good (N normal frames, never flagged nor confirmed as defects, sampled evenly\n"
            "over the capture period), test/good (false positives and a held-out quarter of N of\n"
            "the other normal frames), test/defect (confirmed defects) and manifest.jsonl;\n"
            "--since and --until then filter the capture time.\n"
            "  --dataset DIR   write the category there\n"
            "  --normals N     normal frames in train/good, exactly (default all; fewer\n"
            "                  matching is an error naming how many do)\n"
            "Exit codes: 0 written, 1 failed (no such database or camera, a read or write error),\n"
            "64 bad usage or a bad filter value.\n");
}

static int write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR && !interrupted) continue;
        if (w < 0) return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies the whole archive to fd. Returns 0, or -1 with the reason in err. */
static int copy_archive(struct export *e, int fd, char *err, size_t errsz)
{
    static char buf[EXPORT_CHUNK];
    for (;;) {
        if (interrupted) {
            snprintf(err, errsz, "interrupted by %s", strsignal(interrupted));
            return -1;
        }
        ssize_t n = export_read(e, buf, sizeof buf);
        if (n == 0) return 0;
        if (n < 0) {
            snprintf(err, errsz, "%s", export_errmsg(e));
            return -1;
        }
        if (write_all(fd, buf, (size_t)n) < 0) {
            snprintf(err, errsz, "write: %s", interrupted ? "interrupted" : strerror(errno));
            return -1;
        }
    }
}

/* Writes the archive to path through a temporary file renamed at the end. */
static int write_file(struct export *e, const char *path, char *err, size_t errsz)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
        snprintf(err, errsz, "%s: path too long", path);
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errsz, "%s: cannot create a file beside it: %s", path, strerror(errno));
        return -1;
    }
    mode_t mask = umask(0);
    umask(mask);
    int rc = fchmod(fd, 0666 & ~mask) == 0 ? 0 : -1;
    if (rc) snprintf(err, errsz, "%.400s: chmod: %s", tmp, strerror(errno));
    if (rc == 0) rc = copy_archive(e, fd, err, errsz);
    if (rc == 0 && fsync(fd) < 0) {
        snprintf(err, errsz, "%.400s: fsync: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (close(fd) < 0 && rc == 0) {
        snprintf(err, errsz, "%.400s: close: %s", tmp, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        snprintf(err, errsz, "%s: rename: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc) unlink(tmp);
    return rc;
}

static void print_counts(const struct export *e, const char *out)
{
    struct export_counts c;
    export_get_counts(e, &c);
    fprintf(stderr,
            "inspectd export: %lld frames (%lld good, %lld defect, %lld unreviewed), %lld "
            "heatmaps, %llu bytes to %s\n",
            (long long)c.frames, (long long)c.good, (long long)c.defect, (long long)c.unreviewed,
            (long long)c.heatmaps, (unsigned long long)c.bytes, out);
    if (c.skipped)
        fprintf(stderr,
                "inspectd export: %lld frames deleted while exporting (or stored without their "
                "image) were left out\n",
                (long long)c.skipped);
    if (c.heatmap_errors)
        fprintf(stderr, "inspectd export: %lld heatmaps could not be drawn (see above)\n",
                (long long)c.heatmap_errors);
}

/* Runs the export; returns the exit code. */
static int run(const char *db, const char *out, const struct export_filter *f)
{
    char err[600];
    struct store_pool *pool = store_pool_open(db, 1, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "inspectd export: %s\n", err);
        return 1;
    }
    struct export *e = NULL;
    int rc = export_open(&e, pool, f, err, sizeof err);
    if (rc == EXPORT_NO_CAMERA)
        fprintf(stderr, "inspectd export: no camera named '%s' in %s\n", f->camera, db);
    else if (rc < 0)
        fprintf(stderr, "inspectd export: %s: %s\n", db, err);
    if (rc == 0) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        bool to_stdout = strcmp(out, "-") == 0;
        rc = to_stdout ? copy_archive(e, STDOUT_FILENO, err, sizeof err)
                       : write_file(e, out, err, sizeof err);
        if (rc == 0)
            print_counts(e, to_stdout ? "stdout" : out);
        else
            fprintf(stderr, "inspectd export: %s%s\n", err,
                    to_stdout ? "; the archive on stdout is incomplete" : "");
    }
    export_close(e);
    store_pool_close(pool);
    return rc == 0 ? 0 : 1;
}

/* The --dataset export; returns the exit code. */
static int run_dataset(const char *db, const char *dir, int64_t normals,
                       const struct export_filter *ef)
{
    struct dataset_filter f = {.since_us = ef->since_us, .until_us = ef->until_us};
    snprintf(f.camera, sizeof f.camera, "%s", ef->camera);
    snprintf(f.recipe, sizeof f.recipe, "%s", ef->recipe);
    char err[600];
    struct store_pool *pool = store_pool_open(db, 1, err, sizeof err);
    if (!pool) {
        fprintf(stderr, "inspectd export: %s\n", err);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct dataset_counts c;
    int rc = dataset_write(pool, &f, dir, normals, &interrupted, &c, err, sizeof err);
    store_pool_close(pool);
    if (rc == DATASET_NO_CAMERA)
        fprintf(stderr, "inspectd export: no camera named '%s' in %s\n", f.camera, db);
    else if (rc)
        fprintf(stderr, "inspectd export: %s\n", err);
    else
        fprintf(stderr,
                "inspectd export: %s: train/good %lld of %lld normal frames; test/good %lld "
                "held-out normal + %lld false positives; test/defect %lld%s\n",
                dir, (long long)c.train_good, (long long)c.normals_available,
                (long long)c.test_good_normal, (long long)c.test_good_false_pos,
                (long long)c.test_defect, c.skipped ? " (frames deleted meanwhile left out)" : "");
    return rc ? 1 : 0;
}

/* --normals: a count from 1, or "all" (-1). Returns 0 or -1. */
static int parse_normals(const char *s, int64_t *out)
{
    if (!s || strcmp(s, "all") == 0) {
        *out = -1;
        return 0;
    }
    return parse_i64(s, 1, INT64_MAX / 4, out);
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", 1, 0, 'd'},      {"out", 1, 0, 'o'},     {"state", 1, 0, 's'}, {"since", 1, 0, 'S'},
        {"until", 1, 0, 'U'},   {"camera", 1, 0, 'c'},  {"help", 0, 0, 'h'},  {"recipe", 1, 0, 'r'},
        {"dataset", 1, 0, 'D'}, {"normals", 1, 0, 'n'}, {0, 0, 0, 0}};
    const char *db = NULL, *out = NULL, *state = NULL, *since = NULL, *until = NULL;
    const char *camera = NULL, *recipe = NULL, *dataset = NULL, *normals = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'S':
            since = optarg;
            break;
        case 'U':
            until = optarg;
            break;
        case 'c':
            camera = optarg;
            break;
        case 'r':
            recipe = optarg;
            break;
        case 'D':
            dataset = optarg;
            break;
        case 'n':
            normals = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (dataset && (out || state)) {
        fprintf(stderr, "inspectd export: --dataset takes no --out or --state\n");
        return EX_USAGE;
    }
    if (normals && !dataset) {
        fprintf(stderr, "inspectd export: --normals goes with --dataset\n");
        return EX_USAGE;
    }
    if (dataset) out = dataset;
    if (!db || !out || optind != argc) {
        fprintf(stderr,
                "inspectd export: --db FILE and --out FILE.tar (or --dataset DIR) are required%s\n",
                optind != argc ? " (and nothing else)" : "");
        usage(stderr);
        return EX_USAGE;
    }
    if (!dataset && strcmp(out, "-") == 0 && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "inspectd export: not writing a tar archive to a terminal; redirect "
                        "stdout or give --out FILE.tar\n");
        return EX_USAGE;
    }
    struct export_filter f;
    char err[320];
    if (export_filter_parse(&f, state, camera, since, until, err, sizeof err) < 0) {
        fprintf(stderr, "inspectd export: %s\n", err);
        return EX_USAGE;
    }
    if (recipe && !config_valid_name(recipe)) {
        fprintf(stderr, "inspectd export: --recipe must be a recipe name\n");
        return EX_USAGE;
    }
    if (recipe) snprintf(f.recipe, sizeof f.recipe, "%s", recipe);
    if (!dataset) return run(db, out, &f);
    int64_t n;
    if (parse_normals(normals, &n)) {
        fprintf(stderr, "inspectd export: --normals must be a count from 1, or all\n");
        return EX_USAGE;
    }
    return run_dataset(db, dataset, n, &f);
}
