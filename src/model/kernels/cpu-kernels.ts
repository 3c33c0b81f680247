/**
 * oeld's native CPU matmul, and SwiGLU (src/model/kernels/native/cpu/, a Node-API addon built by
 * scripts/build-cpu-addon.mjs into .build/oeld-cpu-kernels.node at `npm ci` and before
 * `npm start`, `npm test` and `npm run bench`). It computes the wasm backend's BatchMatMul on the
 * tensors in the wasm memory with the CPU's widest vectors (AVX-512, AVX2 with FMA, or 4-wide SSE
 * or NEON) on a pool of native threads: 3-5x oeld's WebAssembly SIMD kernel, whose vectors are
 * 128-bit. Where the addon was not built (no C++ compiler or no Node headers), loadCpuKernels
 * says why and the WebAssembly kernel is used.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface CpuKernels {
  /**
   * For each batch index i: out[i] = op(a[i or 0]) @ op(b[i or 0]), op(a) [M, K], op(b) [K, N],
   * every tensor a byte offset into `heap` (checked against it). ta, tb: 1 to transpose. Returns
   * the threads that computed the call.
   */
  batchMatMul(heap: Uint8Array, a: number, b: number, out: number, batch: number, batchA: number, batchB: number, M: number, K: number, N: number, ta: number, tb: number): number;
  /** out = silu(g) * u over n floats (byte offsets into heap); returns the threads used. */
  swiglu(heap: Uint8Array, g: number, u: number, out: number, n: number): number;
  /** Its gradient given dy: dg and du. */
  swigluGrad(heap: Uint8Array, g: number, u: number, dy: number, dg: number, du: number, n: number): number;
  /** A transformer's inference with a key/value cache per sequence (native/cpu/decoder.cc; native-decoder.ts wraps it). */
  decoderCreate(dims: Int32Array, eps: number, invFreq: Float64Array, weights: Float32Array[]): unknown;
  decoderNewSequence(handle: unknown, capacity?: number): number;
  decoderFreeSequence(handle: unknown, id: number): void;
  decoderForward(handle: unknown, tokens: Int32Array, sequences: Int32Array, outputRows: Int32Array, logits: Float32Array): void;
  decoderDispose(handle: unknown): void;
  /** The instruction set in use: avx512, avx2 or generic. */
  isa(): string;
  /** Those this CPU has, widest first. */
  isas(): string[];
  useIsa(name: string): void;
  /** Threads of the pool, the calling thread included. */
  threads(): number;
  setThreads(n: number): void;
}

export const CPU_ADDON_PATH = fileURLToPath(new URL('../../../.build/oeld-cpu-kernels.node', import.meta.url));

let loaded: { kernels: CpuKernels } | { reason: string } | undefined;

/** The addon, or why it is not there (cached). */
export function loadCpuKernels(): { kernels: CpuKernels } | { reason: string } {
  if (loaded) return loaded;
  if (!existsSync(CPU_ADDON_PATH)) {
    loaded = { reason: `not built (${CPU_ADDON_PATH} is missing; \`node scripts/build-cpu-addon.mjs\` builds it, with a C++ compiler and Node's headers)` };
  } else {
    try {
      loaded = { kernels: createRequire(import.meta.url)(CPU_ADDON_PATH) as CpuKernels };
    } catch (err) {
      loaded = { reason: `${CPU_ADDON_PATH} did not load: ${(err as Error).message}` };
    }
  }
  return loaded;
}
