import * as tf from '@tensorflow/tfjs-core';
import type { AdamW } from './adamw.ts';
import type { Transformer } from './transformer.ts';

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
  const normT = tf.tidy(() => tf.sqrt(tf.addN([...pairs.values()].map((g) => tf.sum(tf.square(g))))));
  const gradNorm = normT.dataSync()[0]!;
  normT.dispose();
  const clipped = Number.isFinite(gradNorm) && gradNorm > clipNorm;
  if (!Number.isFinite(gradNorm)) {
    for (const g of pairs.values()) g.dispose();
    const l = value.dataSync()[0]!;
    value.dispose();
    throw new Error(`non-finite gradient norm (${gradNorm}) at loss ${l}: step skipped`);
  }
  if (clipped) {
    const scale = clipNorm / (gradNorm + 1e-6);
    for (const [p, g] of pairs) { pairs.set(p, tf.mul(g, scale)); g.dispose(); }
  }
  optimizer.apply(pairs);
  for (const g of pairs.values()) g.dispose();
  const l = value.dataSync()[0]!;
  value.dispose();
  return { loss: l, gradNorm, clipped };
}
