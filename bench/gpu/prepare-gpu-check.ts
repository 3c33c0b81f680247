/**
 * Prepares the GPU check's first part (bench/gpu/gpu-check.py) on this machine, which has Node:
 * a replay job of the shipped base model (the daemon's default round options, 4 steps of 32
 * FrozenLake prompts with two knowledge texts, replies sampled once from the base model) and the
 * per-step losses the tfjs and torch trainers compute for it here on the CPU. Writes
 * .build/gpu-check/shipped-job.json and cpu-reference.json; carry .build/gpu-check to the GPU machine.
 *
 *   node --import tsx bench/gpu/prepare-gpu-check.ts
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderPrompt } from '../../src/envs/environment.ts';
import { FrozenLake } from '../../src/envs/frozenlake.ts';
import { localEngine } from '../../src/engine/local-engine.ts';
import { userPrompt } from '../../src/model/inference/chat-prompt.ts';
import { DEFAULT_ROUND_TRAINING, type StepReport } from '../../src/trainer/opcd-round.ts';
import { planWithReplies } from '../../src/trainer/replay-replies.ts';
import { buildTorchJob } from '../../src/trainer/torch-job.ts';
import { torchPythonOrThrow } from '../../src/trainer/torch-python.ts';
import { TorchTrainer } from '../../src/trainer/torch-trainer.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BASE = join(ROOT, 'models', 'oeld-base');
const OUT = join(ROOT, '.build', 'gpu-check');
const python = torchPythonOrThrow();

const situations = Array.from({ length: 128 }, (_, i) => userPrompt(renderPrompt(new FrozenLake(20_000 + i), [])));
const knowledge = ['- EXPERIENCE ITEM: G is the goal; walk towards it.', '- EXPERIENCE ITEM: H is a hole; never step on it.'];
const options = { ...DEFAULT_ROUND_TRAINING, steps: 4 };
const { plan, replay } = await planWithReplies(BASE, situations, knowledge, options);
const input = { situations, knowledgeTexts: knowledge, options, replay };
const scratch = mkdtempSync(join(tmpdir(), 'oeld-gpu-prep-'));
const losses: Record<string, number[]> = {};
try {
  const engine = localEngine();
  try {
    await engine.load('base', BASE);
    const steps: StepReport[] = [];
    await engine.trainRound('base', { ...input, outDir: join(scratch, 'tfjs'), checkpointDir: join(scratch, 'tfjs-ckpt') }, (s) => steps.push(s));
    losses.tfjs = steps.map((s) => s.loss);
  } finally {
    await engine.close();
  }
  const torch = new TorchTrainer({ python, device: 'cpu', stallSeconds: 600 });
  try {
    const steps: StepReport[] = [];
    await torch.train({ ...input, version: 'base', dir: BASE, outDir: join(scratch, 'torch'), checkpointDir: join(scratch, 'torch-ckpt') }, (s) => steps.push(s));
    losses.torchCpu = steps.map((s) => s.loss);
  } finally {
    await torch.close();
  }
  const { torchJob } = await buildTorchJob({ ...input, version: 'base', dir: BASE, outDir: join(scratch, 'unused'), checkpointDir: join(scratch, 'unused-ckpt') }, 'set-by-gpu-check', { device: 'cuda' });
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'shipped-job.json'), JSON.stringify(torchJob));
  writeFileSync(join(OUT, 'cpu-reference.json'), JSON.stringify({ losses }, null, 2));
  console.log(`wrote ${OUT}: ${plan.length} steps; CPU losses ${JSON.stringify(losses)}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
