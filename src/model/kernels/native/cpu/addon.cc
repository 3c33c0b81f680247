/*
 * oeld's native CPU matmul, a Node-API addon for the tfjs WebAssembly backend: it computes
 * BatchMatMul on the tensors where tfjs keeps them, in the wasm memory, handed over as a
 * Uint8Array on the memory's buffer plus byte offsets. Every offset and extent is checked against
 * that view before anything is touched.
 *
 * JS interface:
 *   batchMatMul(heap, a, b, out, batch, batchA, batchB, M, K, N, ta, tb) -> threads used
 *     for each batch index i < batch: out[i] = op(a[batchA == 1 ? 0 : i]) @ op(b[batchB == 1 ? 0 : i]),
 *     op(a) [M, K], op(b) [K, N] (see gemm.h); out is overwritten.
 *   swiglu(heap, g, u, out, n): out = silu(g) * u over n floats; swigluGrad(heap, g, u, dy, dg,
 *     du, n): its gradient (elementwise.h). Offsets checked the same way; outputs may not overlap.
 *   isa() -> the instruction set in use; isas() -> those this CPU has, widest first;
 *   useIsa(name) -> switches (tests, benchmarks); threads() / setThreads(n).
 */
#include <node_api.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "elementwise.h"
#include "gemm.h"
#include "decoder.h"
#include "decoder-model.h"
#include "thread-pool.h"

namespace oeld {
namespace {

struct Isa {
  const char *name;
  void (*gemm)(const GemmBlock &, float *);
  size_t (*scratch)(int, int);
  bool supported;
  void (*swiglu)(const float *, const float *, float *, size_t);
  void (*swigluGrad)(const float *, const float *, const float *, float *, float *, size_t);
  /* Where set: the build for blocks of at most narrowMaxN columns. */
  void (*narrowGemm)(const GemmBlock &, float *) = nullptr;
  size_t (*narrowScratch)(int, int) = nullptr;
  int narrowMaxN = 0;
};

std::vector<Isa> &isaTable() {
  static std::vector<Isa> table = [] {
    std::vector<Isa> t;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    t.push_back({"avx512", gemm_avx512, gemm_scratch_floats_avx512, (bool)__builtin_cpu_supports("avx512f"),
                 swiglu_avx512, swiglu_grad_avx512, gemm_avx512_narrow, gemm_scratch_floats_avx512_narrow, 32});
    t.push_back({"avx2", gemm_avx2, gemm_scratch_floats_avx2,
                 (bool)__builtin_cpu_supports("avx2") && (bool)__builtin_cpu_supports("fma"), swiglu_avx2, swiglu_grad_avx2});
#endif
    t.push_back({"generic", gemm_generic, gemm_scratch_floats_generic, true, swiglu_generic, swiglu_grad_generic});
    return t;
  }();
  return table;
}

const Isa *current = nullptr;

ThreadPool &pool() {
  // Never destroyed: its threads must not be joined by static destructors at exit.
  static ThreadPool *p = [] {
    auto *q = new ThreadPool();
    unsigned n = std::thread::hardware_concurrency();
    q->resize(n == 0 ? 1 : static_cast<int>(n));
    return q;
  }();
  return *p;
}

/* Scratch of the calling thread, 64-byte aligned, grown on demand and kept. */
float *scratchFor(size_t floats) {
  struct Buffer {
    float *p = nullptr;
    size_t n = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  if (buf.n < floats) {
    std::free(buf.p);
    size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
    buf.p = static_cast<float *>(std::aligned_alloc(64, bytes));
    buf.n = buf.p ? floats : 0;
  }
  return buf.p;
}

/* A call below this many multiply-adds runs on the calling thread alone. */
constexpr double SPLIT_MIN_MACS = 1 << 20;
/*
 * The same for the native decoder's calls (matmuls and attention). A split hands work to the
 * pool's threads and waits for them; when another thread or process holds a core (a served
 * model's HTTP thread and clients, PostgreSQL), a helper may not run for a whole scheduler slice
 * while the caller waits. About 16 M multiply-adds is half a millisecond on one core: a large
 * model's decoding steps still split, a small model's do not. Measured with the shipped model and
 * 32 HTTP clients on 2 cores (bench/serving.ts): 382 requests/s with 1 M here, 471-499 without
 * splits; its unloaded decoding rate is the same either way. Training keeps SPLIT_MIN_MACS (a
 * round's training steps were 1.1-1.3x faster with it than with 16 M, bench/model-training.ts).
 */
constexpr double DECODE_SPLIT_MIN_MACS = 1 << 24;

struct Call {
  const float *a, *b;
  float *out;
  int batch, batchA, batchB, M, K, N;
  bool ta, tb;
};

/* Batches [b0, b1), rows [i0, i1), columns [j0, j1) of every batch in range; false when no scratch could be allocated. */
bool compute(const Call &c, int b0, int b1, int i0, int i1, int j0, int j1) {
  bool narrow = current->narrowGemm && j1 - j0 <= current->narrowMaxN;
  auto gemm = narrow ? current->narrowGemm : current->gemm;
  float *scratch = scratchFor((narrow ? current->narrowScratch : current->scratch)(c.K, j1 - j0));
  if (!scratch) return false;
  size_t mk = (size_t)c.M * c.K, kn = (size_t)c.K * c.N, mn = (size_t)c.M * c.N;
  for (int i = b0; i < b1; i++) {
    GemmBlock g;
    g.a = c.a + (c.batchA == 1 ? 0 : i * mk);
    g.b = c.b + (c.batchB == 1 ? 0 : i * kn);
    g.c = c.out + i * mn;
    g.M = c.M; g.N = c.N; g.K = c.K; g.ta = c.ta; g.tb = c.tb;
    g.i0 = i0; g.i1 = i1; g.j0 = j0; g.j1 = j1;
    gemm(g, scratch);
  }
  return true;
}

/*
 * Splits a call over the pool: by batches, else by rows, else by columns. Returns the threads
 * used, or 0 when a thread could not allocate its scratch.
 */
int runCall(const Call &c, double minMacs = SPLIT_MIN_MACS) {
  ThreadPool &p = pool();
  int T = p.size();
  double macs = (double)c.batch * c.M * c.K * c.N;
  if (T > 1 && macs >= minMacs) {
    std::atomic<bool> ok{true};
    std::function<void(int)> part;
    if (c.batch >= T) {
      part = [&](int t) { if (!compute(c, (int)((int64_t)c.batch * t / T), (int)((int64_t)c.batch * (t + 1) / T), 0, c.M, 0, c.N)) ok = false; };
    } else if (c.M >= 32 * T) {
      auto cut = [&](int t) { return t == T ? c.M : (int)(((int64_t)c.M * t / T) / 16 * 16); };
      part = [&, cut](int t) { if (!compute(c, 0, c.batch, cut(t), cut(t + 1), 0, c.N)) ok = false; };
    } else if (c.N >= 64 * T) {
      auto cut = [&](int t) { return t == T ? c.N : (int)(((int64_t)c.N * t / T) / 32 * 32); };
      part = [&, cut](int t) { if (!compute(c, 0, c.batch, 0, c.M, cut(t), cut(t + 1))) ok = false; };
    }
    if (part && p.run(T, part)) return ok ? T : 0;
  }
  return compute(c, 0, c.batch, 0, c.M, 0, c.N) ? 1 : 0;
}

/* x * y, or INT64_MAX where it would overflow (x, y >= 0). */
int64_t mulSat(int64_t x, int64_t y) {
  if (x == 0 || y == 0) return 0;
  return x > INT64_MAX / y ? INT64_MAX : x * y;
}

napi_value throwError(napi_env env, const std::string &msg, bool range = true) {
  if (range) napi_throw_range_error(env, nullptr, msg.c_str());
  else napi_throw_type_error(env, nullptr, msg.c_str());
  return nullptr;
}

bool getInt(napi_env env, napi_value v, const char *name, int64_t &out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) {
    std::string msg = std::string(name) + " must be a non-negative integer";
    if (napi_get_value_double(env, v, &d) == napi_ok) msg += ", got " + std::to_string(d);
    napi_throw_range_error(env, nullptr, msg.c_str());
    return false;
  }
  out = (int64_t)d;
  return true;
}

/* The heap argument: a Uint8Array over the wasm memory; its bytes and length. False, with a TypeError pending, otherwise. */
bool heapArg(napi_env env, napi_value v, const char *fn, void *&data, size_t &length) {
  napi_typedarray_type type;
  napi_value ab;
  size_t byteOffset;
  bool isTa = false;
  napi_is_typedarray(env, v, &isTa);
  if (!isTa || napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &byteOffset) != napi_ok || type != napi_uint8_array) {
    throwError(env, std::string(fn) + ": heap must be a Uint8Array over the wasm memory", false);
    return false;
  }
  return true;
}

napi_value BatchMatMul(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 12) return throwError(env, "batchMatMul: expected 12 arguments, got " + std::to_string(argc), false);
  size_t length;
  void *data;
  if (!heapArg(env, argv[0], "batchMatMul", data, length)) return nullptr;
  static const char *names[] = {"heap", "a", "b", "out", "batch", "batchA", "batchB", "M", "K", "N", "ta", "tb"};
  int64_t v[12];
  for (int i = 1; i < 12; i++) {
    std::string name = std::string("batchMatMul: ") + names[i];
    if (!getInt(env, argv[i], name.c_str(), v[i])) return nullptr;
  }
  int64_t a = v[1], b = v[2], out = v[3], batch = v[4], batchA = v[5], batchB = v[6], M = v[7], K = v[8], N = v[9];
  for (int i = 4; i < 10; i++) {
    if (v[i] > INT32_MAX) return throwError(env, std::string("batchMatMul: ") + names[i] + " = " + std::to_string(v[i]) + " is too large");
  }
  if (batchA != 1 && batchA != batch) return throwError(env, "batchMatMul: batchA must be 1 or batch (" + std::to_string(batch) + "), got " + std::to_string(batchA));
  if (batchB != 1 && batchB != batch) return throwError(env, "batchMatMul: batchB must be 1 or batch (" + std::to_string(batch) + "), got " + std::to_string(batchB));
  if (v[10] > 1 || v[11] > 1) return throwError(env, "batchMatMul: ta and tb must be 0 or 1, got " + std::to_string(v[10]) + " and " + std::to_string(v[11]));
  const int64_t len = (int64_t)length;
  // Extents in bytes, saturating: a product too large for 64 bits is outside any heap.
  const int64_t aBytes = mulSat(mulSat(mulSat(batchA, M), K), 4), bBytes = mulSat(mulSat(mulSat(batchB, K), N), 4);
  const int64_t outBytes = mulSat(mulSat(mulSat(batch, M), N), 4);
  auto within = [&](const char *name, int64_t off, int64_t bytes) -> bool {
    if (off % 4 != 0) { throwError(env, std::string("batchMatMul: ") + name + " offset " + std::to_string(off) + " is not a multiple of 4"); return false; }
    if (off > len || bytes > len - off) {
      throwError(env, std::string("batchMatMul: ") + name + " [" + std::to_string(off) + ", " + (bytes == INT64_MAX ? std::string("beyond 2^63") : std::to_string(off + bytes)) +
                          ") lies outside the heap (" + std::to_string(len) + " bytes)");
      return false;
    }
    return true;
  };
  if (!within("a", a, aBytes) || !within("b", b, bBytes) || !within("out", out, outBytes)) return nullptr;
  if (outBytes > 0 && ((a < out + outBytes && out < a + aBytes) || (b < out + outBytes && out < b + bBytes))) {
    return throwError(env, "batchMatMul: out overlaps an input");
  }
  napi_value result;
  if (batch == 0 || M == 0 || N == 0) {
    napi_create_int32(env, 0, &result);
    return result;
  }
  uint8_t *heap = static_cast<uint8_t *>(data);
  if (K == 0) {
    for (int64_t i = 0; i < batch * M * N; i++) reinterpret_cast<float *>(heap + out)[i] = 0.0f;
    napi_create_int32(env, 1, &result);
    return result;
  }
  bool ta = v[10] == 1, tb = v[11] == 1;
  Call c{reinterpret_cast<const float *>(heap + a), reinterpret_cast<const float *>(heap + b), reinterpret_cast<float *>(heap + out),
         (int)batch, (int)batchA, (int)batchB, (int)M, (int)K, (int)N, ta, tb};
  int used = runCall(c);
  if (used == 0) return throwError(env, "batchMatMul: out of memory for the packing scratch (K " + std::to_string(K) + ", N " + std::to_string(N) + ")", false);
  napi_create_int32(env, used, &result);
  return result;
}

/* Elementwise calls at least this long are split over the pool. */
constexpr int64_t SPLIT_MIN_FLOATS = 1 << 16;

/*
 * Reads the heap view and the offsets of an elementwise call (names[0] is the heap; the last
 * argument is n), checks every region of n floats against the heap and the outputs (the last
 * `outputs` regions) against every other region. Returns false, with an exception pending, on a
 * bad call.
 */
bool elementwiseArgs(napi_env env, napi_callback_info info, const char *fn, size_t regions, size_t outputs, uint8_t *&heap, int64_t *offsets, int64_t &n) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != regions + 2) { throwError(env, std::string(fn) + ": expected " + std::to_string(regions + 2) + " arguments, got " + std::to_string(argc), false); return false; }
  size_t length;
  void *data;
  if (!heapArg(env, argv[0], fn, data, length)) return false;
  for (size_t i = 0; i < regions; i++) {
    std::string name = std::string(fn) + ": the offset of region " + std::to_string(i);
    if (!getInt(env, argv[1 + i], name.c_str(), offsets[i])) return false;
  }
  if (!getInt(env, argv[1 + regions], (std::string(fn) + ": n").c_str(), n)) return false;
  const int64_t len = (int64_t)length, bytes = mulSat(n, 4);
  for (size_t i = 0; i < regions; i++) {
    if (offsets[i] % 4 != 0 || offsets[i] > len || bytes > len - offsets[i]) {
      throwError(env, std::string(fn) + ": region " + std::to_string(i) + " [" + std::to_string(offsets[i]) + ", +" + std::to_string(bytes) +
                          ") is misaligned or outside the heap (" + std::to_string(len) + " bytes)");
      return false;
    }
  }
  for (size_t o = regions - outputs; o < regions; o++)
    for (size_t i = 0; i < regions; i++)
      if (i != o && bytes > 0 && offsets[i] < offsets[o] + bytes && offsets[o] < offsets[i] + bytes) {
        throwError(env, std::string(fn) + ": output region " + std::to_string(o) + " overlaps region " + std::to_string(i));
        return false;
      }
  heap = static_cast<uint8_t *>(data);
  return true;
}

/* Runs f(first, count) over [0, n), split over the pool for long calls; returns the threads used. */
template <typename F>
int elementwiseRun(int64_t n, F f) {
  ThreadPool &p = pool();
  int T = p.size();
  if (T > 1 && n >= SPLIT_MIN_FLOATS) {
    auto cut = [&](int t) { return t == T ? n : n * t / T / 64 * 64; };
    std::function<void(int)> part = [&](int t) { f((size_t)cut(t), (size_t)(cut(t + 1) - cut(t))); };
    if (p.run(T, part)) return T;
  }
  f(0, (size_t)n);
  return 1;
}

napi_value Swiglu(napi_env env, napi_callback_info info) {
  uint8_t *heap;
  int64_t o[3], n;
  if (!elementwiseArgs(env, info, "swiglu", 3, 1, heap, o, n)) return nullptr;
  const float *g = reinterpret_cast<const float *>(heap + o[0]), *u = reinterpret_cast<const float *>(heap + o[1]);
  float *out = reinterpret_cast<float *>(heap + o[2]);
  int used = elementwiseRun(n, [&](size_t i, size_t c) { current->swiglu(g + i, u + i, out + i, c); });
  napi_value r;
  napi_create_int32(env, used, &r);
  return r;
}

napi_value SwigluGrad(napi_env env, napi_callback_info info) {
  uint8_t *heap;
  int64_t o[5], n;
  if (!elementwiseArgs(env, info, "swigluGrad", 5, 2, heap, o, n)) return nullptr;
  const float *g = reinterpret_cast<const float *>(heap + o[0]), *u = reinterpret_cast<const float *>(heap + o[1]);
  const float *dy = reinterpret_cast<const float *>(heap + o[2]);
  float *dg = reinterpret_cast<float *>(heap + o[3]), *du = reinterpret_cast<float *>(heap + o[4]);
  int used = elementwiseRun(n, [&](size_t i, size_t c) { current->swigluGrad(g + i, u + i, dy + i, dg + i, du + i, c); });
  napi_value r;
  napi_create_int32(env, used, &r);
  return r;
}

napi_value IsaName(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_string_utf8(env, current->name, NAPI_AUTO_LENGTH, &r);
  return r;
}

napi_value Isas(napi_env env, napi_callback_info) {
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t n = 0;
  for (auto &i : isaTable()) {
    if (!i.supported) continue;
    napi_value s;
    napi_create_string_utf8(env, i.name, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, n++, s);
  }
  return arr;
}

napi_value UseIsa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char name[32] = {0};
  size_t got = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &got) != napi_ok) {
    return throwError(env, "useIsa: expected an instruction set name", false);
  }
  for (auto &i : isaTable()) {
    if (std::string(i.name) != name) continue;
    if (!i.supported) return throwError(env, std::string("useIsa: this CPU has no ") + name);
    current = &i;
    return nullptr;
  }
  return throwError(env, std::string("useIsa: unknown instruction set \"") + name + "\" (avx512, avx2, generic)");
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_int32(env, pool().size(), &r);
  return r;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t n;
  if (argc < 1 || !getInt(env, argv[0], "setThreads: threads", n)) return nullptr;
  if (n < 1 || n > 256) return throwError(env, "setThreads: threads must be 1 to 256, got " + std::to_string(n));
  pool().resize((int)n);
  return nullptr;
}

}  // namespace

int matmulF32(const float *a, const float *b, float *c, int M, int K, int N, bool ta, bool tb) {
  return runCall(Call{a, b, c, 1, 1, 1, M, K, N, ta, tb}, DECODE_SPLIT_MIN_MACS);
}

void swigluF32(const float *g, const float *u, float *out, size_t n) { current->swiglu(g, u, out, n); }

const char *currentIsaName() { return current->name; }

int parallelParts() { return pool().size(); }

bool worthSplitting(double macs) { return macs >= DECODE_SPLIT_MIN_MACS; }

void runParts(int parts, const std::function<void(int)> &part) {
  if (parts <= 1 || !pool().run(parts, part)) for (int p = 0; p < parts; p++) part(p);
}

}  // namespace oeld

NAPI_MODULE_INIT() {
  using namespace oeld;
  if (!current) {
    for (auto &i : isaTable()) {
      if (i.supported) { current = &i; break; }
    }
  }
  struct Fn { const char *name; napi_callback cb; } fns[] = {
      {"batchMatMul", BatchMatMul}, {"swiglu", Swiglu}, {"swigluGrad", SwigluGrad}, {"isa", IsaName}, {"isas", Isas}, {"useIsa", UseIsa}, {"threads", Threads}, {"setThreads", SetThreads},
  };
  for (auto &f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  registerDecoder(env, exports);
  return exports;
}
