/**
 * The project's BatchMatMul kernel for the tfjs WebAssembly backend.
 *
 * tfjs-backend-wasm 4.22 sends only plain 2-D matmuls to XNNPACK. A batched or transposed matmul
 * (attention's scores and context; the gradients of both) falls to a scalar loop at 1-2 GFLOP/s,
 * and those matmuls were three quarters of a training step. src/model/kernels/native/batch-matmul.c does
 * them with WebAssembly SIMD at 10-20 GFLOP/s per thread. Its module imports the backend's own
 * memory, so it reads and writes the tensors where tfjs keeps them (no copies).
 *
 * installWasmBatchMatMul replaces the backend's BatchMatMul kernel with one that hands the calls
 * planBatchMatMul accepts to one of oeld's kernels and every other call (general broadcasts, empty
 * shapes; for the WebAssembly kernel, plain 2-D matmuls of few rows, where XNNPACK keeps its
 * packed weights) to tfjs's own:
 * - `native`: the native CPU matmul (cpu-kernels.ts), on the same memory, with its own threads;
 * - `relaxed` or `simd`: that module. With more than one thread, a helper worker thread
 *   instantiates the same module on the same shared memory and computes half of each large call
 *   (by batches, or by rows when there is one batch); the two meet through Atomics on a small
 *   control block in that memory.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { BatchMatMulAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { PLAIN_MIN_ROWS, planBatchMatMul, type BatchMatMulPlan } from './batch-matmul-plan.ts';
import { loadCpuKernels } from './cpu-kernels.ts';
import { wasmHeap, type WasmBackend } from './wasm-heap.ts';

type EmscriptenModule = WasmBackend['wasm'];

interface Kernel { run: KernelFn; scratchFloats(K: number, N: number): number }
type KernelFn = (a: number, b: number, out: number, scratch: number, first: number, last: number, rowFirst: number, rowLast: number,
  batchA: number, batchB: number, M: number, K: number, N: number, transA: number, transB: number) => void;

/** A call below this many multiply-adds is not split (waking the helper costs tens of microseconds). */
export const SPLIT_MIN_MACS = 1 << 19;

/**
 * Control block, Int32 slots: [0] call sequence (main -> helper), [1] done sequence (helper ->
 * main; negated on error), [2..] arguments. The helper is unref'd and ends with the process.
 */
const CTRL_INTS = 20;
const ARGS = 2;

export interface WasmBatchMatMulInfo {
  /** Threads that compute one call: the native pool's size, or the main thread plus the helper. */
  threads: number;
  /**
   * The kernel in use: `native` (the native CPU matmul, `isa` naming its instruction set), else
   * the WebAssembly build: relaxed SIMD's fused multiply-add where the runtime has it, else SIMD128.
   */
  kernel: MatMulKernel;
  isa?: string;
  /**
   * Calls this kernel computed (`split` of them shared with another thread), and calls it
   * passed to tfjs's own kernel (counters, for tests and the benchmark).
   */
  calls: { own: number; split: number; tfjs: number };
}

let installed: WasmBatchMatMulInfo | undefined;

export type SimdFlavour = 'relaxed' | 'simd';
export type MatMulKernel = 'native' | SimdFlavour;

/** The committed build for a memory (shared or not) and an instruction set. */
export function nativeModulePath(shared: boolean, simd: SimdFlavour): URL {
  return new URL(`./native/batch-matmul-${shared ? 'shared' : 'plain'}-${simd}.wasm`, import.meta.url);
}

/**
 * Whether this runtime compiles relaxed SIMD. Node 20's V8 (11.3) has it behind a flag, which is
 * set here (it only affects modules compiled afterwards); later V8s have it on by default.
 */
export function relaxedSimdAvailable(): boolean {
  const bytes = readFileSync(nativeModulePath(false, 'relaxed'));
  if (WebAssembly.validate(bytes)) return true;
  try { v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); } catch { return false; }
  return WebAssembly.validate(bytes);
}

/**
 * Replaces the wasm backend's BatchMatMul (idempotent: a later call returns the first one's info,
 * whatever it asks; the backend must be active). `choice` defaults to the native CPU matmul where
 * its addon loads, else to the WebAssembly kernel; `native` throws, with the reason, where the
 * addon does not load; `relaxed` is the WebAssembly kernel with relaxed SIMD where the runtime has
 * it (else SIMD128), `simd` the SIMD128 build. `threads`: the native pool's size, or, above 1 and
 * where the backend's memory is shared, starts the WebAssembly kernel's helper thread.
 */
export function installWasmBatchMatMul(threads: number, choice?: MatMulKernel): WasmBatchMatMulInfo {
  if (installed) return installed;
  const cpu = choice === undefined || choice === 'native' ? loadCpuKernels() : undefined;
  if (choice === 'native' && cpu && 'reason' in cpu) throw new Error(`installWasmBatchMatMul: the native CPU matmul is ${cpu.reason}`);
  const native = cpu && 'kernels' in cpu ? cpu.kernels : undefined;
  const kernelName: MatMulKernel = native ? 'native' : choice !== 'simd' && relaxedSimdAvailable() ? 'relaxed' : 'simd';
  const { backend, memory, shared, offset, bytes } = wasmHeap('BatchMatMul');
  const original = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (!original) throw new Error('installWasmBatchMatMul: the wasm backend has no BatchMatMul kernel to fall back to');

  let compute: (p: BatchMatMulPlan, a: number, b: number, out: number, ta: boolean, tb: boolean) => boolean;
  let info: WasmBatchMatMulInfo;
  if (native) {
    native.setThreads(Math.max(1, threads));
    info = { threads: native.threads(), kernel: 'native', isa: native.isa(), calls: { own: 0, split: 0, tfjs: 0 } };
    compute = (p, a, b, out, ta, tb) => native.batchMatMul(bytes(), a, b, out, p.batch, p.batchA, p.batchB, p.M, p.K, p.N, ta ? 1 : 0, tb ? 1 : 0) > 1;
  } else {
    const module = new WebAssembly.Module(readFileSync(nativeModulePath(shared, kernelName as SimdFlavour)));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    const kernel: Kernel = { run: exports.batch_matmul as KernelFn, scratchFloats: exports.scratch_floats as (K: number, N: number) => number };
    const helper = shared && threads > 1 ? startHelper(module, memory, backend.wasm) : undefined;
    info = { threads: helper ? 2 : 1, kernel: kernelName, calls: { own: 0, split: 0, tfjs: 0 } };
    compute = (p, a, b, out, ta, tb) => run(kernel, helper, backend.wasm, p, a, b, out, ta, tb);
  }
  // The native kernel and the relaxed-SIMD build are faster than XNNPACK on plain matmuls too: the
  // native one at every size (measured: 2-4x on decoding's few rows), the other from PLAIN_MIN_ROWS.
  const takePlain = kernelName !== 'simd';
  const minRows = kernelName === 'native' ? 1 : PLAIN_MIN_ROWS;

  const kernelFunc: KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    const planned = a.dtype === 'float32' && b.dtype === 'float32' ? planBatchMatMul(a.shape, b.shape, transposeA, transposeB, takePlain, minRows) : { fallback: 'dtype' };
    if (!('plan' in planned)) {
      info.calls.tfjs++;
      return original.kernelFunc(args);
    }
    info.calls.own++;
    const p = planned.plan;
    const out = backend.makeOutput(p.outShape, 'float32');
    if (compute(p, offset(a), offset(b), offset(out), transposeA, transposeB)) info.calls.split++;
    return out;
  };

  tf.unregisterKernel(tf.BatchMatMul, 'wasm');
  tf.registerKernel({ kernelName: tf.BatchMatMul, backendName: 'wasm', kernelFunc } satisfies KernelConfig);
  installed = info;
  return info;
}

interface Helper { ctrl: number; memory: WebAssembly.Memory; seq: number; worker: Worker; failed?: string }

/** Computes one call; true when the helper thread computed part of it. */
function run(kernel: Kernel, helper: Helper | undefined, em: EmscriptenModule, p: BatchMatMulPlan, a: number, b: number, out: number, ta: boolean, tb: boolean): boolean {
  const scratchBytes = kernel.scratchFloats(p.K, p.N) * 4;
  const macs = p.batch * p.M * p.K * p.N;
  const split = helper && !helper.failed && macs >= SPLIT_MIN_MACS && (p.batch >= 2 || p.M >= 8);
  const scratch = em._malloc(split ? 2 * scratchBytes : scratchBytes);
  // Main thread: the first half; helper: the second.
  let mine = [0, p.batch, 0, p.M];
  if (split) {
    const byBatch = p.batch >= 2;
    const cut = byBatch ? p.batch >> 1 : (p.M >> 3) << 2;
    mine = byBatch ? [0, cut, 0, p.M] : [0, 1, 0, cut];
    const theirs = byBatch ? [cut, p.batch, 0, p.M] : [0, 1, cut, p.M];
    const v = new Int32Array(helper.memory.buffer, helper.ctrl, CTRL_INTS);
    v.set([a, b, out, scratch + scratchBytes, ...theirs, p.batchA, p.batchB, p.M, p.K, p.N, ta ? 1 : 0, tb ? 1 : 0], ARGS);
    helper.seq = (helper.seq % 0x3fffffff) + 1;
    Atomics.store(v, 0, helper.seq);
    Atomics.notify(v, 0);
  }
  try {
    kernel.run(a, b, out, scratch, mine[0]!, mine[1]!, mine[2]!, mine[3]!, p.batchA, p.batchB, p.M, p.K, p.N, ta ? 1 : 0, tb ? 1 : 0);
  } finally {
    // The helper may still be writing: wait for it before the scratch is freed, even on an error.
    try {
      if (split) waitForHelper(helper);
    } finally {
      em._free(scratch);
    }
  }
  return Boolean(split);
}

function waitForHelper(h: Helper): void {
  const v = new Int32Array(h.memory.buffer, h.ctrl, CTRL_INTS);
  const started = Date.now();
  for (;;) {
    const done = Atomics.load(v, 1);
    if (done === h.seq) return;
    if (done === -h.seq) { h.failed = 'the helper thread failed'; break; }
    Atomics.wait(v, 1, done, 1000);
    if (Date.now() - started > 60_000) { h.failed = 'the helper thread did not answer in 60 s'; break; }
  }
  throw new Error(`BatchMatMul: ${h.failed}; later calls run on one thread`);
}

/** The helper: waits for a call sequence, computes its part, publishes the sequence as done. */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctrl } = workerData;
const kernel = new WebAssembly.Instance(module, { env: { memory } }).exports.batch_matmul;
let seq = 0;
for (;;) {
  let v = new Int32Array(memory.buffer, ctrl, ${CTRL_INTS});
  Atomics.wait(v, 0, seq);
  v = new Int32Array(memory.buffer, ctrl, ${CTRL_INTS});
  const next = Atomics.load(v, 0);
  if (next === seq) continue;
  seq = next;
  const x = v.slice(${ARGS}, ${ARGS + 15});
  let result = seq;
  try { kernel(...x); } catch (err) { result = -seq; console.error('oeld batch-matmul helper:', err); }
  Atomics.store(v, 1, result);
  Atomics.notify(v, 1);
}
`;

function startHelper(module: WebAssembly.Module, memory: WebAssembly.Memory, em: EmscriptenModule): Helper {
  const ctrl = em._malloc(CTRL_INTS * 4);
  new Int32Array(memory.buffer, ctrl, CTRL_INTS).fill(0);
  const worker = new Worker(HELPER_SOURCE, { eval: true, workerData: { module, memory, ctrl } });
  worker.unref();
  const h: Helper = { ctrl, memory, seq: 0, worker };
  worker.on('error', (err) => { h.failed = `the helper thread failed: ${err.message}`; });
  worker.on('exit', (code) => { h.failed ??= `the helper thread exited (${code})`; });
  return h;
}
