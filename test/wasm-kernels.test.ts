/**
 * The project's kernels on the tfjs WebAssembly backend: the SIMD BatchMatMul
 * (src/model/kernels/native/batch-matmul.c through src/model/kernels/wasm-batch-matmul.ts), the SIMD Exp and
 * Sigmoid (native/elementwise.c through wasm-elementwise.ts), the row-copy GatherV2 and the
 * zero-copy Identity and Cast (src/model/kernels/wasm-kernels.ts).
 *
 * Results are checked against a float64 JavaScript reference over shapes that exercise every
 * edge of the kernel: rows not a multiple of its 4-row block, columns not a multiple of its
 * 8-column panel, depths past its 256-deep pass, both transposes, broadcast batches, and calls
 * large enough to be split with the helper thread (by batches and by rows).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../src/model/kernels/backend.ts';
import '../src/model/network/register-gradients.ts';
import { PLAIN_MIN_ROWS, planBatchMatMul } from '../src/model/kernels/batch-matmul-plan.ts';
import { installWasmBatchMatMul, nativeModulePath, relaxedSimdAvailable, SPLIT_MIN_MACS, type WasmBatchMatMulInfo } from '../src/model/kernels/wasm-batch-matmul.ts';
import { rmsNorm } from '../src/model/network/rms-norm.ts';
import { swiglu } from '../src/model/network/swiglu.ts';
import { AdamW } from '../src/model/network/adamw.ts';
import { scaledMaskedSoftmax } from '../src/model/network/attention-softmax.ts';
import { applyRotary, rotateHalfMatrix } from '../src/model/network/rotary.ts';
import { elementwiseModulePath, wasmSumOfSquares } from '../src/model/kernels/wasm-elementwise.ts';
import { checkGatherIndices } from '../src/model/kernels/wasm-kernels.ts';
import { referenceMatMul, values } from './helpers/matmul-reference.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// This file tests oeld's WebAssembly kernel; the native CPU matmul (the default where its addon is
// built) has test/cpu-kernels.test.ts. The choice is read when the backend starts.
process.env.OELD_WASM_MATMUL = 'wasm';

describe('planBatchMatMul (which calls the SIMD kernel takes)', () => {
  it('leaves plain 2-D matmuls to XNNPACK and takes transposed and batched ones', () => {
    assert.match((planBatchMatMul([4, 5], [5, 6], false, false) as { fallback: string }).fallback, /plain 2-D/);
    assert.deepEqual(planBatchMatMul([5, 4], [5, 6], true, false), { plan: { batch: 1, batchA: 1, batchB: 1, M: 4, K: 5, N: 6, outShape: [4, 6] } });
    assert.deepEqual(planBatchMatMul([2, 3, 4, 5], [2, 3, 6, 5], false, true), { plan: { batch: 6, batchA: 6, batchB: 6, M: 4, K: 5, N: 6, outShape: [2, 3, 4, 6] } });
  });

  it('with takePlain (relaxed SIMD), takes plain 2-D matmuls from PLAIN_MIN_ROWS rows up', () => {
    assert.deepEqual(planBatchMatMul([PLAIN_MIN_ROWS, 5], [5, 6], false, false, true), { plan: { batch: 1, batchA: 1, batchB: 1, M: PLAIN_MIN_ROWS, K: 5, N: 6, outShape: [PLAIN_MIN_ROWS, 6] } });
    assert.match((planBatchMatMul([PLAIN_MIN_ROWS - 1, 5], [5, 6], false, false, true) as { fallback: string }).fallback, /XNNPACK keeps its packed weights/);
  });

  it('broadcasts a single matrix against a batch, and leaves general broadcasts to tfjs', () => {
    assert.deepEqual(planBatchMatMul([3, 4, 5], [5, 6], false, false), { plan: { batch: 3, batchA: 3, batchB: 1, M: 4, K: 5, N: 6, outShape: [3, 4, 6] } });
    assert.deepEqual(planBatchMatMul([1, 4, 5], [2, 3, 5, 6], false, false), { plan: { batch: 6, batchA: 1, batchB: 6, M: 4, K: 5, N: 6, outShape: [2, 3, 4, 6] } });
    assert.match((planBatchMatMul([2, 1, 4, 5], [1, 3, 5, 6], false, false) as { fallback: string }).fallback, /general broadcast/);
  });

  it('leaves empty shapes and mismatched depths to tfjs (which reports them)', () => {
    assert.match((planBatchMatMul([2, 0, 5], [2, 5, 6], false, false) as { fallback: string }).fallback, /empty/);
    assert.match((planBatchMatMul([2, 4, 5], [2, 7, 6], false, false) as { fallback: string }).fallback, /inner dimensions differ \(5 and 7\)/);
  });
});

describe('SIMD BatchMatMul on the wasm backend', () => {
  let info: WasmBatchMatMulInfo;
  before(async () => {
    const b = await initBackend({ force: 'wasm', log: () => {} });
    info = installWasmBatchMatMul(b.threads ?? 1);
  });

  function check(batchA: number, batchB: number, M: number, K: number, N: number, ta: boolean, tb: boolean, seed: number): void {
    const a = values(batchA * M * K, seed);
    const b = values(batchB * K * N, seed + 1);
    const aShape = [...(batchA > 1 ? [batchA] : []), ...(ta ? [K, M] : [M, K])];
    const bShape = [...(batchB > 1 || batchA > 1 ? [batchB] : []), ...(tb ? [N, K] : [K, N])];
    const before = info.calls.own;
    const got = tf.tidy(() => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), ta, tb).dataSync() as Float32Array);
    const planned = 'plan' in planBatchMatMul(aShape, bShape, ta, tb, info.kernel === 'relaxed');
    assert.equal(info.calls.own - before, planned ? 1 : 0, `kernel use for a [${aShape}] b [${bShape}] ta ${ta} tb ${tb}`);
    const want = referenceMatMul(a, b, batchA, batchB, M, K, N, ta, tb);
    assert.equal(got.length, want.length);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
    assert.ok(worst < 1e-5, `a [${aShape}] b [${bShape}] ta ${ta} tb ${tb}: worst relative error ${worst}`);
  }

  it('matches a float64 reference at every edge of the 4x8 block and the 256-deep pass, both transposes', () => {
    let seed = 1;
    for (const [M, K, N] of [[1, 1, 1], [3, 7, 5], [4, 4, 8], [5, 9, 9], [17, 3, 33], [6, 256, 7], [9, 257, 16], [4, 600, 11]] as const) {
      for (const ta of [false, true]) for (const tb of [false, true]) {
        check(1, 1, M, K, N, ta, tb, seed++);
        check(3, 3, M, K, N, ta, tb, seed++);
      }
    }
  });

  it('broadcasts a single matrix on either side', () => {
    check(3, 1, 5, 300, 9, false, true, 101);
    check(1, 4, 6, 10, 13, true, false, 102);
  });

  it('splits large calls with the helper thread, by batches and by rows, with the same results', { skip: os.availableParallelism() < 2 && 'one CPU' }, () => {
    assert.equal(info.threads, 2, 'the helper thread runs where the backend has 2 or more threads');
    const splitBefore = info.calls.split;
    // By batches (odd count), and by rows (one batch, rows not a multiple of 8).
    assert.ok(5 * 64 * 64 * 64 >= SPLIT_MIN_MACS);
    check(5, 5, 64, 64, 64, false, true, 201);
    assert.ok(1 * 203 * 300 * 40 >= SPLIT_MIN_MACS);
    check(1, 1, 203, 300, 40, true, false, 202);
    check(1, 1, 203, 300, 40, false, true, 203);
    assert.equal(info.calls.split - splitBefore, 3, 'each of the three calls was shared with the helper');
  });

  it('uses the relaxed SIMD build (fused multiply-add) where the runtime has it', () => {
    assert.equal(relaxedSimdAvailable(), true, 'Node 20 compiles relaxed SIMD once its V8 flag is set');
    assert.equal(info.kernel, 'relaxed');
  });

  for (const simd of ['simd', 'relaxed'] as const) it(`${simd} build: writes nothing but its output and scratch, and its result is right (the module on a memory of its own, filled with a guard pattern)`, () => {
    assert.ok(relaxedSimdAvailable());
    const memory = new WebAssembly.Memory({ initial: 4, maximum: 65536 });
    const ex = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(nativeModulePath(false, simd))), { env: { memory } }).exports;
    const run = ex.batch_matmul as (...args: number[]) => void;
    const scratchFloats = (ex.scratch_floats as (K: number, N: number) => number)(300, 13);
    const [Z, M, K, N] = [3, 9, 300, 13];
    const f = new Float32Array(memory.buffer);
    f.fill(-7.25);
    const A = 1024; const B = A + Z * M * K + 64; const OUT = B + Z * K * N + 64; const S = OUT + Z * M * N + 64;
    f.set(values(Z * M * K, 401), A);
    f.set(values(Z * K * N, 402), B);
    const before = Float32Array.from(f);
    run(A * 4, B * 4, OUT * 4, S * 4, 0, Z, 0, M, Z, Z, M, K, N, 0, 0);
    for (let i = 0; i < f.length; i++) {
      const inOut = i >= OUT && i < OUT + Z * M * N;
      const inScratch = i >= S && i < S + scratchFloats;
      if (!inOut && !inScratch && f[i] !== before[i]) assert.fail(`float ${i} changed (${before[i]} -> ${f[i]}); output [${OUT}, ${OUT + Z * M * N}), scratch [${S}, ${S + scratchFloats})`);
    }
    const want = referenceMatMul(f.subarray(A, A + Z * M * K), f.subarray(B, B + Z * K * N), Z, Z, M, K, N, false, false);
    want.forEach((v, i) => assert.ok(Math.abs(f[OUT + i]! - v) < 1e-4));
  });

  it('gradients through transposed and batched matmuls match the float64 reference', () => {
    // d/da sum(w * (a @ b^T)) = w @ b and d/db = w^T @ a, per batch.
    const [Z, M, K, N] = [2, 5, 6, 7];
    const a = values(Z * M * K, 301);
    const b = values(Z * N * K, 302);
    const w = values(Z * M * N, 303);
    const [ga, gb] = tf.tidy(() => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, false, true), tf.tensor(w, [Z, M, N]))))(
      [tf.tensor(a, [Z, M, K]), tf.tensor(b, [Z, N, K])]).map((g) => g.dataSync() as Float32Array));
    const wantA = referenceMatMul(w, b, Z, Z, M, N, K, false, false);
    const wantB = referenceMatMul(w, a, Z, Z, N, M, K, true, false);
    ga!.forEach((v, i) => assert.ok(Math.abs(v - wantA[i]!) < 1e-5, `grad a[${i}] ${v} vs ${wantA[i]}`));
    gb!.forEach((v, i) => assert.ok(Math.abs(v - wantB[i]!) < 1e-5, `grad b[${i}] ${v} vs ${wantB[i]}`));
  });

  it('the committed .wasm files are what scripts/build-native.sh makes from the committed source', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'oeld-native-'));
    execFileSync('bash', [path.join(root, 'scripts/build-native.sh'), out], { stdio: 'pipe' });
    const dir = path.dirname(fileURLToPath(nativeModulePath(false, 'simd')));
    const wasmIn = (d: string) => readdirSync(d).filter((f) => f.endsWith('.wasm')).sort();
    assert.deepEqual(wasmIn(dir), wasmIn(out), 'the committed .wasm files are the ones the script makes');
    assert.ok(wasmIn(dir).length >= 6);
    for (const name of wasmIn(out)) {
      assert.ok(readFileSync(path.join(dir, name)).equals(readFileSync(path.join(out, name))), `${name} differs from a fresh build: run bash scripts/build-native.sh and commit the result`);
    }
  });
});

describe('OELD_WASM_MATMUL', () => {
  it('rejects a value it does not know, naming the variable and the value', async () => {
    const saved = process.env.OELD_WASM_MATMUL;
    process.env.OELD_WASM_MATMUL = 'fast';
    try {
      await assert.rejects(initBackend({ force: 'wasm', log: () => {} }), /OELD_WASM_MATMUL must be one of auto, native, wasm, wasm-simd128, tfjs, got "fast"/);
    } finally {
      if (saved === undefined) delete process.env.OELD_WASM_MATMUL; else process.env.OELD_WASM_MATMUL = saved;
    }
  });

  it('tfjs keeps the kernel tfjs ships (in a fresh process: the choice is made when the backend starts)', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'oeld-matmul-choice-')), 'choice.mts');
    writeFileSync(file, `
      import { initBackend, tf } from ${JSON.stringify(path.join(root, 'src/model/kernels/backend.ts'))};
      const info = await initBackend({ force: 'wasm' });
      const r = tf.matMul(tf.ones([2, 3, 4]), tf.ones([2, 4, 5])).dataSync();
      console.log(JSON.stringify({ detail: info.detail, sum: r.reduce((a, b) => a + b, 0) }));`);
    const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, env: { ...process.env, OELD_WASM_MATMUL: 'tfjs' }, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { detail: string; sum: number };
    assert.match(r.detail, /tfjs's own kernels \(OELD_WASM_MATMUL=tfjs\)/);
    assert.equal(r.sum, 2 * 3 * 5 * 4);
  });
});

describe('SIMD Exp and Sigmoid, fused SwiGLU and RMSNorm on the wasm backend', () => {
  before(async () => { await initBackend({ force: 'wasm', log: () => {} }); });

  it('exp: within 5e-7 relative of float64 exp over its whole range, and right at the edges', () => {
    const n = 200_003; // not a multiple of 16 or 4: the tail loops run too
    const xs = Float32Array.from({ length: n }, (_, i) => -110 + (200 * i) / n);
    const got = tf.tidy(() => tf.exp(tf.tensor1d(xs)).dataSync() as Float32Array);
    let worst = 0;
    xs.forEach((x, i) => {
      const want = Math.exp(x);
      if (want >= 1.1754944e-38 && want <= 3.4e38) worst = Math.max(worst, Math.abs(got[i]! - want) / want);
      else if (want < 1.1754944e-38) assert.ok(Math.abs(got[i]! - want) <= 1e-44, `exp(${x}) = ${got[i]} (subnormal range)`);
    });
    assert.ok(worst < 5e-7, `worst relative error ${worst}`);
    const edge = Array.from(tf.tidy(() => tf.exp(tf.tensor1d([0, -0, Infinity, -Infinity, NaN, 88.73, -104, -103.9, 1e-30])).dataSync()));
    assert.deepEqual(edge.slice(0, 4), [1, 1, Infinity, 0]);
    assert.ok(Number.isNaN(edge[4]));
    assert.deepEqual(edge.slice(5), [Infinity, 0, Math.fround(Math.exp(-103.9)), 1]);
  });

  it('sigmoid: within 2e-7 of float64, 0 and 1 at the infinities, NaN for NaN', () => {
    const xs = Float32Array.from({ length: 10_001 }, (_, i) => -60 + (120 * i) / 10_000);
    const got = tf.tidy(() => tf.sigmoid(tf.tensor1d(xs)).dataSync() as Float32Array);
    xs.forEach((x, i) => assert.ok(Math.abs(got[i]! - 1 / (1 + Math.exp(-x))) < 2e-7, `sigmoid(${x}) = ${got[i]}`));
    const edge = Array.from(tf.tidy(() => tf.sigmoid(tf.tensor1d([Infinity, -Infinity, NaN, 0])).dataSync()));
    assert.deepEqual([edge[0], edge[1], edge[3]], [1, 0, 0.5]);
    assert.ok(Number.isNaN(edge[2]));
  });

  it('fused SwiGLU: value and both gradients match float64 (odd sizes, so the tail loops run too)', async () => {
    const [R, C] = [7, 13];
    const g = Float32Array.from({ length: R * C }, (_, i) => Math.sin(i * 1.37) * 6);
    const u = Float32Array.from({ length: R * C }, (_, i) => Math.cos(i * 0.71) * 2);
    const w = Float32Array.from({ length: R * C }, (_, i) => Math.sin(i * 0.29 + 1));
    let value: Float32Array = new Float32Array(0); let dg: Float32Array = new Float32Array(0); let du: Float32Array = new Float32Array(0);
    const profile = await tf.profile(() => {
      value = tf.tidy(() => swiglu(tf.tensor2d(g, [R, C]), tf.tensor2d(u, [R, C])).dataSync() as Float32Array);
      [dg, du] = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(swiglu(a, b), tf.tensor2d(w, [R, C]))))(
        [tf.tensor2d(g, [R, C]), tf.tensor2d(u, [R, C])]).map((t) => t.dataSync() as Float32Array)) as [Float32Array, Float32Array];
    });
    const names = profile.kernels.map((k) => k.name);
    assert.ok(names.includes('OeldSwiGLU') && names.includes('OeldSwiGLUGrad'), `the fused kernels ran: ${[...new Set(names)].join(', ')}`);
    for (let i = 0; i < R * C; i++) {
      const s = 1 / (1 + Math.exp(-g[i]!));
      const silu = g[i]! * s;
      assert.ok(Math.abs(value[i]! - silu * u[i]!) < 1e-5 * (1 + Math.abs(silu * u[i]!)), `value ${i}`);
      assert.ok(Math.abs(du[i]! - w[i]! * silu) < 1e-5 * (1 + Math.abs(w[i]! * silu)), `du ${i}`);
      const want = w[i]! * u[i]! * (s + silu * (1 - s));
      assert.ok(Math.abs(dg[i]! - want) < 1e-5 * (1 + Math.abs(want)), `dg ${i}: ${dg[i]} vs ${want}`);
    }
  });

  it('fused RMSNorm over the last axis: value and both gradients match float64 (rank 3, odd width)', async () => {
    const [A, B, H] = [5, 3, 37];
    const eps = 1e-6;
    const x = Float32Array.from({ length: A * B * H }, (_, i) => Math.sin(i * 0.77) * 3);
    const w = Float32Array.from({ length: H }, (_, i) => 0.5 + Math.cos(i));
    const k = Float32Array.from({ length: A * B * H }, (_, i) => Math.sin(i * 0.31 + 2));
    let y: Float32Array = new Float32Array(0); let dx: Float32Array = new Float32Array(0); let dw: Float32Array = new Float32Array(0);
    const profile = await tf.profile(() => {
      y = tf.tidy(() => rmsNorm(tf.tensor3d(x, [A, B, H]), tf.tensor1d(w), eps).dataSync() as Float32Array);
      [dx, dw] = tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(rmsNorm(a, b, eps), tf.tensor3d(k, [A, B, H]))))(
        [tf.tensor3d(x, [A, B, H]), tf.tensor1d(w)]).map((t) => t.dataSync() as Float32Array)) as [Float32Array, Float32Array];
    });
    const names = profile.kernels.map((p) => p.name);
    assert.ok(names.includes('OeldRMSNorm') && names.includes('OeldRMSNormGrad'), `the fused kernels ran: ${[...new Set(names)].join(', ')}`);
    const wantDw = new Float64Array(H);
    for (let r = 0; r < A * B; r++) {
      const row = Array.from(x.subarray(r * H, (r + 1) * H));
      const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / H + eps);
      const sgx = row.reduce((s, v, j) => s + k[r * H + j]! * w[j]! * v, 0);
      row.forEach((v, j) => {
        const i = r * H + j;
        assert.ok(Math.abs(y[i]! - v * inv * w[j]!) < 1e-5, `y ${i}`);
        const want = inv * k[i]! * w[j]! - v * inv ** 3 * sgx / H;
        assert.ok(Math.abs(dx[i]! - want) < 1e-5 * (1 + Math.abs(want)), `dx ${i}: ${dx[i]} vs ${want}`);
        wantDw[j]! += k[i]! * v * inv;
      });
    }
    wantDw.forEach((v, j) => assert.ok(Math.abs(dw[j]! - v) < 1e-4 * (1 + Math.abs(v)), `dw ${j}: ${dw[j]} vs ${v}`));
  });

  it('the module writes nothing but its output (guard-filled memory of its own)', () => {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536 });
    const ex = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(elementwiseModulePath(false))), { env: { memory } }).exports;
    const f = new Float32Array(memory.buffer);
    f.fill(-7.25);
    const X = 1024; const n = 37; const OUT = X + 3 * n + 16; const P = OUT + 3 * n + 16;
    for (let i = 0; i < 3 * n; i++) f[X + i] = ((i % n) - 18) / 3;
    const unchangedBut = (name: string, before: Float32Array, from: number, count: number): void => {
      for (let i = 0; i < f.length; i++) if ((i < from || i >= from + count) && f[i] !== before[i]) assert.fail(`${name} changed float ${i}`);
    };
    for (const name of ['exp_f32', 'sigmoid_f32']) {
      const before = Float32Array.from(f);
      (ex[name] as (x: number, out: number, n: number) => void)(X * 4, OUT * 4, n);
      unchangedBut(name, before, OUT, n);
      const want = (x: number) => (name === 'exp_f32' ? Math.exp(x) : 1 / (1 + Math.exp(-x)));
      for (let i = 0; i < n; i++) assert.ok(Math.abs(f[OUT + i]! - want(f[X + i]!)) <= 1e-6 * (1 + want(f[X + i]!)));
    }
    // The attention softmax's gradient: 3 rows of 37 (past the 4-wide loop).
    for (let i = 0; i < 3 * n; i++) f[P + i] = ((i * 7) % 11) / 40; // any values do for the arithmetic
    const before = Float32Array.from(f);
    (ex.scaled_softmax_grad_f32 as (...a: number[]) => void)(P * 4, X * 4, OUT * 4, 3, n, 0.5);
    unchangedBut('scaled_softmax_grad_f32', before, OUT, 3 * n);
    for (let r = 0; r < 3; r++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += f[P + r * n + j]! * f[X + r * n + j]!;
      for (let j = 0; j < n; j++) {
        const want = 0.5 * f[P + r * n + j]! * (f[X + r * n + j]! - dot);
        assert.ok(Math.abs(f[OUT + r * n + j]! - want) < 1e-6, `row ${r} column ${j}: ${f[OUT + r * n + j]} vs ${want}`);
      }
    }
    // The rotary embedding: 2 rows of 3 heads of 10 (X as x, P as cos and sin, each [2, 10]).
    const beforeRope = Float32Array.from(f);
    (ex.rope_f32 as (...a: number[]) => void)(X * 4, P * 4, (P + 20) * 4, OUT * 4, 2, 3, 10, 1);
    unchangedBut('rope_f32', beforeRope, OUT, 60);
  });

  it('rotary embedding: value and gradient match float64, one OeldRoPE kernel each way (head size 10: the halves past the 4-wide loop)', async () => {
    const [B, T, H, d] = [2, 3, 4, 10];
    const half = d / 2;
    const x = Float32Array.from({ length: B * T * H * d }, (_, i) => Math.sin(i * 0.77));
    const w = Float32Array.from({ length: B * T * H * d }, (_, i) => Math.cos(i * 0.41));
    const angle = (r: number, i: number): number => (r + 1) * 0.3 * (i % half + 1);
    const cos = Float32Array.from({ length: B * T * d }, (_, i) => Math.cos(angle(Math.floor(i / d), i % d)));
    const sin = Float32Array.from({ length: B * T * d }, (_, i) => Math.sin(angle(Math.floor(i / d), i % d)));
    let value: Float32Array = new Float32Array(0); let dx: Float32Array = new Float32Array(0);
    const profile = await tf.profile(() => {
      const [c, s2] = [tf.tensor4d(cos, [B, T, 1, d]), tf.tensor4d(sin, [B, T, 1, d])];
      const r = rotateHalfMatrix(d);
      value = tf.tidy(() => applyRotary(tf.tensor4d(x, [B, T, H, d]), c, s2, r).dataSync() as Float32Array);
      dx = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(applyRotary(a, c, s2, r), tf.tensor4d(w, [B, T, H, d]))))(tf.tensor4d(x, [B, T, H, d])).dataSync() as Float32Array);
      tf.dispose([c, s2, r]);
    });
    const names = profile.kernels.map((k) => k.name);
    assert.equal(names.filter((k) => k === 'OeldRoPE').length, 3, `forward, then forward and backward: ${[...new Set(names)].join(', ')}`);
    assert.ok(!names.includes('BatchMatMul'), 'no rotate_half matmul');
    for (let row = 0; row < B * T; row++) for (let h = 0; h < H; h++) for (let i = 0; i < d; i++) {
      const at = (row * H + h) * d;
      const c = cos[row * d + i]!; const s = sin[row * d + i]!;
      const rot = i < half ? -x[at + i + half]! : x[at + i - half]!;
      const want = x[at + i]! * c + rot * s;
      assert.ok(Math.abs(value[at + i]! - want) < 1e-6, `value ${row},${h},${i}: ${value[at + i]} vs ${want}`);
      // d/dx[i] of sum(w * (x cos + rotate_half(x) sin)) = w[i] cos[i] + (i < half ? w[i + half] sin[i + half] : -w[i - half] sin[i - half])
      const g = w[at + i]! * c + (i < half ? w[at + i + half]! * sin[row * d + i + half]! : -w[at + i - half]! * sin[row * d + i - half]!);
      assert.ok(Math.abs(dx[at + i]! - g) < 1e-6, `dx ${row},${h},${i}: ${dx[at + i]} vs ${g}`);
    }
  });

  it('attention softmax (scale, mask, softmax): value and gradient match float64, the gradient one fused kernel', async () => {
    const [B, H, T, S] = [2, 3, 5, 7];
    const scale = 0.37;
    const x = Float32Array.from({ length: B * H * T * S }, (_, i) => Math.sin(i * 0.91) * 4);
    const w = Float32Array.from({ length: B * H * T * S }, (_, i) => Math.cos(i * 0.53));
    const mask = Float32Array.from({ length: B * T * S }, (_, i) => ((i % S) > ((i / S | 0) % T) + 1 ? -1e9 : 0));
    let value: Float32Array = new Float32Array(0); let dx: Float32Array = new Float32Array(0);
    const profile = await tf.profile(() => {
      const m = tf.tensor4d(mask, [B, 1, T, S]);
      value = tf.tidy(() => scaledMaskedSoftmax(tf.tensor4d(x, [B, H, T, S]), m, scale).dataSync() as Float32Array);
      dx = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(scaledMaskedSoftmax(a as tf.Tensor4D, m, scale), tf.tensor4d(w, [B, H, T, S]))))(tf.tensor4d(x, [B, H, T, S])).dataSync() as Float32Array);
      m.dispose();
    });
    const names = profile.kernels.map((k) => k.name);
    assert.ok(names.includes('OeldScaledSoftmaxGrad') && names.filter((k) => k === 'Sum').length <= 1, `the fused gradient ran (no Sum but the loss's): ${[...new Set(names)].join(', ')}`);
    for (let row = 0; row < B * H * T; row++) {
      const b = Math.floor(row / (H * T)); const t = row % T;
      const z = Array.from({ length: S }, (_, j) => x[row * S + j]! * scale + mask[(b * T + t) * S + j]!);
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, v) => a + v, 0);
      const p = e.map((v) => v / sum);
      const dot = p.reduce((a, v, j) => a + v * w[row * S + j]!, 0);
      for (let j = 0; j < S; j++) {
        assert.ok(Math.abs(value[row * S + j]! - p[j]!) < 1e-6, `value ${row},${j}: ${value[row * S + j]} vs ${p[j]}`);
        const want = scale * p[j]! * (w[row * S + j]! - dot);
        assert.ok(Math.abs(dx[row * S + j]! - want) < 1e-6, `dx ${row},${j}: ${dx[row * S + j]} vs ${want}`);
      }
    }
  });

});

describe('row-copy GatherV2 and zero-copy Identity/Cast on the wasm backend', () => {
  before(async () => { await initBackend({ force: 'wasm', log: () => {} }); });

  it('gathers rows (any trailing shape, int32 and float32), and other axes still work', () => {
    const x = tf.tensor3d(Array.from({ length: 4 * 2 * 3 }, (_, i) => i), [4, 2, 3]);
    const g = tf.gather(x, tf.tensor2d([[3, 0], [3, 1]], [2, 2], 'int32'));
    assert.deepEqual(g.shape, [2, 2, 2, 3]);
    assert.deepEqual(Array.from(g.dataSync()).slice(0, 12), [18, 19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5]);
    const xi = tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32');
    const gi = tf.gather(xi, tf.tensor1d([2, 2, 0], 'int32'));
    assert.equal(gi.dtype, 'int32');
    assert.deepEqual(gi.arraySync(), [[5, 6], [5, 6], [1, 2]]);
    assert.deepEqual(tf.gather(xi, tf.tensor1d([1, 0, 1], 'int32'), 1).arraySync(), [[2, 1, 2], [4, 3, 4], [6, 5, 6]]);
    tf.dispose([x, g, xi, gi]);
  });

  it('the gradient of a gather (UnsortedSegmentSum, in place on the heap) adds the rows of repeated indices', () => {
    const table = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
    const idx = tf.tensor1d([2, 0, 2, 3, 2], 'int32');
    const w = tf.tensor2d([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [5, 5, 5]]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), w)))(table);
    assert.deepEqual(g.arraySync(), [[2, 2, 2], [0, 0, 0], [9, 9, 9], [4, 4, 4]]);
    tf.dispose([table, idx, w, g]);
  });

  it('rejects an index outside the table, naming it and its position', () => {
    assert.throws(() => checkGatherIndices([0, 2, 5, 1], 5), /index 5 at position 2 is outside \[0, 5\)/);
    const x = tf.tensor2d([[1], [2]]);
    assert.throws(() => tf.gather(x, tf.tensor1d([0, -1], 'int32')), /index -1 at position 1 is outside \[0, 2\)/);
    x.dispose();
  });

  it('an Identity or same-dtype Cast shares the data and outlives its source; memory is freed with the last one', () => {
    const buffers = () => (tf.memory() as { numDataBuffers: number }).numDataBuffers;
    const start = buffers();
    const a = tf.tensor1d([1, 2, 3]);
    const c = tf.clone(a);
    const d = tf.cast(a, 'float32');
    const i = tf.cast(a, 'int32');
    assert.equal(buffers() - start, 2, 'the clone and the same-dtype cast add no data buffer; the int32 cast does');
    a.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3]);
    c.dispose();
    assert.deepEqual(Array.from(d.dataSync()), [1, 2, 3]);
    assert.deepEqual(Array.from(i.dataSync()), [1, 2, 3]);
    d.dispose();
    i.dispose();
    assert.equal(buffers(), start);
  });
});

describe('fused AdamW and the gradient norm on the wasm backend', () => {
  before(async () => { await initBackend({ force: 'wasm', log: () => {} }); });
  const n = 1003; // not a multiple of 4: the tail loop runs too
  const start = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
  const gradAt = (t: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.cos(i * 0.11 + t) * (i % 7 === 0 ? 1e-4 : 2));

  /** Three steps of `opt` on one parameter, gradients scaled by 0.5. */
  function steps(opt: AdamW): Float32Array {
    const p = tf.tidy(() => tf.variable(tf.tensor1d(start)));
    for (let t = 0; t < 3; t++) {
      const g = tf.tensor1d(gradAt(t));
      opt.apply(new Map([[p, g]]), 0.5);
      g.dispose();
    }
    const out = p.dataSync() as Float32Array;
    p.dispose();
    opt.dispose();
    return out;
  }

  it('three steps with a scaled gradient match float64 and the composite, one OeldAdamW kernel per parameter and step', async () => {
    const o = { learningRate: 0.01, weightDecay: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
    let fused: Float32Array = new Float32Array(0);
    const profile = await tf.profile(() => { fused = steps(new AdamW(o)); });
    const before = tf.memory().numTensors;
    steps(new AdamW(o));
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    const names = profile.kernels.map((k) => k.name);
    assert.equal(names.filter((k) => k === 'OeldAdamW').length, 3);
    assert.ok(!names.includes('Sqrt') && !names.includes('RealDiv'), `no composite ops ran: ${[...new Set(names)].join(', ')}`);
    const composite = steps(new AdamW({ ...o, fused: false }));
    const p = Float64Array.from(start); const m = new Float64Array(n); const v = new Float64Array(n);
    for (let t = 1; t <= 3; t++) {
      const g = gradAt(t - 1);
      for (let i = 0; i < n; i++) {
        const gi = g[i]! * 0.5;
        m[i] = o.beta1 * m[i]! + (1 - o.beta1) * gi;
        v[i] = o.beta2 * v[i]! + (1 - o.beta2) * gi * gi;
        p[i] = p[i]! - o.learningRate * ((m[i]! / (1 - o.beta1 ** t)) / (Math.sqrt(v[i]! / (1 - o.beta2 ** t)) + o.epsilon) + o.weightDecay * p[i]!);
      }
    }
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(fused[i]! - p[i]!) < 2e-6, `p[${i}]: fused ${fused[i]} vs float64 ${p[i]}`);
      assert.ok(Math.abs(fused[i]! - composite[i]!) < 2e-6, `p[${i}]: fused ${fused[i]} vs composite ${composite[i]}`);
    }
  });

  it('the sum of squares is read in place in float64', () => {
    const xs = Float32Array.from({ length: 100_003 }, (_, i) => Math.sin(i * 0.013) * (i % 3 === 0 ? 1e3 : 1e-3));
    const t = tf.tensor1d(xs);
    let want = 0;
    for (const x of xs) want += x * x;
    const got = wasmSumOfSquares(t)!;
    assert.ok(Math.abs(got - want) <= 1e-12 * want, `${got} vs ${want}`);
    assert.equal(wasmSumOfSquares(tf.tensor1d([], 'float32')), 0);
    assert.equal(wasmSumOfSquares(tf.tensor1d([1, 2], 'int32')), undefined, 'float32 only');
    t.dispose();
  });
});
