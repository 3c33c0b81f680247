import * as tf from '@tensorflow/tfjs-core';
import { SWIGLU, SWIGLU_GRAD } from '../kernels/wasm-elementwise.ts';

/**
 * SwiGLU's gate, silu(g) * u = g * sigmoid(g) * u (elementwise, g and u of one shape). On the
 * WebAssembly backend, one fused kernel forward and one backward (wasm-elementwise.ts), where the
 * composite takes three kernels forward and about eight backward; elsewhere, the composite.
 */
export function swiglu<T extends tf.Tensor>(g: T, u: T): T {
  if (tf.getBackend() === 'wasm' && tf.getKernel(SWIGLU, 'wasm') && g.dtype === 'float32' && u.dtype === 'float32') return fused(g, u) as T;
  return tf.mul(tf.mul(g, tf.sigmoid(g)), u);
}

const fused = tf.customGrad(((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
  save([g, u]);
  return {
    value: tf.engine().runKernel(SWIGLU, { g, u }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(SWIGLU_GRAD, { g: saved[0]!, u: saved[1]!, dy }) as tf.Tensor[],
  };
}) as never) as (g: tf.Tensor, u: tf.Tensor) => tf.Tensor;
