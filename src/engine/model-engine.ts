/**
 * What the learning loop needs from models, whatever runs them: the worker thread in the daemon
 * (worker-engine.ts), or a model in this thread (tests, scripts). Keyed by model version.
 */
import type { KlMeasurement, KlPair, MeasureKlOptions } from '../trainer/measure-kl.ts';
import type { RoundTrainingOptions, RoundTrainingReport, StepReport } from '../trainer/opcd-round.ts';
import type { Prompt, TemplateVariables } from '../model/inference/chat-prompt.ts';
import type { SamplingOptions } from '../model/inference/sampling.ts';
import type { ServedRow, ServeRow, TextDelta } from '../model/inference/serve-batch.ts';

export interface Completion { text: string; tokens: number }

/**
 * A round's training job: the logged prompts, the knowledge pool, the options, where the new
 * version and the checkpoints go. `replay` (per step, per example, reply tokens) replaces sampling:
 * for comparing trainers on the same tokens (opcd-round.ts trainPlannedRound).
 */
/** `reading`: prompts the round must leave as they were (round-plan.ts; options.readingShare of each step). */
export interface TrainRoundInput { situations: Prompt[]; knowledgeTexts: string[]; reading?: Prompt[]; options: RoundTrainingOptions; outDir: string; checkpointDir: string; replay?: number[][][] }

export interface ModelEngine {
  /** Loads (or reloads) the model folder `dir` as version `version`. */
  /** `runtime`: the backend and its kernels in words, where the engine knows them (a round records it). */
  load(version: string, dir: string): Promise<{ parameters: number; backend: string; runtime?: string }>;
  unload(version: string): Promise<void>;
  /** Answers each prompt (a string is one user message); templateVariables go to the chat template (e.g. enable_thinking). */
  complete(version: string, prompts: (string | Prompt)[], sampling: SamplingOptions, maxNewTokens: number, seed: number, templateVariables?: TemplateVariables): Promise<Completion[]>;
  /** Trains a copy of `version` (which stays as it is) and writes it to outDir. */
  trainRound(
    version: string,
    input: TrainRoundInput,
    onStep?: (s: StepReport) => void,
  ): Promise<{ sha256: string; report: RoundTrainingReport }>;
  /**
   * Answers a batch of chat requests with `version` (loaded from `dir` first if it is not held:
   * `loadedNow` says so), streaming each step's text to onDeltas.
   */
  serve(version: string, dir: string, rows: ServeRow[], seed: number, onDeltas: (d: TextDelta[]) => void, templateVariables?: TemplateVariables): Promise<{ rows: ServedRow[]; loadedNow: boolean }>;
  /** Token-mean reverse KL of `teacher` from `student` on the student's sampled replies (trainer/measure-kl.ts). */
  measureKl(student: string, teacher: string, pairs: KlPair[], options: MeasureKlOptions): Promise<KlMeasurement>;
  /** Tensor memory held by the models (TensorFlow.js's own count). */
  memory(): Promise<{ tensors: number; bytes: number }>;
  close(): Promise<void>;
}
