/* SwiGLU for avx2: 8 floats per vector. */
#define ISA avx2
#define VEC 8
#include "elementwise-kernel.inc"
