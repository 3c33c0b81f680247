/* The native decoder's layer for avx512. */
#define ISA avx512
#include "decoder-kernel.inc"
