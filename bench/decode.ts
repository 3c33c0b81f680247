/**
 * Decoding speed on the shipped base model (models/oeld-base), what serving, the simulator,
 * extraction and evaluation spend their time on: new tokens/s at batch 1 and 32 (prompts of 16
 * tokens, BENCH_DECODE_TOKENS new tokens each, default 128; temperature 0.7, no end token), for
 *   - oeld's native decoder (the path a served or evaluated version takes),
 *   - TensorFlow.js's forward pass with its KV cache (the path before it, and a model in training),
 *   - PyTorch on the CPU with a KV cache (bench/decode-torch.py, same folder, prompts, sampling and
 *     thread count: the baseline a team would pick instead; skipped with the reason where torch
 *     cannot be imported by OELD_PYTHON, python3 or /usr/bin/python3; Debian: apt-get install python3-torch),
 * all in this run, with the ratios. Goal (#15): at least PyTorch's tokens/s at batch 1 and 32.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { generate } from '../src/model/inference/generate.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadCpuKernels } from '../src/model/kernels/cpu-kernels.ts';
import { emit, envInt, fmt, log, round } from './lib.ts';

const MODEL = fileURLToPath(new URL('../models/oeld-base', import.meta.url));
const TOKENS = envInt('BENCH_DECODE_TOKENS', 128);
const PROMPT = 16;
const BATCHES = [1, 32];
const REPEATS = envInt('BENCH_DECODE_REPEATS', 3);

const backend = await initBackend();
const kernels = loadCpuKernels();
const threads = 'kernels' in kernels ? kernels.kernels.threads() : 1;
log(`backend: ${backend.name} (${backend.detail}); native kernels: ${'kernels' in kernels ? `${kernels.kernels.isa()}, ${threads} threads` : kernels.reason}`);

const prompts = (b: number) => Array.from({ length: b }, (_, i) => Array.from({ length: PROMPT }, (_, j) => 2 + ((7 * i + j) % 500)));
const options = { temperature: 0.7, topP: 1, topK: 0, maxNewTokens: TOKENS, eosTokenIds: [] as number[], seed: 1 };

/** The best of REPEATS runs (this machine's speed swings), after a warm-up. */
function tokensPerSecond(run: () => number): number {
  run();
  let best = 0;
  for (let r = 0; r < REPEATS; r++) {
    const t = performance.now();
    const n = run();
    best = Math.max(best, n / ((performance.now() - t) / 1000));
  }
  return best;
}

const native = loadModel(MODEL, { trainable: false, id: 'bench-native' }).model;
const viaTfjs = loadModel(MODEL, { trainable: false, id: 'bench-tfjs' }).model;
const results: Record<string, number | string> = {};
for (const b of BATCHES) {
  const ps = prompts(b);
  const nat = tokensPerSecond(() => generate(native, ps, options).tokens.flat().length);
  process.env.OELD_NATIVE_DECODER = '0';
  const tfjs = tokensPerSecond(() => generate(viaTfjs, ps, options).tokens.flat().length);
  delete process.env.OELD_NATIVE_DECODER;
  results[`native_b${b}`] = round(nat);
  results[`tfjs_b${b}`] = round(tfjs);
  log(`batch ${b}: native decoder ${fmt(nat)} new tokens/s; TensorFlow.js forward ${fmt(tfjs)} (native/tfjs ${(nat / tfjs).toFixed(2)})`);
}

// The first Python that has torch: OELD_PYTHON, python3 on the PATH (pyenv's here), Debian's own (python3-torch).
const pythons = [process.env.OELD_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
const python = pythons.find((p) => spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0) ?? pythons[0]!;
const torch = spawnSync(python, [fileURLToPath(new URL('./decode-torch.py', import.meta.url)), '--model', MODEL, '--batches', BATCHES.join(','),
  '--prompt', String(PROMPT), '--tokens', String(TOKENS), '--threads', String(threads)], { encoding: 'utf8' });
if (torch.status === 0) {
  const t = JSON.parse(torch.stdout.trim().split('\n').at(-1)!) as { torch: string; threads: number; results: { batch: number; new_tokens: number; seconds: number }[] };
  results.torch = t.torch;
  for (const r of t.results) {
    const tps = r.new_tokens / r.seconds;
    results[`torch_b${r.batch}`] = round(tps);
    const nat = results[`native_b${r.batch}`] as number;
    results[`ratio_native_to_torch_b${r.batch}`] = round(nat / tps, 2);
    log(`batch ${r.batch}: PyTorch ${t.torch} (${t.threads} threads) ${fmt(tps)} new tokens/s; native/PyTorch ${(nat / tps).toFixed(2)} (goal >= 1), TensorFlow.js/PyTorch ${((results[`tfjs_b${r.batch}`] as number) / tps).toFixed(2)}`);
  }
} else {
  results.torch = 'skipped';
  log(`PyTorch baseline skipped: ${(torch.stderr || torch.error?.message || `exit ${torch.status}`).trim().split('\n').at(-1)}`);
}
native.dispose(); viaTfjs.dispose();
emit({ name: 'decode', backend: backend.name, threads, tokens: TOKENS, ...results });
