/**
 * The model engine in a PyTorch process: the same greedy answers as the TypeScript runtime on the
 * shipped model, the chat gate's KL, serving with stop strings, a process that dies started again
 * with its versions; and a whole round (simulator, extraction, training, gate) with the torch
 * engine and the torch trainer, no model held in the Node process.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { localEngine } from '../src/engine/local-engine.ts';
import { TorchEngine } from '../src/engine/torch-engine.ts';
import { renderPrompt } from '../src/envs/environment.ts';
import { FrozenLake, frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import { EVALUATION_SAMPLING } from '../src/model/inference/sampling.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { Simulator } from '../src/simulator/simulator.ts';
import { TorchTrainer } from '../src/trainer/torch-trainer.ts';
import { scriptedExtractor, tinyGameRound, TINY_ROUND } from './helpers/round-settings.ts';
import { tinyRoundWorld, type TinyRoundWorld } from './helpers/tiny-round-world.ts';
import { torchPython } from './helpers/torch-python.ts';

const BASE = join(import.meta.dirname, '..', 'models', 'oeld-base');
const situations = Array.from({ length: 6 }, (_, i) => renderPrompt(new FrozenLake(300 + i), []));
const greedy = { temperature: 0, topP: 1, topK: 0 };

describe('the torch engine', () => {
  let engine: TorchEngine;
  before(() => { engine = new TorchEngine({ python: torchPython(), device: 'cpu' }); });
  after(async () => { await engine.close(); });

  it('answers greedily as the TypeScript runtime does, samples with the evaluation preset, and measures the KL', async () => {
    const tfjs = localEngine();
    let expected;
    try {
      await tfjs.load('base', BASE);
      expected = await tfjs.complete('base', situations, greedy, 24, 1);
    } finally {
      await tfjs.close();
    }
    const info = await engine.load('base', BASE);
    assert.equal(info.backend, 'torch-cpu');
    assert.deepEqual((await engine.complete('base', situations, greedy, 24, 1)).map((c) => c.text), expected.map((c) => c.text));
    const sampled = await engine.complete('base', situations, EVALUATION_SAMPLING, 24, 7);
    assert.equal(sampled.length, situations.length);
    assert.ok(sampled.every((c) => c.tokens > 0 && c.tokens <= 24));
    const options = { maxNewTokens: 16, temperature: 0.7, topK: 256, seed: 1, batchSize: 4, knowledgePlacement: 'user' as const };
    const same = await engine.measureKl('base', 'base', situations.map((s) => ({ prompt: userPrompt(s), knowledge: '' })), options);
    assert.ok(Math.abs(same.meanKl) < 1e-6 && same.tokens > 0, `a version against itself: ${same.meanKl}`);
    const informed = await engine.measureKl('base', 'base', situations.map((s) => ({ prompt: userPrompt(s), knowledge: '- EXPERIENCE ITEM: G is the goal.' })), options);
    assert.ok(informed.meanKl > 1e-3, `against its knowledge-reading self: ${informed.meanKl}`);
    assert.equal(informed.perPair.length, situations.length);
  });

  it('serves a batch with stop strings, streaming each row as it is sampled, and starts a process that died again with its versions', async () => {
    const rows = [
      { messages: userPrompt(situations[0]!), sampling: greedy, maxNewTokens: 24, stop: [] },
      { messages: userPrompt(situations[0]!), sampling: greedy, maxNewTokens: 24, stop: [' '] },
    ];
    const deltas: { row: number; text: string }[] = [];
    let calls = 0;
    const r = await engine.serve('base', BASE, rows, 1, (d) => { calls++; deltas.push(...d); });
    assert.equal(r.loadedNow, false);
    assert.ok(r.rows[0]!.text.includes(' '), r.rows[0]!.text);
    assert.equal(r.rows[1]!.text, r.rows[0]!.text.slice(0, r.rows[0]!.text.indexOf(' ')));
    assert.equal(r.rows[1]!.finishReason, 'stop');
    // Streamed: many deltas, one per step or so, which add up to each row's text (the stop string never sent).
    for (const row of [0, 1]) assert.equal(deltas.filter((d) => d.row === row).map((d) => d.text).join(''), r.rows[row]!.text);
    assert.ok(deltas.filter((d) => d.row === 0).length >= 4 && calls >= 4, `${deltas.length} deltas in ${calls} calls`);
    assert.ok(r.rows[1]!.completionTokens < r.rows[0]!.completionTokens, 'the stopped row counts the tokens up to its stop string');
    (engine as unknown as { child: { kill(s: string): void } }).child.kill('SIGKILL');
    await new Promise((res) => setTimeout(res, 200));
    const again = await engine.complete('base', situations.slice(0, 2), greedy, 24, 1);
    assert.equal(again.length, 2);
  });
});

describe('a round with no model in the Node process', () => {
  let w: TinyRoundWorld;
  before(async () => { w = await tinyRoundWorld('torch-engine'); await w.engine.close(); });
  after(async () => { await w.close(); });

  it('plays, extracts, trains and evaluates through the torch engine and trainer', async () => {
    const engine = new TorchEngine({ python: torchPython(), device: 'cpu' });
    const trainer = new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 120 });
    const tensorsBefore = tf.memory().numTensors;
    try {
      const active = (await readActiveModel(w.db.sql))!;
      await engine.load(active.version, active.path);
      await new Simulator(w.store, engine, { game: frozenLakeSpec(), batchSize: 8, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch(active.version);
      await w.catchUp();
      const outcome = await new RoundRunner({
        store: w.store, engine, trainer, artifactRoot: mkdtempSync(join(tmpdir(), 'oeld-torch-engine-')), ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]),
      }).run('manual').then(trained);
      assert.ok(outcome.after, 'the gate played the candidate on the torch engine');
      assert.equal(outcome.loss.first >= 0, true);
      assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor of a model was made in this process');
    } finally {
      await trainer.close();
      await engine.close();
    }
  });
});

describe('choosing the torch engine', () => {
  it('needs the torch trainer too, and says so', async () => {
    const { loadConfig } = await import('../src/config.ts');
    assert.throws(() => loadConfig({ OELD_ENGINE: 'torch' }), /OELD_ENGINE=torch: rounds must train in the torch process too; set OELD_TRAINER=torch \(it is "tfjs"\)/);
    assert.equal(loadConfig({ OELD_ENGINE: 'torch', OELD_TRAINER: 'torch' }).engine, 'torch');
    assert.throws(() => loadConfig({ OELD_ENGINE: 'jax' }), /OELD_ENGINE="jax": expected one of tfjs, torch/);
  });
});
