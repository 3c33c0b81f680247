/**
 * The job file the PyTorch trainer reads (python/oeld_trainer, JOB_VERSION): the round-start
 * folder, the model's configuration as oeld resolved it (so the families' defaults and refusals are
 * decided once, in model-config.ts), the options, the tokens that end and pad a reply, and the
 * round's plan (round-plan.ts: every step's examples as token ids, and its sampling seed).
 * Planned here, on the daemon's thread, a step at a time with a pause between steps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { storedDtype } from '../model/formats/checkpoint.ts';
import type { LoraSettings, LoraTarget } from '../model/formats/lora-adapter.ts';
import { loadTokenizer } from '../model/formats/tokenizer.ts';
import type { WriteDtype } from '../model/formats/safetensors.ts';
import { resolveConfig, type ResolvedConfig } from '../model/network/model-config.ts';
import { ropeFrequencies } from '../model/network/rope-frequencies.ts';
import { checkRoundTrainingOptions, type RoundTrainingOptions } from './opcd-round.ts';
import { planSteps, type PlannedStep } from './round-plan.ts';
import type { TrainingJob } from './trainer-port.ts';

export const TORCH_JOB_VERSION = 1;

export interface TorchJob {
  version: typeof TORCH_JOB_VERSION;
  baseDir: string;
  /** Where the trainer writes the new weights (one safetensors file, in storeDtype). */
  weightsOut: string;
  storeDtype: WriteDtype;
  checkpointDir: string;
  /** The configuration as oeld resolved it, with the rotary frequencies and cos/sin factor oeld computed (rope-frequencies.ts). */
  model: TorchModelSpec;
  options: RoundTrainingOptions;
  padTokenId: number;
  eosTokenIds: number[];
  plan: PlannedStep[];
  replay: number[][][] | null;
  device: string;
  precision: 'float32' | 'bf16-autocast' | null;
  threads: number | null;
  /** LoRA training: the adapter the round trains (the round-start version's own, continued, when it has one). Null: full weights. */
  lora: LoraSettings | null;
  /** The round-start version's adapter when it is an adapter version: continued (lora) or merged into the weights (full-weight training). */
  adapter: { file: string; rank: number; alpha: number; targets: LoraTarget[] } | null;
}

/**
 * A resolved configuration as the torch trainer's model reads it: the rotary embedding's inverse
 * frequencies and its cos/sin factor come computed, so that the RoPE types' formulas live in one
 * place. Dynamic scaling is taken at max_position_embeddings, where it equals the default (oeld fits
 * every sequence into that context), unless `seqLen` says otherwise.
 */
export type TorchModelSpec = ResolvedConfig & { ropeInvFreq: number[]; ropeAttentionScaling: number };

export function torchModelSpec(c: ResolvedConfig, seqLen = 0): TorchModelSpec {
  const rope = ropeFrequencies({ theta: c.ropeTheta, headDim: c.headDim, maxPositions: c.maxPositions, scaling: c.ropeScaling }, seqLen);
  return { ...c, ropeInvFreq: [...rope.invFreq], ropeAttentionScaling: rope.attentionScaling };
}

export interface TorchRunSettings { device: string; precision?: 'float32' | 'bf16-autocast'; threads?: number }

/**
 * The job for a round starting from the version in job.dir. `weightsDir` holds its config.json and
 * full weights (the base's for an adapter version); `lora`, when set, is the adapter to train.
 */
export async function buildTorchJob(
  job: TrainingJob, weightsOut: string, s: TorchRunSettings,
  v: { weightsDir: string; lora: LoraSettings | null; adapter: TorchJob['adapter'] } = { weightsDir: job.dir, lora: null, adapter: null },
): Promise<{ torchJob: TorchJob; rawConfig: Record<string, unknown> }> {
  checkRoundTrainingOptions(job.options);
  const configPath = join(v.weightsDir, 'config.json');
  const rawConfig = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  let model: ResolvedConfig;
  try { model = resolveConfig(rawConfig); } catch (err) { throw new Error(`${configPath}: ${(err as Error).message}`); }
  const tokenizer = await loadTokenizer(v.weightsDir);
  const plan: PlannedStep[] = [];
  for (const step of planSteps(tokenizer, model.maxPositions, job.situations, job.knowledgeTexts, job.options, job.reading ?? [])) {
    plan.push(step);
    await new Promise((r) => setImmediate(r));
  }
  return {
    rawConfig,
    torchJob: {
      version: TORCH_JOB_VERSION, baseDir: v.weightsDir, weightsOut, storeDtype: v.lora ? 'F32' : storedDtype(rawConfig).dtype, checkpointDir: job.checkpointDir,
      model: torchModelSpec(model), options: job.options, padTokenId: tokenizer.padTokenId ?? 0, eosTokenIds: [...tokenizer.eosTokenIds], plan,
      replay: job.replay ?? null, device: s.device, precision: s.precision ?? null, threads: s.threads ?? null, lora: v.lora, adapter: v.adapter,
    },
  };
}
