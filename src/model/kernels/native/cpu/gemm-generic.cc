/* Any CPU (SSE2 on x86-64, NEON on arm64): 4 floats per register, a 4 x 8 block. */
#define ISA generic
#define VEC 4
#define MR 4
#define NRV 2
#include "gemm-kernel.inc"
