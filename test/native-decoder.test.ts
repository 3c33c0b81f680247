/**
 * The native decoder (src/model/kernels/native/cpu/decoder.cc) against TensorFlow.js's forward
 * pass on random Llama-, Qwen2- and Qwen3-shaped models (biases, q/k norms, grouped-query
 * attention, tied and separate output layers, every weight perturbed so no bias or norm is
 * trivially zero or one), and generation on both paths picking the same tokens.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadCpuKernels } from '../src/model/kernels/cpu-kernels.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { generate } from '../src/model/inference/generate.ts';
import { NativeDecoder } from '../src/model/inference/native-decoder.ts';
import { initialWeights } from '../src/model/network/init-weights.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { Transformer } from '../src/model/network/transformer.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const base = { vocab_size: 96, hidden_size: 48, intermediate_size: 80, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 12, rms_norm_eps: 1e-6, rope_theta: 10000 };
const FAMILIES = {
  llama: { ...base, model_type: 'llama', tie_word_embeddings: true, head_dim: undefined, num_key_value_heads: 4 },
  'llama with attention bias': { ...base, model_type: 'llama', attention_bias: true, tie_word_embeddings: false },
  qwen2: { ...base, model_type: 'qwen2', tie_word_embeddings: false },
  qwen3: { ...base, model_type: 'qwen3', tie_word_embeddings: true, rope_theta: 1_000_000 },
  // yarn scales cos and sin (the native decoder folds it into the query side), llama3 the frequencies.
  'qwen3 with yarn scaling': { ...base, model_type: 'qwen3', tie_word_embeddings: true, rope_theta: undefined, rope_parameters: { rope_type: 'yarn', rope_theta: 1_000_000, factor: 4, original_max_position_embeddings: 4 } },
  'qwen2 with yarn scaling': { ...base, model_type: 'qwen2', tie_word_embeddings: false, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 4 } },
  'llama with llama3 scaling': { ...base, model_type: 'llama', tie_word_embeddings: true, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 } },
};

function randomModel(raw: Record<string, unknown>, seed: number): Transformer {
  const config = resolveConfig(raw);
  const tensors = initialWeights(config, seed);
  const random = seededRandom(seed + 100);
  for (const t of tensors.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! + 0.05 * (random() - 0.5);
  return Transformer.fromTensors(config, tensors, { trainable: false, id: `native-${seed}` });
}

/** TensorFlow.js's logits at the last position of each prefix of `ids` from `from` on. */
function tfLogits(model: Transformer, ids: number[], from: number): Float32Array[] {
  const { logits } = model.forward([ids]);
  const all = logits.dataSync() as Float32Array;
  logits.dispose();
  const V = model.config.vocabSize;
  return Array.from({ length: ids.length - from }, (_, i) => all.slice((from + i) * V, (from + i + 1) * V));
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('the native decoder', () => {
  before(async () => {
    await initBackend();
    const k = loadCpuKernels();
    assert.ok('kernels' in k, `the addon is built by npm ci and scripts/test.sh: ${'reason' in k ? k.reason : ''}`);
  });

  for (const [family, raw] of Object.entries(FAMILIES)) {
    it(`matches TensorFlow.js's logits on a ${family}-shaped model: a prompt at once, then token by token, two sequences at once`, () => {
      const model = randomModel(raw, 7);
      try {
        const dec = NativeDecoder.for(model)!;
        assert.ok(dec, 'a model that does not train gets a native decoder');
        const random = seededRandom(3);
        const a = Array.from({ length: 9 }, () => Math.floor(random() * 96));
        const b = Array.from({ length: 5 }, () => Math.floor(random() * 96));
        const [sa, sb] = [dec.newSequence(), dec.newSequence()];
        // Both prompts in one call, all but their last 3 and 1 tokens; logits at each prompt's end.
        const first = dec.forward(Int32Array.from([...a.slice(0, 6), ...b.slice(0, 4)]), Int32Array.from([...Array(6).fill(sa), ...Array(4).fill(sb)]), Int32Array.from([5, 9]));
        const wantA = tfLogits(model, a, 5);
        const wantB = tfLogits(model, b, 3);
        const V = 96;
        let worst = Math.max(maxDiff(first.subarray(0, V), wantA[0]!), maxDiff(first.subarray(V), wantB[0]!));
        // Then one token per sequence per call, the way decoding goes, b stopping after one.
        for (let t = 6; t < 9; t++) {
          const withB = t === 6;
          const l = dec.forward(Int32Array.from(withB ? [a[t]!, b[4]!] : [a[t]!]), Int32Array.from(withB ? [sa, sb] : [sa]), Int32Array.from(withB ? [0, 1] : [0]));
          worst = Math.max(worst, maxDiff(l.subarray(0, V), wantA[t - 5]!));
          if (withB) worst = Math.max(worst, maxDiff(l.subarray(V), wantB[1]!));
        }
        dec.freeSequence(sa); dec.freeSequence(sb);
        assert.ok(worst < 2e-4, `largest logit difference ${worst}`);
      } finally {
        NativeDecoder.release(model);
        model.dispose();
      }
    });
  }

  it('refuses what is wrong with the reason, and a model in training gets none', () => {
    const model = randomModel(FAMILIES.qwen3, 8);
    const trainable = Transformer.fromTensors(model.config, model.toTensors(), { trainable: true });
    try {
      assert.equal(NativeDecoder.for(trainable), null, 'weights that change as it trains stay with TensorFlow.js');
      const dec = NativeDecoder.for(model)!;
      const s = dec.newSequence();
      assert.throws(() => dec.forward(Int32Array.from([96]), Int32Array.from([s]), Int32Array.from([0])), /token 96 is outside the vocabulary/);
      assert.throws(() => dec.forward(Int32Array.from([1]), Int32Array.from([s + 1]), Int32Array.from([0])), /no sequence/);
      assert.throws(() => dec.forward(Int32Array.from([1]), Int32Array.from([s]), Int32Array.from([1])), /output row 1 is not a token of this call/);
    } finally {
      NativeDecoder.release(model);
      model.dispose(); trainable.dispose();
    }
  });

  it('generates the same tokens as TensorFlow.js, greedy and sampled, with per-row lengths', async () => {
    const dir = await makeTinyModel(undefined, 5);
    const model = loadModel(dir, { trainable: false, id: 'native-gen' }).model;
    /** The same generation on TensorFlow.js (OELD_NATIVE_DECODER=0), with a copy of the model. */
    const viaTfjs = (prompts: number[][], o: Parameters<typeof generate>[2]) => {
      const copy = Transformer.fromTensors(model.config, model.toTensors(), { trainable: false });
      process.env.OELD_NATIVE_DECODER = '0';
      try { return generate(copy, prompts, o); } finally { delete process.env.OELD_NATIVE_DECODER; copy.dispose(); }
    };
    try {
      const random = seededRandom(11);
      const prompts = [12, 3, 30, 7].map((n) => Array.from({ length: n }, () => 2 + Math.floor(random() * 600)));
      for (const sampling of [{ temperature: 0, topP: 1, topK: 0 }, { temperature: 0.7, topP: 0.9, topK: 20 }]) {
        const o = { ...sampling, maxNewTokens: 16, eosTokenIds: [1], seed: 4, rows: [{}, { maxNewTokens: 5 }, {}, { maxNewTokens: 9 }] };
        const native = generate(model, prompts, o);
        const viaTf = viaTfjs(prompts, o);
        assert.deepEqual(native.tokens, viaTf.tokens, `temperature ${sampling.temperature}`);
        assert.deepEqual(native.endedBy, viaTf.endedBy);
        native.logprobs.flat().forEach((lp, i) => assert.ok(Math.abs(lp - viaTf.logprobs.flat()[i]!) < 1e-3));
        assert.deepEqual(native.tokens.map((t) => t.length <= 16), [true, true, true, true]);
        assert.ok(native.tokens[1]!.length <= 5 && native.tokens[3]!.length <= 9);
      }
      // Prompts longer together than one prefill call takes (2,048 tokens), one cut in the middle.
      const long = [900, 700, 950].map((n) => Array.from({ length: n }, () => 2 + Math.floor(random() * 600)));
      const greedy = { temperature: 0, topP: 1, topK: 0, maxNewTokens: 6, eosTokenIds: [1], seed: 1 };
      const nativeLong = generate(model, long, greedy);
      const tfLong = viaTfjs(long, greedy);
      assert.deepEqual(nativeLong.tokens, tfLong.tokens, 'prompts cut across prefill calls');
    } finally {
      NativeDecoder.release(model);
      model.dispose();
      rmSync(dirname(dir), { recursive: true, force: true });
    }
  });
});
