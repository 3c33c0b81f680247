import * as tf from '@tensorflow/tfjs-core';
import { RMS_NORM, RMS_NORM_GRAD } from '../kernels/wasm-elementwise.ts';

/**
 * x / sqrt(mean(x^2) + eps) * w over the last axis. On the WebAssembly backend, one fused kernel
 * forward and one backward (wasm-elementwise.ts), where the composite takes six kernels forward
 * and about fifteen backward; elsewhere, the composite.
 */
export function rmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number): T {
  if (tf.getBackend() === 'wasm' && tf.getKernel(RMS_NORM, 'wasm') && x.dtype === 'float32') return fused(x, w, eps) as T;
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w) as T;
}

function fused(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  const f = tf.customGrad(((xx: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.engine().runKernel(RMS_NORM, { x: xx, w: ww }, { eps }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(RMS_NORM_GRAD, { x: saved[0]!, w: saved[1]!, dy }, { eps }) as tf.Tensor[],
    };
  }) as never) as (x: tf.Tensor, w: tf.Tensor) => tf.Tensor;
  return f(x, w);
}
