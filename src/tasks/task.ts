/**
 * A task: what a group of interactions is about, and everything the loop does differently for it.
 * Every interaction names its task (`taskId`); rounds, triggers, knowledge pools, evaluations and
 * counts are per task. Two kinds exist: a game the built-in simulator plays (FrozenLake), whose
 * trajectories are turns and whose gate plays validation seeds; and chat logs, whose trajectories
 * are conversations and whose gate measures the distillation gap on held-out logs and retention
 * on anchor prompts (chat-gate.ts). Plain data: the config builds them (task-config.ts).
 */
import type { GameSpec } from '../envs/environment.ts';
import type { KnowledgePlacement } from '../extraction/teacher-prompt.ts';
import type { EvaluatorSpec } from '../evaluation/external-evaluator.ts';
import type { TemplateVariables } from '../model/inference/chat-prompt.ts';
import type { DistillationMethod } from '../trainer/opcd-round.ts';

/** The task of an interaction that names none (intake fills it in). */
export const DEFAULT_TASK_ID = 'chat';

interface TaskCommon {
  id: string;
  /** Tokens the student samples per reply in a round (and per answer in evaluation). */
  responseTokens: number;
  /** Tokens the policy may write per extraction answer. */
  extractionTokens: number;
  /** Chat-template variables for every prompt of this task (e.g. {"enable_thinking": false}). */
  templateVariables: TemplateVariables;
  /** Where the teacher reads the knowledge (teacher-prompt.ts): before a game situation, in a chat's system message; set by the kind. */
  knowledgePlacement: KnowledgePlacement;
  /** New usable interactions of the active version that start a threshold round. */
  minInteractions: number;
  /** This task's own round training, where it differs from OELD_ROUND_STEPS and OELD_DISTILLATION (the tasks file, or a built-in world's defaults). */
  training?: TaskTraining;
}

/** Round settings a task may set for itself (round-training.ts applies them). */
export interface TaskTraining {
  steps?: number;
  method?: DistillationMethod;
  /** Share of each step's examples from the task's reading prompts (reading-prompts.ts). */
  readingShare?: number;
  /** The reading prompts include extraction prompts (reading-prompts.ts). */
  readingExtraction?: boolean;
  /** Times a failed trajectory's prompts appear in a round (training-prompts.ts). */
  failedRepeat?: number;
}

export interface GameTask extends TaskCommon {
  kind: 'game';
  game: GameSpec;
}

export interface ChatTask extends TaskCommon {
  kind: 'chat';
  /** Percent of logged conversations (by a stable hash of the interaction id) held out for the gate, never trained or extracted on. */
  heldOutPercent: number;
  /** Held-out prompts (assistant turns) the distillation gap is measured on, newest first. */
  gatePrompts: number;
  /** The candidate's KL from the round-start version on the anchor prompts may not exceed this. */
  maxRetentionKl: number;
  /** With OELD_GATE_WATCH_UNTRAINED: the candidate's KL from the lineage's base (its first version) on the anchor prompts may not exceed this, so that rounds' drifts cannot add up. */
  maxBaseRetentionKl: number;
  /** Anchor prompts for retention, unrelated to the task (chat-gate.ts reads them). */
  anchorPromptsFile: string;
  /** A team's own evaluator of replies to held-out prompts (external-evaluator.ts); absent: none. */
  evaluator?: EvaluatorSpec;
  /** A simulated world whose customers talk to the active version (the built-in support desk); absent: logs only. */
  world?: DeskWorld;
}

/** The built-in support desk (envs/support-desk/): one company, and when its policy changes. */
export interface DeskWorld {
  kind: 'support-desk';
  companySeed: number;
  drift?: { afterConversations: number; facts: number };
}

export type Task = GameTask | ChatTask;

/** Percent of a task's interactions held out from training and extraction (games are evaluated on seeds instead). */
export const heldOutPercentOf = (task: Task): number => (task.kind === 'chat' ? task.heldOutPercent : 0);
