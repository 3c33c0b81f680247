/*
 * Inference of one transformer (decoder.h) with a key/value cache per sequence.
 *
 * JS interface (src/model/inference/native-decoder.ts wraps it):
 *   decoderCreate(dims Int32Array[12], eps, invFreq Float64Array, weights Float32Array[]) -> handle
 *     dims: vocab, hidden, intermediate, layers, heads, kvHeads, headDim, qkvBias, oBias, qkNorm,
 *     tiedEmbeddings, 0. weights: embed [V, H], finalNorm [H], lmHead [H, V] (empty when tied),
 *     then per layer inputNorm, postNorm, q [H, heads*d], k [H, kv*d], v, o [heads*d, H], qBias,
 *     kBias, vBias, oBias, qNorm [d], kNorm [d] (empty where absent), gate [H, I], up [H, I],
 *     down [I, H]. Every size is checked; the weights are copied.
 *   decoderNewSequence(handle, capacity?) -> id (capacity: positions to reserve); decoderFreeSequence(handle, id)
 *   decoderForward(handle, tokens Int32Array, sequences Int32Array, outputRows Int32Array, logits Float32Array)
 *     appends token i to sequence sequences[i] at its next position (tokens of one sequence in
 *     order: a prompt at once, or one decoded token per sequence) and writes the logits of the
 *     tokens named in outputRows, [outputRows.length, V], into logits.
 *   decoderDispose(handle)
 *
 * The arithmetic is the TensorFlow.js transformer's (src/model/network/transformer.ts): RMSNorm
 * x * rsqrt(mean(x^2) + eps) * w, rotate-half rotary embeddings with cos and sin computed in
 * float64 and rounded to float32, softmax(q k^T / sqrt(d)) over a sequence's positions up to the
 * token's own, SwiGLU MLP, tied or separate output layer.
 */
#include "decoder.h"
#include "decoder-model.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace oeld {
namespace {

enum Dim { V_, H_, I_, L_, HEADS_, KVH_, D_, QKVB_, OB_, QKN_, TIED_, RESERVED_, DIMS_ };

napi_value fail(napi_env env, const std::string &msg) {
  napi_throw_range_error(env, nullptr, msg.c_str());
  return nullptr;
}

bool typedArray(napi_env env, napi_value v, napi_typedarray_type want, void *&data, size_t &length) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return false;
  return type == want;
}

Model *modelOf(napi_env env, napi_value v) {
  void *p = nullptr;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, nullptr, "decoder: expected a decoder handle");
    return nullptr;
  }
  auto *m = static_cast<Model *>(p);
  if (m->V == 0) {
    napi_throw_error(env, nullptr, "decoder: the decoder was disposed");
    return nullptr;
  }
  return m;
}

/* The call's arguments (up to n, into argv; argc says how many came) and the model of its first, the handle; null with an exception pending when that is not a live decoder. */
Model *callArgs(napi_env env, napi_callback_info info, size_t n, napi_value *argv, size_t &argc) {
  argc = n;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc == 0) { fail(env, "decoder: expected a decoder handle first"); return nullptr; }
  return modelOf(env, argv[0]);
}

void rmsNorm(const float *x, const float *w, float *y, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  float r = 1.0f / std::sqrt((float)(ss / n) + eps);
  for (int i = 0; i < n; i++) y[i] = x[i] * r * w[i];
}

void grow(std::vector<float> &v, size_t n) {
  if (v.size() < n) v.resize(n);
}

/* The layer built for the addon's instruction set. */
LayerForward *layerForIsa() {
#if defined(__x86_64__) || defined(__i386__)
  const std::string isa = currentIsaName();
  if (isa == "avx512") return layerForward_avx512;
  if (isa == "avx2") return layerForward_avx2;
#endif
  return layerForward_generic;
}

void finalize(napi_env, void *data, void *) { delete static_cast<Model *>(data); }

napi_value Create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 4) return fail(env, "decoderCreate: expected (dims, eps, invFreq, weights)");
  void *dp; size_t dn;
  if (!typedArray(env, argv[0], napi_int32_array, dp, dn) || dn != DIMS_) return fail(env, "decoderCreate: dims must be an Int32Array of 12");
  const int32_t *dims = static_cast<int32_t *>(dp);
  auto m = std::make_unique<Model>();
  m->V = dims[V_]; m->H = dims[H_]; m->I = dims[I_]; m->L = dims[L_]; m->heads = dims[HEADS_]; m->kvh = dims[KVH_]; m->d = dims[D_];
  m->qkvBias = dims[QKVB_] != 0; m->oBias = dims[OB_] != 0; m->qkNorm = dims[QKN_] != 0; m->tied = dims[TIED_] != 0;
  if (m->V < 1 || m->H < 1 || m->I < 1 || m->L < 1 || m->heads < 1 || m->kvh < 1 || m->d < 2 || m->d % 2 || m->heads % m->kvh) {
    return fail(env, "decoderCreate: invalid dimensions");
  }
  double eps;
  if (napi_get_value_double(env, argv[1], &eps) != napi_ok || !(eps > 0)) return fail(env, "decoderCreate: eps must be a positive number");
  m->eps = (float)eps;
  void *fp; size_t fn;
  if (!typedArray(env, argv[2], napi_float64_array, fp, fn) || (int)fn != m->d / 2) return fail(env, "decoderCreate: invFreq must be a Float64Array of headDim / 2");
  m->invFreq.assign(static_cast<double *>(fp), static_cast<double *>(fp) + fn);
  bool isArray = false;
  napi_is_array(env, argv[3], &isArray);
  uint32_t count = 0;
  if (isArray) napi_get_array_length(env, argv[3], &count);
  const uint32_t want = 3 + 15 * (uint32_t)m->L;
  if (!isArray || count != want) return fail(env, "decoderCreate: weights must be an array of " + std::to_string(want) + " Float32Arrays");
  uint32_t next = 0;
  std::string problem;
  auto take = [&](std::vector<float> &dst, size_t n, const char *what, bool optional) {
    if (!problem.empty()) return;
    napi_value v;
    napi_get_element(env, argv[3], next++, &v);
    void *p; size_t len;
    if (!typedArray(env, v, napi_float32_array, p, len)) { problem = std::string(what) + " is not a Float32Array"; return; }
    if (optional && len == 0) return;
    if (len != n) { problem = std::string(what) + ": expected " + std::to_string(n) + " floats, got " + std::to_string(len); return; }
    dst.assign(static_cast<float *>(p), static_cast<float *>(p) + n);
  };
  const size_t H = m->H, I = m->I, V = m->V, qn = (size_t)m->heads * m->d, kvn = (size_t)m->kvh * m->d, d = m->d;
  take(m->embed, V * H, "embed", false);
  take(m->finalNorm, H, "finalNorm", false);
  take(m->lmHead, H * V, "lmHead", m->tied);
  if (!m->tied && m->lmHead.empty() && problem.empty()) problem = "lmHead: required without tied embeddings";
  m->layers.resize(m->L);
  for (auto &l : m->layers) {
    take(l.inNorm, H, "inputNorm", false); take(l.postNorm, H, "postNorm", false);
    take(l.q, H * qn, "q", false); take(l.k, H * kvn, "k", false); take(l.v, H * kvn, "v", false); take(l.o, qn * H, "o", false);
    take(l.qb, qn, "qBias", !m->qkvBias); take(l.kb, kvn, "kBias", !m->qkvBias); take(l.vb, kvn, "vBias", !m->qkvBias);
    take(l.ob, H, "oBias", !m->oBias);
    take(l.qn, d, "qNorm", !m->qkNorm); take(l.kn, d, "kNorm", !m->qkNorm);
    take(l.gate, H * I, "gate", false); take(l.up, H * I, "up", false); take(l.down, I * H, "down", false);
  }
  if (!problem.empty()) return fail(env, "decoderCreate: " + problem);
  napi_value handle;
  Model *raw = m.release();
  napi_create_external(env, raw, finalize, nullptr, &handle);
  return handle;
}

napi_value NewSequence(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[2];
  Model *m = callArgs(env, info, 2, argv, argc);
  if (!m) return nullptr;
  // An optional capacity (positions) reserves the cache at once instead of growing it step by step.
  int32_t capacity = 0;
  if (argc == 2 && (napi_get_value_int32(env, argv[1], &capacity) != napi_ok || capacity < 0 || capacity > (1 << 24))) {
    return fail(env, "decoderNewSequence: capacity must be an integer from 0 to 16777216");
  }
  int32_t id = m->nextSequence++;
  Sequence &s = m->sequences[id];
  s.k.resize(m->L);
  s.v.resize(m->L);
  for (int l = 0; l < m->L; l++) { s.k[l].reserve((size_t)capacity * m->kvh * m->d); s.v[l].reserve((size_t)capacity * m->kvh * m->d); }
  napi_value r;
  napi_create_int32(env, id, &r);
  return r;
}

napi_value FreeSequence(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[2];
  Model *m = callArgs(env, info, 2, argv, argc);
  if (!m) return nullptr;
  int32_t id;
  if (argc < 2 || napi_get_value_int32(env, argv[1], &id) != napi_ok) return fail(env, "decoderFreeSequence: expected a sequence id");
  m->sequences.erase(id);
  return nullptr;
}

napi_value Forward(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[5];
  Model *m = callArgs(env, info, 5, argv, argc);
  if (!m) return nullptr;
  if (argc < 5) return fail(env, "decoderForward: expected (handle, tokens, sequences, outputRows, logits)");
  void *tp, *sp, *rp, *lp; size_t tn, sn, rn, ln;
  if (!typedArray(env, argv[1], napi_int32_array, tp, tn) || !typedArray(env, argv[2], napi_int32_array, sp, sn) || tn != sn || tn == 0) {
    return fail(env, "decoderForward: tokens and sequences must be Int32Arrays of one non-zero length");
  }
  if (!typedArray(env, argv[3], napi_int32_array, rp, rn) || !typedArray(env, argv[4], napi_float32_array, lp, ln) || ln != rn * (size_t)m->V) {
    return fail(env, "decoderForward: outputRows must be an Int32Array and logits a Float32Array of outputRows.length * vocab");
  }
  const int M = (int)tn;
  const int32_t *tokens = static_cast<int32_t *>(tp), *seqIds = static_cast<int32_t *>(sp), *rows = static_cast<int32_t *>(rp);
  std::vector<Sequence *> seqOf(M);
  std::vector<int> pos(M);
  std::unordered_map<int32_t, int> added;
  for (int i = 0; i < M; i++) {
    if (tokens[i] < 0 || tokens[i] >= m->V) return fail(env, "decoderForward: token " + std::to_string(tokens[i]) + " is outside the vocabulary");
    auto it = m->sequences.find(seqIds[i]);
    if (it == m->sequences.end()) return fail(env, "decoderForward: no sequence " + std::to_string(seqIds[i]));
    seqOf[i] = &it->second;
    pos[i] = it->second.length + added[seqIds[i]]++;
  }
  for (size_t r = 0; r < rn; r++) if (rows[r] < 0 || rows[r] >= M) return fail(env, "decoderForward: output row " + std::to_string(rows[r]) + " is not a token of this call");
  const size_t H = m->H, qn = (size_t)m->heads * m->d, kvn = (size_t)m->kvh * m->d, half = m->d / 2;
  grow(m->x, M * H); grow(m->h, M * H); grow(m->q, M * qn); grow(m->kk, M * kvn); grow(m->vv, M * kvn);
  grow(m->ctx, M * qn); grow(m->out, M * H); grow(m->g, (size_t)M * m->I); grow(m->u, (size_t)M * m->I);
  grow(m->cosv, M * half); grow(m->sinv, M * half);
  for (int i = 0; i < M; i++) {
    std::memcpy(&m->x[(size_t)i * H], &m->embed[(size_t)tokens[i] * H], H * sizeof(float));
    for (size_t j = 0; j < half; j++) {
      const double a = (double)pos[i] * m->invFreq[j];
      m->cosv[i * half + j] = (float)std::cos(a);
      m->sinv[i * half + j] = (float)std::sin(a);
    }
  }
  LayerForward *layer = layerForIsa();
  for (int li = 0; li < m->L; li++) layer(*m, m->layers[li], li, M, seqOf, pos);
  for (auto &kv : added) m->sequences[kv.first].length += kv.second;
  grow(m->logitsIn, rn * H);
  for (size_t r = 0; r < rn; r++) rmsNorm(&m->x[(size_t)rows[r] * H], m->finalNorm.data(), &m->logitsIn[r * H], (int)H, m->eps);
  float *logits = static_cast<float *>(lp);
  if (rn > 0) {
    if (m->tied) matmulF32(m->logitsIn.data(), m->embed.data(), logits, (int)rn, (int)H, m->V, false, true);
    else matmulF32(m->logitsIn.data(), m->lmHead.data(), logits, (int)rn, (int)H, m->V, false, false);
  }
  return nullptr;
}

napi_value Dispose(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[1];
  Model *m = callArgs(env, info, 1, argv, argc);
  if (!m) return nullptr;
  // The handle's memory goes now; the external itself is freed by the garbage collector.
  *m = Model();
  m->V = 0;
  return nullptr;
}

}  // namespace

void registerDecoder(napi_env env, napi_value exports) {
  struct Fn { const char *name; napi_callback cb; } fns[] = {
      {"decoderCreate", Create}, {"decoderNewSequence", NewSequence}, {"decoderFreeSequence", FreeSequence},
      {"decoderForward", Forward}, {"decoderDispose", Dispose},
  };
  for (auto &f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
}

}  // namespace oeld
