/**
 * TensorFlow.js backend selection for the model code.
 *
 * Candidates, in order: `tensorflow-gpu` (@tensorflow/tfjs-node-gpu with a CUDA device),
 * `tensorflow` (@tensorflow/tfjs-node, libtensorflow on the CPU), `wasm`
 * (@tensorflow/tfjs-backend-wasm, XNNPACK) and `cpu` (@tensorflow/tfjs-backend-cpu, plain JS).
 * The first whose package imports, whose backend initialises and that passes a self-test (two
 * matmuls checked against known results) is chosen. `force` or the environment variable
 * OELD_TF_BACKEND picks one and fails closed: if that one is not available or fails its
 * self-test, initBackend throws, naming the reason.
 *
 * The tfjs-node packages are optionalDependencies: their install script downloads libtensorflow,
 * which fails without network, and npm then leaves them out (install still exits 0).
 *
 * WASM in Node. The .wasm binaries are read from the npm package's own dist/ folder
 * (setWasmPaths with a local path; nothing is fetched). tfjs disables the multi-threaded build
 * under Node (WASM_HAS_MULTITHREAD_SUPPORT is hard-wired false there, tfjs issue #3830) because
 * Emscripten's pthread workers are created from `blob:` URLs and are handed the main script as
 * a Blob, neither of which Node's worker_threads can load. `installWasmThreadShim` below makes
 * it work in Node 20: while the backend initialises, worker_threads.Worker is replaced by a
 * subclass that starts each pthread worker from the package's own
 * wasm-out/tfjs-backend-wasm-threaded-simd.worker.js source and rewrites the worker's `load`
 * message to point at wasm-out/tfjs-backend-wasm-threaded-simd.js on disk. The workers are
 * unref'd so that they never keep the process alive. XNNPACK caps its pool at
 * min(requested, 8, logical cores / 2) (it assumes two hyper-threads per core); Emscripten reads
 * the core count from os.cpus(), which is padded during initialisation so that `threads`
 * (default: os.availableParallelism()) is honoured. threads = 1 loads the single-threaded SIMD
 * build and starts no worker.
 *
 * Emscripten also adds process-wide 'uncaughtException' and 'unhandledRejection' listeners that
 * rethrow (turning a crash's exit code 1 into 7); the ones it adds while initialising are removed.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import workerThreads from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { loadCpuKernels } from './cpu-kernels.ts';
import { installWasmBatchMatMul } from './wasm-batch-matmul.ts';
import { installWasmElementwise } from './wasm-elementwise.ts';
import { registerWasmJsKernels } from './wasm-kernels.ts';

export { tf };

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
export const BACKEND_ENV = 'OELD_TF_BACKEND';
/**
 * The wasm backend's matmuls: `auto` (default) the native CPU matmul where its addon is built,
 * else `wasm`; `native` the native CPU matmul (cpu-kernels.ts), failing closed where it is not
 * built; `wasm` oeld's WebAssembly SIMD kernel, with relaxed SIMD's fused multiply-add where the
 * runtime has it; `wasm-simd128` the same kernel without it (no fused multiply-add, so no
 * rounding that depends on the CPU); `tfjs` tfjs's own kernels (training 15-18x slower than
 * `wasm`; for comparison).
 */
export const WASM_MATMUL_ENV = 'OELD_WASM_MATMUL';

export interface InitBackendOptions {
  /** Use only this backend; throw if it is unavailable or fails its self-test. Overrides OELD_TF_BACKEND. */
  force?: BackendName;
  /** WASM threads (XNNPACK pool); default os.availableParallelism(). Fixed once the wasm backend has started. */
  threads?: number;
  log?: (msg: string) => void;
  /** For tests only. */
  testHooks?: {
    /** Replaces `import(specifier)` for the backend packages (e.g. to simulate a missing one). */
    importModule?: (specifier: string) => Promise<unknown>;
    /** Sees, and may replace, each self-test matmul result before it is checked. */
    selfTestResult?: (backend: BackendName, test: SelfTest, values: Float32Array) => Float32Array;
  };
}

export interface BackendInfo {
  name: BackendName;
  /** What was chosen, and why the ones before it were skipped. */
  detail: string;
  /** The tfjs backend name now active (`tensorflow` for both tfjs-node packages). */
  tfBackend: string;
  /** Threads doing the math, where known (wasm: XNNPACK pool size). */
  threads?: number;
  /** Backends tried before it, with the reason each was skipped. */
  skipped: { name: BackendName; reason: string }[];
}

const PACKAGES: Record<BackendName, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

const TF_BACKEND_NAME: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow', tensorflow: 'tensorflow', wasm: 'wasm', cpu: 'cpu',
};

const require = createRequire(import.meta.url);

/** A backend that could not be used; `message` says why. */
class Unavailable extends Error {}

export function parseBackendName(value: string, source: string): BackendName {
  const v = value.trim().toLowerCase();
  if ((BACKEND_ORDER as readonly string[]).includes(v)) return v as BackendName;
  throw new Error(`${source}=${JSON.stringify(value)} is not a TensorFlow.js backend: use one of ${BACKEND_ORDER.join(', ')}`);
}

/**
 * Chooses and activates a TensorFlow.js backend (see the file comment). Safe to call again:
 * each call re-runs the selection and switches tfjs to the backend it picks.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const log = options.log ?? (() => {});
  wasmMatmulChoice(); // a bad value fails here, not as a skipped backend
  const envValue = process.env[BACKEND_ENV];
  const forced = options.force
    ?? (envValue !== undefined && envValue.trim() !== '' ? parseBackendName(envValue, BACKEND_ENV) : undefined);
  const forcedBy = options.force ? 'force option' : BACKEND_ENV;
  const candidates = forced ? [forced] : BACKEND_ORDER;
  const skipped: { name: BackendName; reason: string }[] = [];
  for (const name of candidates) {
    try {
      const { detail, threads } = await tryBackend(name, options);
      const why = forced ? `forced by ${forcedBy}` : skipped.length === 0 ? 'first choice' : `skipped ${skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}`;
      const info: BackendInfo = { name, detail: `${detail}; ${why}`, tfBackend: tf.getBackend(), skipped, ...(threads !== undefined ? { threads } : {}) };
      log(`tfjs backend: ${name}: ${info.detail}`);
      return info;
    } catch (err) {
      const reason = err instanceof Unavailable ? err.message : `unexpected error: ${(err as Error)?.stack ?? String(err)}`;
      if (forced) {
        throw new Error(`TensorFlow.js backend '${name}' was forced by ${forcedBy} but cannot be used: ${reason}`);
      }
      skipped.push({ name, reason });
      log(`tfjs backend: skipping ${name}: ${reason}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could be used: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

async function tryBackend(name: BackendName, options: InitBackendOptions): Promise<{ detail: string; threads?: number }> {
  switch (name) {
    case 'tensorflow-gpu': {
      await importBackendPackage(name, options);
      await activate(name);
      const b = tf.backend() as { isGPUPackage?: boolean; isUsingGpuDevice?: boolean };
      if (!b.isGPUPackage) throw new Unavailable(`the 'tensorflow' backend that is registered does not come from ${PACKAGES[name]}`);
      if (!b.isUsingGpuDevice) throw new Unavailable('libtensorflow (GPU build) sees no CUDA device');
      selfTest(name, options);
      return { detail: `${PACKAGES[name]}, libtensorflow on a CUDA GPU` };
    }
    case 'tensorflow': {
      let via: string = PACKAGES.tensorflow;
      if (tf.findBackendFactory('tensorflow')) {
        // tfjs-node-gpu (imported by the candidate before, which found no CUDA device) registers
        // the same 'tensorflow' backend and runs on the CPU: use it rather than load a second
        // libtensorflow into the process.
        via = `${PACKAGES['tensorflow-gpu']} (no CUDA device: on the CPU)`;
      } else {
        await importBackendPackage(name, options);
      }
      await activate(name);
      selfTest(name, options);
      return { detail: `${via}, libtensorflow on the CPU` };
    }
    case 'wasm': {
      const wasm = await importBackendPackage(name, options) as typeof import('@tensorflow/tfjs-backend-wasm');
      const { threads, build } = await startWasm(wasm, options);
      registerWasmJsKernels();
      const choice = wasmMatmulChoice();
      // The native kernels, where they take the matmuls, take SwiGLU too.
      const cpu = choice === 'auto' || choice === 'native' ? loadCpuKernels() : undefined;
      installWasmElementwise(cpu && 'kernels' in cpu ? cpu.kernels : undefined);
      let matmul = `matmuls on tfjs's own kernels (${WASM_MATMUL_ENV}=tfjs)`;
      if (choice !== 'tfjs') {
        const bmm = installWasmBatchMatMul(threads, choice === 'auto' ? undefined : choice === 'native' ? 'native' : choice === 'wasm-simd128' ? 'simd' : 'relaxed');
        const threadsUsed = `${bmm.threads} thread${bmm.threads === 1 ? '' : 's'}`;
        if (bmm.kernel === 'native') {
          matmul = `matmuls on oeld's native CPU kernel (${bmm.isa}, ${threadsUsed})`;
        } else {
          const flavour = bmm.kernel === 'relaxed' ? 'relaxed SIMD, fused multiply-add' : 'SIMD128';
          const why = choice === 'auto' ? `; the native CPU matmul is ${(loadCpuKernels() as { reason?: string }).reason ?? 'not in use'}` : '';
          matmul = `batched and transposed matmuls on oeld's WebAssembly kernel (${flavour}, ${threadsUsed})${why}`;
        }
      }
      selfTest(name, options);
      return { detail: `${PACKAGES.wasm} ${build}, ${threads} thread${threads === 1 ? '' : 's'}; ${matmul}`, threads };
    }
    case 'cpu': {
      await importBackendPackage(name, options);
      await activate(name);
      // Silence the CPU backend's one-time "install tfjs-node" banner: the log line says it.
      (tf.backend() as { firstUse?: boolean }).firstUse = false;
      selfTest(name, options);
      return { detail: `${PACKAGES.cpu}, plain JavaScript`, threads: 1 };
    }
  }
}

const WASM_MATMUL_CHOICES = ['auto', 'native', 'wasm', 'wasm-simd128', 'tfjs'] as const;

function wasmMatmulChoice(): (typeof WASM_MATMUL_CHOICES)[number] {
  const v = (process.env[WASM_MATMUL_ENV] ?? '').trim();
  if (v === '') return 'auto';
  const found = WASM_MATMUL_CHOICES.find((c) => c === v);
  if (!found) throw new Error(`${WASM_MATMUL_ENV} must be one of ${WASM_MATMUL_CHOICES.join(', ')}, got ${JSON.stringify(v)}`);
  return found;
}

async function importBackendPackage(name: BackendName, options: InitBackendOptions): Promise<unknown> {
  const specifier = PACKAGES[name];
  let mod: unknown;
  try {
    mod = await (options.testHooks?.importModule ?? ((s: string) => import(s)))(specifier);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') {
      const optional = name === 'tensorflow' || name === 'tensorflow-gpu'
        ? ' (an optionalDependency, left out where its install could not download libtensorflow)' : '';
      throw new Unavailable(`${specifier} is not installed${optional}`);
    }
    throw new Unavailable(`${specifier} failed to load: ${firstLine(e.message ?? String(err))}`);
  }
  if (!tf.findBackendFactory(TF_BACKEND_NAME[name])) {
    throw new Unavailable(`${specifier} loaded but registered no '${TF_BACKEND_NAME[name]}' backend with this @tensorflow/tfjs-core (a second copy of tfjs-core in node_modules?)`);
  }
  return mod;
}

/** tf.setBackend, turning its `false` (the reason only goes to console.warn) into an error with the reason. */
async function activate(name: BackendName): Promise<void> {
  const tfName = TF_BACKEND_NAME[name];
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => { warnings.push(args.map(String).join(' ')); };
  let ok: boolean;
  try {
    ok = await tf.setBackend(tfName);
  } finally {
    console.warn = warn;
  }
  if (!ok || tf.getBackend() !== tfName) {
    const why = warnings.map(firstLine).filter((w) => w !== '').join(' / ');
    throw new Unavailable(`backend '${tfName}' failed to initialise${why ? `: ${why}` : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------
// WASM

let wasmStarted: { threads: number; build: string; requested?: number } | undefined;

async function startWasm(wasm: typeof import('@tensorflow/tfjs-backend-wasm'), options: InitBackendOptions): Promise<{ threads: number; build: string }> {
  if (wasmStarted) {
    await activate('wasm');
    if (options.threads !== undefined && options.threads !== wasmStarted.requested) {
      return { ...wasmStarted, build: `${wasmStarted.build} (threads=${options.threads} ignored: the count is fixed when the wasm backend starts)` };
    }
    return wasmStarted;
  }
  if ((tf.engine() as unknown as { registry: Record<string, unknown> }).registry.wasm) {
    // Started before initBackend ran (a tf op ran first, and tfjs picked wasm by priority).
    await activate('wasm');
    registerWasmJsKernels();
    wasmStarted = { threads: wasm.getThreadsCount(), build: 'build chosen by tfjs (it was started before initBackend)' };
    return wasmStarted;
  }
  const pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const distDir = path.join(pkgDir, 'dist') + path.sep;
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    if (!existsSync(distDir + f)) throw new Unavailable(`${distDir + f} is missing`);
  }
  wasm.setWasmPaths(distDir);
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') as boolean;
  const requested = options.threads ?? os.availableParallelism();
  if (!Number.isInteger(requested) || requested < 1) throw new Unavailable(`threads must be a positive integer, got ${requested}`);
  const threaded = simd && requested > 1;
  let failure: string | undefined;
  if (threaded) {
    try {
      await withThreadShim(pkgDir, requested, async () => {
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
        wasm.setThreadsCount(requested);
        await activate('wasm');
      });
    } catch (err) {
      failure = (err as Error).message;
    }
  }
  if (!threaded || failure !== undefined) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    wasm.setThreadsCount(1);
    await withoutNewProcessListeners(() => activate('wasm'));
  }
  const threads = wasm.getThreadsCount();
  const build = !simd ? 'plain build (no SIMD)' : threaded && failure === undefined ? 'threaded SIMD build' : 'SIMD build';
  wasmStarted = { threads, requested, build: failure ? `${build} (threaded build failed: ${failure})` : build };
  return wasmStarted;
}

/** Runs `f` with the pthread-worker shim and the core-count padding in place (file comment). */
async function withThreadShim(pkgDir: string, threads: number, f: () => Promise<void>): Promise<void> {
  const wasmOut = path.join(pkgDir, 'wasm-out');
  const workerSource = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js');
  const mainScript = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  for (const p of [workerSource, mainScript]) if (!existsSync(p)) throw new Unavailable(`${p} is missing`);
  // The worker source is a module exporting the pthread worker's code as a string; tfjs escapes
  // its "\n" before putting it in a Blob, and so must we before evaluating it.
  const workerCode = `(0, eval)(require(${JSON.stringify(workerSource)}).wasmWorkerContents.replace(/\\n/g, '\\\\n'))`;
  const RealWorker = workerThreads.Worker;
  class PthreadWorker extends RealWorker {
    constructor(filename: string | URL, opts?: workerThreads.WorkerOptions) {
      if (typeof filename === 'string' && filename.startsWith('blob:')) {
        super(workerCode, { ...opts, eval: true });
        this.unref();
      } else {
        super(filename, opts);
      }
    }
    // Emscripten ref()s a worker while it runs a pthread, and XNNPACK's pool threads run for
    // the life of the process: they must never keep it alive.
    override ref(): void {}
    override postMessage(message: unknown, transferList?: readonly workerThreads.TransferListItem[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m && m.cmd === 'load' && typeof m.urlOrBlob !== 'string') message = { ...m, urlOrBlob: mainScript };
      super.postMessage(message, transferList);
    }
  }
  const wt = workerThreads as { Worker: typeof workerThreads.Worker };
  const o = os as { cpus: typeof os.cpus };
  const realCpus = o.cpus;
  wt.Worker = PthreadWorker;
  o.cpus = () => {
    const cpus = realCpus();
    while (cpus.length < 2 * threads && cpus.length > 0) cpus.push(cpus[0]!);
    return cpus;
  };
  try {
    await withoutNewProcessListeners(f);
  } finally {
    wt.Worker = RealWorker;
    o.cpus = realCpus;
  }
}

async function withoutNewProcessListeners(f: () => Promise<void>): Promise<void> {
  const p = process as unknown as {
    listeners(event: string): ((...args: unknown[]) => void)[];
    removeListener(event: string, l: (...args: unknown[]) => void): void;
  };
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = events.map((e) => new Set(p.listeners(e)));
  try {
    await f();
  } finally {
    events.forEach((e, i) => {
      for (const l of p.listeners(e)) if (!before[i]!.has(l)) p.removeListener(e, l);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Self-test

/** Deterministic values in [-1, 1) (mulberry32), so that the self-test does not use tf.random. */
function seededValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

function matmulReference(a: Float32Array, b: Float32Array, n: number): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      for (let j = 0; j < n; j++) c[i * n + j]! += aik * b[k * n + j]!;
    }
  }
  return c;
}

/**
 * [[1,2],[3,4]] @ [[5,6],[7,8]] must be [[19,22],[43,50]], and a 64x64 matmul of seeded values
 * must match a float64 JavaScript reference within 1e-4. Throws Unavailable otherwise.
 */
function selfTest(name: BackendName, options: InitBackendOptions): void {
  const hook = options.testHooks?.selfTestResult;
  const run = (test: SelfTest, f: () => tf.Tensor): Float32Array => {
    const values = tf.tidy(() => f().dataSync() as Float32Array);
    return hook ? hook(name, test, Float32Array.from(values)) : values;
  };
  const small = run('2x2', () => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
  const expected = [19, 22, 43, 50];
  if (small.length !== 4 || expected.some((v, i) => Math.abs(small[i]! - v) > 1e-6)) {
    throw new Unavailable(`self-test failed: [[1,2],[3,4]] @ [[5,6],[7,8]] gave ${JSON.stringify(Array.from(small))}, expected [19,22,43,50]`);
  }
  const n = 64;
  const a = seededValues(2 * n * n, 1);
  const b = seededValues(2 * n * n, 2);
  // Plain 2-D, then batched with b transposed (on wasm, the second always takes oeld's kernel).
  const plain = run('64x64', () => tf.matMul(tf.tensor2d(a.subarray(0, n * n), [n, n]), tf.tensor2d(b.subarray(0, n * n), [n, n])));
  compare('64x64 matmul', plain, matmulReference(a.subarray(0, n * n), b.subarray(0, n * n), n), n);
  const batched = run('batched', () => tf.matMul(tf.tensor3d(a, [2, n, n]), tf.tensor3d(b, [2, n, n]), false, true));
  for (let i = 0; i < 2; i++) {
    const bt = transposeSquare(b.subarray(i * n * n, (i + 1) * n * n), n);
    compare(`batched transposed matmul (batch ${i} of 2, 64x64)`, batched.subarray(i * n * n, (i + 1) * n * n), matmulReference(a.subarray(i * n * n, (i + 1) * n * n), bt, n), n);
  }
}

export type SelfTest = '2x2' | '64x64' | 'batched';

function compare(what: string, got: Float32Array, want: Float64Array | Float32Array, n: number): void {
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs((got[i] ?? Number.NaN) - want[i]!);
    if (!(d <= worst)) { worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d; at = i; }
  }
  if (got.length !== want.length || !(worst <= 1e-4)) {
    throw new Unavailable(`self-test failed: ${what} differs from the JavaScript reference by ${worst} at [${Math.floor(at / n)},${at % n}] (tolerance 1e-4)`);
  }
}

function transposeSquare(m: Float32Array, n: number): Float32Array {
  const t = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = m[i * n + j]!;
  return t;
}

function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
}
