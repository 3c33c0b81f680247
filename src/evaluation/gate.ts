/**
 * What a round's evaluation stage gives back, whatever the task: the evaluations to record, the
 * gate's decision with its reasons, and the figures for the round's outcome.
 */
import type { EventDataMap } from '../events/schemas.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';

export interface GateResult {
  /** The candidate passed every check (or the gate is off). */
  passed: boolean;
  /** One line per check, with its numbers. */
  reasons: string[];
  evaluations: EventDataMap['EvaluationRecorded'][];
  /** Game tasks: validation statistics of the round-start version and the candidate. */
  before: EpisodeStats | null;
  after: EpisodeStats | null;
  /** Chat tasks: the distillation gap on held-out logs before and after, and the candidate's retention KL (from the round-start version, and from the lineage's base where watched). */
  chat: { gapBefore: number | null; gapAfter: number | null; retentionKl: number; baseRetentionKl?: number | null; heldOutPrompts: number; anchorPrompts: number } | null;
}

export interface GateContext {
  roundId: string;
  /** The round-start version (also the frozen teacher) and the candidate, both loaded. */
  baseVersion: string;
  candidateVersion: string;
  /** The round's knowledge pool (what the teacher read). */
  knowledgeTexts: string[];
  onProgress?: (p: { done: number; of: number; message: string }) => void;
}
