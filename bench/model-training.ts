/**
 * Training and decoding speed of the model runtime on the backend initBackend picks (wasm here).
 *
 * Training: tokens/s for ~1M and ~5M parameter models at sequence 128, batch 16
 * (BENCH_TRAIN_STEPS steps after one warm-up; the figure is their mean, the median step is shown
 * too), and model FLOPs utilisation against the backend's own plain 2-D matmul figure: the best
 * of 512 and 1024, measured right before and right after the steps. On wasm, baselines: the same
 * training in child processes with OELD_WASM_MATMUL=wasm (oeld's WebAssembly kernel, where the
 * native CPU matmul is in use) and =tfjs (tfjs's own BatchMatMul), and the ratios
 * (BENCH_TRAIN_BASELINE=0 skips them). Decoding: new tokens/s with and without the KV cache, 256
 * new tokens (BENCH_DECODE_TOKENS), batch 1 and 32.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../src/model/network/adamw.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { generate } from '../src/model/inference/generate.ts';
import { initialWeights } from '../src/model/network/init-weights.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { packBatch, responseLogits } from '../src/model/inference/score.ts';
import { trainStep } from '../src/model/network/train-step.ts';
import { Transformer } from '../src/model/network/transformer.ts';
import { installWasmBatchMatMul } from '../src/model/kernels/wasm-batch-matmul.ts';
import { emit, envInt, fmt, log, round } from './lib.ts';

const STEPS = envInt('BENCH_TRAIN_STEPS', 10);
const DECODE = envInt('BENCH_DECODE_TOKENS', 256);
/** Set in the baseline child: training only. */
const CHILD = process.env.BENCH_TRAIN_CHILD === '1';
const SEQ = 128;
const BATCH = 16;

const backend = await initBackend({ log: (m) => { if (!CHILD) log(m); } });
if (!CHILD) log(`backend: ${backend.name} (${backend.detail})`);
const ownKernel = backend.name === 'wasm' && process.env.OELD_WASM_MATMUL !== 'tfjs';
const kernelInfo = ownKernel ? installWasmBatchMatMul(backend.threads ?? 1) : undefined;
const kernelCalls = kernelInfo?.calls;

function matmulGflops(n: number, reps: number): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  tf.matMul(a, b).dispose();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) { const c = tf.matMul(a, b); c.dataSync(); c.dispose(); }
  const s = (performance.now() - t0) / 1000;
  a.dispose(); b.dispose();
  return (2 * n ** 3 * reps) / s / 1e9;
}
/**
 * The utilisation baseline: plain 2-D matmuls of 512 and 1024, measured right before and right
 * after each model's timed steps (this machine's speed swings from minute to minute); the best of
 * the four is the conservative figure (a higher one gives a lower utilisation).
 */
function plainMatmul(): number[] { return [matmulGflops(512, 20), matmulGflops(1024, 5)]; }
const peaks: number[] = [];

const sizes = {
  '1M': { model_type: 'llama', vocab_size: 512, hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4, tie_word_embeddings: true },
  '5M': { model_type: 'llama', vocab_size: 512, hidden_size: 256, intermediate_size: 768, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 8, tie_word_embeddings: true },
};
type Label = keyof typeof sizes;

/** Training speed with another OELD_WASM_MATMUL, measured in a child process (few steps: tfjs's is slow). */
function baseline(choice: 'wasm' | 'tfjs', steps: number): Record<string, number> | undefined {
  log(`baseline: the same training with OELD_WASM_MATMUL=${choice}, in a child process ...`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, OELD_WASM_MATMUL: choice, BENCH_TRAIN_CHILD: '1', BENCH_TRAIN_STEPS: String(steps) }, encoding: 'utf8',
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('CHILD '));
  if (r.status !== 0 || !line) { log(`baseline failed (exit ${r.status}): ${r.stderr.slice(-500)}`); return undefined; }
  return JSON.parse(line.slice(6)) as Record<string, number>;
}

const results: Record<string, unknown> = {};
const childFigures: Record<string, number> = {};
const baselines: Record<string, Record<string, number> | undefined> = CHILD || !ownKernel || process.env.BENCH_TRAIN_BASELINE === '0' ? {} : {
  ...(kernelInfo?.kernel === 'native' ? { wasm: baseline('wasm', 4) } : {}),
  tfjs: baseline('tfjs', 2),
};
for (const [label, raw] of Object.entries(sizes) as [Label, (typeof sizes)[Label]][]) {
  const config = resolveConfig(raw);
  const model = Transformer.fromTensors(config, initialWeights(config, 1));
  const params = model.parameterCount();
  const opt = new AdamW({ learningRate: 1e-3 });
  const prompts = Array.from({ length: BATCH }, (_, b) => [b % config.vocabSize]);
  const responses = Array.from({ length: BATCH }, (_, b) => Array.from({ length: SEQ - 1 }, (_, t) => (b * 7 + t * 13) % config.vocabSize));
  const batch = packBatch(prompts, responses);
  const targets = responses.flat();
  const loss = () => tf.tidy(() => {
    const logits = responseLogits(model, batch);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(targets, 'int32'), config.vocabSize)), 1))) as tf.Scalar;
  });
  trainStep(model, opt, loss);
  const peakBefore = CHILD ? [] : plainMatmul();
  const before = kernelCalls ? { ...kernelCalls } : undefined;
  const steps: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t = performance.now();
    trainStep(model, opt, loss);
    steps.push((performance.now() - t) / 1000);
  }
  const s = steps.reduce((a, b) => a + b, 0);
  const tokensPerS = (STEPS * BATCH * SEQ) / s;
  opt.dispose();
  if (CHILD) {
    childFigures[label] = tokensPerS;
    model.dispose();
    continue;
  }
  const median = [...steps].sort((a, b) => a - b)[steps.length >> 1]!;
  const after = kernelCalls ? { ...kernelCalls } : undefined;
  const around = [...peakBefore, ...plainMatmul()];
  const peak = Math.max(...around);
  peaks.push(peak);
  // 6 FLOPs per parameter per token (forward + backward), plus attention's 12 * layers * seq * hidden.
  const flopsPerToken = 6 * params + 12 * config.layers * SEQ * config.hidden;
  const mfu = (tokensPerS * flopsPerToken) / (peak * 1e9);
  const vs = Object.entries(baselines).flatMap(([choice, figures]) => figures?.[label] ? [{ choice, tokensPerS: figures[label]!, ratio: tokensPerS / figures[label]! }] : []);
  const calls = after && before ? ` (matmuls per step: ${(after.own - before.own) / STEPS} on oeld's ${kernelInfo!.kernel === 'native' ? `native ${kernelInfo!.isa}` : 'WebAssembly'} kernel, ${(after.tfjs - before.tfjs) / STEPS} on XNNPACK)` : '';
  log(`train ${label} (${fmt(params)} params): ${fmt(tokensPerS)} tokens/s, ${(s / STEPS).toFixed(2)} s/step (median ${median.toFixed(2)}), utilisation ${(100 * mfu).toFixed(1)}% of the plain-matmul figure (${peak.toFixed(1)} GFLOP/s, the best of ${around.map((g) => g.toFixed(0)).join(', ')} measured around these steps)`
    + vs.map((b) => `; OELD_WASM_MATMUL=${b.choice}: ${fmt(b.tokensPerS)} tokens/s, ratio ${b.ratio.toFixed(2)}`).join('') + ` (goal: ${label === '1M' ? '3,000' : '1,000'} tokens/s, 30%)${calls}`);
  results[`train_${label}`] = { params, tokensPerS: round(tokensPerS), medianStepS: round(median, 3), utilisation: round(mfu, 3), matmulGflops: round(peak, 1), ...Object.fromEntries(vs.flatMap((b) => [[`${b.choice}KernelTokensPerS`, round(b.tokensPerS)], [`ratioTo_${b.choice}`, round(b.ratio, 2)]])) };

  if (label === '1M') {
    for (const b of [1, 32]) {
      const ps = Array.from({ length: b }, (_, i) => [1 + (i % 100), 2, 3]);
      const o = { temperature: 0.7, topP: 1, topK: 0, maxNewTokens: DECODE, eosTokenIds: [], seed: 1 };
      const perCache: Record<string, number> = {};
      for (const useCache of [true, false]) {
        const t1 = performance.now();
        const g = generate(model, ps, { ...o, useCache });
        const secs = (performance.now() - t1) / 1000;
        const n = g.tokens.flat().length;
        perCache[useCache ? 'cache' : 'nocache'] = n / secs;
        log(`decode ${label} batch ${b} ${useCache ? 'with' : 'without'} KV cache: ${fmt(n / secs)} new tokens/s (${n} tokens in ${secs.toFixed(1)} s)${useCache ? '' : `; the cache is ${(perCache.cache! / perCache.nocache!).toFixed(1)}x faster`}`);
        results[`decode_b${b}_${useCache ? 'cache' : 'nocache'}`] = round(n / secs);
      }
    }
  }
  model.dispose();
}
if (CHILD) console.log(`CHILD ${JSON.stringify(childFigures)}`);
else emit({ name: 'model-training', backend: backend.name, matmulGflops: round(Math.max(...peaks), 1), ...results });
