/*
 * Batched float32 matmul with WebAssembly SIMD, for the tfjs WebAssembly backend.
 *
 * tfjs-backend-wasm 4.22 sends only plain 2-D matmuls to XNNPACK; a batched or transposed matmul
 * (attention's scores and context, and every gradient matmul) falls to a scalar loop at about
 * 1-2 GFLOP/s. This kernel covers those cases. It runs on the tensors where tfjs keeps them: the
 * module imports the backend's own memory, and every argument is a byte offset into it.
 *
 * For each batch: out[M, N] = op(a)[M, K] @ op(b)[K, N], op = transpose where asked.
 * b is first packed (from either layout) into panels of 8 columns, [K][8] each, zero-padded, in
 * `scratch` (at least K * roundUp(N, 8) floats); a is read with strides, so its layout costs
 * nothing. A 4x8 register block then accumulates 8 vectors of 4 floats over k.
 *
 * No static data and no stack: the module must never write to memory it was not handed.
 */
#include <wasm_simd128.h>

/*
 * a * b + c. Built with RELAXED (and -mrelaxed-simd), one f32x4.relaxed_madd: a fused
 * multiply-add where the CPU has one (x86 FMA3), else a multiply and an add; so results may differ
 * in the last bit from one machine to another. Without, always a multiply and an add.
 */
#ifdef RELAXED
#define MADD(a, b, c) ((v128_t)__builtin_wasm_relaxed_madd_f32x4((__f32x4)(a), (__f32x4)(b), (__f32x4)(c)))
#else
#define MADD(a, b, c) wasm_f32x4_add((c), wasm_f32x4_mul((a), (b)))
#endif

typedef unsigned int u32;

/* Transposes the 4x4 block r0..r3 (rows of 4) in place: r0 becomes column 0, and so on. */
#define TRANSPOSE4(r0, r1, r2, r3) do { \
    v128_t t0_ = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5); \
    v128_t t1_ = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7); \
    v128_t t2_ = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5); \
    v128_t t3_ = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7); \
    r0 = wasm_i32x4_shuffle(t0_, t2_, 0, 1, 4, 5); \
    r1 = wasm_i32x4_shuffle(t0_, t2_, 2, 3, 6, 7); \
    r2 = wasm_i32x4_shuffle(t1_, t3_, 0, 1, 4, 5); \
    r3 = wasm_i32x4_shuffle(t1_, t3_, 2, 3, 6, 7); \
  } while (0)

/*
 * Packs rows [0, kc) of op(b) into panels of 8 columns, [kc][8] each, zero-padding the last
 * panel. Element (k, j) of op(b) is b[k * ld + j], or b[j * ld + k] with transB.
 */
static void pack_b(const float *b, float *panel, u32 kc, u32 N, u32 ld, int transB) {
  u32 panels = (N + 7) / 8;
  for (u32 p = 0; p < panels; p++) {
    float *dst = panel + p * kc * 8;
    u32 j0 = p * 8;
    u32 w = N - j0 < 8 ? N - j0 : 8;
    u32 k = 0;
    if (w == 8 && !transB) {
      for (; k < kc; k++) {
        wasm_v128_store(dst + k * 8, wasm_v128_load(b + k * ld + j0));
        wasm_v128_store(dst + k * 8 + 4, wasm_v128_load(b + k * ld + j0 + 4));
      }
    } else if (w == 8) {
      /* Rows j0..j0+7 of b hold the panel's columns: transpose 4x4 blocks of them. */
      const float *r = b + j0 * ld;
      for (; k + 4 <= kc; k += 4) {
        v128_t a0 = wasm_v128_load(r + 0 * ld + k), a1 = wasm_v128_load(r + 1 * ld + k);
        v128_t a2 = wasm_v128_load(r + 2 * ld + k), a3 = wasm_v128_load(r + 3 * ld + k);
        v128_t b0 = wasm_v128_load(r + 4 * ld + k), b1 = wasm_v128_load(r + 5 * ld + k);
        v128_t b2 = wasm_v128_load(r + 6 * ld + k), b3 = wasm_v128_load(r + 7 * ld + k);
        TRANSPOSE4(a0, a1, a2, a3);
        TRANSPOSE4(b0, b1, b2, b3);
        float *d = dst + k * 8;
        wasm_v128_store(d, a0); wasm_v128_store(d + 4, b0);
        wasm_v128_store(d + 8, a1); wasm_v128_store(d + 12, b1);
        wasm_v128_store(d + 16, a2); wasm_v128_store(d + 20, b2);
        wasm_v128_store(d + 24, a3); wasm_v128_store(d + 28, b3);
      }
    }
    for (; k < kc; k++) {
      for (u32 j = 0; j < 8; j++) {
        float v = 0.0f;
        if (j < w) v = transB ? b[(j0 + j) * ld + k] : b[k * ld + j0 + j];
        dst[k * 8 + j] = v;
      }
    }
  }
}

static inline void put(float *c, float v, int acc) { *c = acc ? *c + v : v; }

/* Writes (or, with acc, adds) the first w <= 8 columns of one row of the block. */
static inline void store_row(float *c, v128_t lo, v128_t hi, u32 w, int acc) {
  if (w == 8) {
    if (acc) { lo = wasm_f32x4_add(lo, wasm_v128_load(c)); hi = wasm_f32x4_add(hi, wasm_v128_load(c + 4)); }
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  /* Lane by lane (no local array: the module has no stack). */
  if (w > 0) put(c + 0, wasm_f32x4_extract_lane(lo, 0), acc);
  if (w > 1) put(c + 1, wasm_f32x4_extract_lane(lo, 1), acc);
  if (w > 2) put(c + 2, wasm_f32x4_extract_lane(lo, 2), acc);
  if (w > 3) put(c + 3, wasm_f32x4_extract_lane(lo, 3), acc);
  if (w > 4) put(c + 4, wasm_f32x4_extract_lane(hi, 0), acc);
  if (w > 5) put(c + 5, wasm_f32x4_extract_lane(hi, 1), acc);
  if (w > 6) put(c + 6, wasm_f32x4_extract_lane(hi, 2), acc);
}

/*
 * Rows [r0, r1) of c[M, N] (row stride N) = (or, with acc, +=) a @ panel over kc, where element
 * (i, k) of a is a[i * sai + k * sak].
 */
static void matmul_block(const float *a, const float *panel, float *c, u32 r0, u32 r1, u32 kc, u32 N, u32 sai, u32 sak, int acc) {
  u32 panels = (N + 7) / 8;
  u32 i = r0;
  for (; i + 4 <= r1; i += 4) {
    const float *a0 = a + i * sai;
    const float *a1 = a0 + sai;
    const float *a2 = a1 + sai;
    const float *a3 = a2 + sai;
    for (u32 p = 0; p < panels; p++) {
      const float *bp = panel + p * kc * 8;
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (u32 k = 0; k < kc; k++) {
        v128_t b0 = wasm_v128_load(bp + k * 8);
        v128_t b1 = wasm_v128_load(bp + k * 8 + 4);
        u32 ak = k * sak;
        v128_t x0 = wasm_f32x4_splat(a0[ak]);
        v128_t x1 = wasm_f32x4_splat(a1[ak]);
        v128_t x2 = wasm_f32x4_splat(a2[ak]);
        v128_t x3 = wasm_f32x4_splat(a3[ak]);
        c00 = MADD(x0, b0, c00); c01 = MADD(x0, b1, c01);
        c10 = MADD(x1, b0, c10); c11 = MADD(x1, b1, c11);
        c20 = MADD(x2, b0, c20); c21 = MADD(x2, b1, c21);
        c30 = MADD(x3, b0, c30); c31 = MADD(x3, b1, c31);
      }
      u32 j0 = p * 8;
      u32 w = N - j0 < 8 ? N - j0 : 8;
      store_row(c + (i + 0) * N + j0, c00, c01, w, acc);
      store_row(c + (i + 1) * N + j0, c10, c11, w, acc);
      store_row(c + (i + 2) * N + j0, c20, c21, w, acc);
      store_row(c + (i + 3) * N + j0, c30, c31, w, acc);
    }
  }
  for (; i < r1; i++) {
    const float *a0 = a + i * sai;
    for (u32 p = 0; p < panels; p++) {
      const float *bp = panel + p * kc * 8;
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00;
      for (u32 k = 0; k < kc; k++) {
        v128_t x0 = wasm_f32x4_splat(a0[k * sak]);
        c00 = MADD(x0, wasm_v128_load(bp + k * 8), c00);
        c01 = MADD(x0, wasm_v128_load(bp + k * 8 + 4), c01);
      }
      u32 j0 = p * 8;
      u32 w = N - j0 < 8 ? N - j0 : 8;
      store_row(c + i * N + j0, c00, c01, w, acc);
    }
  }
}

/* Depth of one pass: a packed panel of KC x 8 floats (8 KB) stays in the L1 cache. */
#define KC 256

/* Floats of scratch that batch_matmul needs for N columns. */
__attribute__((export_name("scratch_floats")))
u32 scratch_floats(u32 K, u32 N) {
  return (K < KC ? K : KC) * ((N + 7) / 8) * 8;
}

/*
 * Rows [rowFirst, rowLast) of batches [first, last) of out[batch][M][N] = op(a[batch]) @ op(b[batch]).
 * A side whose batch count is 1 is broadcast. a: [batchA][M][K], or [batchA][K][M] with transA;
 * b: [batchB][K][N], or [batchB][N][K] with transB. `scratch` holds scratch_floats(K, N) floats.
 * Two threads split a call by batches, or by rows when there is one batch.
 */
__attribute__((export_name("batch_matmul")))
void batch_matmul(const float *a, const float *b, float *out, float *scratch,
                  u32 first, u32 last, u32 rowFirst, u32 rowLast, u32 batchA, u32 batchB,
                  u32 M, u32 K, u32 N, u32 transA, u32 transB) {
  u32 sai = transA ? 1 : K;
  u32 sak = transA ? M : 1;
  for (u32 i = first; i < last; i++) {
    const float *ai = a + (batchA == 1 ? 0 : i) * M * K;
    const float *bi = b + (batchB == 1 ? 0 : i) * K * N;
    float *oi = out + i * M * N;
    for (u32 k0 = 0; k0 < K; k0 += KC) {
      u32 kc = K - k0 < KC ? K - k0 : KC;
      /* One pass over all of K with a broadcast b: its packing serves every batch. */
      if (i == first || batchB != 1 || K > KC) {
        pack_b(transB ? bi + k0 : bi + k0 * N, scratch, kc, N, transB ? K : N, (int)transB);
      }
      matmul_block(ai + k0 * sak, scratch, oi, rowFirst, rowLast, kc, N, sai, sak, k0 > 0);
    }
  }
}
