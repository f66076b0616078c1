/* gemm_onednn.c — the oneDNN backend of gemm.h: dnnl_sgemm for float32, and for bfloat16 a matmul
 * primitive (bf16 source and weights, f32 accumulation and destination) cached per thread and per
 * shape. Debian's libdnnl runs its kernels on OpenMP: each calling thread's team is held to
 * gemm_set_threads()'s count (1 unless set) by omp_set_num_threads in that thread. */
#include "gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* oneDNN failing on a valid shape (or out of memory) is not an expected failure: stop. */
#define DNNL_CHECK(call)                                                                           \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) {                                                                 \
            fprintf(stderr, "inspectd: fatal: oneDNN %s failed (status %d)\n", #call, (int)st_);   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static atomic_int team_size = 1;

void gemm_onednn_set_threads(int n)
{
    atomic_store(&team_size, n < 1 ? 1 : n);
}

/* Applies the team size in the calling thread when it changed since its last GEMM. */
static void apply_threads(void)
{
    static _Thread_local int applied;
    int n = atomic_load(&team_size);
    if (applied != n) {
        omp_set_num_threads(n);
        applied = n;
    }
}

static char to_trans(bool t)
{
    return t ? 'T' : 'N';
}

void gemm_onednn_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc)
{
    apply_threads();
    DNNL_CHECK(
        dnnl_sgemm(to_trans(ta), to_trans(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

/* ---- bf16 matmul ------------------------------------------------------------------------------
 */

#define CACHE_SLOTS 256 /* per thread; cleared when 3/4 full */

struct mm_key {
    int ta, tb, M, N, K, ldc;
    uint32_t alpha, beta; /* bit patterns */
};

struct mm_entry {
    struct mm_key key;
    bool used;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
};

struct mm_cache {
    dnnl_stream_t stream;
    struct mm_entry slot[CACHE_SLOTS];
    int used;
    uint16_t *a, *b; /* bf16 copies of the operands */
    size_t a_cap, b_cap;
};

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;

static void clear_cache(struct mm_cache *c)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct mm_entry *e = &c->slot[i];
        if (!e->used) continue;
        dnnl_primitive_destroy(e->prim);
        dnnl_memory_destroy(e->src);
        dnnl_memory_destroy(e->wei);
        dnnl_memory_destroy(e->dst);
        memset(e, 0, sizeof *e);
    }
    c->used = 0;
}

static void free_cache(void *p)
{
    struct mm_cache *c = p;
    clear_cache(c);
    dnnl_stream_destroy(c->stream);
    free(c->a);
    free(c->b);
    free(c);
}

static void init_engine(void)
{
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    if (pthread_key_create(&cache_key, free_cache)) abort();
}

static struct mm_cache *thread_cache(void)
{
    pthread_once(&engine_once, init_engine);
    struct mm_cache *c = pthread_getspecific(cache_key);
    if (c) return c;
    c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "inspectd: fatal: out of memory for the bf16 GEMM cache\n");
        abort();
    }
    DNNL_CHECK(dnnl_stream_create(&c->stream, engine, dnnl_stream_default_flags));
    if (pthread_setspecific(cache_key, c)) abort();
    return c;
}

static uint16_t *scratch(uint16_t **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        uint16_t *p = realloc(*buf, n * sizeof *p);
        if (!p) {
            fprintf(stderr, "inspectd: fatal: out of memory for a bf16 GEMM operand\n");
            abort();
        }
        *buf = p;
        *cap = n;
    }
    return *buf;
}

/* Round to nearest even, as hardware conversions do (NaN stays NaN). */
static inline uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)r;
}

/* rows x cols of a matrix with row stride ld into a dense bf16 copy. */
static void pack_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld)
{
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
        for (int j = 0; j < cols; j++) d[j] = to_bf16(s[j]);
    }
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static unsigned key_hash(const struct mm_key *k)
{
    uint32_t h = 2166136261u;
    const int v[] = {k->ta, k->tb, k->M, k->N, k->K, k->ldc, (int)k->alpha, (int)k->beta};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) h = (h ^ (uint32_t)v[i]) * 16777619u;
    return h % CACHE_SLOTS;
}

static bool key_equal(const struct mm_key *a, const struct mm_key *b)
{
    return a->ta == b->ta && a->tb == b->tb && a->M == b->M && a->N == b->N && a->K == b->K &&
           a->ldc == b->ldc && a->alpha == b->alpha && a->beta == b->beta;
}

/* The dense operands as oneDNN sees them: op(A) (M, K) and op(B) (K, N), transposition by strides;
 * C (M, N) with row stride ldc. dst = alpha · src · wei + beta · dst. */
static void make_entry(struct mm_entry *e, const struct mm_key *k, float alpha, float beta)
{
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    dnnl_dims_t a_dims = {k->M, k->K}, a_strides = {k->K, 1};
    if (k->ta) a_strides[0] = 1, a_strides[1] = k->M;
    dnnl_dims_t b_dims = {k->K, k->N}, b_strides = {k->N, 1};
    if (k->tb) b_strides[0] = 1, b_strides[1] = k->K;
    dnnl_dims_t c_dims = {k->M, k->N}, c_strides = {k->ldc, 1};
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&src_md, 2, a_dims, dnnl_bf16, a_strides));
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&wei_md, 2, b_dims, dnnl_bf16, b_strides));
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&dst_md, 2, c_dims, dnnl_f32, c_strides));
    dnnl_matmul_desc_t desc;
    DNNL_CHECK(dnnl_matmul_desc_init(&desc, &src_md, &wei_md, NULL, &dst_md));
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    if (alpha != 1.0f) DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha));
    dnnl_post_ops_t ops = NULL;
    if (beta != 0.0f) {
        DNNL_CHECK(dnnl_post_ops_create(&ops));
        DNNL_CHECK(dnnl_post_ops_append_sum(ops, beta));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL));
    DNNL_CHECK(dnnl_primitive_create(&e->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    if (ops) dnnl_post_ops_destroy(ops);
    DNNL_CHECK(dnnl_memory_create(&e->src, &src_md, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->wei, &wei_md, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->dst, &dst_md, engine, DNNL_MEMORY_NONE));
    e->key = *k;
    e->used = true;
}

static struct mm_entry *lookup(struct mm_cache *c, const struct mm_key *k, float alpha, float beta)
{
    if (c->used >= CACHE_SLOTS * 3 / 4) clear_cache(c);
    unsigned i = key_hash(k);
    while (c->slot[i].used) {
        if (key_equal(&c->slot[i].key, k)) return &c->slot[i];
        i = (i + 1) % CACHE_SLOTS;
    }
    make_entry(&c->slot[i], k, alpha, beta);
    c->used++;
    return &c->slot[i];
}

void gemm_onednn_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc)
{
    apply_threads();
    struct mm_cache *c = thread_cache();
    struct mm_key k = {ta, tb, M, N, K, ldc, bits(alpha), bits(beta)};
    struct mm_entry *e = lookup(c, &k, alpha, beta);
    uint16_t *a = scratch(&c->a, &c->a_cap, (size_t)M * K);
    uint16_t *b = scratch(&c->b, &c->b_cap, (size_t)K * N);
    if (ta)
        pack_bf16(a, A, K, M, lda);
    else
        pack_bf16(a, A, M, K, lda);
    if (tb)
        pack_bf16(b, B, N, K, ldb);
    else
        pack_bf16(b, B, K, N, ldb);
    DNNL_CHECK(dnnl_memory_set_data_handle(e->src, a));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->wei, b));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->dst, C));
    dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst}};
    DNNL_CHECK(dnnl_primitive_execute(e->prim, c->stream, 3, args));
    DNNL_CHECK(dnnl_stream_wait(c->stream));
}

/* ---- what runs --------------------------------------------------------------------------------
 */

bool gemm_onednn_has_bf16(void)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

void gemm_onednn_version(char *buf, size_t n)
{
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, n, "%d.%d.%d", v->major, v->minor, v->patch);
}

void gemm_onednn_isa(char *buf, size_t n)
{
    static const struct {
        dnnl_cpu_isa_t isa;
        const char *name;
    } names[] = {{dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
                 {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
                 {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
                 {dnnl_cpu_isa_avx512_core, "avx512_core"},
                 {dnnl_cpu_isa_avx512_mic_4ops, "avx512_mic_4ops"},
                 {dnnl_cpu_isa_avx512_mic, "avx512_mic"},
                 {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
                 {dnnl_cpu_isa_avx2, "avx2"},
                 {dnnl_cpu_isa_avx, "avx"},
                 {dnnl_cpu_isa_sse41, "sse41"}};
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (isa == names[i].isa) {
            snprintf(buf, n, "%s", names[i].name);
            return;
        }
    }
    snprintf(buf, n, "isa 0x%x", (unsigned)isa);
}
