/**
 * Training and decoding speed of the model runtime on the backend initBackend picks (wasm here).
 * Training: tokens/s for ~1M and ~5M parameter models at sequence 128, batch 16 (BENCH_TRAIN_STEPS
 * steps after one warm-up), and model FLOPs utilisation against the backend's own plain 2-D matmul
 * figure measured in the same run. Decoding: new tokens/s with and without the KV cache, 256 new
 * tokens (BENCH_DECODE_TOKENS), batch 1 and 32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../src/model/adamw.ts';
import { initBackend } from '../src/model/backend.ts';
import { generate } from '../src/model/generate.ts';
import { initialWeights } from '../src/model/init-weights.ts';
import { resolveConfig } from '../src/model/model-config.ts';
import { packBatch, responseLogits } from '../src/model/score.ts';
import { trainStep } from '../src/model/train-step.ts';
import { Transformer } from '../src/model/transformer.ts';
import { emit, envInt, fmt, log, round } from './lib.ts';

const STEPS = envInt('BENCH_TRAIN_STEPS', 3);
const DECODE = envInt('BENCH_DECODE_TOKENS', 256);
const SEQ = 128;
const BATCH = 16;

const backend = await initBackend({ log: (m) => log(m) });
log(`backend: ${backend.name} (${backend.detail})`);

function matmulGflops(n: number): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  tf.matMul(a, b).dispose();
  const reps = 5;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) { const c = tf.matMul(a, b); c.dataSync(); c.dispose(); }
  const s = (performance.now() - t0) / 1000;
  a.dispose(); b.dispose();
  return (2 * n ** 3 * reps) / s / 1e9;
}
const peak = matmulGflops(512);
log(`plain 2-D matmul 512x512: ${peak.toFixed(1)} GFLOP/s (the utilisation baseline)`);

const sizes = {
  '1M': { model_type: 'llama', vocab_size: 512, hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4, tie_word_embeddings: true },
  '5M': { model_type: 'llama', vocab_size: 512, hidden_size: 256, intermediate_size: 768, num_hidden_layers: 6, num_attention_heads: 8, num_key_value_heads: 8, tie_word_embeddings: true },
};
const results: Record<string, unknown> = {};
for (const [label, raw] of Object.entries(sizes)) {
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
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) trainStep(model, opt, loss);
  const s = (performance.now() - t0) / 1000;
  const tokensPerS = (STEPS * BATCH * SEQ) / s;
  // 6 FLOPs per parameter per token (forward + backward), plus attention's 12 * layers * seq * hidden.
  const flopsPerToken = 6 * params + 12 * config.layers * SEQ * config.hidden;
  const mfu = (tokensPerS * flopsPerToken) / (peak * 1e9);
  log(`train ${label} (${fmt(params)} params): ${fmt(tokensPerS)} tokens/s, ${(s / STEPS).toFixed(2)} s/step, utilisation ${(100 * mfu).toFixed(1)}% of the plain-matmul figure (goal: ${label === '1M' ? '3,000' : '1,000'} tokens/s, 30%)`);
  results[`train_${label}`] = { params, tokensPerS: round(tokensPerS), utilisation: round(mfu, 3) };
  opt.dispose();

  if (label === '1M') {
    for (const b of [1, 32]) {
      const ps = Array.from({ length: b }, (_, i) => [1 + (i % 100), 2, 3]);
      const o = { temperature: 0.7, topP: 1, topK: 0, maxNewTokens: DECODE, eosTokenIds: [], seed: 1 };
      for (const useCache of [true, false]) {
        const t1 = performance.now();
        const g = generate(model, ps, { ...o, useCache });
        const secs = (performance.now() - t1) / 1000;
        const n = g.tokens.flat().length;
        log(`decode ${label} batch ${b} ${useCache ? 'with' : 'without'} KV cache: ${fmt(n / secs)} new tokens/s (${n} tokens in ${secs.toFixed(1)} s)`);
        results[`decode_b${b}_${useCache ? 'cache' : 'nocache'}`] = round(n / secs);
      }
    }
  }
  model.dispose();
}
emit({ name: 'model-training', backend: backend.name, matmulGflops: round(peak, 1), ...results });
