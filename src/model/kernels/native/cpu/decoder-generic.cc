/* The native decoder's layer for generic. */
#define ISA generic
#include "decoder-kernel.inc"
