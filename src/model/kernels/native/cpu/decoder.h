/*
 * A decoder-only transformer's inference in native code (decoder.cc): the Llama, Qwen2 and Qwen3
 * shapes oeld's TensorFlow.js transformer runs, with a key/value cache per sequence, for
 * generation with no framework dispatch between operations.
 */
#pragma once
#include <node_api.h>

namespace oeld {

/* c = op(a) @ op(b) on the addon's matmul (gemm.h), split over its thread pool; returns the threads used (0: no scratch). */
int matmulF32(const float *a, const float *b, float *c, int M, int K, int N, bool ta, bool tb);

/* Adds decoderCreate, decoderNewSequence, decoderFreeSequence, decoderForward, decoderDispose to exports. */
void registerDecoder(napi_env env, napi_value exports);

}  // namespace oeld
