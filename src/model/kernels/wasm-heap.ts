import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';

/** What oeld's WebAssembly kernels use of tfjs's wasm backend (BackendWasm and its Emscripten module). */
export interface WasmBackend {
  wasm: {
    wasmMemory?: WebAssembly.Memory;
    asm?: { memory?: WebAssembly.Memory };
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
}

export interface WasmHeap {
  backend: WasmBackend;
  /** The backend's memory, which oeld's modules import. */
  memory: WebAssembly.Memory;
  /** Whether it is shared (tfjs's multi-threaded build): it decides which build of a module fits. */
  shared: boolean;
  /** Byte offset of a tensor's data in that memory. */
  offset(t: TensorInfo): number;
  /** A Uint8Array over the whole memory, made anew when the memory has grown (for the native kernels). */
  bytes(): Uint8Array;
}

/** The started wasm backend's memory and tensor offsets; `who` names the caller in errors. */
export function wasmHeap(who: string): WasmHeap {
  const backend = tf.findBackend('wasm') as unknown as WasmBackend | null;
  if (!backend) throw new Error(`${who}: the wasm backend has not started`);
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error(`${who}: the wasm backend does not expose its memory (tfjs-backend-wasm version changed?)`);
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const offset = (t: TensorInfo): number => {
    const d = backend.dataIdMap.get(t.dataId);
    if (!d) throw new Error(`${who}: a tensor has no data on the wasm backend`);
    return d.memoryOffset;
  };
  let view = new Uint8Array(memory.buffer);
  // The memory's buffer is replaced when it grows.
  const bytes = (): Uint8Array => (view.buffer === memory.buffer ? view : (view = new Uint8Array(memory.buffer)));
  return { backend, memory, shared, offset, bytes };
}
