/* embedding.c — workers run contiguous slices of the image set in batches through model replicas.
 */
#include "embedding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define EMBEDDING_BATCH 64

struct embedding_job {
    const struct vit_model *m;
    const float *images;
    int N, H, W, dim;
    enum embedding_kind kind;
    float *out;
    struct vit_model *replicas;
    struct vit_acts *acts;
};

int embedding_dim(const struct vit_config *c, enum embedding_kind kind)
{
    int grid = c->img_size / c->patch;
    if (kind == EMBEDDING_TOKENS) return (1 + grid * grid) * c->dim;
    return kind == EMBEDDING_CLS_PATCH ? 2 * c->dim : c->dim;
}

const char *embedding_kind_name(enum embedding_kind kind)
{
    static const char *const names[] = {"cls", "patch-mean", "cls+patch", "tokens"};
    return names[kind];
}

int embedding_kind_parse(const char *s, enum embedding_kind *out)
{
    if (strcmp(s, "cls") == 0)
        *out = EMBEDDING_CLS;
    else if (strcmp(s, "patch-mean") == 0)
        *out = EMBEDDING_PATCH_MEAN;
    else if (strcmp(s, "cls+patch") == 0)
        *out = EMBEDDING_CLS_PATCH;
    else if (strcmp(s, "tokens") == 0)
        *out = EMBEDDING_TOKENS;
    else
        return -1;
    return 0;
}

static void write_features(const struct embedding_job *j, const struct vit_acts *a, int n,
                           float *out)
{
    int D = j->m->cfg.dim, T = a->T;
    for (int b = 0; b < n; b++) {
        float *o = out + (size_t)b * j->dim;
        const float *tok = a->tokens + (size_t)b * T * D;
        if (j->kind == EMBEDDING_TOKENS) {
            memcpy(o, tok, sizeof(float) * (size_t)T * D);
            continue;
        }
        float *mean = o;
        if (j->kind != EMBEDDING_PATCH_MEAN) {
            memcpy(o, tok, sizeof(float) * (size_t)D);
            mean = o + D;
        }
        if (j->kind == EMBEDDING_CLS) continue;
        for (int d = 0; d < D; d++) mean[d] = 0.0f;
        for (int t = 1; t < T; t++)
            for (int d = 0; d < D; d++) mean[d] += tok[(size_t)t * D + d];
        for (int d = 0; d < D; d++) mean[d] /= (float)(T - 1);
    }
}

static void embedding_part(void *arg, int w, int nw)
{
    struct embedding_job *j = arg;
    long begin, end;
    pool_share(j->N, w, nw, &begin, &end);
    size_t img = (size_t)j->m->cfg.in_chans * j->H * j->W;
    for (long i = begin; i < end; i += EMBEDDING_BATCH) {
        int n = (int)(end - i < EMBEDDING_BATCH ? end - i : EMBEDDING_BATCH);
        struct vit_acts *a = &j->acts[w];
        vit_acts_set_batch(a, n);
        vit_forward(&j->replicas[w], a, j->images + (size_t)i * img);
        write_features(j, a, n, j->out + (size_t)i * j->dim);
    }
}

int embedding_extract(const struct vit_model *m, const float *images, int N, int H, int W,
                      enum embedding_kind kind, int threads, float *out, char *err, size_t errsz)
{
    if (kind == EMBEDDING_TOKENS && (H != m->cfg.img_size || W != m->cfg.img_size)) {
        if (errsz) snprintf(err, errsz, "token embeddings need images of the model's size");
        return -1;
    }
    if (threads < 1) threads = 1;
    if (threads > N) threads = N > 0 ? N : 1;
    struct embedding_job j = {.m = m,
                              .images = images,
                              .N = N,
                              .H = H,
                              .W = W,
                              .dim = embedding_dim(&m->cfg, kind),
                              .kind = kind,
                              .out = out};
    j.replicas = calloc((size_t)threads, sizeof *j.replicas);
    j.acts = calloc((size_t)threads, sizeof *j.acts);
    struct pool *p = pool_create(threads);
    int rc = (!j.replicas || !j.acts || !p) ? -2 : 0;
    if (rc && errsz) snprintf(err, errsz, "out of memory (or threads) for embedding");
    for (int w = 0; !rc && w < threads; w++) {
        rc = vit_replica_create(&j.replicas[w], m, false, err, errsz);
        if (!rc)
            rc = vit_acts_create(&j.acts[w], &j.replicas[w], EMBEDDING_BATCH, H, W, false, false,
                                 err, errsz);
    }
    if (!rc) {
        if (threads > 1) vit_set_threads(1);
        pool_run(p, embedding_part, &j);
    }
    pool_destroy(p);
    for (int w = 0; j.acts && w < threads; w++) vit_acts_destroy(&j.acts[w]);
    for (int w = 0; j.replicas && w < threads; w++) vit_destroy(&j.replicas[w]);
    free(j.acts);
    free(j.replicas);
    return rc;
}
