/**
 * Evaluation of a model version on held-out seeds (docs/oel-method.md: one rollout per seed, no
 * knowledge in context unless the in-context baseline is asked for; the evaluation sampling
 * preset). Returns the statistics and the EvaluationRecorded event data.
 */
import { randomUUID } from 'node:crypto';
import type { GameSpec } from '../envs/environment.ts';
import { seedsOf, type SeedRange } from '../envs/seed-ranges.ts';
import type { EventDataMap } from '../events/schemas.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { EVALUATION_SAMPLING } from '../model/inference/sampling.ts';
import { episodeStats, playEpisodes, type Episode, type EpisodeStats } from '../simulator/play-episodes.ts';

export type GameEvaluation = Extract<EventDataMap['EvaluationRecorded'], { kind: 'game' }>;

export interface EvaluateOptions {
  game: GameSpec;
  seeds: SeedRange;
  split: 'validation' | 'test';
  /** Knowledge in context (the in-context baseline), with where it came from. */
  knowledge?: { text: string; modelVersion: string; slot: number };
  maxNewTokens: number;
  batchSize?: number;
  roundId?: string;
  onProgress?: (p: { episodesDone: number; episodes: number }) => void;
}

export async function evaluateVersion(engine: ModelEngine, version: string, o: EvaluateOptions): Promise<{ stats: EpisodeStats; episodes: Episode[]; event: GameEvaluation }> {
  const episodes = await playEpisodes(o.game, seedsOf(o.seeds),
    (prompts, seed) => engine.complete(version, prompts, EVALUATION_SAMPLING, o.maxNewTokens, seed),
    { batchSize: o.batchSize ?? 64, ...(o.knowledge ? { knowledgeText: o.knowledge.text } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  const stats = episodeStats(episodes);
  return {
    stats,
    episodes,
    event: {
      kind: 'game',
      taskId: o.game.id,
      evaluationId: randomUUID(),
      modelVersion: version,
      game: o.game.id,
      split: o.split,
      seeds: { start: o.seeds.start, count: o.seeds.count },
      ...(o.knowledge ? { knowledge: { modelVersion: o.knowledge.modelVersion, slot: o.knowledge.slot } } : {}),
      episodes: stats.episodes,
      passRate: stats.passRate,
      meanResponseTokens: stats.meanResponseTokens,
      meanTurns: stats.meanTurns,
      ...(o.roundId ? { roundId: o.roundId } : {}),
    },
  };
}
