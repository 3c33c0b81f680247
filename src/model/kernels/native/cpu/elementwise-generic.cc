/* SwiGLU for generic: 4 floats per vector. */
#define ISA generic
#define VEC 4
#include "elementwise-kernel.inc"
