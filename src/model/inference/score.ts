import * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../network/transformer.ts';

/** Prompt + response rows, right-padded to one length, with what is needed to find response positions. */
export interface PackedBatch {
  ids: number[][];
  mask: number[][];
  /** Index in each row of the first response token. */
  responseStart: number[];
  responseLength: number[];
  /** Length the rows were padded to. */
  T: number;
}

export function packBatch(prompts: number[][], responses: number[][], pad = 0): PackedBatch {
  if (prompts.length !== responses.length) throw new Error(`packBatch: ${prompts.length} prompts but ${responses.length} responses`);
  const T = Math.max(...prompts.map((p, i) => p.length + responses[i]!.length));
  return {
    ids: prompts.map((p, i) => { const r = [...p, ...responses[i]!]; return [...r, ...Array(T - r.length).fill(pad)]; }),
    mask: prompts.map((p, i) => { const n = p.length + responses[i]!.length; return [...Array(n).fill(1), ...Array(T - n).fill(0)]; }),
    responseStart: prompts.map((p) => p.length),
    responseLength: responses.map((r) => r.length),
    T,
  };
}

/**
 * Logits [N, vocab] at the positions that predict each response token (row-major over the batch,
 * response order), as a tensor the caller owns: the trainer builds its loss on these.
 */
export function responseLogits(model: Transformer, batch: PackedBatch): tf.Tensor2D {
  const idx: number[] = [];
  batch.responseStart.forEach((start, b) => {
    for (let i = 0; i < batch.responseLength[b]!; i++) idx.push(b * batch.T + start - 1 + i);
  });
  const { logits } = model.forward(batch.ids, { attentionMask: batch.mask, outputRows: idx });
  return tf.tidy(() => tf.reshape(logits, [-1, model.config.vocabSize]) as tf.Tensor2D);
}

/** Teacher-forced log-probabilities of each response token under softmax(logits / temperature). */
export function scoreResponses(model: Transformer, prompts: number[][], responses: number[][], temperature = 1): number[][] {
  const batch = packBatch(prompts, responses);
  if (batch.responseLength.every((n) => n === 0)) return responses.map(() => []);
  const flat = tf.tidy(() => {
    const logits = responseLogits(model, batch);
    const lp = tf.logSoftmax(tf.div(logits, temperature));
    const targets = tf.tensor1d(responses.flat(), 'int32');
    return tf.sum(tf.mul(lp, tf.oneHot(targets, model.config.vocabSize)), 1);
  });
  const values = Array.from(flat.dataSync());
  flat.dispose();
  let k = 0;
  return responses.map((r) => r.map(() => values[k++]!));
}
