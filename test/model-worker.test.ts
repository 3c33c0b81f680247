import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../src/model/checkpoint.ts';
import { ModelClient } from '../src/model/model-client.ts';

const LLAMA = new URL('./fixtures/model-parity/llama', import.meta.url).pathname;

describe('model worker thread', () => {
  it('loads, generates, scores, trains and saves off the main thread; the event loop keeps turning', async () => {
    const client = new ModelClient();
    const dir = mkdtempSync(join(tmpdir(), 'oeld-worker-'));
    try {
      assert.equal((await client.request({ type: 'init', backend: 'cpu' })).backend, 'cpu');
      const loaded = await client.request({ type: 'load', dir: LLAMA });
      assert.equal(loaded.family, 'llama');
      assert.ok(loaded.parameters > 10_000);
      const g = await client.request({ type: 'generate', prompts: [[1, 2, 3]], options: { temperature: 0, topP: 1, topK: 0, maxNewTokens: 5, eosTokenIds: [], seed: 1 } });
      assert.equal(g.generation.tokens[0]!.length, 5);
      const s = await client.request({ type: 'score', prompts: [[1, 2, 3]], responses: [g.generation.tokens[0]!], temperature: 1 });
      s.logprobs[0]!.forEach((x) => assert.ok(x <= 0 && Number.isFinite(x)));

      let ticks = 0;
      const timer = setInterval(() => { ticks++; }, 5);
      const progress: number[] = [];
      client.onProgress = (p) => progress.push(p.step);
      const t = await client.request({ type: 'trainCrossEntropy', prompts: [[1, 2, 3]], responses: [[4, 5, 6, 7]], steps: 30, learningRate: 1e-2 });
      clearInterval(timer);
      assert.deepEqual(progress, Array.from({ length: 30 }, (_, i) => i + 1), 'progress for every step');
      assert.ok(t.losses.at(-1)! < t.losses[0]! * 0.5, `loss fell ${t.losses[0]} -> ${t.losses.at(-1)}`);
      assert.ok(ticks > 0, 'the main thread ran timers while the worker trained');
      const mem1 = await client.request({ type: 'memory' });
      await client.request({ type: 'trainCrossEntropy', prompts: [[1, 2, 3]], responses: [[4, 5, 6, 7]], steps: 5, learningRate: 1e-2 });
      const mem2 = await client.request({ type: 'memory' });
      assert.equal(mem2.tensors, mem1.tensors, 'no tensors leak across training requests');

      const out = join(dir, 'v1');
      const saved = await client.request({ type: 'save', dir: out });
      assert.deepEqual(saved.files.sort(), ['config.json', 'model.safetensors']);
      assert.deepEqual(readdirSync(dir), ['v1'], 'no partial folder left');
      const back = loadModel(out);
      back.model.dispose();
      await assert.rejects(client.request({ type: 'save', dir: out }), /already exists: model versions are immutable/);
      await assert.rejects(client.request({ type: 'load', dir: join(dir, 'nowhere') }), /no config\.json/);
    } finally {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
