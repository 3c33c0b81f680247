import type { KlMeasurement, KlPair, MeasureKlOptions } from '../trainer/measure-kl.ts';
import type { RoundTrainingReport, StepReport } from '../trainer/opcd-round.ts';
import type { Prompt, TemplateVariables } from '../model/inference/chat-prompt.ts';
import type { TrainRoundInput } from './model-engine.ts';
import type { SamplingOptions } from '../model/inference/sampling.ts';
import type { ServedRow, ServeRow, TextDelta } from '../model/inference/serve-batch.ts';

/**
 * Messages between the daemon and the model worker thread. Generation and training block the
 * JavaScript thread for seconds, so they never run on the thread that heartbeats Kafka and serves
 * /metrics.
 */
export type WorkerRequest =
  | { id: number; type: 'memory' }
  /** Load a model folder with its tokenizer as a chat policy under `key` (a model version). */
  | { id: number; type: 'loadPolicy'; key: string; dir: string }
  | { id: number; type: 'unloadPolicy'; key: string }
  /** Answer prompts (user messages) with policy `key`. */
  | { id: number; type: 'complete'; key: string; prompts: (string | Prompt)[]; sampling: SamplingOptions; maxNewTokens: number; seed: number; templateVariables?: TemplateVariables }
  /** The token-mean KL of policy `teacher` from policy `student` on the student's replies. */
  | { id: number; type: 'measureKl'; student: string; teacher: string; pairs: KlPair[]; options: MeasureKlOptions }
  /** A served batch: loads `dir` as `key` first when it is not held; text streams out as progress. */
  | { id: number; type: 'serve'; key: string; dir: string; rows: ServeRow[]; seed: number; templateVariables?: TemplateVariables }
  /**
   * One consolidation round from policy `key` (left unchanged): a trainable copy is trained and
   * written to `outDir` (checkpoints under `checkpointDir`). Progress goes out after each step.
   */
  | ({ id: number; type: 'trainRound'; key: string } & TrainRoundInput);

export type WorkerResult =
  | { type: 'memory'; tensors: number; bytes: number }
  | { type: 'loadPolicy'; parameters: number; backend: string; runtime: string }
  | { type: 'unloadPolicy' }
  | { type: 'complete'; completions: { text: string; tokens: number }[] }
  | { type: 'measureKl'; measurement: KlMeasurement }
  | { type: 'serve'; rows: ServedRow[]; loadedNow: boolean }
  | { type: 'trainRound'; sha256: string; files: string[]; report: RoundTrainingReport };

export type WorkerResponse =
  | { id: number; ok: true; result: WorkerResult }
  | { id: number; ok: false; error: string }
  | { id: -1; progress: WorkerProgress };

export interface WorkerProgress {
  request: number;
  step: number;
  of: number;
  loss?: number;
  /** The round-training step's report, for trainRound. */
  report?: StepReport;
  /** Text written in one decoding step, for serve. */
  deltas?: TextDelta[];
}
