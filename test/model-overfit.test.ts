import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '../src/model/network/adamw.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { initialWeights } from '../src/model/network/init-weights.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { packBatch, responseLogits } from '../src/model/inference/score.ts';
import { trainStep } from '../src/model/network/train-step.ts';
import { Transformer } from '../src/model/network/transformer.ts';

describe('training on the WebAssembly backend', () => {
  it('a tiny Qwen3-style model overfits a fixed batch', async () => {
    const info = await initBackend({ force: 'wasm' });
    assert.equal(info.name, 'wasm');
    const config = resolveConfig({
      model_type: 'qwen3', vocab_size: 40, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, tie_word_embeddings: true,
    });
    const model = Transformer.fromTensors(config, initialWeights(config, 7, 0.1));
    const opt = new AdamW({ learningRate: 2e-2, weightDecay: 0 });
    try {
      const prompts = [[1, 2], [3, 4, 5], [6]];
      const responses = [[10, 11, 12, 13, 14], [20, 21, 22], [30, 31, 32, 33]];
      const batch = packBatch(prompts, responses);
      const targets = responses.flat();
      const loss = () => tf.tidy(() => {
        const logits = responseLogits(model, batch);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(targets, 'int32'), config.vocabSize)), 1))) as tf.Scalar;
      });
      const first = trainStep(model, opt, loss).loss;
      let last = first;
      for (let i = 0; i < 80 && last > 0.05; i++) last = trainStep(model, opt, loss).loss;
      assert.ok(first > 3, `starts near log(40) = 3.7: ${first}`);
      assert.ok(last < 0.05, `memorised the batch: loss ${first.toFixed(3)} -> ${last.toFixed(4)}`);
    } finally {
      opt.dispose();
      model.dispose();
      await tf.setBackend('cpu');
    }
  });
});
