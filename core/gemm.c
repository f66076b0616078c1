/* gemm.c — backend selection and dispatch of the engine's matrix products (see gemm.h); the
 * OpenBLAS backend lives here, the oneDNN one in gemm_onednn.c. */
#include "gemm.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

#ifdef INSPECTD_WITH_ONEDNN
#define DEFAULT_BACKEND GEMM_ONEDNN
#else
#define DEFAULT_BACKEND GEMM_OPENBLAS
#endif

static enum gemm_backend backend = DEFAULT_BACKEND;
static enum gemm_precision precision = GEMM_F32;

static const char *const backend_names[] = {"auto", "onednn", "openblas"};
static const char *const precision_names[] = {"f32", "bf16"};

int gemm_backend_parse(const char *s, enum gemm_backend *out)
{
    for (int i = 0; i < 3; i++) {
        if (s && strcmp(s, backend_names[i]) == 0) {
            *out = (enum gemm_backend)i;
            return 0;
        }
    }
    return -1;
}

const char *gemm_backend_name(enum gemm_backend b)
{
    return (unsigned)b < 3 ? backend_names[b] : "?";
}

int gemm_precision_parse(const char *s, enum gemm_precision *out)
{
    for (int i = 0; i < 2; i++) {
        if (s && strcmp(s, precision_names[i]) == 0) {
            *out = (enum gemm_precision)i;
            return 0;
        }
    }
    return -1;
}

const char *gemm_precision_name(enum gemm_precision p)
{
    return (unsigned)p < 2 ? precision_names[p] : "?";
}

int gemm_select(enum gemm_backend b, enum gemm_precision p, char *err, size_t errsz)
{
    if (b == GEMM_AUTO) b = DEFAULT_BACKEND;
#ifndef INSPECTD_WITH_ONEDNN
    if (b == GEMM_ONEDNN) {
        snprintf(err, errsz, "gemm onednn: this inspectd is built without oneDNN (WITH_ONEDNN=0)");
        return -1;
    }
#endif
    if (p == GEMM_BF16 && b != GEMM_ONEDNN) {
        snprintf(err, errsz, "precision bf16 needs the onednn gemm backend (not %s)",
                 gemm_backend_name(b));
        return -1;
    }
#ifdef INSPECTD_WITH_ONEDNN
    if (p == GEMM_BF16 && !gemm_onednn_has_bf16()) {
        char isa[48];
        gemm_onednn_isa(isa, sizeof isa);
        snprintf(err, errsz,
                 "precision bf16 needs a CPU with AVX-512 BF16 or AMX; oneDNN runs %s here", isa);
        return -1;
    }
#endif
    backend = b;
    precision = p;
    return 0;
}

/* "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..." -> "0.3.21" */
static void openblas_version(char *buf, size_t n)
{
    const char *cfg = openblas_get_config();
    const char *sp = cfg ? strchr(cfg, ' ') : NULL;
    if (!sp) {
        snprintf(buf, n, "unknown");
        return;
    }
    int len = (int)strcspn(sp + 1, " ");
    snprintf(buf, n, "%.*s", len, sp + 1);
}

void gemm_get_info(struct gemm_info *info)
{
    memset(info, 0, sizeof *info);
    info->backend = backend;
    info->precision = precision;
#ifdef INSPECTD_WITH_ONEDNN
    if (backend == GEMM_ONEDNN) {
        gemm_onednn_version(info->version, sizeof info->version);
        gemm_onednn_isa(info->isa, sizeof info->isa);
        return;
    }
#endif
    openblas_version(info->version, sizeof info->version);
    snprintf(info->isa, sizeof info->isa, "%s", openblas_get_corename());
}

void gemm_describe(char *buf, size_t n)
{
    struct gemm_info i;
    gemm_get_info(&i);
    snprintf(buf, n, "%s %s (%s)", gemm_backend_name(i.backend), i.version, i.isa);
}

void gemm_set_threads(int n)
{
    if (n < 1) n = 1;
    openblas_set_num_threads(n);
#ifdef INSPECTD_WITH_ONEDNN
    gemm_onednn_set_threads(n);
#endif
}

static void openblas_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                           int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 1 && !ta) {
        /* one row: a matrix-vector product, C = alpha · op(B)ᵀ · a + beta · C */
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? N : K, tb ? K : N, alpha, B,
                    ldb, A, 1, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_f32(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
#ifdef INSPECTD_WITH_ONEDNN
    if (backend == GEMM_ONEDNN) {
        gemm_onednn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    openblas_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc)
{
#ifdef INSPECTD_WITH_ONEDNN
    if (precision == GEMM_BF16 && M > 0 && N > 0 && K > 0) {
        gemm_onednn_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
