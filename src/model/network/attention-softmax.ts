import * as tf from '@tensorflow/tfjs-core';
import { SCALED_SOFTMAX_GRAD } from '../kernels/wasm-elementwise.ts';

/**
 * Attention's probabilities, softmax(scores * scale + mask) over the last axis, for scores
 * [B, H, T, S] and an additive mask [B or 1, 1, T, S] (a constant: it gets no gradient).
 *
 * On the WebAssembly backend the gradient is one fused kernel (wasm-elementwise.ts) where tfjs's
 * ops take about six, each a pass over the step's largest tensors (and one of them sums the
 * mask's gradient, which nobody wants); the forward stays tfjs's ops, as XNNPACK's softmax is
 * faster than a WebAssembly SIMD one of oeld's was (measured: 2.2 ms against 11 for 2M floats).
 * Elsewhere, tfjs's ops both ways.
 */
export function scaledMaskedSoftmax(scores: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D {
  const composite = (x: tf.Tensor): tf.Tensor4D => tf.softmax(tf.add(tf.mul(x, scale), mask)) as tf.Tensor4D;
  if (tf.getBackend() !== 'wasm' || !tf.getKernel(SCALED_SOFTMAX_GRAD, 'wasm') || scores.dtype !== 'float32') return composite(scores);
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const p = composite(x);
    save([p]);
    return {
      value: p,
      gradFunc: (dp: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(SCALED_SOFTMAX_GRAD, { p: saved[0]!, dp }, { scale }) as tf.Tensor,
    };
  }) as never) as (x: tf.Tensor) => tf.Tensor;
  return f(scores) as tf.Tensor4D;
}
