/**
 * A round's loss by distillation method, over the response positions of one batch: `opcd` the
 * reverse KL over the student's top-k (opcd-loss.ts), `off-policy` the forward KL over the
 * teacher's top-k (off-policy-loss.ts), `opcd-forward` their sum on the student's own samples.
 * Where the student is sure of an answer the teacher no longer gives, the reverse KL's gradient
 * toward the teacher's answer is scaled by the student's probability of it, which is nearly zero;
 * the forward KL's is not (docs/oel-method.md, "Following a change").
 */
import * as tf from '@tensorflow/tfjs-core';
import { forwardKlLoss } from './off-policy-loss.ts';
import { opcdLoss, type OpcdLossOptions } from './opcd-loss.ts';
import type { DistillationMethod } from './opcd-round.ts';

export function distillationLoss(method: DistillationMethod, studentLogits: tf.Tensor2D, teacherLogits: tf.Tensor2D, o: OpcdLossOptions): tf.Scalar {
  if (method === 'opcd') return opcdLoss(studentLogits, teacherLogits, o);
  if (method === 'off-policy') return forwardKlLoss(studentLogits, teacherLogits, o);
  return tf.tidy(() => tf.add(opcdLoss(studentLogits, teacherLogits, o), forwardKlLoss(studentLogits, teacherLogits, o)) as tf.Scalar);
}
