/**
 * What the learning loop needs from models, whatever runs them: the worker thread in the daemon
 * (worker-engine.ts), or a model in this thread (tests, scripts). Keyed by model version.
 */
import type { RoundTrainingOptions, RoundTrainingReport, StepReport } from '../trainer/opcd-round.ts';
import type { SamplingOptions } from './sampling.ts';

export interface Completion { text: string; tokens: number }

export interface ModelEngine {
  /** Loads (or reloads) the model folder `dir` as version `version`. */
  load(version: string, dir: string): Promise<{ parameters: number; backend: string }>;
  unload(version: string): Promise<void>;
  complete(version: string, prompts: string[], sampling: SamplingOptions, maxNewTokens: number, seed: number): Promise<Completion[]>;
  /** Trains a copy of `version` (which stays as it is) and writes it to outDir. */
  trainRound(
    version: string,
    input: { situations: string[]; knowledgeTexts: string[]; options: RoundTrainingOptions; outDir: string; checkpointDir: string },
    onStep?: (s: StepReport) => void,
  ): Promise<{ sha256: string; report: RoundTrainingReport }>;
  /** Tensor memory held by the models (TensorFlow.js's own count). */
  memory(): Promise<{ tensors: number; bytes: number }>;
  close(): Promise<void>;
}
