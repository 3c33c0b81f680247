/**
 * Kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks and that training needs, computed in
 * JavaScript over the tensors' data.
 *
 * Of the kernels the CPU backend has, the wasm backend lacks UnsortedSegmentSum, Einsum, the
 * complex/FFT family, the ragged ops, and the conv/depthwise backprop filters. Only
 * UnsortedSegmentSum matters to a transformer: it is the gradient of GatherV2, i.e. of the
 * embedding lookup, so without it `tf.grad` through `tf.gather` throws "Kernel
 * 'UnsortedSegmentSum' not registered for backend 'wasm'".
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo, UnsortedSegmentSumAttrs, UnsortedSegmentSumInputs } from '@tensorflow/tfjs-core';

type NumericArray = Float32Array | Int32Array;

/**
 * out[s, ...] = sum of x[i, ...] over every i with segmentIds[i] = s (TensorFlow's semantics:
 * ids outside [0, numSegments) are dropped). `segmentIds` covers the leading dimensions of x
 * (idsSize elements); each of them owns a contiguous slice of `inner` values.
 */
export function unsortedSegmentSumValues(
  x: ArrayLike<number>, segmentIds: ArrayLike<number>, inner: number, numSegments: number, dtype: 'float32' | 'int32',
): NumericArray {
  const out = dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let i = 0; i < segmentIds.length; i++) {
    const s = segmentIds[i]!;
    if (!(s >= 0 && s < numSegments)) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j]! += x[src + j]!;
  }
  return out;
}

/** The subset of BackendWasm (and of the CPU backend) that the JS kernels use. */
interface HostBackend {
  readSync(dataId: object): unknown;
  makeOutput?(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: NumericArray): TensorInfo;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values?: NumericArray): TensorInfo;
}

const unsortedSegmentSum: KernelFunc = ({ inputs, attrs, backend }) => {
  const { x, segmentIds } = inputs as UnsortedSegmentSumInputs;
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
  if (!x || !segmentIds) throw new Error('UnsortedSegmentSum: inputs x and segmentIds are required');
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: dtype ${x.dtype} is not supported`);
  const idsRank = segmentIds.shape.length;
  for (let d = 0; d < idsRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) {
      throw new Error(`UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
    }
  }
  const innerShape = x.shape.slice(idsRank);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  const host = backend as unknown as HostBackend;
  const xv = host.readSync(x.dataId) as NumericArray;
  const ids = host.readSync(segmentIds.dataId) as NumericArray;
  const out = unsortedSegmentSumValues(xv, ids, inner, numSegments, x.dtype);
  const outShape = [numSegments, ...innerShape];
  if (host.makeOutput) return host.makeOutput(outShape, x.dtype, undefined, out);
  if (host.makeTensorInfo) return host.makeTensorInfo(outShape, x.dtype, out);
  throw new Error('UnsortedSegmentSum: backend can neither makeOutput nor makeTensorInfo');
};

/** The JS kernels, for the wasm backend. */
export const wasmJsKernels: readonly KernelConfig[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum },
];

/** Registers each JS kernel the wasm backend does not already have (idempotent). */
export function registerWasmJsKernels(): string[] {
  const added: string[] = [];
  for (const k of wasmJsKernels) {
    if (tf.getKernel(k.kernelName, k.backendName)) continue;
    tf.registerKernel(k);
    added.push(k.kernelName);
  }
  return added;
}
