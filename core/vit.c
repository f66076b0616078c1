/* vit.c — the ViT + DINO head: tensor table, memory layout, forward and backward passes. */
#include "vit.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "layers.h"
#include "rng.h"

struct vit_block_acts {
    float *ln1, *ln1_mean, *ln1_rstd; /* (BT, D), (BT), (BT) */
    float *qkv;                       /* (BT, 3D) */
    float *probs;                     /* (B, H, T, T) */
    float *atty;                      /* (BT, D) attention output before proj */
    float *res1;                      /* (BT, D) x + attn */
    float *ln2, *ln2_mean, *ln2_rstd; /* (BT, D), (BT), (BT) */
    float *fc1, *fc1_act;             /* (BT, M) before and after GELU */
    float *res2;                      /* (BT, D) block output */
};

/* ---- sizes ------------------------------------------------------------------------------------
 */

int vit_config_check(const struct vit_config *c, char *err, size_t errsz)
{
    const char *why = NULL;
    if (c->dim <= 0 || c->depth <= 0 || c->heads <= 0 || c->mlp_ratio <= 0)
        why = "dim, depth, heads and mlp_ratio must be positive";
    else if (c->dim % c->heads)
        why = "dim must be a multiple of heads";
    else if (c->patch <= 0 || c->img_size <= 0 || c->img_size % c->patch)
        why = "img_size must be a positive multiple of patch";
    else if (c->in_chans != 1 && c->in_chans != 3)
        why = "in_chans must be 1 or 3";
    else if (c->head_out < 0 ||
             (c->head_out > 0 && (c->head_hidden <= 0 || c->head_bottleneck <= 0)))
        why = "head dims must be positive (head_out 0 means no head)";
    else if (c->aux_classes < 0 || c->aux_classes > 64)
        why = "aux_classes must be in [0, 64]";
    else if (c->defect_head < 0 || c->defect_head > 1)
        why = "defect_head must be 0 or 1";
    else if (c->pred_hidden < 0 || c->pred_hidden > 1 << 16 ||
             (c->pred_hidden > 0 && c->head_out <= 0))
        why = "pred_hidden must be in [0, 65536] and needs a head";
    else if (c->dim > 8192 || c->depth > 256 || c->img_size > 4096 || c->head_out > 1 << 20 ||
             c->head_hidden > 1 << 16 || c->head_bottleneck > 1 << 16 || c->mlp_ratio > 16)
        why = "dimensions out of range";
    if (why) {
        if (errsz) snprintf(err, errsz, "invalid model config: %s", why);
        return -1;
    }
    return 0;
}

static void add_tensor(struct vit_model *m, unsigned flags, int ndim, const int *shape,
                       const char *fmt, int idx)
{
    struct vit_tensor *t = &m->tensors[m->ntensors++];
    snprintf(t->name, sizeof t->name, fmt, idx);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->offset = m->nparams;
    m->nparams += t->numel;
    size_t len = strlen(t->name);
    bool is_bias = len >= 5 && strcmp(t->name + len - 5, ".bias") == 0;
    t->flags = flags;
    if ((flags & VIT_TRAINABLE) && !is_bias && ndim > 1) t->flags |= VIT_DECAY;
}

#define SHAPE(...) ((const int[]){__VA_ARGS__})
#define NDIM(...)  ((int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))
#define ADD(flags, fmt, idx, ...)                                                                  \
    add_tensor(m, flags, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__), fmt, idx)

static void build_table(struct vit_model *m)
{
    const struct vit_config *c = &m->cfg;
    int D = c->dim, M = c->dim * c->mlp_ratio, n = c->img_size / c->patch;
    const unsigned TR = VIT_TRAINABLE;
    m->ntensors = 0;
    m->nparams = 0;
    ADD(TR, "cls_token", 0, 1, 1, D);
    ADD(TR, "pos_embed", 0, 1, 1 + n * n, D);
    ADD(TR, "patch_embed.proj.weight", 0, D, c->in_chans, c->patch, c->patch);
    ADD(TR, "patch_embed.proj.bias", 0, D);
    for (int l = 0; l < c->depth; l++) {
        ADD(TR, "blocks.%d.norm1.weight", l, D);
        ADD(TR, "blocks.%d.norm1.bias", l, D);
        ADD(TR, "blocks.%d.attn.qkv.weight", l, 3 * D, D);
        ADD(TR, "blocks.%d.attn.qkv.bias", l, 3 * D);
        ADD(TR, "blocks.%d.attn.proj.weight", l, D, D);
        ADD(TR, "blocks.%d.attn.proj.bias", l, D);
        ADD(TR, "blocks.%d.norm2.weight", l, D);
        ADD(TR, "blocks.%d.norm2.bias", l, D);
        ADD(TR, "blocks.%d.mlp.fc1.weight", l, M, D);
        ADD(TR, "blocks.%d.mlp.fc1.bias", l, M);
        ADD(TR, "blocks.%d.mlp.fc2.weight", l, D, M);
        ADD(TR, "blocks.%d.mlp.fc2.bias", l, D);
    }
    ADD(TR, "norm.weight", 0, D);
    ADD(TR, "norm.bias", 0, D);
    if (c->head_out > 0) {
        int hid = c->head_hidden, bott = c->head_bottleneck, K = c->head_out;
        ADD(TR, "head.mlp.0.weight", 0, hid, D);
        ADD(TR, "head.mlp.0.bias", 0, hid);
        ADD(TR, "head.mlp.2.weight", 0, hid, hid);
        ADD(TR, "head.mlp.2.bias", 0, hid);
        ADD(TR, "head.mlp.4.weight", 0, bott, hid);
        ADD(TR, "head.mlp.4.bias", 0, bott);
        ADD(0, "head.last_layer.weight_g", 0, K, 1);
        ADD(TR, "head.last_layer.weight_v", 0, K, bott);
    }
    if (c->aux_classes > 0) {
        ADD(TR, "aux_head.weight", 0, c->aux_classes, D);
        ADD(TR, "aux_head.bias", 0, c->aux_classes);
    }
    if (c->defect_head) {
        ADD(TR, "defect_head.weight", 0, 1, D);
        ADD(TR, "defect_head.bias", 0, 1);
    }
    if (c->pred_hidden > 0) {
        ADD(TR, "predictor.fc1.weight", 0, c->pred_hidden, c->head_out);
        ADD(TR, "predictor.fc1.bias", 0, c->pred_hidden);
        ADD(TR, "predictor.fc2.weight", 0, c->head_out, c->pred_hidden);
        ADD(TR, "predictor.fc2.bias", 0, c->head_out);
    }
}

static int table_size(const struct vit_config *c)
{
    return 6 + 12 * c->depth + 8 + 2 + 2 + 4;
}

/* Points the named views at a flat buffer laid out by the tensor table (order of build_table). */
static void bind_weights(struct vit_weights *w, const struct vit_model *m, float *base)
{
    const struct vit_tensor *t = m->tensors;
    int i = 0;
#define NEXT (base + t[i++].offset)
    w->cls_token = NEXT;
    w->pos_embed = NEXT;
    w->patch_w = NEXT;
    w->patch_b = NEXT;
    for (int l = 0; l < m->cfg.depth; l++) {
        struct vit_block_w *b = &w->blocks[l];
        b->norm1_w = NEXT;
        b->norm1_b = NEXT;
        b->qkv_w = NEXT;
        b->qkv_b = NEXT;
        b->proj_w = NEXT;
        b->proj_b = NEXT;
        b->norm2_w = NEXT;
        b->norm2_b = NEXT;
        b->fc1_w = NEXT;
        b->fc1_b = NEXT;
        b->fc2_w = NEXT;
        b->fc2_b = NEXT;
    }
    w->norm_w = NEXT;
    w->norm_b = NEXT;
    if (m->cfg.head_out > 0) {
        for (int k = 0; k < 3; k++) {
            w->head_w[k] = NEXT;
            w->head_b[k] = NEXT;
        }
        w->last_g = NEXT;
        w->last_v = NEXT;
    }
    if (m->cfg.aux_classes > 0) {
        w->aux_w = NEXT;
        w->aux_b = NEXT;
    }
    if (m->cfg.defect_head) {
        w->defect_w = NEXT;
        w->defect_b = NEXT;
    }
    if (m->cfg.pred_hidden > 0) {
        for (int k = 0; k < 2; k++) {
            w->pred_w[k] = NEXT;
            w->pred_b[k] = NEXT;
        }
    }
#undef NEXT
    assert(i == m->ntensors);
}

static float *alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

/* The per-model views and scratch every model needs, replica or not. Returns 0 or -1. */
static int alloc_views(struct vit_model *m)
{
    const struct vit_config *c = &m->cfg;
    m->w.blocks = calloc((size_t)c->depth, sizeof *m->w.blocks);
    m->g.blocks = calloc((size_t)c->depth, sizeof *m->g.blocks);
    if (!m->w.blocks || !m->g.blocks) return -1;
    if (c->head_out > 0) {
        m->last_w = alloc_floats((size_t)c->head_out * c->head_bottleneck);
        m->last_vnorm = alloc_floats((size_t)c->head_out);
        if (!m->last_w || !m->last_vnorm) return -1;
    }
    return 0;
}

int vit_create(struct vit_model *m, const struct vit_config *cfg, bool trainable, char *err,
               size_t errsz)
{
    memset(m, 0, sizeof *m);
    if (vit_config_check(cfg, err, errsz)) return -1;
    m->cfg = *cfg;
    m->tensors = calloc((size_t)table_size(cfg), sizeof *m->tensors);
    if (!m->tensors || alloc_views(m)) goto nomem;
    build_table(m);
    m->params = alloc_floats(m->nparams);
    if (!m->params) goto nomem;
    bind_weights(&m->w, m, m->params);
    if (trainable) {
        m->grads = alloc_floats(m->nparams);
        m->adam_m = alloc_floats(m->nparams);
        m->adam_v = alloc_floats(m->nparams);
        if (!m->grads || !m->adam_m || !m->adam_v) goto nomem;
        bind_weights(&m->g, m, m->grads);
    }
    return 0;
nomem:
    vit_destroy(m);
    if (errsz) snprintf(err, errsz, "out of memory allocating the model");
    return -2;
}

int vit_replica_create(struct vit_model *r, const struct vit_model *m, bool with_grads, char *err,
                       size_t errsz)
{
    memset(r, 0, sizeof *r);
    r->cfg = m->cfg;
    r->shares_params = true;
    r->params = m->params;
    r->nparams = m->nparams;
    r->ntensors = m->ntensors;
    r->tensors = calloc((size_t)m->ntensors, sizeof *r->tensors);
    if (!r->tensors || alloc_views(r)) goto nomem;
    memcpy(r->tensors, m->tensors, sizeof *r->tensors * (size_t)m->ntensors);
    bind_weights(&r->w, r, r->params);
    if (with_grads) {
        r->grads = alloc_floats(r->nparams);
        if (!r->grads) goto nomem;
        bind_weights(&r->g, r, r->grads);
    }
    return 0;
nomem:
    vit_destroy(r);
    if (errsz) snprintf(err, errsz, "out of memory allocating a model replica");
    return -2;
}

void vit_destroy(struct vit_model *m)
{
    free(m->tensors);
    free(m->w.blocks);
    free(m->g.blocks);
    if (!m->shares_params) free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->last_w);
    free(m->last_vnorm);
    memset(m, 0, sizeof *m);
}

const struct vit_tensor *vit_find_tensor(const struct vit_model *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

void vit_copy_params(struct vit_model *dst, const struct vit_model *src)
{
    assert(dst->nparams == src->nparams);
    memcpy(dst->params, src->params, sizeof(float) * src->nparams);
}

void vit_zero_grad(struct vit_model *m)
{
    if (m->grads) memset(m->grads, 0, sizeof(float) * m->nparams);
}

/* ---- initialisation ---------------------------------------------------------------------------
 */

static void fill_trunc_normal(float *p, size_t n, float std, struct rng *r)
{
    for (size_t i = 0; i < n; i++) {
        double v;
        do v = rng_normal(r) * std;
        while (v < -2.0 || v > 2.0);
        p[i] = (float)v;
    }
}

static void fill_uniform(float *p, size_t n, float bound, struct rng *r)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_range(r, -bound, bound);
}

static void fill_const(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

void vit_init_weights(struct vit_model *m, uint64_t seed)
{
    const struct vit_config *c = &m->cfg;
    struct rng r = rng_seed(seed, 0);
    memset(m->params, 0, sizeof(float) * m->nparams);
    for (int i = 0; i < m->ntensors; i++) {
        const struct vit_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        const char *nm = t->name;
        size_t len = strlen(nm);
        if (strstr(nm, "norm") && !strstr(nm, "last_layer")) {
            if (strcmp(nm + len - 7, ".weight") == 0) fill_const(p, t->numel, 1.0f);
        } else if (strcmp(nm, "patch_embed.proj.weight") == 0 ||
                   strcmp(nm, "patch_embed.proj.bias") == 0) {
            float fan_in = (float)(c->in_chans * c->patch * c->patch);
            fill_uniform(p, t->numel, 1.0f / sqrtf(fan_in), &r);
        } else if (strcmp(nm, "head.last_layer.weight_v") == 0) {
            fill_uniform(p, t->numel, 1.0f / sqrtf((float)c->head_bottleneck), &r);
        } else if (strcmp(nm, "head.last_layer.weight_g") == 0) {
            fill_const(p, t->numel, 1.0f);
        } else if (t->ndim > 1) {
            fill_trunc_normal(p, t->numel, 0.02f, &r);
        }
    }
}

/* ---- activations ------------------------------------------------------------------------------
 */

struct carve {
    float *base;
    size_t used;
};

static float *take(struct carve *c, size_t n)
{
    size_t off = c->used;
    c->used += (n + 15) & ~(size_t)15;
    return c->base ? c->base + off : NULL;
}

static void layout_acts(struct vit_acts *a, const struct vit_config *c, struct carve *cv)
{
    size_t B = (size_t)a->B, T = (size_t)a->T, D = (size_t)c->dim;
    size_t M = D * (size_t)c->mlp_ratio, H = (size_t)c->heads, BT = B * T;
    size_t np = (size_t)a->gh * a->gw, n = (size_t)(c->img_size / c->patch);
    size_t cpp = (size_t)c->in_chans * c->patch * c->patch;
    a->cols = take(cv, B * np * cpp);
    a->pos = take(cv, T * D);
    a->wy = take(cv, (size_t)a->gh * n);
    a->wx = take(cv, (size_t)a->gw * n);
    a->x0 = take(cv, BT * D);
    int nsets = a->train ? c->depth : 1;
    for (int l = 0; l < c->depth; l++) {
        struct vit_block_acts *k = &a->blk[l];
        if (l >= nsets) {
            *k = a->blk[0];
            continue;
        }
        k->ln1 = take(cv, BT * D);
        k->ln1_mean = take(cv, BT);
        k->ln1_rstd = take(cv, BT);
        k->qkv = take(cv, BT * 3 * D);
        k->probs = take(cv, B * H * T * T);
        k->atty = take(cv, BT * D);
        k->res1 = take(cv, BT * D);
        k->ln2 = take(cv, BT * D);
        k->ln2_mean = take(cv, BT);
        k->ln2_rstd = take(cv, BT);
        k->fc1 = take(cv, BT * M);
        k->fc1_act = take(cv, BT * M);
        k->res2 = take(cv, BT * D);
    }
    a->tokens = take(cv, BT * D);
    a->norm_mean = take(cv, BT);
    a->norm_rstd = take(cv, BT);
    a->embed = take(cv, B * D);
    if (a->head) {
        size_t hid = (size_t)c->head_hidden, bott = (size_t)c->head_bottleneck;
        a->h_pre[0] = take(cv, B * hid);
        a->h_act[0] = take(cv, B * hid);
        a->h_pre[1] = take(cv, B * hid);
        a->h_act[1] = take(cv, B * hid);
        a->h_pre[2] = take(cv, B * bott);
        a->zn = take(cv, B * bott);
        a->znorm = take(cv, B);
        a->logits = take(cv, B * (size_t)c->head_out);
    }
    if (!a->train) return;
    a->d_res[0] = take(cv, BT * D);
    a->d_res[1] = take(cv, BT * D);
    a->d_tmp = take(cv, BT * D);
    a->d_qkv = take(cv, BT * 3 * D);
    a->d_probs = take(cv, T * T);
    a->d_fc = take(cv, BT * M);
    a->d_fc2 = take(cv, BT * M);
    a->d_embed = take(cv, B * D);
    if (a->head) {
        size_t hid = (size_t)c->head_hidden, bott = (size_t)c->head_bottleneck;
        a->d_h[0] = take(cv, B * hid);
        a->d_h[1] = take(cv, B * hid);
        a->d_h[2] = take(cv, B * bott);
        a->d_zn = take(cv, B * bott);
        a->d_lastw = take(cv, (size_t)c->head_out * bott);
    }
}

int vit_acts_create(struct vit_acts *a, const struct vit_model *m, int B, int H, int W, bool head,
                    bool train, char *err, size_t errsz)
{
    const struct vit_config *c = &m->cfg;
    memset(a, 0, sizeof *a);
    if (B <= 0 || H < c->patch || W < c->patch || H % c->patch || W % c->patch || H > 8192 ||
        W > 8192 || (head && c->head_out <= 0)) {
        if (errsz)
            snprintf(err, errsz, "bad pass size %dx%dx%d for patch %d%s", B, H, W, c->patch,
                     head && c->head_out <= 0 ? " (model has no head)" : "");
        return -1;
    }
    a->B = B;
    a->B_max = B;
    a->H = H;
    a->W = W;
    a->gh = H / c->patch;
    a->gw = W / c->patch;
    a->T = 1 + a->gh * a->gw;
    a->head = head;
    a->train = train;
    a->blk = calloc((size_t)c->depth, sizeof *a->blk);
    if (!a->blk) goto nomem;
    struct carve cv = {NULL, 0};
    layout_acts(a, c, &cv);
    a->nfloats = cv.used;
    a->mem = alloc_floats(cv.used);
    if (!a->mem) goto nomem;
    cv = (struct carve){a->mem, 0};
    layout_acts(a, c, &cv);
    int n = c->img_size / c->patch;
    bicubic_weights(a->wy, a->gh, n, (a->gh + 0.1) / n);
    bicubic_weights(a->wx, a->gw, n, (a->gw + 0.1) / n);
    return 0;
nomem:
    vit_acts_destroy(a);
    if (errsz) snprintf(err, errsz, "out of memory allocating activations for batch %d", B);
    return -2;
}

void vit_acts_set_batch(struct vit_acts *a, int B)
{
    assert(B >= 1 && B <= a->B_max);
    a->B = B;
}

void vit_acts_destroy(struct vit_acts *a)
{
    free(a->blk);
    free(a->mem);
    memset(a, 0, sizeof *a);
}

/* ---- forward ----------------------------------------------------------------------------------
 */

/* The model's native grid is used as is; any other grid (or a non-square one) is resampled. */
static bool native_grid(const struct vit_model *m, const struct vit_acts *a)
{
    int n = m->cfg.img_size / m->cfg.patch;
    return a->gh == n && a->gw == n;
}

/* out = resid + in · wᵀ + b: a linear layer feeding a residual connection, in one GEMM. */
static void linear_residual_forward(float *out, const float *resid, const float *in, const float *w,
                                    const float *b, int N, int IC, int OC)
{
    for (int r = 0; r < N; r++) {
        float *o = out + (size_t)r * OC;
        const float *x = resid + (size_t)r * OC;
        for (int j = 0; j < OC; j++) o[j] = x[j] + b[j];
    }
    gemm(false, true, N, OC, IC, 1.0f, in, IC, w, IC, 1.0f, out, OC);
}

static void embed_forward(struct vit_model *m, struct vit_acts *a, const float *images)
{
    const struct vit_config *c = &m->cfg;
    int D = c->dim, B = a->B, T = a->T, np = a->gh * a->gw;
    int cpp = c->in_chans * c->patch * c->patch;
    const float *pos = m->w.pos_embed;
    if (!native_grid(m, a)) {
        int n = c->img_size / c->patch;
        memcpy(a->pos, m->w.pos_embed, sizeof(float) * (size_t)D);
        pos_resample_forward(a->pos + D, m->w.pos_embed + D, a->wy, a->wx, n, a->gh, a->gw, D);
        pos = a->pos;
    }
    im2col_patches(a->cols, images, B, c->in_chans, a->H, a->W, c->patch);
    /* patch projections land in tokens 1..T-1 of each image; x0 row 0 is the class token */
    float *proj = a->blk[0].ln1; /* scratch: (B*np, D) fits in (B*T, D) */
    linear_forward(proj, a->cols, m->w.patch_w, m->w.patch_b, B * np, cpp, D);
    for (int b = 0; b < B; b++) {
        float *x = a->x0 + (size_t)b * T * D;
        for (int d = 0; d < D; d++) x[d] = m->w.cls_token[d] + pos[d];
        for (int t = 1; t < T; t++) {
            const float *src = proj + ((size_t)b * np + t - 1) * D;
            const float *pe = pos + (size_t)t * D;
            float *dst = x + (size_t)t * D;
            for (int d = 0; d < D; d++) dst[d] = src[d] + pe[d];
        }
    }
}

static void block_forward(const struct vit_config *c, const struct vit_block_w *w,
                          struct vit_block_acts *k, const float *x, int B, int T)
{
    int D = c->dim, M = D * c->mlp_ratio, BT = B * T;
    layernorm_forward(k->ln1, k->ln1_mean, k->ln1_rstd, x, w->norm1_w, w->norm1_b, BT, D);
    linear_forward(k->qkv, k->ln1, w->qkv_w, w->qkv_b, BT, D, 3 * D);
    attention_forward(k->atty, k->probs, k->qkv, B, T, D, c->heads);
    linear_residual_forward(k->res1, x, k->atty, w->proj_w, w->proj_b, BT, D, D);
    layernorm_forward(k->ln2, k->ln2_mean, k->ln2_rstd, k->res1, w->norm2_w, w->norm2_b, BT, D);
    linear_forward(k->fc1, k->ln2, w->fc1_w, w->fc1_b, BT, D, M);
    gelu_forward(k->fc1_act, k->fc1, (size_t)BT * M);
    linear_residual_forward(k->res2, k->res1, k->fc1_act, w->fc2_w, w->fc2_b, BT, M, D);
}

static void head_forward(struct vit_model *m, struct vit_acts *a)
{
    const struct vit_config *c = &m->cfg;
    int B = a->B, D = c->dim, hid = c->head_hidden, bott = c->head_bottleneck, K = c->head_out;
    linear_forward(a->h_pre[0], a->embed, m->w.head_w[0], m->w.head_b[0], B, D, hid);
    gelu_forward(a->h_act[0], a->h_pre[0], (size_t)B * hid);
    linear_forward(a->h_pre[1], a->h_act[0], m->w.head_w[1], m->w.head_b[1], B, hid, hid);
    gelu_forward(a->h_act[1], a->h_pre[1], (size_t)B * hid);
    linear_forward(a->h_pre[2], a->h_act[1], m->w.head_w[2], m->w.head_b[2], B, hid, bott);
    l2norm_forward(a->zn, a->znorm, a->h_pre[2], B, bott);
    weightnorm_forward(m->last_w, m->last_vnorm, m->w.last_v, m->w.last_g, K, bott);
    linear_forward(a->logits, a->zn, m->last_w, NULL, B, bott, K);
}

/* Copies layer l's tokens (the residual stream, before any norm) into tap number `tap` when l is
 * tapped; returns the next tap number. */
static int tap_layer(const struct vit_model *m, struct vit_acts *a, const float *x, int l, int tap)
{
    if (!a->taps || !(a->tap_mask >> l & 1u)) return tap;
    int B = a->B, ntaps = __builtin_popcount(a->tap_mask);
    size_t per = (size_t)a->T * m->cfg.dim;
    for (int b = 0; b < B; b++)
        memcpy(a->taps + ((size_t)b * ntaps + tap) * per, x + b * per, sizeof(float) * per);
    return tap + 1;
}

void vit_forward(struct vit_model *m, struct vit_acts *a, const float *images)
{
    const struct vit_config *c = &m->cfg;
    int B = a->B, T = a->T, D = c->dim;
    embed_forward(m, a, images);
    const float *x = a->x0;
    assert(!a->taps || !a->train);
    int tap = tap_layer(m, a, x, 0, 0);
    for (int l = 0; l < c->depth; l++) {
        block_forward(c, &m->w.blocks[l], &a->blk[l], x, B, T);
        x = a->blk[l].res2;
        tap = tap_layer(m, a, x, l + 1, tap);
    }
    layernorm_forward(a->tokens, a->norm_mean, a->norm_rstd, x, m->w.norm_w, m->w.norm_b, B * T, D);
    for (int b = 0; b < B; b++)
        memcpy(a->embed + (size_t)b * D, a->tokens + (size_t)b * T * D, sizeof(float) * (size_t)D);
    if (a->head) head_forward(m, a);
}

/* ---- backward ---------------------------------------------------------------------------------
 */

static void zero(float *p, size_t n)
{
    memset(p, 0, sizeof(float) * n);
}

/* Adds the head's gradients into m->grads and d(embedding) into a->d_embed. */
static void head_backward(struct vit_model *m, struct vit_acts *a, const float *dlogits)
{
    const struct vit_config *c = &m->cfg;
    int B = a->B, D = c->dim, hid = c->head_hidden, bott = c->head_bottleneck, K = c->head_out;
    struct vit_weights *g = &m->g;
    zero(a->d_zn, (size_t)B * bott);
    zero(a->d_lastw, (size_t)K * bott);
    linear_backward(a->d_zn, a->d_lastw, NULL, dlogits, a->zn, m->last_w, B, bott, K);
    weightnorm_backward(g->last_v, NULL, a->d_lastw, m->w.last_v, m->w.last_g, m->last_vnorm, K,
                        bott);
    zero(a->d_h[2], (size_t)B * bott);
    l2norm_backward(a->d_h[2], a->d_zn, a->zn, a->znorm, B, bott);
    zero(a->d_h[1], (size_t)B * hid);
    linear_backward(a->d_h[1], g->head_w[2], g->head_b[2], a->d_h[2], a->h_act[1], m->w.head_w[2],
                    B, hid, bott);
    zero(a->d_h[0], (size_t)B * hid);
    gelu_backward(a->d_h[0], a->h_pre[1], a->d_h[1], (size_t)B * hid);
    zero(a->d_h[1], (size_t)B * hid);
    linear_backward(a->d_h[1], g->head_w[1], g->head_b[1], a->d_h[0], a->h_act[0], m->w.head_w[1],
                    B, hid, hid);
    zero(a->d_h[0], (size_t)B * hid);
    gelu_backward(a->d_h[0], a->h_pre[0], a->d_h[1], (size_t)B * hid);
    linear_backward(a->d_embed, g->head_w[0], g->head_b[0], a->d_h[0], a->embed, m->w.head_w[0], B,
                    D, hid);
}

/* dx: on entry d(block output), on exit d(block input). */
static void block_backward(const struct vit_config *c, const struct vit_block_w *w,
                           struct vit_block_w *g, struct vit_block_acts *k, struct vit_acts *a,
                           const float *x, float *dx, float *dres1, int B, int T)
{
    int D = c->dim, M = D * c->mlp_ratio, BT = B * T;
    size_t nd = (size_t)BT * D, nm = (size_t)BT * M;
    zero(a->d_fc2, nm);
    linear_backward(a->d_fc2, g->fc2_w, g->fc2_b, dx, k->fc1_act, w->fc2_w, BT, M, D);
    zero(a->d_fc, nm);
    gelu_backward(a->d_fc, k->fc1, a->d_fc2, nm);
    zero(a->d_tmp, nd);
    linear_backward(a->d_tmp, g->fc1_w, g->fc1_b, a->d_fc, k->ln2, w->fc1_w, BT, D, M);
    memcpy(dres1, dx, sizeof(float) * nd);
    layernorm_backward(dres1, g->norm2_w, g->norm2_b, a->d_tmp, k->res1, w->norm2_w, k->ln2_mean,
                       k->ln2_rstd, BT, D);
    zero(a->d_tmp, nd);
    linear_backward(a->d_tmp, g->proj_w, g->proj_b, dres1, k->atty, w->proj_w, BT, D, D);
    zero(a->d_qkv, 3 * nd);
    attention_backward(a->d_qkv, a->d_probs, a->d_tmp, k->qkv, k->probs, B, T, D, c->heads);
    zero(a->d_tmp, nd);
    linear_backward(a->d_tmp, g->qkv_w, g->qkv_b, a->d_qkv, k->ln1, w->qkv_w, BT, D, 3 * D);
    memcpy(dx, dres1, sizeof(float) * nd);
    layernorm_backward(dx, g->norm1_w, g->norm1_b, a->d_tmp, x, w->norm1_w, k->ln1_mean,
                       k->ln1_rstd, BT, D);
}

static void embed_backward(struct vit_model *m, struct vit_acts *a, const float *dx0)
{
    const struct vit_config *c = &m->cfg;
    int D = c->dim, B = a->B, T = a->T, np = a->gh * a->gw;
    int cpp = c->in_chans * c->patch * c->patch;
    struct vit_weights *g = &m->g;
    bool native = native_grid(m, a);
    float *dpos = native ? g->pos_embed : a->pos; /* a->pos reused as d(resampled pos) */
    if (!native) zero(a->pos, (size_t)T * D);
    float *dproj = a->d_tmp; /* (B*np, D) */
    for (int b = 0; b < B; b++) {
        const float *dxb = dx0 + (size_t)b * T * D;
        for (int d = 0; d < D; d++) {
            g->cls_token[d] += dxb[d];
            dpos[d] += dxb[d];
        }
        for (int t = 1; t < T; t++) {
            const float *src = dxb + (size_t)t * D;
            float *dp = dpos + (size_t)t * D;
            for (int d = 0; d < D; d++) dp[d] += src[d];
            memcpy(dproj + ((size_t)b * np + t - 1) * D, src, sizeof(float) * (size_t)D);
        }
    }
    if (!native) {
        int n = c->img_size / c->patch;
        for (int d = 0; d < D; d++) g->pos_embed[d] += a->pos[d];
        pos_resample_backward(g->pos_embed + D, a->pos + D, a->wy, a->wx, n, a->gh, a->gw, D);
    }
    linear_backward(NULL, g->patch_w, g->patch_b, dproj, a->cols, m->w.patch_w, B * np, cpp, D);
}

void vit_backward(struct vit_model *m, struct vit_acts *a, const float *dlogits,
                  const float *dembed, const float *dtokens)
{
    const struct vit_config *c = &m->cfg;
    assert(a->train && m->grads);
    int B = a->B, T = a->T, D = c->dim, BT = B * T;
    zero(a->d_embed, (size_t)B * D);
    if (dlogits) {
        assert(a->head);
        head_backward(m, a, dlogits);
    }
    if (dembed)
        for (size_t i = 0; i < (size_t)B * D; i++) a->d_embed[i] += dembed[i];
    float *dx = a->d_res[0];
    zero(dx, (size_t)BT * D);
    const float *xlast = a->blk[c->depth - 1].res2;
    if (dtokens) {
        /* every token row carries gradient: d(normed tokens), the class rows plus d_embed
         * (d_res[1] is free until the blocks' backward) */
        float *dy = a->d_res[1];
        memcpy(dy, dtokens, sizeof(float) * (size_t)BT * D);
        for (int b = 0; b < B; b++)
            for (int d = 0; d < D; d++) dy[(size_t)b * T * D + d] += a->d_embed[(size_t)b * D + d];
        layernorm_backward(dx, m->g.norm_w, m->g.norm_b, dy, xlast, m->w.norm_w, a->norm_mean,
                           a->norm_rstd, BT, D);
    }
    /* final norm without dtokens: only the class-token rows carry gradient */
    for (int b = 0; !dtokens && b < B; b++) {
        size_t row = (size_t)b * T;
        layernorm_backward(dx + row * D, m->g.norm_w, m->g.norm_b, a->d_embed + (size_t)b * D,
                           xlast + row * D, m->w.norm_w, a->norm_mean + row, a->norm_rstd + row, 1,
                           D);
    }
    for (int l = c->depth - 1; l >= 0; l--) {
        const float *x = l ? a->blk[l - 1].res2 : a->x0;
        block_backward(c, &m->w.blocks[l], &m->g.blocks[l], &a->blk[l], a, x, dx, a->d_res[1], B,
                       T);
    }
    embed_backward(m, a, dx);
}
