/**
 * The two trainers on the same round, in the same run: the shipped base model, FrozenLake
 * situations, two knowledge texts, the daemon's default round (20 steps of 32 prompts, 24-token
 * replies, OPCD), once on the tfjs trainer (this process, as the model worker runs it) and once on
 * the torch trainer (python/oeld_trainer on the CPU, float32). Prints seconds per step by part
 * (sampling, teacher, student backward+update), trained tokens per second, the loss curve's ends,
 * and the ratio torch/tfjs. The two sample their own replies, so the losses differ by sampling.
 *
 *   BENCH_TRAINER_STEPS (20), BENCH_TRAINER_BATCH (32); OELD_TORCH_PYTHON picks the interpreter
 *   (default: the first of python3 and /usr/bin/python3 with torch).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderPrompt } from '../src/envs/environment.ts';
import { FrozenLake } from '../src/envs/frozenlake.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import { DEFAULT_ROUND_TRAINING, type StepReport } from '../src/trainer/opcd-round.ts';
import { tfjsTrainer } from '../src/trainer/tfjs-trainer.ts';
import { torchPythonOrThrow } from '../src/trainer/torch-python.ts';
import { TorchTrainer } from '../src/trainer/torch-trainer.ts';
import type { Trainer } from '../src/trainer/trainer-port.ts';
import { emit, envInt, log } from './lib.ts';

const BASE = join(import.meta.dirname, '..', 'models', 'oeld-base');
const steps = envInt('BENCH_TRAINER_STEPS', 20);
const batchSize = envInt('BENCH_TRAINER_BATCH', 32);
const python = torchPythonOrThrow();

const situations = Array.from({ length: 256 }, (_, i) => userPrompt(renderPrompt(new FrozenLake(10_000 + i), [])));
const knowledge = ['- EXPERIENCE ITEM: G is the goal; walk towards it.', '- EXPERIENCE ITEM: H is a hole; never step on it.'];
const options = { ...DEFAULT_ROUND_TRAINING, steps, batchSize };
const out = mkdtempSync(join(tmpdir(), 'oeld-trainer-speed-'));

async function measure(trainer: Trainer, name: string) {
  const reports: StepReport[] = [];
  const t0 = performance.now();
  await trainer.train({ version: 'base', dir: BASE, situations, knowledgeTexts: knowledge, options, outDir: join(out, name), checkpointDir: join(out, `${name}-ckpt`) }, (s) => reports.push(s));
  const seconds = (performance.now() - t0) / 1000;
  const part = (k: keyof StepReport['timings']) => reports.reduce((n, s) => n + s.timings[k], 0) / 1000 / reports.length;
  const tokens = reports.reduce((n, s) => n + s.trainedTokens, 0);
  const r = {
    seconds, perStep: { sampling: part('samplingMs'), teacher: part('teacherMs'), backward: part('backwardMs') },
    trainedTokensPerSecond: tokens / seconds, loss: { first: reports[0]!.loss, last: reports.at(-1)!.loss }, responseTokens: reports.reduce((n, s) => n + s.responseTokens, 0) / reports.length,
  };
  log(`${name}: ${seconds.toFixed(1)} s for ${steps} steps (model load and writing included); per step sampling ${r.perStep.sampling.toFixed(2)} s, teacher ${r.perStep.teacher.toFixed(2)} s, backward+update ${r.perStep.backward.toFixed(2)} s; ${r.trainedTokensPerSecond.toFixed(0)} trained tokens/s; loss ${r.loss.first.toFixed(4)} -> ${r.loss.last.toFixed(4)}; ${r.responseTokens.toFixed(1)} reply tokens`);
  return r;
}

const engine = localEngine();
let tfjs;
let torch;
try {
  await engine.load('base', BASE);
  tfjs = await measure(tfjsTrainer(engine), 'tfjs');
} finally {
  await engine.close();
}
const torchTrainer = new TorchTrainer({ python, device: 'cpu', stallSeconds: 600 });
try {
  const probe = await torchTrainer.probe();
  log(`torch trainer: ${python}, Python ${probe.python}, torch ${probe.torch}, CPU`);
  torch = await measure(torchTrainer, 'torch');
} finally {
  await torchTrainer.close();
  rmSync(out, { recursive: true, force: true });
}
const ratio = torch.seconds / tfjs.seconds;
log(`torch / tfjs round time: ${ratio.toFixed(2)} (${ratio < 1 ? 'torch faster' : 'tfjs faster'}); per-step parts torch/tfjs: sampling ${(torch.perStep.sampling / tfjs.perStep.sampling).toFixed(2)}, teacher ${(torch.perStep.teacher / tfjs.perStep.teacher).toFixed(2)}, backward ${(torch.perStep.backward / tfjs.perStep.backward).toFixed(2)}`);
emit({ bench: 'trainer-speed', steps, batchSize, tfjs, torch, ratios: { torchToTfjsSeconds: ratio } });
