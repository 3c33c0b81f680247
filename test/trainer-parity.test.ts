/**
 * The two trainers compute the same round: given the same plan and the same replies (replay
 * mode), the tfjs trainer (the model worker's code, this process) and the PyTorch trainer
 * (python/oeld_trainer, a child process) report the same loss and gradient norm at every step and
 * write the same weights, on the shipped base model in float32.
 *
 * The weights are compared element by element within 1e-5, with one allowance: AdamW's step is
 * lr * m / (sqrt(v) + 1e-8), so for an element whose gradient is of the order of that epsilon (a
 * token the replies make nearly impossible, say) the step depends on the gradient's relative
 * precision, which float32 arithmetic in two different orders does not give; such an element may
 * differ by up to the step itself. They are a handful per round (measured: 138 of 1.4 million on
 * the shipped model): at least 99.9% of elements must agree within 1e-5, and none by more than the
 * two steps could move it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderPrompt } from '../src/envs/environment.ts';
import { FrozenLake } from '../src/envs/frozenlake.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { loadSafetensorsFile } from '../src/model/formats/safetensors.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { DEFAULT_ROUND_TRAINING, type RoundTrainingOptions, type StepReport } from '../src/trainer/opcd-round.ts';
import { planWithReplies } from '../src/trainer/replay-replies.ts';
import { TorchTrainer } from '../src/trainer/torch-trainer.ts';
import { torchPython } from './helpers/torch-python.ts';

const BASE = join(import.meta.dirname, '..', 'models', 'oeld-base');
const situations = Array.from({ length: 12 }, (_, i) => userPrompt(renderPrompt(new FrozenLake(100 + i), [])));
const knowledge = ['- EXPERIENCE ITEM: G is the goal; walk towards it.', '- EXPERIENCE ITEM: H is a hole; never step on it.'];

describe('the tfjs and torch trainers on the same plan and replies', () => {
  let out: string;
  before(async () => { await initBackend(); out = mkdtempSync(join(tmpdir(), 'oeld-parity-')); });
  after(() => { if (!process.env.KEEP_PARITY) rmSync(out, { recursive: true, force: true }); else console.log(out); });

  for (const method of ['opcd', 'off-policy', 'opcd-forward'] as const) {
    it(`${method}: loss and gradient norm within 1e-4 per step, weights within 1e-5 after two steps`, async () => {
      const options: RoundTrainingOptions = { ...DEFAULT_ROUND_TRAINING, method, steps: 2, batchSize: 8 };
      // Replies drawn once from the base model, as step 1 of the round would draw them.
      const { replay } = await planWithReplies(BASE, situations, knowledge, options);
      assert.ok(replay.flat().some((r) => r.length > 3), 'the replies have tokens to train on');
      const input = { situations, knowledgeTexts: knowledge, options, replay };

      const engine = localEngine();
      const tfjsSteps: StepReport[] = [];
      try {
        await engine.load('base', BASE);
        await engine.trainRound('base', { ...input, outDir: join(out, `${method}-tfjs`), checkpointDir: join(out, `${method}-tfjs-ckpt`) }, (s) => tfjsSteps.push(s));
      } finally {
        await engine.close();
      }
      const torch = new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 300 });
      const torchSteps: StepReport[] = [];
      try {
        await torch.train({ ...input, version: 'base', dir: BASE, outDir: join(out, `${method}-torch`), checkpointDir: join(out, `${method}-torch-ckpt`) }, (s) => torchSteps.push(s));
      } finally {
        await torch.close();
      }

      assert.equal(torchSteps.length, 2);
      for (const [i, t] of tfjsSteps.entries()) {
        const p = torchSteps[i]!;
        assert.ok(Math.abs(t.loss - p.loss) <= 1e-4, `step ${i + 1}: loss tfjs ${t.loss} torch ${p.loss}`);
        assert.ok(Math.abs(t.gradNorm - p.gradNorm) <= 1e-4, `step ${i + 1}: gradient norm tfjs ${t.gradNorm} torch ${p.gradNorm}`);
        assert.equal(p.trainedTokens, t.trainedTokens);
        assert.equal(p.responseTokens, t.responseTokens);
      }
      assert.ok(tfjsSteps[1]!.loss > 1e-6, `step 2 trains on something (loss ${tfjsSteps[1]!.loss})`);
      const a = loadSafetensorsFile(join(out, `${method}-tfjs`, 'model.safetensors')).tensors;
      const b = loadSafetensorsFile(join(out, `${method}-torch`, 'model.safetensors')).tensors;
      const base = loadSafetensorsFile(join(BASE, 'model.safetensors')).tensors;
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
      let worst = 0;
      let moved = 0;
      let elements = 0;
      let outside = 0;
      for (const [name, x] of a) {
        const y = b.get(name)!.data;
        const z = base.get(name)!.data;
        for (let j = 0; j < x.data.length; j++) {
          const d = Math.abs(x.data[j]! - y[j]!);
          worst = Math.max(worst, d);
          moved = Math.max(moved, Math.abs(x.data[j]! - z[j]!));
          if (d > 1e-5) outside++;
          elements++;
        }
      }
      console.log(`${method}: losses tfjs ${tfjsSteps.map((s) => s.loss.toExponential(6))} torch ${torchSteps.map((s) => s.loss.toExponential(6))}; grad norms tfjs ${tfjsSteps.map((s) => s.gradNorm.toFixed(6))} torch ${torchSteps.map((s) => s.gradNorm.toFixed(6))}; weights: ${elements - outside} of ${elements} within 1e-5, largest difference ${worst.toExponential(2)} (the round moved weights by up to ${moved.toExponential(2)})`);
      assert.ok(moved > 1e-4, 'the weights moved');
      assert.ok(outside <= elements * 1e-3, `${outside} of ${elements} weights differ by more than 1e-5 after two steps`);
      // Two AdamW steps move an element by at most about 2 lr (1 + weight decay): a larger difference is a different computation.
      assert.ok(worst <= 2 * options.learningRate * 1.01, `weights after two steps differ by up to ${worst}`);
    });
  }
});

describe('the torch trainer in two processes (gloo) and in one', () => {
  it('reports the same losses and writes the same weights on the same plan and replies', async () => {
    const out = mkdtempSync(join(tmpdir(), 'oeld-ddp-'));
    try {
      const options: RoundTrainingOptions = { ...DEFAULT_ROUND_TRAINING, steps: 2, batchSize: 8 };
      const { replay } = await planWithReplies(BASE, situations, knowledge, options);
      const run = async (processes: number) => {
        const t = new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 300, processes, threads: 1 });
        const steps: StepReport[] = [];
        try {
          await t.train({ situations, knowledgeTexts: knowledge, options, replay, version: 'base', dir: BASE, outDir: join(out, `p${processes}`), checkpointDir: join(out, `p${processes}-ckpt`) }, (s) => steps.push(s));
        } finally {
          await t.close();
        }
        return { steps, weights: loadSafetensorsFile(join(out, `p${processes}`, 'model.safetensors')).tensors };
      };
      const one = await run(1);
      const two = await run(2);
      for (const [i, s] of one.steps.entries()) {
        const d = two.steps[i]!;
        assert.ok(Math.abs(s.loss - d.loss) <= 1e-6, `step ${i + 1}: loss ${s.loss} vs ${d.loss}`);
        assert.ok(Math.abs(s.gradNorm - d.gradNorm) <= 1e-5, `step ${i + 1}: gradient norm ${s.gradNorm} vs ${d.gradNorm}`);
        assert.equal(d.trainedTokens, s.trainedTokens);
        assert.equal(d.responseTokens, s.responseTokens);
      }
      let elements = 0;
      let outside = 0;
      let worst = 0;
      for (const [name, a] of one.weights) {
        const b = two.weights.get(name)!.data;
        for (let j = 0; j < a.data.length; j++) { const diff = Math.abs(a.data[j]! - b[j]!); worst = Math.max(worst, diff); if (diff > 1e-6) outside++; elements++; }
      }
      console.log(`one process vs two: losses ${one.steps.map((s) => s.loss)} vs ${two.steps.map((s) => s.loss)}; weights ${elements - outside} of ${elements} within 1e-6, largest difference ${worst.toExponential(2)}`);
      // The same allowance as above for elements whose gradient is of the order of AdamW's epsilon.
      assert.ok(outside <= elements * 1e-3, `${outside} of ${elements} weights differ by more than 1e-6`);
      assert.ok(worst <= 2 * options.learningRate * 1.01);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
