/**
 * Fact accuracy of a model version at a support-desk company: one single-question conversation
 * per seed, every fact asked equally often (fact i mod 16), in deployment phrasings (validation)
 * or in phrasings never used in deployment (test), with the evaluation sampling preset and, for
 * the in-context baseline, knowledge in the system message as the teacher reads it. Recorded as a
 * simulated world's evaluation (kind game; its pass rate is the share of answers that state the
 * company's current value).
 */
import { randomUUID } from 'node:crypto';
import { seedsOf, type SeedRange } from '../envs/seed-ranges.ts';
import type { Company } from '../envs/support-desk/company.ts';
import { factAccuracy, playConversations, type Conversation, type FactAccuracy } from '../envs/support-desk/conversations.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { teacherMessages } from '../extraction/teacher-prompt.ts';
import { EVALUATION_SAMPLING } from '../model/inference/sampling.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { GameEvaluation } from './evaluate.ts';

export interface DeskEvaluateOptions {
  taskId: string;
  company: Company;
  seeds: SeedRange;
  split: 'validation' | 'test';
  /** Only these facts are asked (default all). */
  factIds?: readonly string[];
  /** Values before a drift (fact id -> value) whose answers are counted apart. */
  oldValues?: Readonly<Record<string, string>>;
  /** Knowledge in context (the in-context baseline), with where it came from (slot -1: given by hand). */
  knowledge?: { text: string; modelVersion: string; slot: number };
  maxNewTokens: number;
  roundId?: string;
}

export interface DeskEvaluation { stats: EpisodeStats; accuracy: FactAccuracy; conversations: Conversation[]; event: GameEvaluation }

export async function evaluateDesk(engine: ModelEngine, version: string, o: DeskEvaluateOptions): Promise<DeskEvaluation> {
  const knowledge = o.knowledge?.text ?? '';
  const conversations = await playConversations(o.company, seedsOf(o.seeds),
    (prompts, seed) => engine.complete(version, prompts.map((p) => teacherMessages(knowledge, p, 'system')), EVALUATION_SAMPLING, o.maxNewTokens, seed),
    { phrasings: o.split === 'test' ? 'test' : 'deployment', questions: 1, balanced: true, ...(o.factIds ? { factIds: o.factIds } : {}) });
  const accuracy = factAccuracy(conversations, o.oldValues ?? {});
  const stats: EpisodeStats = { episodes: accuracy.questions, passRate: accuracy.accuracy, meanResponseTokens: accuracy.meanResponseTokens, meanTurns: 1 };
  return {
    stats, accuracy, conversations,
    event: {
      kind: 'game', taskId: o.taskId, evaluationId: randomUUID(), modelVersion: version, game: o.taskId, split: o.split,
      seeds: { start: o.seeds.start, count: o.seeds.count },
      ...(o.knowledge && o.knowledge.slot >= 0 ? { knowledge: { modelVersion: o.knowledge.modelVersion, slot: o.knowledge.slot } } : {}),
      episodes: stats.episodes, passRate: stats.passRate, meanResponseTokens: stats.meanResponseTokens, meanTurns: 1,
      ...(o.roundId ? { roundId: o.roundId } : {}),
    },
  };
}
