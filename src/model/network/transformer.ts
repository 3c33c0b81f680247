import * as tf from '@tensorflow/tfjs-core';
import './register-gradients.ts';
import { tensorNames, type ResolvedConfig } from './model-config.ts';
import { rmsNorm } from './rms-norm.ts';
import { scaledMaskedSoftmax } from './attention-softmax.ts';
import { applyRotary, rotateHalfMatrix } from './rotary.ts';
import { ropeFrequencies, type RopeSpec } from './rope-frequencies.ts';
import { swiglu } from './swiglu.ts';

/** A float32 tensor as checkpoints hold it: Hugging Face orientation ([out, in] for linear layers). */
export interface HostTensor { shape: number[]; data: Float32Array }

/**
 * y = x @ w for 2-D x [n, in] and w [in, out]. Its gradient's transposed matmuls run on oeld's
 * SIMD kernel on the WebAssembly backend (wasm-batch-matmul.ts), as fast as plain ones.
 */
export const linear = (x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D => tf.matMul(x, w);

interface LayerParams {
  inputNorm: tf.Variable; postNorm: tf.Variable;
  q: tf.Variable; k: tf.Variable; v: tf.Variable; o: tf.Variable;
  qBias?: tf.Variable; kBias?: tf.Variable; vBias?: tf.Variable; oBias?: tf.Variable;
  qNorm?: tf.Variable; kNorm?: tf.Variable;
  gate: tf.Variable; up: tf.Variable; down: tf.Variable;
}

/** Per layer: keys and values of the positions seen so far, [batch, kvHeads, length, headDim]. */
/**
 * Keys and values of earlier positions, per layer [batch, kvHeads, S, headDim], in two parts: a
 * prefix that stays as it is from step to step, and a short tail that grows by the tokens decoded
 * since (folded into the prefix every TAIL_FOLD tokens). Decoding then copies only the tail each
 * step: copying the whole cache each step (prompt included) grows the WebAssembly heap, which
 * never shrinks, by a new, slightly longer block per step, until it reaches its 4 GiB cap.
 * A new cache shares the prefix tensors of the cache it extends; see disposeCache.
 */
export interface KVCache { layers: { k: tf.Tensor4D; v: tf.Tensor4D; kTail?: tf.Tensor4D; vTail?: tf.Tensor4D }[]; length: number }

/** Tail length at which the tail is folded into the prefix. */
export const TAIL_FOLD = 64;

export interface ForwardOptions {
  /** Absolute positions of the input tokens [batch][T]; default cache length + t. */
  positions?: number[][];
  /** 1 for a real token, 0 for padding, over cache + input [batch][cacheLength + T]; default all 1. */
  attentionMask?: number[][];
  /** Keys/values of earlier positions; when given, the new ones are returned in `cache`. */
  cache?: KVCache;
  /** Return the cache extended by this input (for incremental decoding). */
  returnCache?: boolean;
  /**
   * Compute logits only at these rows of the flattened [batch * T] input (row b * T + t); the
   * result is then [1, rows.length, vocab]. Training needs logits only where a response token is
   * predicted, and the output layer over every prompt position is a large share of a step.
   */
  outputRows?: number[];
}

const LINEAR_KEYS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

/**
 * One decoder-only transformer for the Llama, Qwen2 and Qwen3 families: RMSNorm, rotary position
 * embeddings, SwiGLU MLP, grouped-query attention, optional q/k/v(/o) biases, optional per-head
 * q/k RMSNorm, tied or untied embeddings. Linear weights are held transposed ([in, out]) so that
 * every projection is a plain matmul.
 */
export class Transformer {
  readonly embed: tf.Variable;
  readonly layers: LayerParams[];
  readonly finalNorm: tf.Variable;
  readonly lmHead?: tf.Variable;
  private readonly invFreq: Float64Array;
  /** What cos and sin are multiplied by (yarn's attention factor; 1 otherwise). */
  private readonly attentionScaling: number;
  private readonly rotateHalf: tf.Tensor2D;

  private constructor(readonly config: ResolvedConfig, tensors: (name: string) => tf.Tensor | undefined, readonly trainable: boolean, readonly id: string) {
    const need = (name: string, transpose = false): tf.Variable => {
      const t = tensors(name);
      if (!t) throw new Error(`checkpoint is missing tensor ${name}`);
      const value = transpose ? tf.transpose(t) : t;
      const v = tf.variable(value, trainable, `${id}/${name}`);
      if (value !== t) value.dispose();
      return v;
    };
    const c = config;
    this.embed = need(tensorNames.embed);
    this.layers = Array.from({ length: c.layers }, (_, i) => {
      const n = tensorNames.layer(i);
      const p: LayerParams = {
        inputNorm: need(n.inputNorm), postNorm: need(n.postNorm),
        q: need(n.q, true), k: need(n.k, true), v: need(n.v, true), o: need(n.o, true),
        gate: need(n.gate, true), up: need(n.up, true), down: need(n.down, true),
      };
      if (c.qkvBias) { p.qBias = need(n.qBias); p.kBias = need(n.kBias); p.vBias = need(n.vBias); }
      if (c.oBias) p.oBias = need(n.oBias);
      if (c.qkNorm) { p.qNorm = need(n.qNorm); p.kNorm = need(n.kNorm); }
      return p;
    });
    this.finalNorm = need(tensorNames.finalNorm);
    if (!c.tiedEmbeddings) this.lmHead = need(tensorNames.lmHead, true);
    this.rotateHalf = tf.keep(rotateHalfMatrix(c.headDim)); // kept: a model may be built inside a tidy
    const rope = ropeFrequencies(this.ropeSpec);
    this.invFreq = rope.invFreq;
    this.attentionScaling = rope.attentionScaling;
  }

  private get ropeSpec(): RopeSpec {
    return { theta: this.config.ropeTheta, headDim: this.config.headDim, maxPositions: this.config.maxPositions, scaling: this.config.ropeScaling };
  }

  /** Builds the model from Hugging Face tensors (names and orientation as in the checkpoint). */
  static fromTensors(config: ResolvedConfig, tensors: Map<string, HostTensor>, options: { trainable?: boolean; id?: string } = {}): Transformer {
    const made: tf.Tensor[] = [];
    try {
      return new Transformer(config, (name) => {
        const h = tensors.get(name);
        if (!h) return undefined;
        const t = tf.tensor(h.data, h.shape, 'float32');
        made.push(t);
        return t;
      }, options.trainable ?? true, options.id ?? `m${Math.random().toString(36).slice(2, 8)}`);
    } finally {
      for (const t of made) t.dispose();
    }
  }

  /** A copy with its own variables (e.g. the frozen round-start teacher: trainable false). */
  clone(options: { trainable?: boolean; id?: string } = {}): Transformer {
    return Transformer.fromTensors(this.config, this.toTensors(), options);
  }

  /** Every variable in Hugging Face naming and orientation. */
  namedVariables(): [string, tf.Variable, boolean][] {
    const out: [string, tf.Variable, boolean][] = [[tensorNames.embed, this.embed, false], [tensorNames.finalNorm, this.finalNorm, false]];
    if (this.lmHead) out.push([tensorNames.lmHead, this.lmHead, true]);
    this.layers.forEach((p, i) => {
      const n = tensorNames.layer(i);
      out.push([n.inputNorm, p.inputNorm, false], [n.postNorm, p.postNorm, false]);
      for (const key of LINEAR_KEYS) out.push([n[key], p[key], true]);
      for (const key of ['qBias', 'kBias', 'vBias', 'oBias', 'qNorm', 'kNorm'] as const) if (p[key]) out.push([n[key], p[key]!, false]);
    });
    return out;
  }

  get variables(): tf.Variable[] { return this.namedVariables().map(([, v]) => v); }

  /**
   * The weights as the native decoder takes them (native/cpu/decoder.cc): embed, finalNorm,
   * lmHead ([hidden, vocab] as held; empty when tied), then per layer the norms, projections as
   * held ([in, out]), biases and q/k norms (empty where absent) and the MLP. Copies.
   */
  decoderWeights(): { weights: Float32Array[]; invFreq: Float64Array } {
    const data = (v: tf.Variable | undefined) => (v ? Float32Array.from(v.dataSync() as Float32Array) : new Float32Array(0));
    // yarn's attention factor k scales cos and sin, so both q and k after the rotary embedding, so
    // the scores by k^2: the same as the query side times k^2 (after its norm, where it has one).
    const k2 = this.attentionScaling ** 2;
    const query = (v: tf.Variable | undefined) => { const x = data(v); if (k2 !== 1) for (let i = 0; i < x.length; i++) x[i] = x[i]! * k2; return x; };
    const weights = [data(this.embed), data(this.finalNorm), data(this.lmHead)];
    for (const p of this.layers) {
      const qNormed = p.qNorm !== undefined;
      weights.push(data(p.inputNorm), data(p.postNorm), qNormed ? data(p.q) : query(p.q), data(p.k), data(p.v), data(p.o),
        qNormed ? data(p.qBias) : query(p.qBias), data(p.kBias), data(p.vBias), data(p.oBias), qNormed ? query(p.qNorm) : data(p.qNorm), data(p.kNorm), data(p.gate), data(p.up), data(p.down));
    }
    return { weights, invFreq: Float64Array.from(this.invFreq) };
  }

  /** The weights as Hugging Face tensors (linear weights transposed back to [out, in]). */
  toTensors(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [name, v, transposed] of this.namedVariables()) {
      const t = transposed ? tf.transpose(v) : v;
      out.set(name, { shape: t.shape.slice(), data: t.dataSync() as Float32Array });
      if (t !== v) t.dispose();
    }
    return out;
  }

  parameterCount(): number { return this.variables.reduce((n, v) => n + v.size, 0); }

  /**
   * Logits [batch, T, vocab] for input ids [batch][T] (all rows the same length; pad and mask
   * them). With returnCache, also the cache extended by this input.
   */
  forward(inputIds: number[][], o: ForwardOptions = {}): { logits: tf.Tensor3D; cache?: KVCache } {
    const c = this.config;
    const B = inputIds.length;
    const T = inputIds[0]?.length ?? 0;
    if (B === 0 || T === 0 || inputIds.some((r) => r.length !== T)) throw new Error('forward: input must be a non-empty [batch][T] array of equal-length rows');
    const past = o.cache?.length ?? 0;
    const S = past + T;
    const positions = o.positions ?? inputIds.map(() => Array.from({ length: T }, (_, t) => past + t));
    const mask = this.additiveMask(B, T, S, past, o.attentionMask);
    const [cos, sin] = this.rotary(positions);
    const newCache: KVCache = { layers: [], length: S };
    const logits = tf.tidy(() => {
      const ids = tf.tensor1d(inputIds.flat(), 'int32');
      let x = tf.gather(this.embed, ids) as tf.Tensor2D; // [B*T, hidden]
      // One scope per layer: a layer's intermediates (attention scores above all) are freed before
      // the next layer runs, so inference holds one layer's worth at a time (training's tape keeps
      // its own copies of what the backward pass needs).
      this.layers.forEach((p, li) => {
        x = tf.tidy(() => {
          const h = rmsNorm(x, p.inputNorm, c.eps);
          const { out, cache } = this.attention(h, p, B, T, cos, sin, mask, o.cache?.layers[li]);
          if (o.returnCache) newCache.layers.push(keepCacheLayer(cache));
          const x1 = tf.add(x, out) as tf.Tensor2D;
          const h2 = rmsNorm(x1, p.postNorm, c.eps);
          const g = linear(h2, p.gate as tf.Tensor2D);
          const mlp = linear(swiglu(g, linear(h2, p.up as tf.Tensor2D)), p.down as tf.Tensor2D);
          return tf.add(x1, mlp) as tf.Tensor2D;
        });
      });
      if (o.outputRows) x = tf.gather(x, tf.tensor1d(o.outputRows, 'int32')) as tf.Tensor2D;
      const hN = rmsNorm(x, this.finalNorm, c.eps);
      const head = this.lmHead ? (this.lmHead as tf.Tensor2D) : (tf.transpose(this.embed) as tf.Tensor2D);
      return (o.outputRows ? tf.reshape(linear(hN, head), [1, o.outputRows.length, c.vocabSize]) : tf.reshape(linear(hN, head), [B, T, c.vocabSize])) as tf.Tensor3D;
    });
    cos.dispose(); sin.dispose(); mask.dispose();
    return o.returnCache ? { logits, cache: newCache } : { logits };
  }

  private attention(h: tf.Tensor2D, p: LayerParams, B: number, T: number, cos: tf.Tensor, sin: tf.Tensor, mask: tf.Tensor, past?: KVCache['layers'][number]) {
    const c = this.config;
    const d = c.headDim;
    const proj = (w: tf.Variable, b: tf.Variable | undefined, heads: number) => {
      let y: tf.Tensor = linear(h, w as tf.Tensor2D);
      if (b) y = tf.add(y, b);
      return tf.reshape(y, [B, T, heads, d]);
    };
    let q = proj(p.q, p.qBias, c.heads);
    let k = proj(p.k, p.kBias, c.kvHeads);
    const vNew = tf.transpose(proj(p.v, p.vBias, c.kvHeads), [0, 2, 1, 3]) as tf.Tensor4D; // [B, kv, T, d]
    if (p.qNorm && p.kNorm) { q = rmsNorm(q, p.qNorm, c.eps); k = rmsNorm(k, p.kNorm, c.eps); }
    q = applyRotary(q, cos, sin, this.rotateHalf);
    k = applyRotary(k, cos, sin, this.rotateHalf);
    const kNew = tf.transpose(k, [0, 2, 1, 3]) as tf.Tensor4D; // [B, kv, T, d]
    // Without a cache the keys are this input's; with one, [prefix, tail + this input] (see KVCache).
    let cache: KVCache['layers'][number] = { k: kNew, v: vNew };
    if (past) {
      const kTail = past.kTail ? tf.concat([past.kTail, kNew], 2) : kNew;
      const vTail = past.vTail ? tf.concat([past.vTail, vNew], 2) : vNew;
      cache = kTail.shape[2] >= TAIL_FOLD
        ? { k: tf.concat([past.k, kTail], 2), v: tf.concat([past.v, vTail], 2) }
        : { k: past.k, v: past.v, kTail, vTail };
    }
    const rep = c.heads / c.kvHeads;
    const expand = (t: tf.Tensor4D): tf.Tensor4D => {
      if (rep === 1) return t;
      const [b, kv, s] = t.shape;
      // Rank-4 tile (tfjs has no tile gradient above rank 4): head h reads kv head floor(h / rep).
      return tf.reshape(tf.tile(tf.reshape(t, [b, kv, 1, s * d]), [1, 1, rep, 1]), [b, kv * rep, s, d]) as tf.Tensor4D;
    };
    const qh = tf.transpose(q, [0, 2, 1, 3]); // [B, H, T, d]
    // Batched matmuls (here and in their gradients): on the WebAssembly backend, oeld's SIMD kernel
    // (wasm-batch-matmul.ts); tfjs's own takes a scalar loop 10-20x slower.
    const parts = cache.kTail ? [[cache.k, cache.v], [cache.kTail, cache.vTail!]] as const : [[cache.k, cache.v]] as const;
    const partScores = parts.map(([kp]) => tf.matMul(qh, expand(kp), false, true));
    const probs = scaledMaskedSoftmax((partScores.length === 1 ? partScores[0]! : tf.concat(partScores, 3)) as tf.Tensor4D, mask as tf.Tensor4D, 1 / Math.sqrt(d));
    let ctx: tf.Tensor; // [B, H, T, d]
    if (parts.length === 1) ctx = tf.matMul(probs, expand(cache.v));
    else {
      const [pPrefix, pTail] = tf.split(probs, [cache.k.shape[2], cache.kTail!.shape[2]], 3);
      ctx = tf.add(tf.matMul(pPrefix!, expand(cache.v)), tf.matMul(pTail!, expand(cache.vTail!)));
    }
    let out: tf.Tensor = linear(tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * T, c.heads * d]) as tf.Tensor2D, p.o as tf.Tensor2D);
    if (p.oBias) out = tf.add(out, p.oBias);
    return { out, cache };
  }

  /** cos and sin [B, T, 1, headDim] of the rotary embedding for the given positions (computed in float64). */
  private rotary(positions: number[][]): [tf.Tensor, tf.Tensor] {
    const d = this.config.headDim;
    const half = d / 2;
    const B = positions.length;
    const T = positions[0]!.length;
    const cos = new Float32Array(B * T * d);
    const sin = new Float32Array(B * T * d);
    // Dynamic scaling depends on how far the positions reach (the same as the default up to max_position_embeddings).
    let invFreq = this.invFreq;
    if (this.config.ropeScaling?.type === 'dynamic') {
      let last = 0;
      for (const row of positions) for (const p of row) last = Math.max(last, p);
      invFreq = ropeFrequencies(this.ropeSpec, last + 1).invFreq;
    }
    const k = this.attentionScaling;
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
      const base = (b * T + t) * d;
      for (let i = 0; i < half; i++) {
        const a = positions[b]![t]! * invFreq[i]!;
        cos[base + i] = cos[base + i + half] = k * Math.cos(a);
        sin[base + i] = sin[base + i + half] = k * Math.sin(a);
      }
    }
    return [tf.tensor4d(cos, [B, T, 1, d]), tf.tensor4d(sin, [B, T, 1, d])];
  }

  /** 0 where query t may attend key s (causal and not padding), a large negative number elsewhere. */
  private additiveMask(B: number, T: number, S: number, past: number, attention?: number[][]): tf.Tensor4D {
    const m = new Float32Array(B * T * S);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let s = 0; s < S; s++) {
      const visible = s <= past + t && (attention ? attention[b]![s] === 1 : true);
      m[(b * T + t) * S + s] = visible ? 0 : -1e9;
    }
    return tf.tensor4d(m, [B, 1, T, S]);
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
    this.rotateHalf.dispose();
  }
}


/** Keeps a layer's cache tensors past the forward pass's tidy (tensors made before it are untouched). */
function keepCacheLayer(l: KVCache['layers'][number]): KVCache['layers'][number] {
  for (const t of [l.k, l.v, l.kTail, l.vTail]) if (t) tf.keep(t);
  return l;
}

/**
 * Disposes a cache's tensors, except those `next` (the cache extended from it) still holds: an
 * extended cache shares its prefix with the one it came from.
 */
export function disposeCache(cache: KVCache | undefined, next?: KVCache): void {
  const kept = new Set<tf.Tensor>();
  for (const l of next?.layers ?? []) for (const t of [l.k, l.v, l.kTail, l.vTail]) if (t) kept.add(t);
  for (const l of cache?.layers ?? []) for (const t of [l.k, l.v, l.kTail, l.vTail]) if (t && !kept.has(t)) t.dispose();
}
