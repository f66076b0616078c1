/* model_files.c — removing the model files (checkpoints and banks) that no longer serve (see
 * model_files.h). */
#define LOG_TAG "models"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "model_files.h"
#include "store/scoring_store.h"

static bool is_safetensors(const char *name)
{
    static const char ext[] = ".safetensors";
    size_t n = strlen(name);
    return n >= sizeof ext - 1 && strcmp(name + n - (sizeof ext - 1), ext) == 0;
}

/* The files a prune keeps, by identity (device and inode): a path registered in another form
 * (a bind mount, a moved data directory, a symlink) still names the same file. */
struct keep_list {
    struct stat *files; /* st_dev and st_ino are what count */
    int n, cap;
    bool oom;
    char missing[PATH_MAX]; /* an active model's file that cannot be found */
};

static void keep_file(struct keep_list *l, const struct stat *st)
{
    if (l->oom) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        struct stat *p = realloc(l->files, sizeof *p * (size_t)cap);
        if (!p) {
            l->oom = true;
            return;
        }
        l->files = p, l->cap = cap;
    }
    l->files[l->n++] = *st;
}

static void collect(const char *path, bool keep, bool active, void *ctx)
{
    struct keep_list *l = ctx;
    struct stat st;
    if (!keep) return;
    if (stat(path, &st) == 0)
        keep_file(l, &st);
    else if (active && !l->missing[0])
        snprintf(l->missing, sizeof l->missing, "%s", path);
}

static bool kept(const struct keep_list *l, const struct stat *st)
{
    for (int i = 0; i < l->n; i++)
        if (l->files[i].st_dev == st->st_dev && l->files[i].st_ino == st->st_ino) return true;
    return false;
}

int model_files_prune(struct scoring_store *db, const char *models_dir, int keep,
                      const char *const *spare, int nspare, int *files, int64_t *bytes, char *err,
                      size_t errsz)
{
    struct keep_list l = {0};
    int rc = 0;
    if (scoring_store_model_files(db, keep, collect, &l)) {
        snprintf(err, errsz, "%s", scoring_store_errmsg(db));
        rc = -1;
    } else if (l.oom) {
        snprintf(err, errsz, "out of memory");
        rc = -1;
    } else if (l.missing[0]) {
        snprintf(err, errsz, "the active model's file %s cannot be found, so nothing is removed",
                 l.missing);
        rc = -1;
    }
    for (int i = 0; !rc && i < nspare; i++) {
        struct stat st;
        char bank[PATH_MAX + 32];
        if (!spare[i] || !spare[i][0]) continue;
        if (stat(spare[i], &st) == 0) keep_file(&l, &st);
        model_bank_path(spare[i], bank, sizeof bank);
        if (stat(bank, &st) == 0) keep_file(&l, &st);
    }
    if (!rc && l.oom) {
        snprintf(err, errsz, "out of memory");
        rc = -1;
    }
    DIR *d = rc ? NULL : opendir(models_dir);
    if (!rc && !d) {
        snprintf(err, errsz, "%s: %s", models_dir, strerror(errno));
        rc = -1;
    }
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[PATH_MAX + 256];
        struct stat st;
        if (!is_safetensors(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", models_dir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || kept(&l, &st)) continue;
        if (unlink(path) != 0) {
            log_warn("cannot remove %s: %s", path, strerror(errno));
            continue;
        }
        *files += 1;
        *bytes += (int64_t)st.st_size;
    }
    if (d) closedir(d);
    free(l.files);
    return rc;
}
