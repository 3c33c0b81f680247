/**
 * Kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks and that training needs, computed in
 * JavaScript over the tensors' data; and two it has that copy where no copy is needed.
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
  /** Where to write (numSegments * inner values; it is zeroed first), e.g. a view of the wasm heap. */
  into?: NumericArray,
): NumericArray {
  const out = into ?? (dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner));
  out.fill(0);
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
  const outShape = [numSegments, ...innerShape];
  const heap = backend as unknown as Partial<HeapBackend>;
  if (heap.typedArrayFromHeap && heap.makeOutput) {
    // The wasm backend: read and write the heap in place (no copies).
    const out = heap.makeOutput(outShape, x.dtype);
    // Views made after makeOutput, which may grow (and so detach) the heap.
    unsortedSegmentSumValues(heap.typedArrayFromHeap(x) as NumericArray, heap.typedArrayFromHeap(segmentIds) as Int32Array, inner, numSegments, x.dtype,
      heap.typedArrayFromHeap(out) as NumericArray);
    return out;
  }
  const host = backend as unknown as HostBackend;
  const xv = host.readSync(x.dataId) as NumericArray;
  const ids = host.readSync(segmentIds.dataId) as NumericArray;
  const out = unsortedSegmentSumValues(xv, ids, inner, numSegments, x.dtype);
  if (host.makeOutput) return host.makeOutput(outShape, x.dtype, undefined, out);
  if (host.makeTensorInfo) return host.makeTensorInfo(outShape, x.dtype, out);
  throw new Error('UnsortedSegmentSum: backend can neither makeOutput nor makeTensorInfo');
};

/** The JS kernels, for the wasm backend. */
export const wasmJsKernels: readonly KernelConfig[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum },
];

/** The subset of BackendWasm that the zero-copy kernels use. */
interface RefCountingBackend { incRef(dataId: object): void }

/**
 * Identity, and Cast to the dtype the tensor already has, as a new reference to the same data
 * (as the CPU backend does, and as the wasm backend's own Reshape does). The wasm backend copies
 * instead, and the engine clones every tensor it saves for the backward pass through Identity,
 * and the gradient of Multiply casts float32 to float32: a few hundred copies per training step.
 * Sharing is safe because tfjs never writes into a tensor's data after making it (a variable's
 * assign takes new data).
 */
const identityNoCopy = (x: TensorInfo, backend: unknown): TensorInfo => {
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * out[i, ...] = x[indices[i], ...]: rows copied whole. The wasm backend's GatherV2 computes every
 * element's source index separately, and an embedding lookup took 20 ms for 2,048 rows of 128.
 */
export function gatherRows(x: NumericArray, indices: ArrayLike<number>, rowSize: number, out: NumericArray): void {
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i]!;
    out.set(x.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
  }
}

/** Throws, naming the first index outside [0, rows). */
export function checkGatherIndices(indices: ArrayLike<number>, rows: number): void {
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i]!;
    if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: index ${r} at position ${i} is outside [0, ${rows})`);
  }
}

interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): NumericArray | Uint8Array;
}

/** Replacement kernels (each falls back to the backend's own kernel where it does not apply). */
function replacementKernels(original: (name: string) => KernelConfig): KernelConfig[] {
  const identity = original(tf.Identity);
  const cast = original(tf.Cast);
  const gather = original(tf.GatherV2);
  return [
    {
      kernelName: tf.GatherV2, backendName: 'wasm',
      kernelFunc: (args) => {
        const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
        const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
        const rank = x.shape.length;
        const rowsAxis = axis < 0 ? axis + rank : axis;
        if (rowsAxis !== 0 || (batchDims ?? 0) !== 0 || rank < 1 || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32') return gather.kernelFunc(args);
        const backend = args.backend as unknown as HeapBackend;
        const rowSize = x.shape.slice(1).reduce((a, b) => a * b, 1);
        checkGatherIndices(backend.typedArrayFromHeap(indices) as Int32Array, x.shape[0]!);
        const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
        // Views made after makeOutput, which may grow (and so detach) the heap.
        gatherRows(backend.typedArrayFromHeap(x) as NumericArray, backend.typedArrayFromHeap(indices) as Int32Array, rowSize, backend.typedArrayFromHeap(out) as NumericArray);
        return out;
      },
    },
    {
      kernelName: tf.Identity, backendName: 'wasm',
      kernelFunc: (args) => {
        const { x } = args.inputs as { x: TensorInfo };
        return x.dtype === 'string' ? identity.kernelFunc(args) : identityNoCopy(x, args.backend);
      },
    },
    {
      kernelName: tf.Cast, backendName: 'wasm',
      kernelFunc: (args) => {
        const { x } = args.inputs as { x: TensorInfo };
        const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
        return dtype === x.dtype && dtype !== 'string' ? identityNoCopy(x, args.backend) : cast.kernelFunc(args);
      },
    },
  ];
}

const replaced = new Set<string>();

/**
 * Registers each JS kernel the wasm backend does not already have, and the zero-copy Identity
 * and Cast (idempotent). Returns the names of the kernels it registered this time.
 */
export function registerWasmJsKernels(): string[] {
  const added: string[] = [];
  for (const k of wasmJsKernels) {
    if (tf.getKernel(k.kernelName, k.backendName)) continue;
    tf.registerKernel(k);
    added.push(k.kernelName);
  }
  const original = (name: string): KernelConfig => {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`the wasm backend has no ${name} kernel to fall back to`);
    return k;
  };
  for (const k of replacementKernels(original)) {
    if (replaced.has(k.kernelName)) continue;
    tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel(k);
    replaced.add(k.kernelName);
    added.push(k.kernelName);
  }
  return added;
}
