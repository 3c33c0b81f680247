/**
 * The built-in user side of a game: plays episodes of a text game with the ACTIVE model version
 * (no knowledge in context, deployment sampling) on the deployment seeds, and records each as an
 * InteractionRecorded event through the ingestion path a Kafka message takes (record-simulated.ts).
 * Seeds continue from the number of the game's simulator episodes already recorded, so a restart
 * neither replays nor skips seeds.
 */
import type { GameSpec } from '../envs/environment.ts';
import { DEPLOYMENT_SEEDS, seedAt } from '../envs/seed-ranges.ts';
import { uuidFromKey } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { DEPLOYMENT_SAMPLING } from '../model/inference/sampling.ts';
import { countSimulatorEpisodes } from '../rounds/round-queries.ts';
import type { EventStore } from '../store/event-store.ts';
import { episodeStats, playEpisodes, type Episode, type EpisodeStats } from './play-episodes.ts';
import { recordSimulated } from './record-simulated.ts';

export interface SimulatorOptions {
  game: GameSpec;
  /** Episodes played per batch (one batched model call per turn). */
  batchSize: number;
  maxNewTokens: number;
  maxEventBytes: number;
  maxJsonDepth?: number;
}

/** An episode as the message a production system would send (the InteractionRecorded data less the source, which the intake sets). */
export function episodeMessage(e: Episode, modelVersion: string): Omit<EventDataMap['InteractionRecorded'], 'source'> {
  return {
    interactionId: uuidFromKey(`simulator:${e.gameId}:${modelVersion}:${e.seed}`),
    modelVersion,
    taskId: e.gameId,
    turns: e.turns.map((t) => ({ prompt: t.prompt, response: t.response, action: t.action })),
    outcome: e.outcome,
  };
}

export class Simulator {
  private next: number | undefined;

  constructor(private readonly store: EventStore, private readonly engine: ModelEngine, private readonly o: SimulatorOptions) {}

  /**
   * Plays one batch with `version` (already loaded in the engine) and records it. Returns the
   * batch's statistics (what the deployed model achieved, knowledge never in its context).
   */
  async playBatch(version: string, onProgress?: (p: { episodesDone: number; episodes: number; turns: number }) => void): Promise<EpisodeStats> {
    this.next ??= await countSimulatorEpisodes(this.store.sql, this.o.game.id);
    const seeds = Array.from({ length: this.o.batchSize }, (_, i) => seedAt(DEPLOYMENT_SEEDS, this.next! + i));
    const episodes = await playEpisodes(this.o.game, seeds,
      (prompts, seed) => this.engine.complete(version, prompts, DEPLOYMENT_SAMPLING, this.o.maxNewTokens, seed),
      onProgress ? { onProgress } : {});
    await recordSimulated(this.store, episodes.map((e) => ({ message: episodeMessage(e, version), seed: e.seed, origin: `${this.o.game.id} seed ${e.seed}` })), this.o);
    this.next += episodes.length;
    return episodeStats(episodes);
  }
}
