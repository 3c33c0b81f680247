import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { AdamW } from '../src/model/network/adamw.ts';
import { generate } from '../src/model/inference/generate.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { loadCheckpoint, readSafetensors, writeSafetensors } from '../src/model/formats/safetensors.ts';
import { packBatch, responseLogits, scoreResponses } from '../src/model/inference/score.ts';
import { trainStep } from '../src/model/network/train-step.ts';
import { TAIL_FOLD, Transformer } from '../src/model/network/transformer.ts';

const DIR = new URL('./fixtures/model-parity/llama', import.meta.url).pathname;
const loadLlama = (trainable = true) => Transformer.fromTensors(resolveConfig(JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8'))), loadCheckpoint(DIR).tensors, { trainable });

/** Mean cross-entropy of the response tokens: the loss of the overfit and memory tests. */
const crossEntropy = (model: Transformer, prompts: number[][], responses: number[][]) => () => tf.tidy(() => {
  const logits = responseLogits(model, packBatch(prompts, responses));
  const targets = tf.oneHot(tf.tensor1d(responses.flat(), 'int32'), model.config.vocabSize);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), targets), 1))) as tf.Scalar;
});

describe('model runtime (cpu backend)', () => {
  before(async () => { await tf.setBackend('cpu'); });

  it('scores teacher-forced log-probabilities at temperature 0.7 like the reference', () => {
    const expected = JSON.parse(readFileSync(`${DIR}/expected.json`, 'utf8')) as { sequences: { tokens: number[] }[]; scoring: { tokenLogprobs: number[] } };
    const model = loadLlama();
    try {
      const tokens = expected.sequences[0]!.tokens;
      const [lp] = scoreResponses(model, [tokens.slice(0, 1)], [tokens.slice(1)], 0.7);
      lp!.forEach((x, i) => assert.ok(Math.abs(x - expected.scoring.tokenLogprobs[i]!) < 1e-4, `token ${i}: ${x} vs ${expected.scoring.tokenLogprobs[i]}`));
    } finally { model.dispose(); }
  });

  it('generates exactly the same tokens with and without the KV cache (greedy, batched, uneven prompts)', () => {
    const model = loadLlama();
    try {
      const prompts = [[13, 55, 47, 12], [55, 24], [5, 6, 7, 8, 9, 10]];
      const o = { temperature: 0, topP: 1, topK: 0, maxNewTokens: 12, eosTokenIds: [], seed: 1 };
      const cached = generate(model, prompts, o);
      const plain = generate(model, prompts, { ...o, useCache: false });
      assert.deepEqual(cached.tokens, plain.tokens);
      cached.logprobs.flat().forEach((x, i) => assert.ok(Math.abs(x - plain.logprobs.flat()[i]!) < 1e-4));
      // A prompt alone decodes as it does in the batch: padding is invisible.
      const alone = generate(model, [prompts[1]!], o);
      assert.deepEqual(alone.tokens[0], cached.tokens[1]);
    } finally { model.dispose(); }
  });

  it('decodes past the cache tail\'s fold exactly as without a cache, keeping the shared prefix alive and leaking nothing', () => {
    const model = loadLlama();
    try {
      const prompts = [[13, 55, 47, 12], [55, 24]];
      const o = { temperature: 0, topP: 1, topK: 0, maxNewTokens: TAIL_FOLD * 2 + 5, eosTokenIds: [], seed: 1 };
      const before = tf.memory().numTensors;
      const cached = generate(model, prompts, o);
      assert.equal(tf.memory().numTensors, before, 'every cache tensor is disposed once decoding ends');
      const plain = generate(model, prompts, { ...o, useCache: false });
      assert.equal(cached.tokens[0]!.length, TAIL_FOLD * 2 + 5);
      assert.deepEqual(cached.tokens, plain.tokens);
      cached.logprobs.flat().forEach((x, i) => assert.ok(Math.abs(x - plain.logprobs.flat()[i]!) < 1e-4, `logprob ${i}: ${x} vs ${plain.logprobs.flat()[i]}`));
    } finally { model.dispose(); }
  });

  it('samples reproducibly from a seed, stops at EOS, and honours top-k', () => {
    const model = loadLlama();
    try {
      const o = { temperature: 0.7, topP: 0.8, topK: 20, maxNewTokens: 10, eosTokenIds: [], seed: 42 };
      const a = generate(model, [[1, 2, 3]], o);
      const b = generate(model, [[1, 2, 3]], o);
      const c = generate(model, [[1, 2, 3]], { ...o, seed: 43 });
      assert.deepEqual(a.tokens, b.tokens);
      assert.notDeepEqual(a.tokens, c.tokens);
      const eos = a.tokens[0]![2]!;
      const stopped = generate(model, [[1, 2, 3]], { ...o, eosTokenIds: [eos] });
      assert.equal(stopped.tokens[0]!.at(-1), eos);
      assert.equal(stopped.finished[0], true);
      assert.ok(stopped.tokens[0]!.length <= 3);
      const top1 = generate(model, [[1, 2, 3]], { ...o, topK: 1, maxNewTokens: 5 });
      const greedy = generate(model, [[1, 2, 3]], { ...o, temperature: 0, maxNewTokens: 5 });
      assert.deepEqual(top1.tokens, greedy.tokens);
    } finally { model.dispose(); }
  });

  it('save -> load round trip is bit-exact', () => {
    const model = loadLlama();
    try {
      const bytes = writeSafetensors(model.toTensors());
      const back = Transformer.fromTensors(model.config, readSafetensors(bytes).tensors);
      try {
        const a = model.toTensors();
        const b = back.toTensors();
        assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
        for (const [name, t] of a) assert.deepEqual(Buffer.from(b.get(name)!.data.buffer), Buffer.from(t.data.buffer), name);
        const original = loadCheckpoint(DIR).tensors;
        for (const [name, t] of original) assert.deepEqual(Buffer.from(a.get(name)!.data.buffer), Buffer.from(t.data.buffer), `${name} unchanged by the transposes`);
      } finally { back.dispose(); }
    } finally { model.dispose(); }
  });

  it('trains with AdamW and clipping without leaking tensors, and a frozen copy stays frozen', () => {
    const model = loadLlama();
    const teacher = model.clone({ trainable: false });
    const opt = new AdamW({ learningRate: 1e-2 });
    try {
      const before = teacher.toTensors();
      const loss = crossEntropy(model, [[1, 2, 3], [4, 5]], [[6, 7, 8, 9], [10, 11, 12]]);
      const first = trainStep(model, opt, loss);
      const counts: number[] = [];
      let last = first;
      for (let i = 0; i < 15; i++) { last = trainStep(model, opt, loss); counts.push(tf.memory().numTensors); }
      assert.equal(new Set(counts).size, 1, `tensor count constant across steps: ${counts.join(',')}`);
      assert.ok(last.loss < first.loss * 0.5, `loss fell: ${first.loss} -> ${last.loss}`);
      assert.ok(first.clipped, 'the first, large gradient was clipped to norm 1');
      const after = teacher.toTensors();
      for (const [name, t] of before) assert.deepEqual(after.get(name)!.data, t.data, `teacher ${name} unchanged`);
    } finally { opt.dispose(); teacher.dispose(); model.dispose(); }
  });
});
