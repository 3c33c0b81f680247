/*
 * The native decoder's model and sequences (decoder.cc holds the Node-API side), and its layer,
 * compiled once per instruction set by decoder-<isa>.cc from decoder-kernel.inc.
 */
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace oeld {

struct Layer {
  std::vector<float> inNorm, postNorm, q, k, v, o, qb, kb, vb, ob, qn, kn, gate, up, down;
};

struct Sequence {
  /* Per layer, [length][kvHeads * headDim] keys and values. */
  std::vector<std::vector<float>> k, v;
  int length = 0;
};

struct Model {
  int V, H, I, L, heads, kvh, d;
  bool qkvBias, oBias, qkNorm, tied;
  float eps;
  std::vector<double> invFreq;
  std::vector<float> embed, finalNorm, lmHead;
  std::vector<Layer> layers;
  std::unordered_map<int32_t, Sequence> sequences;
  int32_t nextSequence = 1;
  /* Scratch, grown on demand. */
  std::vector<float> x, h, q, kk, vv, ctx, out, g, u, scores, logitsIn;
  std::vector<float> cosv, sinv;
};

/* One layer over M tokens (x [M, H] in place); the tokens' keys and values join their sequences. */
typedef void LayerForward(Model &m, Layer &l, int li, int M, const std::vector<Sequence *> &seqOf, const std::vector<int> &pos);
LayerForward layerForward_avx512, layerForward_avx2, layerForward_generic;

/* out = silu(g) * u over n floats, on the addon's SwiGLU kernel for the CPU's instruction set. */
void swigluF32(const float *g, const float *u, float *out, size_t n);

/* The instruction set the addon uses: avx512, avx2 or generic. */
const char *currentIsaName();

/* Threads of the addon's pool (the caller included). */
int parallelParts();
/* Whether the decoder should split work of this many multiply-adds over the pool (as its matmuls do). */
bool worthSplitting(double macs);
/* Runs part(0) .. part(parts - 1) on the pool (parts <= parallelParts()), or one after another on this thread when it is busy. */
void runParts(int parts, const std::function<void(int)> &part);

}  // namespace oeld
