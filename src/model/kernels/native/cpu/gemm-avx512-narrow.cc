/* AVX-512F for narrow outputs (32 columns or fewer: attention with 32-wide heads), where the 64-column
 * panel of gemm-avx512.cc would be half zeros: a 12 x 32 block in 24 of the 32 registers. */
#define ISA avx512_narrow
#define VEC 16
#define MR 12
#define NRV 2
#include "gemm-kernel.inc"
