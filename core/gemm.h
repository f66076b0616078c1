/* gemm.h — the one place the engine asks for matrix products (ViT layers, attention, k-NN).
 *
 * Two backends behind one row-major sgemm: oneDNN (built when INSPECTD_WITH_ONEDNN is defined; its
 * kernels are JIT-compiled for the instruction set the CPU reports, whatever its model number) and
 * OpenBLAS (kernels chosen from its table of CPU models). The choice is deterministic: GEMM_AUTO is
 * oneDNN when the build has it, else OpenBLAS; never a timing, so the daemon, its train child and
 * eval compute with the same code on one machine.
 *
 * Precision: gemm() follows the selected precision (GEMM_BF16: inputs rounded to bfloat16, products
 * accumulated and stored in float32; oneDNN only, on a CPU with AVX-512 BF16 or AMX); gemm_f32() is
 * always float32 (k-NN distances, whose cancellation bf16 would ruin).
 *
 * Threads: the engine runs one worker per core with single-threaded GEMMs. gemm_set_threads(n)
 * sets how many threads one GEMM may use (OpenBLAS's pool; oneDNN's OpenMP team of each calling
 * thread, applied in that thread at its next GEMM); oneDNN's default is 1.
 *
 * Invariants: gemm_select() is called before any thread runs a GEMM, never concurrently with one;
 * without it the process runs GEMM_AUTO in float32. */
#ifndef INSPECTD_GEMM_H
#define INSPECTD_GEMM_H

#include <stdbool.h>
#include <stddef.h>

enum gemm_backend { GEMM_AUTO, GEMM_ONEDNN, GEMM_OPENBLAS };
enum gemm_precision { GEMM_F32, GEMM_BF16 };

/* "auto", "onednn", "openblas" / "f32", "bf16". Parsers return 0, or -1 for another word. */
int gemm_backend_parse(const char *s, enum gemm_backend *out);
const char *gemm_backend_name(enum gemm_backend b);
int gemm_precision_parse(const char *s, enum gemm_precision *out);
const char *gemm_precision_name(enum gemm_precision p);

/* Selects the process's backend (GEMM_AUTO resolved) and precision. Returns 0, or -1 with the
 * reason in err (the previous selection kept): oneDNN asked of a build without it; bf16 asked of
 * OpenBLAS or of a CPU (or an ONEDNN_MAX_CPU_ISA cap) without AVX-512 BF16 or AMX. */
int gemm_select(enum gemm_backend b, enum gemm_precision p, char *err, size_t errsz);

/* What runs: the resolved backend, the precision, the library's version ("2.6.3", "0.3.21") and
 * the instruction set it uses (oneDNN's effective ISA, OpenBLAS's core name). */
struct gemm_info {
    enum gemm_backend backend;
    enum gemm_precision precision;
    char version[32];
    char isa[48];
};
void gemm_get_info(struct gemm_info *info);

/* One line for --version and the start-up log: "onednn 2.6.3 (avx512_core_bf16)". */
void gemm_describe(char *buf, size_t n);

/* Threads one GEMM may use (n < 1 counts as 1). */
void gemm_set_threads(int n);

/* C = alpha · op(A) · op(B) + beta · C, row-major; op(X) = Xᵀ when tX. op(A) is (M, K), op(B)
 * (K, N), C (M, N); lda, ldb, ldc are the row strides of A, B, C as stored. */
void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);
/* The same, always in float32. */
void gemm_f32(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

#ifdef INSPECTD_WITH_ONEDNN
/* ---- the oneDNN backend (gemm_onednn.c), for gemm.c ---- */
void gemm_onednn_sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);
/* bf16 inputs, f32 accumulation and output, through a matmul primitive cached per thread. */
void gemm_onednn_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);
void gemm_onednn_set_threads(int n);
/* Whether the effective ISA has native bf16 dot products (AVX-512 BF16, AMX). */
bool gemm_onednn_has_bf16(void);
void gemm_onednn_version(char *buf, size_t n);
void gemm_onednn_isa(char *buf, size_t n);
#endif

#endif
