/*
 * One float32 matmul, or a block of its output, on the CPU:
 *   c[i, j] = sum_k op(a)[i, k] * op(b)[k, j]   for i in [i0, i1), j in [j0, j1)
 * op(a) is [M, K]: a[i * K + k], or a[k * M + i] with ta. op(b) is [K, N]: b[k * N + j], or
 * b[j * K + k] with tb. c is [M, N], row-major; only the block is written (overwritten, never
 * accumulated into).
 *
 * The same blocked algorithm is compiled once per instruction set (gemm-kernel.inc); the addon
 * picks the widest the CPU has at load time. AVX-512 has a second build for blocks of 32 columns
 * or fewer (_narrow), whose panel is half as wide.
 */
#pragma once
#include <cstddef>

namespace oeld {

struct GemmBlock {
  const float *a;
  const float *b;
  float *c;
  int M, N, K;
  bool ta, tb;
  int i0, i1, j0, j1;
};

/* Floats of scratch one call needs for a given depth and width (packed a and b). */
size_t gemm_scratch_floats_avx512(int K, int N);
size_t gemm_scratch_floats_avx512_narrow(int K, int N);
size_t gemm_scratch_floats_avx2(int K, int N);
size_t gemm_scratch_floats_generic(int K, int N);

/* `scratch` holds gemm_scratch_floats_*(K, j1 - j0) floats, 64-byte aligned. */
void gemm_avx512(const GemmBlock &g, float *scratch);
void gemm_avx512_narrow(const GemmBlock &g, float *scratch);
void gemm_avx2(const GemmBlock &g, float *scratch);
void gemm_generic(const GemmBlock &g, float *scratch);

}  // namespace oeld
