/**
 * Kernels for the tfjs WebAssembly backend from src/model/kernels/native/elementwise.c:
 * - Exp and Sigmoid, replacing the backend's: SIMD, about 3 ns per element where the backend's
 *   take 13 (a scalar libm call each). Exp is in every log-softmax (the training losses, over the
 *   whole vocabulary at every response position). float32 only; other dtypes go to the
 *   backend's kernels.
 * - OeldSwiGLU and OeldSwiGLUGrad, new: silu(g) * u and its gradient in one pass each (swiglu.ts
 *   uses them on wasm); on the native CPU kernels where the backend uses them.
 * - OeldRMSNorm and OeldRMSNormGrad, new: RMSNorm over the last axis and its gradient (x and w),
 *   one kernel each where tfjs's ops take six forward and about fifteen backward (rms-norm.ts).
 * - OeldAdamW, new: one AdamW step of one parameter (p, m and v out, the gradient scaled first),
 *   one kernel where adamw.ts's composite takes fifteen.
 * - OeldScaledSoftmaxGrad, new: the gradient of attention's softmax(scores * scale + mask), one
 *   kernel where tfjs's take about six, each a pass over the largest tensors of a step
 *   (attention-softmax.ts).
 * - OeldRoPE, new: the rotary position embedding (sign 1) or its gradient (sign -1), one kernel
 *   where rotary.ts's composite takes a matmul and three elementwise ops each way.
 * - wasmSumOfSquares: the sum of a float32 tensor's squares, in float64, read in place (the global
 *   gradient norm; no kernel, the caller wants the number).
 * Like the matmul kernel, the module imports the backend's memory and works on the tensors where
 * they are.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { CpuKernels } from './cpu-kernels.ts';
import { wasmHeap } from './wasm-heap.ts';

type Unary = (x: number, out: number, n: number) => void;

export const SWIGLU = 'OeldSwiGLU';
export const SWIGLU_GRAD = 'OeldSwiGLUGrad';
export const RMS_NORM = 'OeldRMSNorm';
export const RMS_NORM_GRAD = 'OeldRMSNormGrad';
export const ADAMW = 'OeldAdamW';
export const SCALED_SOFTMAX_GRAD = 'OeldScaledSoftmaxGrad';
export const ROPE = 'OeldRoPE';

/** OeldAdamW's attributes: the hyper-parameters, the bias corrections of this step and the gradient's scale. */
export interface AdamWKernelAttrs { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; c1: number; c2: number; gradScale: number }

let sumSquares: ((t: TensorInfo) => number) | undefined;

/** Sum of the squares of a float32 tensor on the wasm backend, or undefined where the module is not installed. */
export function wasmSumOfSquares(t: TensorInfo): number | undefined {
  return sumSquares && t.dtype === 'float32' ? sumSquares(t) : undefined;
}

/** The committed build for a memory (shared or not). */
export function elementwiseModulePath(shared: boolean): URL {
  return new URL(`./native/elementwise-${shared ? 'shared' : 'plain'}-simd.wasm`, import.meta.url);
}

let installed = false;

/**
 * Replaces the wasm backend's Exp and Sigmoid and registers the fused kernels (idempotent; the
 * backend must have started). With `native` (the native CPU kernels, where the backend uses them
 * for its matmuls), SwiGLU and its gradient run there: AVX-512 or AVX2 on every core, about ten
 * times the WebAssembly version.
 */
export function installWasmElementwise(native?: CpuKernels): void {
  if (installed) return;
  const { backend, memory, shared, offset, bytes } = wasmHeap('oeld elementwise kernels');
  const exports = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(elementwiseModulePath(shared))), { env: { memory } }).exports;
  const kernels: [string, Unary][] = [[tf.Exp, exports.exp_f32 as Unary], [tf.Sigmoid, exports.sigmoid_f32 as Unary]];
  for (const [name, f] of kernels) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) throw new Error(`installWasmElementwise: the wasm backend has no ${name} kernel to fall back to`);
    const config: KernelConfig = {
      kernelName: name, backendName: 'wasm',
      kernelFunc: (args) => {
        const { x } = args.inputs as { x: TensorInfo };
        if (x.dtype !== 'float32') return original.kernelFunc(args);
        const out = backend.makeOutput(x.shape, 'float32');
        const n = x.shape.reduce((a, b) => a * b, 1);
        if (n > 0) f(offset(x), offset(out), n);
        return out;
      },
    };
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  const sameShape = (what: string, ...ts: TensorInfo[]): number => {
    const shape = ts[0]!.shape;
    if (ts.some((t) => t.dtype !== 'float32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`${what}: inputs must be float32 of one shape, got ${ts.map((t) => `${t.dtype}[${t.shape}]`).join(', ')}`);
    }
    return shape.reduce((a, b) => a * b, 1);
  };
  const swiglu = native
    ? (g: number, u: number, out: number, n: number): void => { native.swiglu(bytes(), g, u, out, n); }
    : exports.swiglu_f32 as (g: number, u: number, out: number, n: number) => void;
  const swigluGrad = native
    ? (g: number, u: number, dy: number, dg: number, du: number, n: number): void => { native.swigluGrad(bytes(), g, u, dy, dg, du, n); }
    : exports.swiglu_grad_f32 as (g: number, u: number, dy: number, dg: number, du: number, n: number) => void;
  tf.registerKernel({
    kernelName: SWIGLU, backendName: 'wasm',
    kernelFunc: (args) => {
      const { g, u } = args.inputs as { g: TensorInfo; u: TensorInfo };
      const n = sameShape(SWIGLU, g, u);
      const out = backend.makeOutput(g.shape, 'float32');
      if (n > 0) swiglu(offset(g), offset(u), offset(out), n);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: SWIGLU_GRAD, backendName: 'wasm',
    kernelFunc: (args) => {
      const { g, u, dy } = args.inputs as { g: TensorInfo; u: TensorInfo; dy: TensorInfo };
      const n = sameShape(SWIGLU_GRAD, g, u, dy);
      const dg = backend.makeOutput(g.shape, 'float32');
      const du = backend.makeOutput(g.shape, 'float32');
      if (n > 0) swigluGrad(offset(g), offset(u), offset(dy), offset(dg), offset(du), n);
      return [dg, du];
    },
  });
  const rmsNorm = exports.rmsnorm_f32 as (x: number, w: number, out: number, rows: number, H: number, eps: number) => void;
  const rmsNormGrad = exports.rmsnorm_grad_f32 as (x: number, w: number, dy: number, dx: number, dw: number, rows: number, H: number, eps: number) => void;
  /** Rows and width of x normalised over its last axis by w [H]. */
  const normShape = (what: string, x: TensorInfo, w: TensorInfo): [number, number] => {
    const H = x.shape[x.shape.length - 1] ?? 0;
    if (x.dtype !== 'float32' || w.dtype !== 'float32' || w.shape.length !== 1 || w.shape[0] !== H) {
      throw new Error(`${what}: x must be float32 [..., H] and w float32 [H], got ${x.dtype}[${x.shape}] and ${w.dtype}[${w.shape}]`);
    }
    return [H === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / H, H];
  };
  tf.registerKernel({
    kernelName: RMS_NORM, backendName: 'wasm',
    kernelFunc: (args) => {
      const { x, w } = args.inputs as { x: TensorInfo; w: TensorInfo };
      const { eps } = args.attrs as unknown as { eps: number };
      const [rows, H] = normShape(RMS_NORM, x, w);
      const out = backend.makeOutput(x.shape, 'float32');
      if (rows > 0) rmsNorm(offset(x), offset(w), offset(out), rows, H, eps);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: RMS_NORM_GRAD, backendName: 'wasm',
    kernelFunc: (args) => {
      const { x, w, dy } = args.inputs as { x: TensorInfo; w: TensorInfo; dy: TensorInfo };
      const { eps } = args.attrs as unknown as { eps: number };
      const [rows, H] = normShape(RMS_NORM_GRAD, x, w);
      sameShape(RMS_NORM_GRAD, x, dy);
      const dx = backend.makeOutput(x.shape, 'float32');
      const dw = backend.makeOutput(w.shape, 'float32');
      if (rows > 0) rmsNormGrad(offset(x), offset(w), offset(dy), offset(dx), offset(dw), rows, H, eps);
      return [dx, dw];
    },
  });
  const adamw = exports.adamw_f32 as (p: number, g: number, m: number, v: number, po: number, mo: number, vo: number, n: number,
    lr: number, b1: number, b2: number, eps: number, wd: number, c1: number, c2: number, gs: number) => void;
  tf.registerKernel({
    kernelName: ADAMW, backendName: 'wasm',
    kernelFunc: (args) => {
      const { p, g, m, v } = args.inputs as { p: TensorInfo; g: TensorInfo; m: TensorInfo; v: TensorInfo };
      const a = args.attrs as unknown as AdamWKernelAttrs;
      const n = sameShape(ADAMW, p, g, m, v);
      const [po, mo, vo] = [0, 1, 2].map(() => backend.makeOutput(p.shape, 'float32'));
      if (n > 0) adamw(offset(p), offset(g), offset(m), offset(v), offset(po!), offset(mo!), offset(vo!), n, a.lr, a.beta1, a.beta2, a.epsilon, a.weightDecay, a.c1, a.c2, a.gradScale);
      return [po!, mo!, vo!];
    },
  });
  const scaledSoftmaxGrad = exports.scaled_softmax_grad_f32 as (p: number, dp: number, dx: number, rows: number, S: number, scale: number) => void;
  tf.registerKernel({
    kernelName: SCALED_SOFTMAX_GRAD, backendName: 'wasm',
    kernelFunc: (args) => {
      const { p, dp } = args.inputs as { p: TensorInfo; dp: TensorInfo };
      const { scale } = args.attrs as unknown as { scale: number };
      const n = sameShape(SCALED_SOFTMAX_GRAD, p, dp);
      const S = p.shape[p.shape.length - 1] ?? 0;
      const dx = backend.makeOutput(p.shape, 'float32');
      if (n > 0) scaledSoftmaxGrad(offset(p), offset(dp), offset(dx), n / S, S, scale);
      return dx;
    },
  });
  const rope = exports.rope_f32 as (x: number, cos: number, sin: number, out: number, rows: number, H: number, d: number, sign: number) => void;
  tf.registerKernel({
    kernelName: ROPE, backendName: 'wasm',
    kernelFunc: (args) => {
      const { x, cos, sin } = args.inputs as { x: TensorInfo; cos: TensorInfo; sin: TensorInfo };
      const { sign } = args.attrs as unknown as { sign: number };
      const [B, T, H, d] = x.shape as [number, number, number, number];
      const table = [B, T, 1, d];
      if (x.dtype !== 'float32' || x.shape.length !== 4 || d % 2 !== 0 || [cos, sin].some((t) => t.dtype !== 'float32' || t.shape.length !== 4 || t.shape.some((n, i) => n !== table[i]))) {
        throw new Error(`${ROPE}: x must be float32 [B, T, heads, d] with d even, cos and sin float32 [B, T, 1, d], got ${x.dtype}[${x.shape}], ${cos.dtype}[${cos.shape}], ${sin.dtype}[${sin.shape}]`);
      }
      const out = backend.makeOutput(x.shape, 'float32');
      if (B * T * H * d > 0) rope(offset(x), offset(cos), offset(sin), offset(out), B * T, H, d, sign);
      return out;
    },
  });
  const sumSq = exports.sum_squares_f32 as (x: number, n: number) => number;
  sumSquares = (t) => {
    const n = t.shape.reduce((x, y) => x * y, 1);
    return n === 0 ? 0 : sumSq(offset(t), n);
  };
  installed = true;
}
