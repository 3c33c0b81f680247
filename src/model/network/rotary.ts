import * as tf from '@tensorflow/tfjs-core';
import { ROPE } from '../kernels/wasm-elementwise.ts';

/**
 * Rotary position embedding, the Hugging Face convention: x * cos + rotate_half(x) * sin,
 * rotate_half(x) = [-x2, x1], for x [B, T, heads, d] and cos, sin [B, T, 1, d] whose halves are
 * equal (cos = [c, c], as Transformer.rotary makes them; cos and sin are constants).
 *
 * On the WebAssembly backend, one kernel forward and one backward (OeldRoPE in
 * wasm-elementwise.ts). Elsewhere, rotate_half is a matmul by a signed permutation (`rotateHalf`,
 * from rotateHalfMatrix): one plain 2-D matmul, and its gradient one more, where split, negate and
 * concat (and their gradients) were six copies.
 */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rotateHalf: tf.Tensor2D): tf.Tensor {
  if (tf.getBackend() === 'wasm' && tf.getKernel(ROPE, 'wasm') && x.dtype === 'float32') {
    const f = tf.customGrad(((xx: tf.Tensor, save: tf.GradSaveFunc) => {
      save([cos, sin]); // the caller frees its own after the forward pass
      return {
        value: tf.engine().runKernel(ROPE, { x: xx, cos, sin }, { sign: 1 }) as tf.Tensor,
        // rotate_half's transpose is minus itself: the gradient is the same kernel with -sin.
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(ROPE, { x: dy, cos: saved[0]!, sin: saved[1]! }, { sign: -1 }) as tf.Tensor,
      };
    }) as never) as (x: tf.Tensor) => tf.Tensor;
    return f(x);
  }
  const d = x.shape[3]!;
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, d]) as tf.Tensor2D, rotateHalf), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/** R [d, d] with x @ R = rotate_half(x) = [-x[half:], x[:half]]. */
export function rotateHalfMatrix(d: number): tf.Tensor2D {
  const half = d / 2;
  const r = new Float32Array(d * d);
  for (let j = 0; j < half; j++) {
    r[(j + half) * d + j] = -1; // column j < half reads -x[j + half]
    r[j * d + j + half] = 1; // column j + half reads x[j]
  }
  return tf.tensor2d(r, [d, d]);
}
