/*
 * SwiGLU's gate out = silu(g) * u and its gradient (dg, du given dy) over n floats, per
 * instruction set (elementwise-kernel.inc); the addon picks the one matching its matmul's.
 */
#pragma once
#include <cstddef>

namespace oeld {

void swiglu_avx512(const float *g, const float *u, float *out, size_t n);
void swiglu_avx2(const float *g, const float *u, float *out, size_t n);
void swiglu_generic(const float *g, const float *u, float *out, size_t n);
void swiglu_grad_avx512(const float *g, const float *u, const float *dy, float *dg, float *du, size_t n);
void swiglu_grad_avx2(const float *g, const float *u, const float *dy, float *dg, float *du, size_t n);
void swiglu_grad_generic(const float *g, const float *u, const float *dy, float *dg, float *du, size_t n);

}  // namespace oeld
