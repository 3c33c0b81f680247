/* The native decoder's layer for avx2. */
#define ISA avx2
#include "decoder-kernel.inc"
