/*
 * Elementwise float32 kernels with WebAssembly SIMD, for the tfjs WebAssembly backend: exp and
 * sigmoid (the backend's own compute each element with a scalar libm call, about 13 ns per
 * element; these take about 3); SwiGLU's gate silu(g) * u, RMSNorm and the rotary embedding, one
 * pass each way where tfjs's ops take several; attention's softmax gradient; an AdamW step; a sum
 * of squares. Like batch-matmul.c, the module imports the backend's memory and has no stack and no
 * data of its own.
 *
 * exp(x) = 2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (in two parts, Cody-Waite), p a degree-6
 * Taylor polynomial on |r| <= ln 2 / 2 (relative error below 2e-7). 2^n is applied in two halves so
 * that results in the subnormal range and overflow to infinity come out right; x is clamped to
 * [-104, 89] first (exp is 0 below, +inf above, in float32). NaN stays NaN.
 */
#include <wasm_simd128.h>

typedef unsigned int u32;

static inline v128_t exp4(v128_t x) {
  const v128_t log2e = wasm_f32x4_splat(1.44269504088896341f);
  const v128_t ln2hi = wasm_f32x4_splat(0.693359375f);
  const v128_t ln2lo = wasm_f32x4_splat(-2.12194440e-4f);
  /* 1.5 * 2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits. */
  const v128_t magic = wasm_f32x4_splat(12582912.0f);
  /* pmax/pmin (one instruction each) keep a NaN x as it is: the comparisons are false. */
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, wasm_f32x4_splat(-104.0f)), wasm_f32x4_splat(89.0f));
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, log2e), magic);
  v128_t n = wasm_f32x4_sub(t, magic);
  v128_t ni = wasm_i32x4_sub(t, magic);
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(n, ln2hi)), wasm_f32x4_mul(n, ln2lo));
  v128_t p = wasm_f32x4_splat(1.0f / 720.0f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 120.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 24.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f / 6.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.0f));
  /* 2^n = 2^n1 * 2^n2 with n1 = n >> 1, n2 = n - n1, each a normal float's exponent. */
  v128_t n1 = wasm_i32x4_shr(ni, 1);
  v128_t n2 = wasm_i32x4_sub(ni, n1);
  v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, wasm_i32x4_splat(127)), 23);
  v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
}

static inline float exp1(float v) { return wasm_f32x4_extract_lane(exp4(wasm_f32x4_splat(v)), 0); }

/* out[i] = exp(x[i]) for i < n. out may be x. */
__attribute__((export_name("exp_f32")))
void exp_f32(const float *x, float *out, u32 n) {
  u32 i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t a = wasm_v128_load(x + i), b = wasm_v128_load(x + i + 4), c = wasm_v128_load(x + i + 8), d = wasm_v128_load(x + i + 12);
    wasm_v128_store(out + i, exp4(a));
    wasm_v128_store(out + i + 4, exp4(b));
    wasm_v128_store(out + i + 8, exp4(c));
    wasm_v128_store(out + i + 12, exp4(d));
  }
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, exp4(wasm_v128_load(x + i)));
  for (; i < n; i++) out[i] = exp1(x[i]);
}

/* out[i] = 1 / (1 + exp(-x[i])) for i < n. out may be x. */
__attribute__((export_name("sigmoid_f32")))
void sigmoid_f32(const float *x, float *out, u32 n) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  u32 i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t e = exp4(wasm_f32x4_neg(wasm_v128_load(x + i)));
    wasm_v128_store(out + i, wasm_f32x4_div(one, wasm_f32x4_add(one, e)));
  }
  for (; i < n; i++) out[i] = 1.0f / (1.0f + exp1(-x[i]));
}

/* sigmoid of 4 lanes. */
static inline v128_t sigmoid4(v128_t g) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  return wasm_f32x4_div(one, wasm_f32x4_add(one, exp4(wasm_f32x4_neg(g))));
}

/* SwiGLU's gate: out[i] = silu(g[i]) * u[i] = g[i] * sigmoid(g[i]) * u[i]. */
__attribute__((export_name("swiglu_f32")))
void swiglu_f32(const float *g, const float *u, float *out, u32 n) {
  u32 i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i);
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_f32x4_mul(gv, sigmoid4(gv)), wasm_v128_load(u + i)));
  }
  for (; i < n; i++) { float s = 1.0f / (1.0f + exp1(-g[i])); out[i] = g[i] * s * u[i]; }
}

/*
 * Its gradient, given dy: du = dy * silu(g), dg = dy * u * silu'(g), where
 * silu'(g) = s + g * s * (1 - s), s = sigmoid(g).
 */
__attribute__((export_name("swiglu_grad_f32")))
void swiglu_grad_f32(const float *g, const float *u, const float *dy, float *dg, float *du, u32 n) {
  const v128_t one = wasm_f32x4_splat(1.0f);
  u32 i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i), uv = wasm_v128_load(u + i), d = wasm_v128_load(dy + i);
    v128_t s = sigmoid4(gv);
    v128_t silu = wasm_f32x4_mul(gv, s);
    wasm_v128_store(du + i, wasm_f32x4_mul(d, silu));
    v128_t dsilu = wasm_f32x4_add(s, wasm_f32x4_mul(silu, wasm_f32x4_sub(one, s)));
    wasm_v128_store(dg + i, wasm_f32x4_mul(wasm_f32x4_mul(d, uv), dsilu));
  }
  for (; i < n; i++) {
    float s = 1.0f / (1.0f + exp1(-g[i]));
    float silu = g[i] * s;
    du[i] = dy[i] * silu;
    dg[i] = dy[i] * u[i] * (s + silu * (1.0f - s));
  }
}

static inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

/* Sum of a[j] * b[j] for j < H. */
static inline float dot(const float *a, const float *b, u32 H) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  u32 j = 0;
  for (; j + 4 <= H; j += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + j), wasm_v128_load(b + j)));
  float s = hsum(acc);
  for (; j < H; j++) s += a[j] * b[j];
  return s;
}

static inline float inv_rms(const float *x, u32 H, float eps) {
  return 1.0f / __builtin_sqrtf(dot(x, x, H) / (float)H + eps);
}

/* RMSNorm over rows of H: out[r, j] = x[r, j] * inv[r] * w[j], inv[r] = 1 / sqrt(mean(x[r]^2) + eps). */
__attribute__((export_name("rmsnorm_f32")))
void rmsnorm_f32(const float *x, const float *w, float *out, u32 rows, u32 H, float eps) {
  for (u32 r = 0; r < rows; r++) {
    const float *xr = x + r * H;
    float *o = out + r * H;
    v128_t inv = wasm_f32x4_splat(inv_rms(xr, H, eps));
    u32 j = 0;
    for (; j + 4 <= H; j += 4) wasm_v128_store(o + j, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(xr + j), inv), wasm_v128_load(w + j)));
    float s = wasm_f32x4_extract_lane(inv, 0);
    for (; j < H; j++) o[j] = xr[j] * s * w[j];
  }
}

/*
 * Its gradient, given dy: dw[j] = sum over r of dy[r, j] x[r, j] inv[r], and with
 * gw = dy * w: dx[r, j] = inv[r] gw[r, j] - x[r, j] inv[r]^3 / H * sum over j of gw[r, j] x[r, j].
 */
__attribute__((export_name("rmsnorm_grad_f32")))
void rmsnorm_grad_f32(const float *x, const float *w, const float *dy, float *dx, float *dw, u32 rows, u32 H, float eps) {
  for (u32 j = 0; j < H; j++) dw[j] = 0.0f;
  for (u32 r = 0; r < rows; r++) {
    const float *xr = x + r * H;
    const float *dyr = dy + r * H;
    float *dxr = dx + r * H;
    float inv = inv_rms(xr, H, eps);
    /* sum of gw * x = sum of dy * w * x */
    v128_t acc = wasm_f32x4_splat(0.0f);
    u32 j = 0;
    for (; j + 4 <= H; j += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(dyr + j), wasm_v128_load(w + j)), wasm_v128_load(xr + j)));
    float sgx = hsum(acc);
    for (; j < H; j++) sgx += dyr[j] * w[j] * xr[j];
    float c = inv * inv * inv * sgx / (float)H;
    v128_t invv = wasm_f32x4_splat(inv), cv = wasm_f32x4_splat(c);
    j = 0;
    for (; j + 4 <= H; j += 4) {
      v128_t xv = wasm_v128_load(xr + j), dv = wasm_v128_load(dyr + j);
      wasm_v128_store(dxr + j, wasm_f32x4_sub(wasm_f32x4_mul(invv, wasm_f32x4_mul(dv, wasm_v128_load(w + j))), wasm_f32x4_mul(xv, cv)));
      wasm_v128_store(dw + j, wasm_f32x4_add(wasm_v128_load(dw + j), wasm_f32x4_mul(wasm_f32x4_mul(dv, xv), invv)));
    }
    for (; j < H; j++) {
      dxr[j] = inv * dyr[j] * w[j] - xr[j] * c;
      dw[j] += dyr[j] * xr[j] * inv;
    }
  }
}

/*
 * One AdamW step (as torch.optim.AdamW) on n parameters, the gradient first scaled by gs (global
 * norm clipping):
 *   m' = b1 m + (1 - b1) g,  v' = b2 v + (1 - b2) g^2,
 *   p' = p - lr ((m' / c1) / (sqrt(v' / c2) + eps) + wd p),   c1 = 1 - b1^t, c2 = 1 - b2^t.
 * The same operations in the same order as adamw.ts's composite, in float32; outputs may not alias
 * inputs.
 */
__attribute__((export_name("adamw_f32")))
void adamw_f32(const float *p, const float *g, const float *m, const float *v, float *po, float *mo, float *vo, u32 n,
               float lr, float b1, float b2, float eps, float wd, float c1, float c2, float gs) {
  v128_t B1 = wasm_f32x4_splat(b1), B1c = wasm_f32x4_splat(1.0f - b1), B2 = wasm_f32x4_splat(b2), B2c = wasm_f32x4_splat(1.0f - b2);
  v128_t LR = wasm_f32x4_splat(lr), EPS = wasm_f32x4_splat(eps), WD = wasm_f32x4_splat(wd), C1 = wasm_f32x4_splat(c1), C2 = wasm_f32x4_splat(c2), GS = wasm_f32x4_splat(gs);
  u32 i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_f32x4_mul(wasm_v128_load(g + i), GS);
    v128_t pv = wasm_v128_load(p + i);
    v128_t m1 = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), B1), wasm_f32x4_mul(gv, B1c));
    v128_t v1 = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), B2), wasm_f32x4_mul(wasm_f32x4_mul(gv, gv), B2c));
    v128_t den = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(v1, C2)), EPS);
    v128_t upd = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_div(m1, C1), den), wasm_f32x4_mul(pv, WD));
    wasm_v128_store(mo + i, m1);
    wasm_v128_store(vo + i, v1);
    wasm_v128_store(po + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(upd, LR)));
  }
  for (; i < n; i++) {
    float gi = g[i] * gs;
    float m1 = m[i] * b1 + gi * (1.0f - b1);
    float v1 = v[i] * b2 + gi * gi * (1.0f - b2);
    float upd = (m1 / c1) / (__builtin_sqrtf(v1 / c2) + eps) + p[i] * wd;
    mo[i] = m1;
    vo[i] = v1;
    po[i] = p[i] - upd * lr;
  }
}

/* Sum of x[i]^2 for i < n, accumulated in float64. */
__attribute__((export_name("sum_squares_f32")))
double sum_squares_f32(const float *x, u32 n) {
  v128_t acc0 = wasm_f64x2_splat(0.0), acc1 = wasm_f64x2_splat(0.0);
  u32 i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t xv = wasm_v128_load(x + i);
    v128_t lo = wasm_f64x2_promote_low_f32x4(xv);
    v128_t hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(xv, xv, 2, 3, 0, 1));
    acc0 = wasm_f64x2_add(acc0, wasm_f64x2_mul(lo, lo));
    acc1 = wasm_f64x2_add(acc1, wasm_f64x2_mul(hi, hi));
  }
  v128_t acc = wasm_f64x2_add(acc0, acc1);
  double s = wasm_f64x2_extract_lane(acc, 0) + wasm_f64x2_extract_lane(acc, 1);
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

/*
 * The gradient of softmax(x * scale + mask) (attention's probabilities p) with respect to x, given
 * dp: scale * p * (dp - sum(dp * p)) per row of S.
 */
__attribute__((export_name("scaled_softmax_grad_f32")))
void scaled_softmax_grad_f32(const float *p, const float *dp, float *dx, u32 rows, u32 S, float scale) {
  for (u32 r = 0; r < rows; r++) {
    const float *pr = p + r * S, *dr = dp + r * S;
    float *o = dx + r * S;
    float s = dot(pr, dr, S);
    v128_t sv = wasm_f32x4_splat(s), sc = wasm_f32x4_splat(scale);
    u32 j = 0;
    for (; j + 4 <= S; j += 4) {
      v128_t pv = wasm_v128_load(pr + j);
      wasm_v128_store(o + j, wasm_f32x4_mul(sc, wasm_f32x4_mul(pv, wasm_f32x4_sub(wasm_v128_load(dr + j), sv))));
    }
    for (; j < S; j++) o[j] = scale * (pr[j] * (dr[j] - s));
  }
}

/*
 * Rotary position embedding (the Hugging Face convention), for x [rows, H, d] and cos, sin
 * [rows, d] shared by the H heads, each half of a row equal to the other (cos = [c, c]):
 *   out = x * cos + sign * rotate_half(x) * sin,   rotate_half([x1, x2]) = [-x2, x1].
 * sign = 1 is the embedding; sign = -1 its gradient (rotate_half's transpose is minus itself, and
 * the halves of sin are equal). d is even; out may not be x.
 */
__attribute__((export_name("rope_f32")))
void rope_f32(const float *x, const float *cs, const float *sn, float *out, u32 rows, u32 H, u32 d, float sign) {
  u32 half = d / 2;
  v128_t sg = wasm_f32x4_splat(sign);
  for (u32 r = 0; r < rows; r++) {
    const float *c = cs + r * d, *s = sn + r * d;
    for (u32 h = 0; h < H; h++) {
      const float *xr = x + (r * H + h) * d;
      float *o = out + (r * H + h) * d;
      u32 i = 0;
      for (; i + 4 <= half; i += 4) {
        v128_t x1 = wasm_v128_load(xr + i), x2 = wasm_v128_load(xr + half + i);
        v128_t ss = wasm_f32x4_mul(wasm_v128_load(s + i), sg);
        wasm_v128_store(o + i, wasm_f32x4_sub(wasm_f32x4_mul(x1, wasm_v128_load(c + i)), wasm_f32x4_mul(x2, ss)));
        wasm_v128_store(o + half + i, wasm_f32x4_add(wasm_f32x4_mul(x2, wasm_v128_load(c + half + i)), wasm_f32x4_mul(x1, ss)));
      }
      for (; i < half; i++) {
        float x1 = xr[i], x2 = xr[half + i], ss = s[i] * sign;
        o[i] = x1 * c[i] - x2 * ss;
        o[half + i] = x2 * c[half + i] + x1 * ss;
      }
    }
  }
}
