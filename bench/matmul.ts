/**
 * Float32 matmul throughput (GFLOP/s) of each TensorFlow.js backend that can run here, against the
 * machine's limit measured in the same run with NumPy.
 *
 * Shapes, for each size n: plain [n,n]@[n,n]; transposeB [n,n]@[n,n]^T (tf.matMul(a, b, false,
 * true), the layout of x @ W^T in a transformer); batched 8 x [n/2,n/2]@[n/2,n/2]; and two
 * workarounds, compared with the same NumPy figure: transposeB-explicit (tf.transpose, then a
 * plain matmul) and batched-loop (one 2-D matmul per batch entry, then tf.stack). Each
 * configuration runs in a child process of its own (a wasm backend's thread count is fixed once
 * it has started): tensorflow-gpu and tensorflow (reported as unavailable where tfjs-node is not
 * installed), wasm with 1 thread and with one per core (the default kernel: oeld's native CPU
 * matmul where its addon is built), wasm on every core with OELD_WASM_MATMUL=wasm (oeld's
 * WebAssembly kernel, relaxed SIMD where the runtime has it), =wasm-simd128 and =tfjs (tfjs's own
 * kernels: the baseline of oeld's), and cpu (plain JS) at a small size only.
 * NumPy runs three ways: with the OPENBLAS_* environment as it is, with OPENBLAS_CORETYPE=SkylakeX,
 * and with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset; the fastest is taken as the limit (the
 * ratios), and it runs once more on one thread (OPENBLAS_NUM_THREADS=1) for a per-core figure.
 *
 * Sizes: BENCH_MATMUL_SIZES (512,1024), BENCH_MATMUL_CPU_SIZE (256), BENCH_MATMUL_SECONDS (1: the
 * time spent per shape, after a warm-up).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { initBackend, tf, type BackendName } from '../src/model/kernels/backend.ts';
import { emit, envInt, log, round } from './lib.ts';

type Op = 'matmul' | 'transposeB' | 'transposeB-explicit' | 'batched' | 'batched-loop';
type NumpyOp = 'matmul' | 'transposeB' | 'batched';
const OPS: Op[] = ['matmul', 'transposeB', 'transposeB-explicit', 'batched', 'batched-loop'];
/** The NumPy figure each op is compared with: the workarounds compute the same product. */
const NUMPY_OP: Record<Op, NumpyOp> = {
  matmul: 'matmul', transposeB: 'transposeB', 'transposeB-explicit': 'transposeB', batched: 'batched', 'batched-loop': 'batched',
};
const BATCH = 8;

interface Shape { op: Op; n: number; label: string; flops: number }
interface Figure { op: Op; n: number; label: string; gflops: number; ms: number; reps: number }
interface ChildResult { config: string; backend: BackendName; detail?: string; threads?: number; unavailable?: string; figures: Figure[] }

const sizes = (process.env.BENCH_MATMUL_SIZES ?? '512,1024').split(',').map((s) => Number(s.trim()));
if (sizes.some((n) => !Number.isInteger(n) || n < 2 || n % 2 !== 0)) throw new Error('BENCH_MATMUL_SIZES must be even integers, e.g. 512,1024');
const cpuSize = envInt('BENCH_MATMUL_CPU_SIZE', 256);
const seconds = Number(process.env.BENCH_MATMUL_SECONDS ?? '1');

function shapes(ns: number[]): Shape[] {
  const out: Shape[] = [];
  for (const n of ns) {
    for (const op of OPS) {
      if (op.startsWith('batched')) {
        const m = n / 2;
        out.push({ op, n, label: `${BATCH}x${m}x${m}`, flops: BATCH * 2 * m ** 3 });
      } else {
        out.push({ op, n, label: `${n}x${n}${op.startsWith('transposeB') ? '^T' : ''}`, flops: 2 * n ** 3 });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One configuration, in a child process: BENCH_MATMUL_CHILD=<backend>:<threads>[:<OELD_WASM_MATMUL>]

async function child(spec: string): Promise<void> {
  const [backend, threadsRaw, matmul] = spec.split(':') as [BackendName, string, string | undefined];
  if (matmul) process.env.OELD_WASM_MATMUL = matmul;
  const config = backend === 'wasm' ? `wasm x${threadsRaw}${matmul ? ` OELD_WASM_MATMUL=${matmul}` : ''}` : backend;
  const result: ChildResult = { config, backend, figures: [] };
  try {
    const info = await initBackend({ force: backend, threads: Number(threadsRaw) || undefined });
    result.detail = info.detail;
    if (info.threads !== undefined) result.threads = info.threads;
  } catch (err) {
    result.unavailable = (err as Error).message.replace(/^.*cannot be used: /, '');
    console.log(`RESULT ${JSON.stringify(result)}`);
    return;
  }
  for (const s of shapes(backend === 'cpu' ? [cpuSize] : sizes)) result.figures.push(timeShape(s));
  console.log(`RESULT ${JSON.stringify(result)}`);
}

function timeShape(s: Shape): Figure {
  const [a, b] = tf.tidy(() => {
    const shapeOf = s.op.startsWith('batched') ? [BATCH, s.n / 2, s.n / 2] : [s.n, s.n];
    return [tf.randomUniform(shapeOf, -1, 1, 'float32', 1), tf.randomUniform(shapeOf, -1, 1, 'float32', 2)];
  }) as [tf.Tensor, tf.Tensor];
  const once = (): number => {
    const t0 = performance.now();
    const c = tf.tidy(() => {
      switch (s.op) {
        case 'transposeB': return tf.matMul(a, b, false, true);
        // The workarounds: an explicit transpose, then a plain matmul; one 2-D matmul per batch.
        case 'transposeB-explicit': return tf.matMul(a, tf.transpose(b));
        case 'batched-loop': {
          const as = tf.unstack(a);
          const bs = tf.unstack(b);
          return tf.stack(as.map((ai, i) => tf.matMul(ai, bs[i]!)));
        }
        default: return tf.matMul(a, b);
      }
    });
    c.dataSync();
    c.dispose();
    return performance.now() - t0;
  };
  once(); // warm-up: kernel set-up, first allocation
  const times: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (times.length < 3 || (performance.now() < until && times.length < 1000)) times.push(once());
  a.dispose();
  b.dispose();
  times.sort((x, y) => x - y);
  const ms = times[Math.floor(times.length / 2)]!;
  return { op: s.op, n: s.n, label: s.label, gflops: s.flops / ms / 1e6, ms, reps: times.length };
}

// ---------------------------------------------------------------------------------------------
// NumPy

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
sizes, batch, seconds = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
out = []
def run(op, n, a, b, f, flops):
    f(a, b)
    times = []
    until = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < until and len(times) < 1000):
        t0 = time.perf_counter(); f(a, b); times.append(time.perf_counter() - t0)
    times.sort(); t = times[len(times) // 2]
    out.append({"op": op, "n": n, "gflops": flops / t / 1e9, "ms": t * 1e3, "reps": len(times)})
for n in sizes:
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32); b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    run("matmul", n, a, b, lambda x, y: x @ y, 2 * n ** 3)
    run("transposeB", n, a, b, lambda x, y: x @ y.T, 2 * n ** 3)
    m = n // 2
    a3 = rng.uniform(-1, 1, (batch, m, m)).astype(np.float32); b3 = rng.uniform(-1, 1, (batch, m, m)).astype(np.float32)
    run("batched", n, a3, b3, lambda x, y: np.matmul(x, y), batch * 2 * m ** 3)
print(json.dumps({"numpy": np.__version__, "figures": out}))
`;

interface NumpyRun { variant: string; numpy?: string; figures: { op: NumpyOp; n: number; gflops: number; ms: number; reps: number }[]; error?: string }

/** NumPy at every size the backends use (the cpu backend's small one included). */
const numpySizes = [...new Set([cpuSize, ...sizes])].sort((a, b) => a - b);

function numpy(variant: string, env: NodeJS.ProcessEnv): NumpyRun {
  const r = spawnSync('python3', ['-c', NUMPY_SCRIPT, JSON.stringify([numpySizes, BATCH, seconds])], { env, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) return { variant, figures: [], error: (r.error?.message ?? r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`) };
  const parsed = JSON.parse(r.stdout.trim().split('\n').pop()!) as { numpy: string; figures: NumpyRun['figures'] };
  return { variant, numpy: parsed.numpy, figures: parsed.figures };
}

// ---------------------------------------------------------------------------------------------

/** The fraction of all cores busy over `ms` (from /proc/stat), before anything of ours runs; null off Linux. */
async function otherCpuUse(ms: number): Promise<number | null> {
  const sample = (): [number, number] | null => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      return [f.reduce((a, b) => a + b, 0), (f[3] ?? 0) + (f[4] ?? 0)];
    } catch { return null; }
  };
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  if (!a || !b || b[0] === a[0]) return null;
  return 1 - (b[1] - a[1]) / (b[0] - a[0]);
}

async function main(): Promise<void> {
  const cores = os.availableParallelism();
  const busy = await otherCpuUse(1000);
  log(`Float32 matmul, ${cores} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), sizes ${sizes.join(', ')} (cpu backend: ${cpuSize}), ~${seconds} s per shape, median time`);
  if (busy !== null) log(`CPU busy before the run: ${(busy * 100).toFixed(0)}%${busy > 0.1 ? ' (other work is running: the figures will be low and noisy)' : ''}`);
  log();

  // NumPy variants: the environment as it is, SkylakeX kernels, and OpenBLAS's own detection.
  const base = { ...process.env };
  const unset = { ...base };
  delete unset.OPENBLAS_CORETYPE;
  delete unset.OPENBLAS_L2_SIZE;
  const variants: [string, NodeJS.ProcessEnv][] = [
    [`as is (OPENBLAS_CORETYPE=${base.OPENBLAS_CORETYPE ?? 'unset'}, OPENBLAS_L2_SIZE=${base.OPENBLAS_L2_SIZE ?? 'unset'})`, base],
    ['OPENBLAS_CORETYPE=SkylakeX', { ...base, OPENBLAS_CORETYPE: 'SkylakeX' }],
    ['OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset', unset],
  ];
  const runs = variants.map(([name, env]) => numpy(name, env));
  const key = (op: Op, n: number) => `${NUMPY_OP[op]}@${n}`;
  const largest = Math.max(...sizes);
  const score = (r: NumpyRun) => r.figures.find((f) => f.op === 'matmul' && f.n === largest)?.gflops ?? 0;
  const best = runs.reduce((x, y) => (score(y) > score(x) ? y : x));
  for (const r of runs) {
    if (r.error) { log(`NumPy, ${r.variant}: failed: ${r.error}`); continue; }
    log(`NumPy ${r.numpy}, ${r.variant}${r === best ? '  <- the limit used below' : ''}`);
    for (const f of r.figures) log(`  ${f.op.padEnd(19)} n=${String(f.n).padEnd(5)} ${f.gflops.toFixed(1).padStart(7)} GFLOP/s`);
  }
  const limit = new Map(best.figures.map((f) => [key(f.op, f.n), f.gflops]));
  // One OpenBLAS thread, with the best variant's settings: the per-core figure, for wasm x1.
  const bestEnv = variants.find(([name]) => name === best.variant)?.[1] ?? base;
  const single = best.error ? undefined : numpy(`${best.variant}, OPENBLAS_NUM_THREADS=1`, { ...bestEnv, OPENBLAS_NUM_THREADS: '1' });
  if (single && !single.error) {
    log(`NumPy, ${single.variant} (one core)`);
    for (const f of single.figures) log(`  ${f.op.padEnd(19)} n=${String(f.n).padEnd(5)} ${f.gflops.toFixed(1).padStart(7)} GFLOP/s`);
  }
  log();

  // The backends, each in a child process.
  // wasm with the default kernel on 1 thread and on every core, then on every core with oeld's
  // WebAssembly kernel, without its fused multiply-add, and with tfjs's own kernels: the baseline.
  const all = cores > 1 ? cores : 1;
  const configs = ['tensorflow-gpu:0', 'tensorflow:0', 'wasm:1', ...(cores > 1 ? [`wasm:${cores}`] : []), `wasm:${all}:wasm`, `wasm:${all}:wasm-simd128`, `wasm:${all}:tfjs`, 'cpu:1'];
  const results: ChildResult[] = [];
  for (const spec of configs) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, BENCH_MATMUL_CHILD: spec }, encoding: 'utf8', timeout: 600_000,
    });
    const line = r.stdout?.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) {
      const [backend] = spec.split(':') as [BackendName];
      results.push({ config: spec, backend, figures: [], unavailable: `child failed (exit ${r.status}): ${r.stderr?.trim().split('\n').slice(-3).join(' / ')}` });
      continue;
    }
    results.push(JSON.parse(line.slice('RESULT '.length)) as ChildResult);
  }

  const table: Record<string, unknown>[] = [];
  for (const r of results) {
    if (r.unavailable) { log(`${r.config}: unavailable: ${r.unavailable}`); continue; }
    log(`${r.config}: ${r.detail}`);
    for (const f of r.figures) {
      const np = limit.get(key(f.op, f.n));
      const ratio = np ? f.gflops / np : null;
      log(`  ${f.op.padEnd(19)} ${f.label.padEnd(12)} ${f.gflops.toFixed(1).padStart(7)} GFLOP/s  (${f.ms.toFixed(2)} ms, ${f.reps} reps)  ${ratio === null ? '' : `${(ratio * 100).toFixed(1)}% of NumPy (${np!.toFixed(1)})`}`);
      table.push({ config: r.config, op: f.op, n: f.n, shape: f.label, gflops: round(f.gflops, 2), numpy_gflops: np ? round(np, 2) : null, ratio: ratio === null ? null : round(ratio, 4) });
    }
  }

  emit({
    bench: 'matmul',
    cores,
    cpu_busy_before: busy === null ? null : round(busy, 3),
    sizes,
    cpu_size: cpuSize,
    numpy: {
      version: best.numpy ?? null,
      variant: best.variant,
      variants: [...runs, ...(single ? [single] : [])].map((r) => ({ variant: r.variant, error: r.error ?? null, figures: r.figures.map((f) => ({ op: f.op, n: f.n, gflops: round(f.gflops, 2) })) })),
    },
    backends: results.map((r) => ({ config: r.config, backend: r.backend, threads: r.threads ?? null, unavailable: r.unavailable ?? null })),
    results: table,
  });
}

const childSpec = process.env.BENCH_MATMUL_CHILD;
if (childSpec) await child(childSpec);
else await main();
