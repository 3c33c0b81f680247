/**
 * The model worker thread, through the engine the daemon uses (src/engine/worker-engine.ts) and
 * only the requests the daemon sends: load a policy, answer, measure a KL, train a round (with
 * progress while the main thread keeps turning), unload; errors come back as rejections.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { workerEngine } from '../src/engine/worker-engine.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { DEFAULT_ROUND_TRAINING } from '../src/trainer/opcd-round.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const GREEDY = { temperature: 0, topP: 1, topK: 0 };

describe('model worker thread', () => {
  it('loads, answers, measures, trains and saves off the main thread; the event loop keeps turning', async () => {
    const engine = workerEngine();
    const modelDir = await makeTinyModel();
    const dir = mkdtempSync(join(tmpdir(), 'oeld-worker-'));
    try {
      const loaded = await engine.load('v0', modelDir);
      assert.ok(loaded.parameters > 1000);
      assert.match(loaded.backend, /^(tensorflow|wasm|cpu)/);
      const [answer] = await engine.complete('v0', ['You are at S. Which way?'], GREEDY, 5, 1);
      assert.ok(answer!.tokens >= 1 && answer!.tokens <= 5);
      assert.deepEqual(await engine.complete('v0', [userPrompt('You are at S. Which way?')], GREEDY, 5, 1), [answer], 'a string is one user message');
      const self = await engine.measureKl('v0', 'v0', [{ prompt: userPrompt('hi'), knowledge: '' }], { maxNewTokens: 4, temperature: 0.7, topK: 256, seed: 1, batchSize: 4, knowledgePlacement: 'system' });
      assert.ok(Math.abs(self.meanKl) < 1e-6, `a model against itself: KL ${self.meanKl}`);

      let ticks = 0;
      const timer = setInterval(() => { ticks++; }, 5);
      const progress: number[] = [];
      const input = (name: string) => ({
        situations: [userPrompt('You are at S. Which way?'), userPrompt('The goal is north.')], knowledgeTexts: ['- EXPERIENCE ITEM: G is the goal.'],
        options: { ...DEFAULT_ROUND_TRAINING, steps: 4, batchSize: 2, maxNewTokens: 4, checkpointEvery: 2 }, outDir: join(dir, name), checkpointDir: join(dir, `${name}-checkpoints`),
      });
      const mem0 = await engine.memory();
      const r = await engine.trainRound('v0', input('v1'), (s) => progress.push(s.step));
      clearInterval(timer);
      assert.deepEqual(progress, [1, 2, 3, 4], 'progress for every step');
      assert.equal(r.report.steps.length, 4);
      assert.match(r.sha256, /^[0-9a-f]{64}$/);
      assert.ok(ticks > 0, 'the main thread ran timers while the worker trained');
      assert.equal((await engine.memory()).tensors, mem0.tensors, 'no tensors leak across a round');
      loadModel(join(dir, 'v1')).model.dispose();
      assert.ok(existsSync(join(dir, 'v1', 'tokenizer.json')), 'the new version carries its tokenizer');
      assert.deepEqual(readdirSync(dir).filter((f) => !f.includes('checkpoints')).sort(), ['v1'], 'no partial folder left');

      await assert.rejects(engine.trainRound('v0', input('v1')), /already exists: model versions are immutable/);
      await assert.rejects(engine.load('v9', join(dir, 'nowhere')), /no config\.json/);
      await engine.unload('v0');
      await assert.rejects(engine.complete('v0', ['x'], GREEDY, 2, 1), /model v0 is not loaded/);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
      rmSync(dirname(modelDir), { recursive: true, force: true });
    }
  });
});
