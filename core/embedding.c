/* embedding.c — workers run contiguous slices of the image set in batches through model replicas.
 */
#include "embedding.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "pool.h"

#define EMBEDDING_BATCH 64

struct embedding_job {
    const struct vit_model *m;
    const float *images;
    int N, H, W, dim;
    enum embedding_kind kind;
    unsigned layers; /* nonzero: concatenated layer taps instead of kind */
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
    if (j->layers) {
        memcpy(out, a->taps, sizeof(float) * (size_t)n * j->dim);
        return;
    }
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

int embedding_layers_dim(const struct vit_config *c, unsigned layers)
{
    int grid = c->img_size / c->patch;
    return __builtin_popcount(layers) * (1 + grid * grid) * c->dim;
}

int embedding_layers_parse(const char *s, int depth, unsigned *out)
{
    unsigned mask = 0;
    while (*s) {
        char *end;
        long l = strtol(s, &end, 10);
        if (end == s || l < 0 || l > depth || l > 31 || (*end && *end != ',')) return -1;
        mask |= 1u << l;
        s = *end ? end + 1 : end;
        if (*end && !*s) return -1;
    }
    *out = mask;
    return mask ? 0 : -1;
}

static int extract(struct embedding_job *j, int threads, char *err, size_t errsz)
{
    const struct vit_model *m = j->m;
    if ((j->kind == EMBEDDING_TOKENS || j->layers) &&
        (j->H != m->cfg.img_size || j->W != m->cfg.img_size)) {
        if (errsz) snprintf(err, errsz, "token embeddings need images of the model's size");
        return -1;
    }
    if (threads < 1) threads = 1;
    if (threads > j->N) threads = j->N > 0 ? j->N : 1;
    /* buffers for one batch, no larger than a worker's share needs */
    int batch = (j->N + threads - 1) / threads;
    if (batch > EMBEDDING_BATCH) batch = EMBEDDING_BATCH;
    if (batch < 1) batch = 1;
    j->replicas = calloc((size_t)threads, sizeof *j->replicas);
    j->acts = calloc((size_t)threads, sizeof *j->acts);
    struct pool *p = pool_create(threads);
    int rc = (!j->replicas || !j->acts || !p) ? -2 : 0;
    if (rc && errsz) snprintf(err, errsz, "out of memory (or threads) for embedding");
    for (int w = 0; !rc && w < threads; w++) {
        rc = vit_replica_create(&j->replicas[w], m, false, err, errsz);
        if (!rc)
            rc = vit_acts_create(&j->acts[w], &j->replicas[w], batch, j->H, j->W, false, false, err,
                                 errsz);
        if (!rc && j->layers) {
            j->acts[w].tap_mask = j->layers;
            j->acts[w].taps = malloc(sizeof(float) * (size_t)batch * j->dim);
            if (!j->acts[w].taps) {
                rc = -2;
                if (errsz) snprintf(err, errsz, "out of memory for embedding layers");
            }
        }
    }
    if (!rc) {
        if (threads > 1) gemm_set_threads(1);
        pool_run(p, embedding_part, j);
    }
    pool_destroy(p);
    for (int w = 0; j->acts && w < threads; w++) {
        free(j->acts[w].taps);
        vit_acts_destroy(&j->acts[w]);
    }
    for (int w = 0; j->replicas && w < threads; w++) vit_destroy(&j->replicas[w]);
    free(j->acts);
    free(j->replicas);
    return rc;
}

int embedding_extract(const struct vit_model *m, const float *images, int N, int H, int W,
                      enum embedding_kind kind, int threads, float *out, char *err, size_t errsz)
{
    struct embedding_job j = {.m = m,
                              .images = images,
                              .N = N,
                              .H = H,
                              .W = W,
                              .dim = embedding_dim(&m->cfg, kind),
                              .kind = kind,
                              .out = out};
    return extract(&j, threads, err, errsz);
}

int embedding_extract_layers(const struct vit_model *m, const float *images, int N, int H, int W,
                             unsigned layers, int threads, float *out, char *err, size_t errsz)
{
    assert(layers && layers < 1u << (m->cfg.depth + 1));
    struct embedding_job j = {.m = m,
                              .images = images,
                              .N = N,
                              .H = H,
                              .W = W,
                              .dim = embedding_layers_dim(&m->cfg, layers),
                              .kind = EMBEDDING_TOKENS,
                              .layers = layers,
                              .out = out};
    return extract(&j, threads, err, errsz);
}
