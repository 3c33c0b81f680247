/**
 * oeld's native CPU matmul (src/model/kernels/native/cpu/, loaded by src/model/kernels/cpu-kernels.ts), which
 * computes the wasm backend's matmuls by default where its addon is built. scripts/test.sh builds
 * the addon before the tests, so here it must load: a missing addon fails these tests rather than
 * skipping them.
 *
 * The addon is tested directly, on guard-filled memory of its own, for every instruction set this
 * CPU has, against a float64 reference over shapes that reach every edge of its blocking: rows past
 * and short of the 12-, 6- and 4-row register blocks and of the 192-row block, columns past and
 * short of the 64-, 32-, 16- and 8-column panels (AVX-512 takes its 12 x 32 build for blocks of 32
 * columns or fewer), b packed or read in place (a of 32 rows or fewer), depths past the 256-deep
 * slice, both transposes, broadcast batches; on one thread and split over two (by batches, rows and
 * columns). Then its argument checks; the native SwiGLU (float64 reference, tails, NaN, guard
 * memory, every instruction set); then through tfjs (the backend's BatchMatMul and its gradients,
 * and SwiGLU); then two JS threads calling it at once.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { initBackend, tf } from '../src/model/kernels/backend.ts';
import '../src/model/network/register-gradients.ts';
import { CPU_ADDON_PATH, loadCpuKernels, type CpuKernels } from '../src/model/kernels/cpu-kernels.ts';
import { swiglu } from '../src/model/network/swiglu.ts';
import { installWasmBatchMatMul, type WasmBatchMatMulInfo } from '../src/model/kernels/wasm-batch-matmul.ts';
import { referenceMatMul, values } from './helpers/matmul-reference.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function kernels(): CpuKernels {
  const r = loadCpuKernels();
  if ('reason' in r) assert.fail(`the native CPU matmul must be built for these tests (scripts/test.sh builds it): ${r.reason}`);
  return r.kernels;
}

const GUARD = -7.25;

/**
 * One call on a guard-filled heap of its own; checks the result against the reference and that
 * nothing outside the output changed. Returns the threads the addon used.
 */
function check(k: CpuKernels, batch: number, batchA: number, batchB: number, M: number, K: number, N: number, ta: boolean, tb: boolean, seed: number): number {
  const pad = 37; // floats of guard between the regions (an odd count: offsets not 64-byte aligned)
  const A = 16; const B = A + batchA * M * K + pad; const OUT = B + batchB * K * N + pad; const END = OUT + batch * M * N + pad;
  const heap = new Uint8Array(END * 4);
  const f = new Float32Array(heap.buffer);
  f.fill(GUARD);
  const a = values(batchA * M * K, seed);
  const b = values(batchB * K * N, seed + 1);
  f.set(a, A);
  f.set(b, B);
  const used = k.batchMatMul(heap, A * 4, B * 4, OUT * 4, batch, batchA, batchB, M, K, N, ta ? 1 : 0, tb ? 1 : 0);
  const what = `${k.isa()} batch ${batch} (${batchA}, ${batchB}) M ${M} K ${K} N ${N} ta ${ta} tb ${tb}`;
  const want = referenceMatMul(a, b, batchA, batchB, M, K, N, ta, tb);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(f[OUT + i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  assert.ok(worst < 1e-5, `${what}: worst relative error ${worst}`);
  for (let i = 0; i < END; i++) {
    if (i >= OUT && i < OUT + batch * M * N) continue;
    const expected = i >= A && i < A + a.length ? a[i - A] : i >= B && i < B + b.length ? b[i - B] : GUARD;
    if (f[i] !== expected) assert.fail(`${what}: float ${i} changed (${expected} -> ${f[i]})`);
  }
  return used;
}

describe('native CPU matmul: results', () => {
  let k: CpuKernels;
  before(() => { k = kernels(); });

  it('loads, with the widest instruction set this CPU has', () => {
    const isas = k.isas();
    assert.ok(isas.length >= 1 && isas.at(-1) === 'generic', `isas: ${isas}`);
    assert.equal(k.isa(), isas[0]);
  });

  it('matches a float64 reference at every edge of the blocking, for every instruction set, on one thread', () => {
    const isa = k.isa();
    k.setThreads(1);
    try {
      for (const name of k.isas()) {
        k.useIsa(name);
        let seed = 1;
        for (const [M, K, N] of [[1, 1, 1], [3, 7, 5], [4, 4, 8], [5, 9, 9], [6, 3, 16], [12, 5, 32], [13, 31, 33], [25, 256, 17], [7, 257, 48], [200, 40, 3], [9, 600, 70]] as const) {
          for (const ta of [false, true]) for (const tb of [false, true]) {
            assert.equal(check(k, 1, 1, 1, M, K, N, ta, tb, seed++), 1);
          }
        }
        check(k, 3, 3, 3, 11, 300, 21, true, false, 50);
        check(k, 3, 3, 1, 5, 20, 9, false, true, 51);
        check(k, 4, 1, 4, 6, 10, 13, true, true, 52);
      }
    } finally {
      k.useIsa(isa);
      k.setThreads(2);
    }
  });

  it('splits a large call over its threads by batches, rows or columns, with the same results', () => {
    assert.equal(k.threads(), 2);
    for (const name of k.isas()) {
      k.useIsa(name);
      assert.equal(check(k, 5, 5, 5, 64, 64, 64, false, true, 60), 2, 'by batches (an odd count)');
      assert.equal(check(k, 1, 1, 1, 203, 300, 40, true, false, 61), 2, 'by rows (not a multiple of the block)');
      assert.equal(check(k, 1, 1, 1, 40, 300, 203, false, true, 62), 2, 'by columns (too few rows to split)');
      assert.equal(check(k, 2, 1, 2, 16, 300, 300, false, false, 63), 2, 'a broadcast a');
      assert.equal(check(k, 1, 1, 1, 20, 300, 200, false, false, 64), 2, 'few rows (b read in place, not packed), by columns');
    }
    k.useIsa(k.isas()[0]!);
  });

  it('zero depth gives zeros; an empty output writes nothing', () => {
    const heap = new Uint8Array(64);
    const f = new Float32Array(heap.buffer);
    f.fill(GUARD);
    k.batchMatMul(heap, 0, 0, 16, 2, 2, 2, 1, 0, 2, 0, 0);
    assert.deepEqual([...f.subarray(4, 8)], [0, 0, 0, 0]);
    assert.equal(f[8], GUARD);
    assert.equal(k.batchMatMul(heap, 0, 0, 0, 0, 1, 1, 3, 3, 3, 0, 0), 0);
  });

  it('works on a shared wasm memory, and after the memory grows', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    const fill = (): Float32Array => { const f = new Float32Array(memory.buffer); f.set([1, 2, 3, 4], 0); f.set([5, 6, 7, 8], 4); return f; };
    let f = fill();
    k.batchMatMul(new Uint8Array(memory.buffer), 0, 16, 32, 1, 1, 1, 2, 2, 2, 0, 0);
    assert.deepEqual([...f.subarray(8, 12)], [19, 22, 43, 50]);
    memory.grow(2);
    f = fill();
    k.batchMatMul(new Uint8Array(memory.buffer), 0, 16, 3 * 65536 - 16, 1, 1, 1, 2, 2, 2, 1, 1);
    assert.deepEqual([...f.subarray(3 * 16384 - 4)], [23, 31, 34, 46]);
  });
});

describe('native SwiGLU', () => {
  let k: CpuKernels;
  before(() => { k = kernels(); });

  /** g, u, dy with a tail past every vector width, large and NaN gates; float64 references. */
  const n = 70_001;
  const g = Float32Array.from({ length: n }, (_, i) => (i === 5 ? -200 : i === 6 ? 200 : i === 7 ? NaN : Math.sin(i * 1.37) * 12));
  const u = Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.71) * 2);
  const dy = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.29 + 1));

  it('value and gradient match float64 for every instruction set, on guard-filled memory, split over two threads', () => {
    const isa = k.isa();
    try {
      for (const name of k.isas()) {
        k.useIsa(name);
        for (const len of [n, 13]) { // 13: shorter than one AVX-512 vector, on one thread
          const pad = 19; const G = 8; const U = G + len + pad; const DY = U + len + pad; const O1 = DY + len + pad; const O2 = O1 + len + pad; const END = O2 + len + pad;
          const heap = new Uint8Array(END * 4);
          const f = new Float32Array(heap.buffer);
          f.fill(GUARD);
          f.set(g.subarray(0, len), G); f.set(u.subarray(0, len), U); f.set(dy.subarray(0, len), DY);
          const before = Float32Array.from(f);
          assert.equal(k.swiglu(heap, G * 4, U * 4, O1 * 4, len), len === n ? 2 : 1);
          for (let i = 0; i < len; i++) {
            const s = 1 / (1 + Math.exp(-g[i]!)); const want = g[i]! * s * u[i]!;
            if (Number.isNaN(g[i])) assert.ok(Number.isNaN(f[O1 + i]), 'NaN stays NaN');
            else assert.ok(Math.abs(f[O1 + i]! - want) <= 1e-6 * (1 + Math.abs(want)), `${name} value ${i}: ${f[O1 + i]} vs ${want}`);
          }
          assert.equal(k.swigluGrad(heap, G * 4, U * 4, DY * 4, O1 * 4, O2 * 4, len), len === n ? 2 : 1);
          for (let i = 0; i < len; i++) {
            if (Number.isNaN(g[i])) continue;
            const s = 1 / (1 + Math.exp(-g[i]!)); const silu = g[i]! * s;
            const dg = dy[i]! * u[i]! * (s + silu * (1 - s)); const du = dy[i]! * silu;
            assert.ok(Math.abs(f[O1 + i]! - dg) <= 1e-6 * (1 + Math.abs(dg)), `${name} dg ${i}: ${f[O1 + i]} vs ${dg}`);
            assert.ok(Math.abs(f[O2 + i]! - du) <= 1e-6 * (1 + Math.abs(du)), `${name} du ${i}: ${f[O2 + i]} vs ${du}`);
          }
          for (let i = 0; i < END; i++) {
            if ((i >= O1 && i < O1 + len) || (i >= O2 && i < O2 + len)) continue;
            if (!Object.is(f[i], before[i])) assert.fail(`${name}: float ${i} outside the outputs changed`);
          }
        }
      }
    } finally {
      k.useIsa(isa);
    }
  });

  it('rejects a region outside the heap and an output overlapping an input, naming them', () => {
    const heap = new Uint8Array(400);
    assert.throws(() => k.swiglu(heap, 0, 40, 380, 10), /swiglu: region 2 \[380, \+40\) is misaligned or outside the heap \(400 bytes\)/);
    assert.throws(() => k.swiglu(heap, 0, 40, 20, 10), /swiglu: output region 2 overlaps region 0/);
    assert.throws(() => k.swigluGrad(heap, 0, 40, 80, 120, 140, 10), /swigluGrad: output region 3 overlaps region 4/);
    assert.throws(() => (k.swiglu as (...a: unknown[]) => number)(heap, 0, 40), /swiglu: expected 5 arguments, got 3/);
    assert.throws(() => k.swiglu(heap, 0, -40, 80, 10), /swiglu: the offset of region 1 must be a non-negative integer, got -40/);
  });
});

describe('native CPU matmul: argument checks (each names the argument and its value)', () => {
  let k: CpuKernels;
  before(() => { k = kernels(); });
  const heap = new Uint8Array(1024);
  const call = (...args: unknown[]) => () => (k.batchMatMul as (...a: unknown[]) => number)(...args);

  it('rejects a region outside the heap, a misaligned offset, overlapping output and bad batch counts', () => {
    assert.throws(call(heap, 0, 64, 1016, 1, 1, 1, 2, 2, 2, 0, 0), /out \[1016, 1032\) lies outside the heap \(1024 bytes\)/);
    assert.throws(call(heap, 0, 64, 128, 1, 1, 1, 2, 16, 16, 0, 0), /b \[64, 1088\) lies outside the heap/);
    assert.throws(call(heap, 2, 64, 128, 1, 1, 1, 2, 2, 2, 0, 0), /a offset 2 is not a multiple of 4/);
    const big = 2 ** 31 - 1; // extents that overflow 64 bits are outside the heap, not wrapped around
    assert.throws(call(heap, 0, 64, 128, big, big, 1, big, big, 1, 0, 0), /a \[0, beyond 2\^63\) lies outside the heap/);
    assert.throws(call(heap, 0, 64, 8, 1, 1, 1, 2, 2, 2, 0, 0), /out overlaps an input/);
    assert.throws(call(heap, 0, 64, 128, 3, 2, 1, 2, 2, 2, 0, 0), /batchA must be 1 or batch \(3\), got 2/);
    assert.throws(call(heap, 0, 64, 128, 1, 1, 1, -2, 2, 2, 0, 0), /M must be a non-negative integer, got -2/);
    assert.throws(call(heap, 0, 64, 128, 1, 1, 1, 2, 2.5, 2, 0, 0), /K must be a non-negative integer, got 2\.5/);
    assert.throws(call(heap, 0, 64, 128, 1, 1, 1, 2, 2, 2, 2, 0), /ta and tb must be 0 or 1, got 2 and 0/);
    assert.throws(call(new Float32Array(256), 0, 64, 128, 1, 1, 1, 2, 2, 2, 0, 0), /heap must be a Uint8Array/);
    assert.throws(call(heap, 0, 64), /expected 12 arguments, got 3/);
    assert.throws(() => k.useIsa('sse9'), /unknown instruction set "sse9"/);
    assert.throws(() => k.setThreads(0), /threads must be 1 to 256, got 0/);
  });
});

describe('native CPU matmul on the wasm backend (OELD_WASM_MATMUL=native)', () => {
  let info: WasmBatchMatMulInfo;
  let detail: string;
  before(async () => {
    process.env.OELD_WASM_MATMUL = 'native';
    const b = await initBackend({ force: 'wasm', log: () => {} });
    detail = b.detail;
    info = installWasmBatchMatMul(b.threads ?? 1);
  });

  it('is the backend\'s BatchMatMul, named in the backend\'s detail', () => {
    assert.equal(info.kernel, 'native');
    assert.equal(info.isa, kernels().isa());
    assert.match(detail, new RegExp(`matmuls on oeld's native CPU kernel \\(${info.isa}, 2 threads\\)`));
  });

  it('tf.matMul: batched, transposed, broadcast and plain calls match the float64 reference', () => {
    let seed = 100;
    for (const [aShape, bShape, ta, tb] of [
      [[3, 17, 40], [3, 40, 9], false, false], [[2, 40, 17], [2, 9, 40], true, true], [[4, 5, 300], [300, 7], false, false],
      [[70, 33], [33, 65], false, false], [[33, 70], [65, 33], true, true], [[3, 40], [40, 70], false, false], [[1, 300], [300, 130], false, false],
    ] as [number[], number[], boolean, boolean][]) {
      const a = values(aShape.reduce((x, y) => x * y, 1), seed++);
      const b = values(bShape.reduce((x, y) => x * y, 1), seed++);
      const before = info.calls.own;
      const got = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb).dataSync() as Float32Array);
      assert.equal(info.calls.own - before, 1, `a [${aShape}] b [${bShape}] went to the native kernel`);
      const M = ta ? aShape.at(-1)! : aShape.at(-2)!; const K = ta ? aShape.at(-2)! : aShape.at(-1)!; const N = tb ? bShape.at(-2)! : bShape.at(-1)!;
      const batchA = aShape.slice(0, -2).reduce((x, y) => x * y, 1); const batchB = bShape.slice(0, -2).reduce((x, y) => x * y, 1);
      const want = referenceMatMul(a, b, batchA, batchB, M, K, N, ta, tb);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
      assert.ok(worst < 1e-5, `a [${aShape}] b [${bShape}]: worst relative error ${worst}`);
    }
  });

  it('SwiGLU (swiglu.ts) runs on the native kernels, value and gradients as float64', () => {
    const native = kernels();
    const calls = { swiglu: 0, swigluGrad: 0 };
    const [f1, f2] = [native.swiglu, native.swigluGrad];
    native.swiglu = (...a) => { calls.swiglu++; return f1(...a); };
    native.swigluGrad = (...a) => { calls.swigluGrad++; return f2(...a); };
    try {
      const [R, C] = [7, 13];
      const g = values(R * C, 31).map((x) => x * 6); const u = values(R * C, 32); const w = values(R * C, 33);
      const [value, dg, du] = tf.tidy(() => {
        const v = swiglu(tf.tensor2d(g, [R, C]), tf.tensor2d(u, [R, C])).dataSync() as Float32Array;
        const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(swiglu(a, b), tf.tensor2d(w, [R, C]))))([tf.tensor2d(g, [R, C]), tf.tensor2d(u, [R, C])]);
        return [v, ...grads.map((t) => t.dataSync() as Float32Array)];
      }) as Float32Array[];
      assert.deepEqual(calls, { swiglu: 2, swigluGrad: 1 }, 'forward twice (value, then under the tape), backward once');
      for (let i = 0; i < R * C; i++) {
        const s = 1 / (1 + Math.exp(-g[i]!)); const silu = g[i]! * s;
        assert.ok(Math.abs(value![i]! - silu * u[i]!) < 1e-6, `value ${i}`);
        assert.ok(Math.abs(du![i]! - w[i]! * silu) < 1e-6, `du ${i}`);
        const want = w[i]! * u[i]! * (s + silu * (1 - s));
        assert.ok(Math.abs(dg![i]! - want) < 1e-6, `dg ${i}: ${dg![i]} vs ${want}`);
      }
    } finally {
      native.swiglu = f1;
      native.swigluGrad = f2;
    }
  });

  it('gradients of a batched transposed matmul match the float64 reference', () => {
    const [Z, M, K, N] = [2, 13, 70, 9];
    const a = values(Z * M * K, 7); const b = values(Z * N * K, 8); const w = values(Z * M * N, 9);
    const [ga, gb] = tf.tidy(() => {
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, true), tf.tensor(w, [Z, M, N]))));
      return g([tf.tensor(a, [Z, M, K]), tf.tensor(b, [Z, N, K])]).map((t) => t.dataSync() as Float32Array);
    });
    // d/da = w @ b, d/db = w^T @ a, per batch.
    const wantA = referenceMatMul(w, b, Z, Z, M, N, K, false, false);
    const wantB = referenceMatMul(w, a, Z, Z, N, M, K, true, false);
    for (const [got, want, name] of [[ga!, wantA, 'a'], [gb!, wantB, 'b']] as const) {
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4 * (1 + Math.abs(want[i]!)), `d/d${name}[${i}]: ${got[i]} vs ${want[i]}`);
    }
  });
});

describe('native CPU matmul: two JS threads at once', () => {
  it('both get right results (one runs on the pool, the other alone while the pool is busy)', async () => {
    const n = 160;
    const a = values(n * n, 11); const b = values(n * n, 12);
    const want = referenceMatMul(a, b, 1, 1, n, n, n, false, false);
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const k = require(workerData.path);
      const { a, b, n, reps } = workerData;
      const heap = new Uint8Array(3 * n * n * 4);
      const f = new Float32Array(heap.buffer);
      f.set(a, 0); f.set(b, n * n);
      const sums = [];
      for (let r = 0; r < reps; r++) {
        f.fill(0, 2 * n * n);
        k.batchMatMul(heap, 0, n * n * 4, 2 * n * n * 4, 1, 1, 1, n, n, n, 0, 0);
        sums.push(Array.from(f.subarray(2 * n * n)));
      }
      parentPort.postMessage(sums);`;
    const run = (): Promise<number[][]> => new Promise((resolve, reject) => {
      const w = new Worker(source, { eval: true, workerData: { path: CPU_ADDON_PATH, a, b, n, reps: 30 } });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const results = await Promise.all([run(), run()]);
    for (const runs of results) for (const got of runs) {
      for (let i = 0; i < want.length; i += 97) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-4 * (1 + Math.abs(want[i]!)), `element ${i}: ${got[i]} vs ${want[i]}`);
    }
  });
});

describe('scripts/build-cpu-addon.mjs', () => {
  it('without a compiler: --optional says why and exits 0; without it, exits 1 naming the reason', () => {
    const script = path.join(root, 'scripts/build-cpu-addon.mjs');
    const env = { ...process.env, CXX: '/nonexistent/g++' };
    const optional = spawnSync(process.execPath, [script, '--optional'], { env, encoding: 'utf8' });
    assert.equal(optional.status, 0);
    assert.match(optional.stderr, /the native CPU matmul was not built \(no C\+\+ compiler: `\/nonexistent\/g\+\+ --version` failed/);
    const strict = spawnSync(process.execPath, [script], { env, encoding: 'utf8' });
    assert.equal(strict.status, 1);
    assert.match(strict.stderr, /build-cpu-addon: no C\+\+ compiler/);
  });
});
