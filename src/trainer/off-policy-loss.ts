/**
 * The off-policy context distillation baseline's loss: the teacher (frozen weights, knowledge in
 * its prompt) samples the response; the student (no knowledge) learns the forward KL on the
 * teacher's tokens. Row i of both logit tensors is one response position of a teacher sample.
 * Per position t:
 *
 *   F_t = sum over v in S_t of p_T(v) * (log p_T(v) - log p_s(v))
 *
 * with p = softmax(logits / temperature) over the full vocabulary for both models, S_t the
 * TEACHER's top-k tokens (k >= vocabulary size: all of it), no renormalisation. The teacher's
 * values (p_T, log p_T and the set) are constants; gradients reach studentLogits only, through
 * log p_s. Loss = token mean over the unmasked positions. Same conventions as opcd-loss.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkLossInputs, constant, maskedTokenMean, topKMask, type OpcdLossOptions } from './opcd-loss.ts';

export type ForwardKlLossOptions = OpcdLossOptions;

/** F_t for every row, [N]. Gradients reach studentLogits only. */
export function forwardKlPerPosition(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, options: Omit<ForwardKlLossOptions, 'mask'>): tf.Tensor1D {
  checkLossInputs('forwardKlPerPosition', studentLogits, teacherLogits, options);
  const { temperature: T, topK } = options;
  return tf.tidy(() => {
    const logPs = tf.logSoftmax(tf.div(studentLogits, T));
    // p_T restricted to the teacher's top-k (w), and w * log p_T: constants.
    const teacherTerm = (withLog: boolean) => constant(teacherLogits, (t) => tf.tidy(() => {
      const logPt = tf.logSoftmax(tf.div(t, T));
      const w = tf.mul(topKMask(t as tf.Tensor2D, topK), tf.exp(logPt));
      return withLog ? tf.mul(w, logPt) : w;
    }));
    const w = teacherTerm(false);
    const wLogPt = teacherTerm(true);
    return tf.sum(tf.sub(wLogPt, tf.mul(w, logPs)), 1) as tf.Tensor1D;
  });
}

/** The forward-KL loss: token mean of F_t over the unmasked positions (0 when there are none). */
export function forwardKlLoss(studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, options: ForwardKlLossOptions): tf.Scalar {
  const mask = checkLossInputs('forwardKlLoss', studentLogits, teacherLogits, options);
  if (studentLogits.shape[0] === 0) return tf.tidy(() => tf.mul(tf.sum(studentLogits), 0) as tf.Scalar);
  return tf.tidy(() => maskedTokenMean(forwardKlPerPosition(studentLogits, teacherLogits, options), mask));
}
