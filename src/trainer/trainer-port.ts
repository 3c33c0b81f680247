/**
 * The trainer port: what a round asks of whatever performs its consolidation arithmetic. The round
 * (src/rounds/round-runner.ts) hands over a job, the round-start version and what to train on, and
 * gets each step's report as it happens, then a new version folder at `outDir` and its sha256.
 * Implementations: `tfjs` (the model worker in the daemon; tfjs-trainer.ts) and `torch` (a PyTorch
 * process from python/oeld_trainer; torch-trainer.ts). A trainer that fails, stalls or is closed
 * rejects, and the round then fails without publishing anything.
 */
import type { TrainRoundInput } from '../engine/model-engine.ts';
import type { RoundTrainingReport, StepReport } from './opcd-round.ts';

export type TrainerKind = 'tfjs' | 'torch';

/** A round's job: the round-start version (name and folder) and TrainRoundInput's prompts, pool, options and destinations. */
export interface TrainingJob extends TrainRoundInput { version: string; dir: string }

/** The new version's sha256 (of its weights, or of its adapter), and for an adapter version the full-weight version it applies to. */
export interface TrainingResult {
  sha256: string;
  report: RoundTrainingReport;
  adapterOf?: { version: string; sha256: string };
  /** Where the arithmetic ran, in words (torch: its release, device and precision), where the trainer knows it. */
  runtime?: string;
}

export interface Trainer {
  readonly kind: TrainerKind;
  /** What besides the job decides the result (device, processes, adapter rank): RoundStarted records it, `oeld rederive` compares it. */
  readonly settings: Record<string, unknown>;
  train(job: TrainingJob, onStep?: (s: StepReport) => void): Promise<TrainingResult>;
  /** Stops any job in progress (it rejects) and releases what the trainer holds. */
  close(): Promise<void>;
}
