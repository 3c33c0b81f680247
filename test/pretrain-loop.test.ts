import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { learningRateAt, pretrain } from '../src/basemodel/pretrain.ts';
import { parseMix } from '../src/basemodel/corpus-args.ts';
import { DEFAULT_CORPUS_OPTIONS } from '../src/basemodel/corpus.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';
import { initialWeights } from '../src/model/network/init-weights.ts';
import { resolveConfig } from '../src/model/network/model-config.ts';
import { Transformer } from '../src/model/network/transformer.ts';

describe('the pretraining loop', () => {
  it('stops after --stop-after steps on the schedule of --steps, and logs each kind\'s loss', async () => {
    await initBackend({ force: 'wasm' });
    const tokenizer = await loadTokenizer('models/oeld-base');
    const config = resolveConfig({
      model_type: 'llama', vocab_size: 1280, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
      num_attention_heads: 2, num_key_value_heads: 2, tie_word_embeddings: true,
    });
    const model = Transformer.fromTensors(config, initialWeights(config, 3), { trainable: true });
    const records: Record<string, unknown>[] = [];
    const o = { steps: 100, learningRate: 1e-3, minLearningRate: 1e-4, warmupSteps: 5 };
    const result = pretrain(model, tokenizer, {
      ...o, seed: 1, stopAfter: 25, batchSize: 2, tokensPerBatch: 1024, evalEvery: 0, evalExamples: 0,
      mix: parseMix('familiar=0,guess=1,informed=0,extract=0,copy-repeat=1'), corpus: DEFAULT_CORPUS_OPTIONS,
      log: (r) => records.push(r),
    });
    assert.equal(result.steps, 25);
    const last = records.at(-1) as { step: number; lr: number; lossByKind: Record<string, number> };
    assert.equal(last.step, 25);
    // The learning rate is the 100-step schedule's at step 25, not the end of a 25-step one.
    assert.equal(last.lr, +learningRateAt(24, o).toExponential(3));
    assert.ok(last.lr > 5e-4, `still high: ${last.lr}`);
    assert.deepEqual(Object.keys(last.lossByKind).sort(), ['copy-repeat', 'guess']);
    for (const v of Object.values(last.lossByKind)) assert.ok(v > 0 && Number.isFinite(v));
  });
});
