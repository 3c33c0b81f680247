import * as tf from '@tensorflow/tfjs-core';
import type { AdamW } from './adamw.ts';
import type { Transformer } from './transformer.ts';
import { wasmSumOfSquares } from '../kernels/wasm-elementwise.ts';

export interface StepResult { loss: number; gradNorm: number; clipped: boolean }

/**
 * One optimiser step: gradients of the caller's loss (built from the model inside `loss`) with
 * respect to every trainable variable, global-norm clipping, AdamW. Every intermediate tensor is
 * released, so memory does not grow from step to step.
 */
export function trainStep(model: Transformer, optimizer: AdamW, loss: () => tf.Scalar, clipNorm = 1.0): StepResult {
  const vars = model.variables.filter((v) => v.trainable);
  const { value, grads } = tf.variableGrads(loss, vars);
  const byName = new Map(vars.map((v) => [v.name, v]));
  const pairs = new Map<tf.Variable, tf.Tensor>();
  for (const [name, g] of Object.entries(grads)) pairs.set(byName.get(name)!, g);
  const gradNorm = globalNorm([...pairs.values()]);
  const clipped = Number.isFinite(gradNorm) && gradNorm > clipNorm;
  if (!Number.isFinite(gradNorm)) {
    for (const g of pairs.values()) g.dispose();
    const l = value.dataSync()[0]!;
    value.dispose();
    throw new Error(`non-finite gradient norm (${gradNorm}) at loss ${l}: step skipped`);
  }
  optimizer.apply(pairs, clipped ? clipNorm / (gradNorm + 1e-6) : 1);
  for (const g of pairs.values()) g.dispose();
  const l = value.dataSync()[0]!;
  value.dispose();
  return { loss: l, gradNorm, clipped };
}

/**
 * sqrt of the sum of every gradient's squares. On the wasm backend, read in place in float64 (one
 * pass per tensor); elsewhere two kernels per tensor and one read-back.
 */
function globalNorm(grads: tf.Tensor[]): number {
  let sum = 0;
  for (const g of grads) {
    const s = tf.getBackend() === 'wasm' ? wasmSumOfSquares(g) : undefined;
    if (s === undefined) return composite();
    sum += s;
  }
  return Math.sqrt(sum);

  function composite(): number {
    const t = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
    const n = t.dataSync()[0]!;
    t.dispose();
    return n;
  }
}
