/* eval_mvtec.c — `inspectd eval --mvtec DIR`: the one-class protocol on the MVTec AD folder layout
 * (CATEGORY/train/good, CATEGORY/test/<defect or good>): per category, pretrain on train/good,
 * bank its embeddings, and report the image AUROC of the test images beside raw-pixel k-NN and
 * the untrained network. Images are shrunk to --size (aspect not kept) with the set's own
 * per-channel mean and spread as normalisation. */
#define LOG_TAG "eval"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval.h"
#include "imageset.h"

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* out = a/b. Returns 0, or -1 (logged) when it does not fit. */
static int join(char *out, size_t n, const char *a, const char *b)
{
    int len = snprintf(out, n, "%s/%s", a, b);
    if (len >= 0 && (size_t)len < n) return 0;
    log_error("path too long: %s/%s", a, b);
    return -1;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Whether name is in the comma-separated list (NULL: every name is). */
static bool wanted(const char *list, const char *name)
{
    if (!list) return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

/* Loads every subdirectory of cat/test; flags grow with the set (1 unless the folder is "good").
 * Returns 0 or -1 (logged). */
static int load_test(const char *cat, struct image_set *set, unsigned char **flags)
{
    char dir[4096], sub[4096];
    if (join(dir, sizeof dir, cat, "test")) return -1;
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name), rc = n < 0 ? -1 : 0;
    if (n < 0) log_error("%s: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        if (!rc && list[i]->d_name[0] != '.' &&
            !(rc = join(sub, sizeof sub, dir, list[i]->d_name)) && is_dir(sub)) {
            int before = set->n, got = image_set_add_dir(set, sub);
            unsigned char *f = got < 0 ? NULL : realloc(*flags, (size_t)set->n + 1);
            if (got >= 0 && !f) log_error("out of memory for %s", sub);
            if (!f) {
                rc = -1;
            } else {
                *flags = f;
                memset(f + before, strcmp(list[i]->d_name, "good") != 0, (size_t)got);
            }
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

static float *normalised(const struct image_set *set)
{
    size_t plane = (size_t)set->size * set->size, img = plane * set->channels;
    float *y = malloc(sizeof(float) * img * (size_t)(set->n ? set->n : 1));
    if (!y) return NULL;
    for (int i = 0; i < set->n; i++)
        for (int c = 0; c < set->channels; c++) {
            const float *src = set->pixels + img * i + plane * c;
            float *dst = y + img * i + plane * c, m = (float)set->mean[c];
            float inv = (float)(1.0 / set->std[c]);
            for (size_t p = 0; p < plane; p++) dst[p] = (src[p] - m) * inv;
        }
    return y;
}

/* One category: load, normalise with train/good's statistics, score. Returns as eval_case_run. */
static int eval_category(const struct eval_options *o, const char *cat, const char *name,
                         struct eval_result *r)
{
    char dir[4096];
    struct image_set train = {.size = o->size, .channels = o->channels};
    struct image_set test = {.size = o->size, .channels = o->channels};
    unsigned char *flags = NULL;
    float *bank_norm = NULL, *test_norm = NULL;
    int rc = -1;
    if (join(dir, sizeof dir, cat, "train/good") || image_set_add_dir(&train, dir) < 0 ||
        load_test(cat, &test, &flags))
        goto done;
    image_set_stats(&train);
    memcpy(test.mean, train.mean, sizeof train.mean);
    memcpy(test.std, train.std, sizeof train.std);
    bank_norm = normalised(&train);
    test_norm = normalised(&test);
    if (!bank_norm || !test_norm) {
        log_error("%s: out of memory", name);
        goto done;
    }
    log_info("%s: %d normal training images, %d test images", name, train.n, test.n);
    struct train_options t = o->train;
    if (t.batch > train.n) t.batch = train.n;
    for (int c = 0; c < o->channels; c++)
        t.aug.mean[c] = (float)train.mean[c], t.aug.std[c] = (float)train.std[c];
    struct eval_case ec = {.name = name,
                           .size = o->size,
                           .channels = o->channels,
                           .bank = train.pixels,
                           .bank_norm = bank_norm,
                           .nb = train.n,
                           .test = test.pixels,
                           .test_norm = test_norm,
                           .nq = test.n,
                           .anomalous = flags};
    rc = eval_case_run(o, &t, &ec, r);
done:
    image_set_free(&train), image_set_free(&test);
    free(flags), free(bank_norm), free(test_norm);
    return rc;
}

int eval_mvtec(const struct eval_options *o)
{
    struct dirent **list;
    int n = scandir(o->mvtec_dir, &list, NULL, by_name);
    if (n < 0) {
        log_error("%s: %s", o->mvtec_dir, strerror(errno));
        return 1;
    }
    const struct vit_config *mc = &o->train.model;
    printf("one-class MVTec AD (%s): ViT dim %d depth %d heads %d patch %d at %d px, %d "
           "channel(s), batch %d, %d local crops, %.1f min/category, k=%d %s on %s; pixels: k=%d "
           "l2; image AUROC\n",
           o->mvtec_dir, mc->dim, mc->depth, mc->heads, mc->patch, o->size, o->channels,
           o->train.batch, o->train.n_local, o->train.minutes, o->k,
           o->metric == KNN_L2 ? "l2" : "cosine", embedding_kind_name(o->embed), EVAL_PIXEL_K);
    struct eval_table table;
    eval_table_header(&table, "category", 12);
    int status = 0, found = 0;
    char cat[4096], good[4096];
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (!status && !eval_interrupted && name[0] != '.' && wanted(o->categories, name) &&
            !join(cat, sizeof cat, o->mvtec_dir, name) &&
            !join(good, sizeof good, cat, "train/good") && is_dir(good)) {
            struct eval_result r;
            found++;
            int rc = eval_category(o, cat, name, &r);
            if (rc >= 0) eval_table_row(&table, name, &r);
            status = rc < 0 ? 1 : 0;
        }
        free(list[i]);
    }
    free(list);
    if (!found)
        log_error("%s: no category with a train/good folder%s", o->mvtec_dir,
                  o->categories ? " among --categories" : "");
    if (eval_table_end(&table)) return 1;
    return status ? status : (eval_interrupted ? 130 : 0);
}
