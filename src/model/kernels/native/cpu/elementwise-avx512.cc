/* SwiGLU for avx512: 16 floats per vector. */
#define ISA avx512
#define VEC 16
#include "elementwise-kernel.inc"
