/* AVX2 with FMA: 8 floats per register, a 6 x 16 block in 12 of the 16 registers. */
#define ISA avx2
#define VEC 8
#define MR 6
#define NRV 2
#include "gemm-kernel.inc"
