/* AVX-512F: 16 floats per register, a 6 x 64 block in 24 of the 32 registers (measured against
 * 12 x 32, 8 x 48, 7 x 64 and 4 x 96 on the training shapes: ahead in 7 of 8 paired runs). */
#define ISA avx512
#define VEC 16
#define MR 6
#define NRV 4
#include "gemm-kernel.inc"
