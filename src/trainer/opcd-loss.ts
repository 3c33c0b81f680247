/**
 * The on-policy context distillation (OPCD) loss: a pure function of logits, no model inside.
 *
 * Row i of the student and teacher logits is one response position: the student (no knowledge in
 * its prompt) and the frozen teacher (same prompt with knowledge) scored the same response token
 * there; prompt positions are already excluded by the caller (see responseLogits in
 * src/model/inference/score.ts). Per position t:
 *
 *   D_t = sum over v in S_t of p_s(v) * (log p_s(v) - log p_T(v))
 *
 * with p = softmax(logits / temperature) over the FULL vocabulary for both models, and S_t the
 * student's top-k tokens at the current weights (taken from the student's logits, never the
 * teacher's); no renormalisation over S_t. Gradients flow through both p_s and log p_s (an
 * analytic truncated reverse KL, not a sampled estimate). The teacher's values are constants: no
 * gradient reaches teacherLogits (tf.grads with respect to them returns zeros). The loss is the
 * token mean of D_t over the unmasked positions of the whole batch.
 *
 * tfjs has no stopGradient; the constants are made with `constant` below, a tf.customGrad whose
 * gradient is zero. Ops run inside a customGrad's forward function are not recorded on the
 * gradient tape, so the teacher's log-softmax and the top-k selection (TopK and ScatterNd have no
 * registered gradients) cost no backward memory and need no gradient kernels. The top-k set is a
 * 0/1 [N, V] mask written by ScatterNd from tf.topk's indices: no gather and so no
 * UnsortedSegmentSum in the backward pass, and no [N, k, V] one-hot intermediate (which at
 * k = 256 and a 150k vocabulary would not fit). TopK, ScatterNd, Tile, Range and Pack all exist
 * on the cpu and wasm backends.
 *
 * Rows must be finite, masked ones included: a masked row is multiplied by 0, and NaN * 0 is NaN.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface OpcdLossOptions {
  /** Softmax temperature for both models (the method uses 0.7). */
  temperature: number;
  /** Size of the student's top-k set S_t (the method uses 256); >= vocabulary size means the full vocabulary. */
  topK: number;
  /** One entry per row: 1 = the position counts, 0 = masked (e.g. after the first EOS). Default: all count. */
  mask?: number[];
}

/** Applies `fn` to `x` off the gradient tape: the result is a constant, and the gradient to `x` is zero. */
export function constant<R extends tf.Rank>(x: tf.Tensor<R>, fn: (x: tf.Tensor<R>) => tf.Tensor = (t) => t.clone()): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor<R>;
    return { value: fn(input), gradFunc: () => tf.zerosLike(input) };
  });
  return op(x);
}

/**
 * 0/1 float32 mask [N, V] of each row's k largest logits (ties resolved as tf.topk resolves
 * them, exactly k ones per row), or all ones when k >= V. A constant: no gradient flows through it.
 */
export function topKMask(logits: tf.Tensor2D, k: number): tf.Tensor2D {
  const [n, v] = logits.shape;
  if (k >= v) return tf.onesLike(logits);
  return constant(logits, (x) => tf.tidy(() => {
    const { values, indices } = tf.topk(x, k, false);
    values.dispose();
    const rows = tf.tile(tf.reshape(tf.range(0, n, 1, 'int32'), [n, 1]), [1, k]);
    return tf.scatterND(tf.stack([rows, indices], 2), tf.ones([n, k], 'float32'), [n, v]);
  })) as tf.Tensor2D;
}

export function checkLossInputs(name: string, a: tf.Tensor2D, b: tf.Tensor2D, options: OpcdLossOptions): number[] {
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`${name}: logits must be rank 2 [positions, vocab], got [${a.shape}] and [${b.shape}]`);
  if (a.shape[0] !== b.shape[0] || a.shape[1] !== b.shape[1]) {
    throw new Error(`${name}: student logits [${a.shape}] and teacher logits [${b.shape}] must have the same shape`);
  }
  if (!(options.temperature > 0) || !Number.isFinite(options.temperature)) throw new Error(`${name}: temperature must be a positive number, got ${options.temperature}`);
  if (!Number.isInteger(options.topK) || options.topK < 1) throw new Error(`${name}: topK must be an integer >= 1, got ${options.topK}`);
  const n = a.shape[0];
  const mask = options.mask ?? new Array<number>(n).fill(1);
  if (mask.length !== n) throw new Error(`${name}: mask has ${mask.length} entries for ${n} positions`);
  if (mask.some((m) => m !== 0 && m !== 1)) throw new Error(`${name}: mask entries must be 0 or 1`);
  return mask;
}

/** sum(mask * perPosition) / max(1, number of unmasked positions): 0 when every position is masked. */
export function maskedTokenMean(perPosition: tf.Tensor1D, mask: number[]): tf.Scalar {
  const count = mask.reduce((s, m) => s + m, 0);
  return tf.div(tf.sum(tf.mul(perPosition, tf.tensor1d(mask, 'float32'))), Math.max(1, count)) as tf.Scalar;
}

/**
 * D_t for every row, [N]: the student-top-k truncated reverse KL at `temperature`. Gradients reach
 * studentLogits only.
 */
export function opcdPerPosition(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, options: Omit<OpcdLossOptions, 'mask'>): tf.Tensor1D {
  checkLossInputs('opcdPerPosition', studentLogits, teacherLogits, options);
  const { temperature: T, topK } = options;
  return tf.tidy(() => {
    const logPs = tf.logSoftmax(tf.div(studentLogits, T));
    const logPt = constant(teacherLogits, (t) => tf.tidy(() => tf.logSoftmax(tf.div(t, T))));
    const inSet = topKMask(studentLogits, topK);
    const ps = tf.exp(logPs);
    return tf.sum(tf.mul(inSet, tf.mul(ps, tf.sub(logPs, logPt))), 1) as tf.Tensor1D;
  });
}

/**
 * The OPCD loss: token mean of D_t over the unmasked positions. 0 when there are none (still
 * connected to studentLogits, with a zero gradient, so tf.variableGrads does not throw).
 */
export function opcdLoss(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, options: OpcdLossOptions): tf.Scalar {
  const mask = checkLossInputs('opcdLoss', studentLogits, teacherLogits, options);
  if (studentLogits.shape[0] === 0) return tf.tidy(() => tf.mul(tf.sum(studentLogits), 0) as tf.Scalar);
  return tf.tidy(() => maskedTokenMean(opcdPerPosition(studentLogits, teacherLogits, options), mask));
}
