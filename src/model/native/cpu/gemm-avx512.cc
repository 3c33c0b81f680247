/* AVX-512F: 16 floats per register, a 12 x 32 block in 24 of the 32 registers. */
#define ISA avx512
#define VEC 16
#define MR 12
#define NRV 2
#include "gemm-kernel.inc"
