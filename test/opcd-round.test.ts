import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { renderPrompt } from '../src/envs/environment.ts';
import { FrozenLake } from '../src/envs/frozenlake.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';
import { checkRoundTrainingOptions, DEFAULT_ROUND_TRAINING, trainRound } from '../src/trainer/opcd-round.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const situations = Array.from({ length: 6 }, (_, i) => renderPrompt(new FrozenLake(i), []));

describe('a consolidation round on a tiny model', () => {
  let dir: string;
  before(async () => { await initBackend({ force: 'cpu' }); dir = await makeTinyModel(); });

  it('keeps the teacher frozen at the round-start weights: zero loss at step 1 only', async () => {
    // With no knowledge the teacher's prompt is the student's, so the two differ only by weights.
    const { model } = loadModel(dir, { trainable: true, id: 'frozen-check' });
    const tokenizer = await loadTokenizer(dir);
    const r = trainRound(model, tokenizer, situations.map(userPrompt), [], { ...DEFAULT_ROUND_TRAINING, steps: 4, batchSize: 3, maxNewTokens: 5, learningRate: 0.05, topK: 10_000 });
    model.dispose();
    assert.ok(Math.abs(r.steps[0]!.loss) < 1e-5, `step 1: student = teacher, loss ${r.steps[0]!.loss}`);
    // A self-updating teacher (teacher = current weights) would keep the loss at 0.
    assert.ok(r.steps.slice(1).some((s) => s.loss > 1e-4), `later steps differ from the frozen teacher: ${r.steps.map((s) => s.loss)}`);
    assert.equal(r.steps.length, 4);
    assert.ok(r.timings.samplingMs > 0 && r.timings.teacherMs > 0 && r.timings.backwardMs > 0);
  });

  it('writes a new version and checkpoints, and leaves the loaded round-start version unchanged', async () => {
    const engine = localEngine();
    try {
      await engine.load('v0', dir);
      const greedy = { temperature: 0, topP: 1, topK: 0 };
      const beforeAnswers = await engine.complete('v0', situations, greedy, 6, 1);
      const out = mkdtempSync(join(tmpdir(), 'oeld-round-'));
      const steps: number[] = [];
      const r = await engine.trainRound('v0', {
        situations: situations.map(userPrompt), knowledgeTexts: ['- EXPERIENCE ITEM: H is a hole.', '- EXPERIENCE ITEM: G is the goal.'],
        options: { ...DEFAULT_ROUND_TRAINING, steps: 3, batchSize: 3, maxNewTokens: 5, learningRate: 0.05 },
        outDir: join(out, 'v1'), checkpointDir: join(out, 'ckpt'),
      }, (s) => steps.push(s.step));
      assert.deepEqual(steps, [1, 2, 3]);
      assert.equal(r.sha256, createHash('sha256').update(readFileSync(join(out, 'v1', 'model.safetensors'))).digest('hex'));
      assert.notEqual(r.sha256, createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex'));
      assert.deepEqual(await engine.complete('v0', situations, greedy, 6, 1), beforeAnswers, 'the served version did not move');
      assert.deepEqual(readdirSync(join(out, 'ckpt')).sort(), ['step-00003'], 'the newest checkpoint is kept');
    } finally {
      await engine.close();
    }
  });

  it('rejects bad options naming the field and value', () => {
    assert.throws(() => checkRoundTrainingOptions({ ...DEFAULT_ROUND_TRAINING, steps: 0 }), /steps must be a positive integer, got 0/);
    assert.throws(() => checkRoundTrainingOptions({ ...DEFAULT_ROUND_TRAINING, temperature: -1 }), /temperature must be a positive number, got -1/);
    assert.throws(() => checkRoundTrainingOptions({ ...DEFAULT_ROUND_TRAINING, method: 'sft' as never }), /method must be one of opcd, off-policy, opcd-forward, got "sft"/);
  });
});
