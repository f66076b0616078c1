/* eval_mvtec.c — `inspectd eval --mvtec DIR`: the one-class protocol on the MVTec AD folder layout
 * (CATEGORY/train/good, CATEGORY/test/<defect or good>) under DIR, or DIR itself as the one
 * category when it holds train/good (what `inspectd export --dataset` writes): per category,
 * pretrain on train/good,
 * bank its embeddings, and report the image AUROC of the test images beside raw-pixel k-NN and
 * the untrained network; where ground_truth/<defect>/<name>_mask.png masks exist, also the pixel
 * AUROC of the heatmaps (the daemon's patch scoring) beside raw-pixel patches and the untrained
 * network. Images are shrunk to --size (aspect not kept) with the set's own
 * per-channel mean and spread as normalisation. */
#define LOG_TAG "eval"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The test images of a category, with their flags and defect masks. */
struct test_set {
    struct image_set img;
    unsigned char *flags; /* (n) 1 unless the folder is "good" */
    unsigned char *masks; /* (n, S, S) 1 = defect pixel */
    bool masks_ok;        /* every defect image had its mask */
};

/* Appends image i's mask: zeros for a good image, else ground_truth/<folder>/<stem>_mask.png
 * shrunk to S × S and cut at one half. A missing mask clears masks_ok (logged once). Returns 0, or
 * -1 when out of memory (logged). */
static int add_mask(struct test_set *t, const char *cat, const char *folder, const char *file,
                    bool good)
{
    int S = t->img.size;
    size_t px = (size_t)S * S;
    unsigned char *m = realloc(t->masks, px * (size_t)t->img.n);
    if (!m) {
        log_error("out of memory for masks");
        return -1;
    }
    t->masks = m;
    m += px * (size_t)(t->img.n - 1);
    memset(m, 0, px);
    if (good || !t->masks_ok) return 0;
    char path[4096];
    const char *dot = strrchr(file, '.');
    int stem = dot ? (int)(dot - file) : (int)strlen(file);
    int len =
        snprintf(path, sizeof path, "%s/ground_truth/%s/%.*s_mask.png", cat, folder, stem, file);
    struct image_set ms = {.size = S, .channels = 1, .max = 1};
    if (len < 0 || (size_t)len >= sizeof path || access(path, R_OK) != 0 ||
        image_set_add_file(&ms, path) != 1) {
        log_warn("%s: no mask %s: no pixel AUROC for this category", cat, path);
        t->masks_ok = false;
    } else {
        for (size_t p = 0; p < px; p++) m[p] = ms.pixels[p] >= 0.5f;
    }
    image_set_free(&ms);
    return 0;
}

/* Loads the images of one test folder in name order. Returns 0 or -1 (logged). */
static int load_folder(struct test_set *t, const char *cat, const char *dir, const char *folder)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name), rc = 0;
    if (n < 0) {
        log_error("%s: %s", dir, strerror(errno));
        return -1;
    }
    bool good = strcmp(folder, "good") == 0;
    char path[4096];
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        int got = 0;
        if (!rc && name[0] != '.' && !(rc = join(path, sizeof path, dir, name)) && !is_dir(path) &&
            (got = image_set_add_file(&t->img, path)) == 1) {
            unsigned char *f = realloc(t->flags, (size_t)t->img.n);
            if (!f) log_error("out of memory for %s", path);
            rc = f ? add_mask(t, cat, folder, name, good) : -1;
            if (f) t->flags = f, f[t->img.n - 1] = !good;
        }
        if (got < 0) rc = -1;
        free(list[i]);
    }
    free(list);
    return rc;
}

/* Loads every subdirectory of cat/test. Returns 0 or -1 (logged). */
static int load_test(const char *cat, struct test_set *t)
{
    char dir[4096], sub[4096];
    if (join(dir, sizeof dir, cat, "test")) return -1;
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name), rc = n < 0 ? -1 : 0;
    if (n < 0) log_error("%s: %s", dir, strerror(errno));
    t->masks_ok = true;
    for (int i = 0; i < n; i++) {
        if (!rc && list[i]->d_name[0] != '.' &&
            !(rc = join(sub, sizeof sub, dir, list[i]->d_name)) && is_dir(sub))
            rc = load_folder(t, cat, sub, list[i]->d_name);
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
    struct test_set ts = {.img = {.size = o->size, .channels = o->channels}};
    struct image_set *test = &ts.img;
    float *bank_norm = NULL, *test_norm = NULL;
    int rc = -1;
    if (join(dir, sizeof dir, cat, "train/good") || image_set_add_dir(&train, dir) < 0 ||
        load_test(cat, &ts))
        goto done;
    image_set_stats(&train);
    memcpy(test->mean, train.mean, sizeof train.mean);
    memcpy(test->std, train.std, sizeof train.std);
    bank_norm = normalised(&train);
    test_norm = normalised(test);
    if (!bank_norm || !test_norm) {
        log_error("%s: out of memory", name);
        goto done;
    }
    log_info("%s: %d normal training images, %d test images", name, train.n, test->n);
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
                           .test = test->pixels,
                           .test_norm = test_norm,
                           .nq = test->n,
                           .anomalous = ts.flags,
                           .masks = ts.masks_ok ? ts.masks : NULL};
    rc = eval_case_run(o, &t, &ec, r);
done:
    image_set_free(&train), image_set_free(test);
    free(ts.flags), free(ts.masks), free(bank_norm), free(test_norm);
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
    char embed[128];
    eval_embedding_name(o, embed, sizeof embed);
    printf("one-class MVTec AD (%s, %s): ViT dim %d depth %d heads %d patch %d at %d px, %d "
           "channel(s), batch %d, %d local crops, %.1f min/category, k=%d %s on %s; pixels: k=%d "
           "l2; image AUROC, then the pixel AUROC of heatmaps (nearest normal patch, tokens of "
           "layer %d; pixels: raw %dx%d patches) where masks exist\n",
           o->mvtec_dir, ssl_method_name(o->train.method), mc->dim, mc->depth, mc->heads, mc->patch,
           o->size, o->channels, o->train.batch, o->train.n_local, o->train.minutes, o->k,
           o->metric == KNN_L2 ? "l2" : "cosine", embed, EVAL_PIXEL_K, model_scoring_layer(mc, -1),
           mc->patch, mc->patch);
    struct eval_table table;
    eval_table_header(&table, "category", 12, true, o->train.method);
    int status = 0, found = 0, single = 0;
    char cat[4096], good[4096];
    if (!join(good, sizeof good, o->mvtec_dir, "train/good") && is_dir(good)) {
        /* a single category: its root is DIR, its name DIR's last component */
        snprintf(cat, sizeof cat, "%s", o->mvtec_dir);
        while (strlen(cat) > 1 && cat[strlen(cat) - 1] == '/') cat[strlen(cat) - 1] = '\0';
        const char *name = strrchr(cat, '/') ? strrchr(cat, '/') + 1 : cat;
        struct eval_result r;
        found = single = 1;
        int rc = eval_category(o, cat, name, &r);
        if (rc >= 0) eval_table_row(&table, name, &r);
        status = rc < 0 ? 1 : 0;
    }
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (!single && !status && !eval_interrupted && name[0] != '.' &&
            wanted(o->categories, name) && !join(cat, sizeof cat, o->mvtec_dir, name) &&
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
