import * as tf from '@tensorflow/tfjs-core';
import { ADAMW, type AdamWKernelAttrs } from '../kernels/wasm-elementwise.ts';

export interface AdamWOptions {
  learningRate: number; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number;
  /**
   * Use the fused kernel (one per parameter, wasm-elementwise.ts) where the wasm backend has it;
   * false keeps the composite of tfjs ops (fifteen kernels per parameter). Default true.
   */
  fused?: boolean;
}

/**
 * AdamW (decoupled weight decay, as torch.optim.AdamW): p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p).
 * tfjs ships Adam without decoupled decay, so it is written out here.
 */
export class AdamW {
  private readonly m = new Map<tf.Variable, tf.Variable>();
  private readonly v = new Map<tf.Variable, tf.Variable>();
  private t = 0;
  readonly o: Required<AdamWOptions>;

  constructor(options: AdamWOptions) {
    this.o = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, fused: true, ...options };
  }

  get step(): number { return this.t; }

  /** One step; each gradient is first multiplied by `gradScale` (global-norm clipping). */
  apply(grads: Map<tf.Variable, tf.Tensor>, gradScale = 1): void {
    this.t++;
    const { learningRate: lr, beta1, beta2, epsilon, weightDecay } = this.o;
    const c1 = 1 - beta1 ** this.t;
    const c2 = 1 - beta2 ** this.t;
    const fused = this.o.fused && tf.getBackend() === 'wasm' && tf.getKernel(ADAMW, 'wasm') !== undefined;
    for (const [p, g] of grads) {
      let m = this.m.get(p);
      let v = this.v.get(p);
      if (!m || !v) {
        // tidy releases the zero tensors; the variables (kept by tidy) own copies.
        m = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        v = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
        this.m.set(p, m);
        this.v.set(p, v);
      }
      const mm = m;
      const vv = v;
      if (fused && p.dtype === 'float32' && g.dtype === 'float32') {
        tf.tidy(() => {
          const attrs: AdamWKernelAttrs = { lr, beta1, beta2, epsilon, weightDecay, c1, c2, gradScale };
          const [p1, m1, v1] = tf.engine().runKernel(ADAMW, { p, g, m: mm, v: vv }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          mm.assign(m1!);
          vv.assign(v1!);
          p.assign(p1!);
        });
        continue;
      }
      tf.tidy(() => {
        const gs = gradScale === 1 ? g : tf.mul(g, gradScale);
        const m1 = tf.add(tf.mul(mm, beta1), tf.mul(gs, 1 - beta1));
        const v1 = tf.add(tf.mul(vv, beta2), tf.mul(tf.square(gs), 1 - beta2));
        mm.assign(m1);
        vv.assign(v1);
        const update = tf.add(tf.div(tf.div(m1, c1), tf.add(tf.sqrt(tf.div(v1, c2)), epsilon)), tf.mul(p, weightDecay));
        p.assign(tf.sub(p, tf.mul(update, lr)));
      });
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
