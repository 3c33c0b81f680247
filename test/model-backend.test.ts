/**
 * TensorFlow.js backend selection (src/model/kernels/backend.ts): fallback past the tfjs-node packages
 * (not installed here: their install script downloads libtensorflow), forcing, the self-test,
 * the wasm backend's threads, and the JS UnsortedSegmentSum kernel that gives the wasm backend
 * the gradient of gather (embedding lookup).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import os from 'node:os';
import { BACKEND_ENV, initBackend, tf, type BackendName, type InitBackendOptions } from '../src/model/kernels/backend.ts';
import { unsortedSegmentSumValues } from '../src/model/kernels/wasm-kernels.ts';

const require = createRequire(import.meta.url);
// tfjs-core's Node build registers no gradients; the @tensorflow/tfjs bundle registers them all.
require('@tensorflow/tfjs');

const installed = (specifier: string): boolean => {
  try { require.resolve(specifier); return true; } catch { return false; }
};
const tfjsNodeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

// The variable must not leak in from the environment running the suite.
const savedEnv = process.env[BACKEND_ENV];
before(() => { delete process.env[BACKEND_ENV]; });
after(() => { if (savedEnv === undefined) delete process.env[BACKEND_ENV]; else process.env[BACKEND_ENV] = savedEnv; });

const quiet = (lines: string[]): InitBackendOptions['log'] => (m) => { lines.push(m); };

describe('backend selection', () => {
  it('falls back past tfjs-node-gpu and tfjs-node when they are not installed, and says why', { skip: tfjsNodeInstalled && 'tfjs-node is installed here' }, async () => {
    const lines: string[] = [];
    const info = await initBackend({ log: quiet(lines) });
    assert.equal(info.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.deepEqual(info.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow']);
    assert.match(info.skipped[0]!.reason, /@tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(info.skipped[1]!.reason, /@tensorflow\/tfjs-node is not installed/);
    assert.match(info.detail, /skipped tensorflow-gpu/);
    assert.ok(lines.some((l) => /skipping tensorflow-gpu/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /tfjs backend: wasm:/.test(l)), lines.join('\n'));
  });

  it('the wasm backend runs with one thread per core by default, and leaves no process-wide listeners', async () => {
    const info = await initBackend({ force: 'wasm', log: () => {} });
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    if (simd) assert.equal(info.threads, Math.min(8, os.availableParallelism()));
    // Emscripten's: `function (ex) { if (!(ex instanceof ExitStatus)) throw ex; }` and
    // `function (reason) { throw reason; }` (the test runner adds listeners of its own).
    const emscripten = (l: unknown) => /ExitStatus|\{\s*throw reason;?\s*\}/.test(String(l));
    assert.equal(process.listeners('uncaughtException').filter(emscripten).length, 0);
    assert.equal(process.listeners('unhandledRejection').filter(emscripten).length, 0);
  });

  it('falls back to cpu when the wasm package cannot be imported', async () => {
    const lines: string[] = [];
    const info = await initBackend({
      log: quiet(lines),
      testHooks: {
        importModule: async (s) => {
          if (s.includes('tfjs-node') || s.includes('backend-wasm')) throw Object.assign(new Error(`Cannot find package '${s}'`), { code: 'ERR_MODULE_NOT_FOUND' });
          return import(s);
        },
      },
    });
    assert.equal(info.name, 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.deepEqual(info.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow', 'wasm']);
    assert.match(info.skipped[2]!.reason, /@tensorflow\/tfjs-backend-wasm is not installed/);
  });

  for (const name of ['cpu', 'wasm'] as const) {
    it(`force: '${name}' uses ${name}`, async () => {
      const info = await initBackend({ force: name, log: () => {} });
      assert.equal(info.name, name);
      assert.equal(tf.getBackend(), name);
      assert.match(info.detail, /forced by force option/);
      assert.deepEqual(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).arraySync(), [[19, 22], [43, 50]]);
    });

    it(`${BACKEND_ENV}=${name} uses ${name}`, async () => {
      process.env[BACKEND_ENV] = name;
      try {
        const info = await initBackend({ log: () => {} });
        assert.equal(info.name, name);
        assert.equal(tf.getBackend(), name);
        assert.match(info.detail, new RegExp(`forced by ${BACKEND_ENV}`));
      } finally {
        delete process.env[BACKEND_ENV];
      }
    });
  }

  it("forcing 'tensorflow' fails closed with a clear message when tfjs-node is absent", { skip: tfjsNodeInstalled && 'tfjs-node is installed here' }, async () => {
    await assert.rejects(initBackend({ force: 'tensorflow', log: () => {} }),
      /TensorFlow\.js backend 'tensorflow' was forced by force option but cannot be used: @tensorflow\/tfjs-node is not installed/);
    process.env[BACKEND_ENV] = 'tensorflow-gpu';
    try {
      await assert.rejects(initBackend({ log: () => {} }),
        /backend 'tensorflow-gpu' was forced by OELD_TF_BACKEND but cannot be used: @tensorflow\/tfjs-node-gpu is not installed/);
    } finally {
      delete process.env[BACKEND_ENV];
    }
  });

  it('rejects an unknown OELD_TF_BACKEND value', async () => {
    process.env[BACKEND_ENV] = 'webgpu';
    try {
      await assert.rejects(initBackend({ log: () => {} }), /OELD_TF_BACKEND="webgpu" is not a TensorFlow\.js backend: use one of tensorflow-gpu, tensorflow, wasm, cpu/);
    } finally {
      delete process.env[BACKEND_ENV];
    }
  });

  it('the self-test catches a wrong matmul result and the selection moves on', async () => {
    const corrupt = (target: BackendName, test: '2x2' | '64x64'): InitBackendOptions['testHooks'] => ({
      selfTestResult: (b, t, v) => {
        if (b === target && t === test) v[v.length - 1] = v[v.length - 1]! + 1e-3;
        return v;
      },
    });
    const info = await initBackend({ log: () => {}, testHooks: corrupt('wasm', '64x64') });
    assert.equal(info.name, 'cpu');
    const wasmSkip = info.skipped.find((s) => s.name === 'wasm');
    assert.match(wasmSkip?.reason ?? '', /self-test failed: 64x64 matmul differs from the JavaScript reference by 0\.00(1|09)\d* at \[63,63\]/);

    await assert.rejects(initBackend({ force: 'wasm', log: () => {}, testHooks: corrupt('wasm', '2x2') }),
      /backend 'wasm' was forced by force option but cannot be used: self-test failed: \[\[1,2\],\[3,4\]\] @ \[\[5,6\],\[7,8\]\] gave \[19,22,43,50\.0009/);
    await assert.rejects(initBackend({ log: () => {}, testHooks: { selfTestResult: (_b, _t, v) => v.map(() => Number.NaN) } }),
      /no TensorFlow\.js backend could be used: .*wasm: self-test failed.*cpu: self-test failed/);
  });
});

describe('backend selection with a (simulated) tfjs-node', () => {
  // A stand-in for the tfjs-node packages: a CPU backend registered as 'tensorflow', with the
  // flags tfjs-node's NodeJSKernelBackend has, and the CPU kernels registered for it.
  const copied: string[] = [];
  const fakeTfjsNode = (gpuPackage: boolean, gpuDevice: boolean) => async () => {
    const { MathBackendCPU } = await import('@tensorflow/tfjs-backend-cpu');
    tf.registerBackend('tensorflow', () => Object.assign(new MathBackendCPU(), { isGPUPackage: gpuPackage, isUsingGpuDevice: gpuDevice, firstUse: false }));
    for (const k of tf.getKernelsForBackend('cpu')) {
      if (tf.getKernel(k.kernelName, 'tensorflow')) continue;
      tf.registerKernel({ ...k, backendName: 'tensorflow' });
      copied.push(k.kernelName);
    }
    return {};
  };
  const notInstalled = (s: string) => Promise.reject(Object.assign(new Error(`Cannot find package '${s}'`), { code: 'ERR_MODULE_NOT_FOUND' }));
  const cleanUp = async () => {
    if (tf.findBackendFactory('tensorflow')) {
      if (tf.getBackend() === 'tensorflow') await initBackend({ force: 'cpu', log: () => {} });
      tf.removeBackend('tensorflow');
    }
    for (const k of copied.splice(0)) tf.unregisterKernel(k, 'tensorflow');
  };
  after(cleanUp);

  it('chooses tfjs-node when it loads and passes the self-test', async () => {
    await cleanUp();
    const info = await initBackend({
      log: () => {},
      testHooks: { importModule: (s) => (s === '@tensorflow/tfjs-node' ? fakeTfjsNode(false, false)() : notInstalled(s)) },
    });
    assert.equal(info.name, 'tensorflow');
    assert.equal(tf.getBackend(), 'tensorflow');
    assert.match(info.detail, /^@tensorflow\/tfjs-node, libtensorflow on the CPU; skipped tensorflow-gpu/);
  });

  it('skips tfjs-node-gpu without a CUDA device and runs its backend on the CPU instead of loading tfjs-node too', async () => {
    await cleanUp();
    const imported: string[] = [];
    const info = await initBackend({
      log: () => {},
      testHooks: {
        importModule: (s) => {
          imported.push(s);
          return s === '@tensorflow/tfjs-node-gpu' ? fakeTfjsNode(true, false)() : notInstalled(s);
        },
      },
    });
    assert.equal(info.name, 'tensorflow');
    assert.match(info.skipped[0]!.reason, /libtensorflow \(GPU build\) sees no CUDA device/);
    assert.match(info.detail, /tfjs-node-gpu \(no CUDA device: on the CPU\)/);
    assert.deepEqual(imported, ['@tensorflow/tfjs-node-gpu']);
  });

  it('chooses tfjs-node-gpu when it sees a CUDA device', async () => {
    await cleanUp();
    const info = await initBackend({
      force: 'tensorflow-gpu',
      log: () => {},
      testHooks: { importModule: (s) => (s === '@tensorflow/tfjs-node-gpu' ? fakeTfjsNode(true, true)() : notInstalled(s)) },
    });
    assert.equal(info.name, 'tensorflow-gpu');
    assert.match(info.detail, /libtensorflow on a CUDA GPU/);
  });
});

describe('wasm JS kernels', () => {
  it('UnsortedSegmentSum in JS sums rows by segment and drops out-of-range ids', () => {
    const out = unsortedSegmentSumValues([1, 2, 3, 4, 5, 6, 7, 8], [1, -1, 1, 5], 2, 3, 'float32');
    assert.deepEqual(Array.from(out), [0, 0, 1 + 5, 2 + 6, 0, 0]);
  });

  /** Runs f on cpu and on wasm with the same inputs, and returns both results. */
  async function onBoth<T>(f: () => T): Promise<{ cpu: T; wasm: T }> {
    await initBackend({ force: 'cpu', log: () => {} });
    const cpu = f();
    await initBackend({ force: 'wasm', log: () => {} });
    const wasm = f();
    return { cpu, wasm };
  }

  const close = (a: number[], b: number[], tol: number) => {
    assert.equal(a.length, b.length);
    const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
    assert.ok(worst <= tol, `max difference ${worst} > ${tol}`);
  };

  it('tf.unsortedSegmentSum on wasm equals cpu (float32 and int32)', async () => {
    const r = await onBoth(() => tf.tidy(() => {
      const x = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]);
      const ids = tf.tensor1d([2, 0, 2, 1], 'int32');
      const xi = tf.tensor1d([5, 6, 7, 8, 9], 'int32');
      const idsi = tf.tensor1d([0, 0, 3, 1, 3], 'int32');
      return {
        f: tf.unsortedSegmentSum(x, ids, 4).arraySync() as number[][],
        i: tf.unsortedSegmentSum(xi, idsi, 4).arraySync() as number[],
        idtype: tf.unsortedSegmentSum(xi, idsi, 4).dtype,
      };
    }));
    assert.deepEqual(r.wasm.f, r.cpu.f);
    assert.deepEqual(r.wasm.i, r.cpu.i);
    assert.deepEqual(r.wasm.f, [[4, 5, 6], [10, 11, 12], [8, 10, 12], [0, 0, 0]]);
    // TensorFlow keeps the input's dtype; tfjs's CPU kernel upcasts int32 to float32.
    assert.equal(r.wasm.idtype, 'int32');
  });

  it('the gradient of gather (an embedding lookup) on wasm equals cpu', async () => {
    const vocab = 50;
    const dim = 16;
    const table = Array.from({ length: vocab * dim }, (_, i) => Math.sin(i * 0.37));
    // [batch, seq] token ids, with repeats (the gradient must add them up).
    const ids = [[3, 7, 7, 49, 0, 3], [12, 3, 3, 3, 8, 7]];
    const weights = Array.from({ length: 2 * 6 * dim }, (_, i) => Math.cos(i * 0.11));
    const r = await onBoth(() => tf.tidy(() => {
      const t = tf.tensor2d(table, [vocab, dim]);
      const idx = tf.tensor2d(ids, [2, 6], 'int32');
      const w = tf.tensor3d(weights, [2, 6, dim]);
      const [g] = tf.grads((e: tf.Tensor) => tf.sum(tf.mul(tf.gather(e, idx), w)))([t]);
      return Array.from(g!.dataSync());
    }));
    close(r.wasm, r.cpu, 1e-5);
    // Rows that no id touches get no gradient; row 3 (five uses) gets the sum of five weight rows.
    assert.ok(r.wasm.slice(1 * dim, 2 * dim).every((v) => v === 0));
    const row3 = Array.from({ length: dim }, (_, d) => [[0, 0], [0, 5], [1, 1], [1, 2], [1, 3]]
      .reduce((s, [b, p]) => s + weights[(b! * 6 + p!) * dim + d]!, 0));
    close(r.wasm.slice(3 * dim, 4 * dim), row3, 1e-5);
  });
});
