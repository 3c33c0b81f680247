/**
 * The built-in user side: plays episodes of a text game with the ACTIVE model version (no
 * knowledge in context, deployment sampling) on the deployment seeds, and records each as an
 * InteractionRecorded event through the ingestion path a Kafka message takes: the episode is
 * serialised to the message format, decoded and validated by decodeInteraction, and appended.
 * Seeds continue from the number of simulator episodes already recorded, so a restart neither
 * replays nor skips seeds.
 */
import type { GameSpec } from '../envs/environment.ts';
import { DEPLOYMENT_SEEDS, seedAt } from '../envs/seed-ranges.ts';
import { uuidFromKey } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import { DEFAULT_MAX_JSON_DEPTH, decodeInteraction } from '../ingest/decode-interaction.ts';
import { deadLetterKey, deadLetterPayload, recordDeadLetters, type DeadLetter } from '../ingest/dead-letters.ts';
import type { AppendRequest } from '../store/append-events.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { DEPLOYMENT_SAMPLING } from '../model/inference/sampling.ts';
import { countSimulatorEpisodes } from '../rounds/round-queries.ts';
import type { EventStore } from '../store/event-store.ts';
import { episodeStats, playEpisodes, type Episode, type EpisodeStats } from './play-episodes.ts';

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
    this.next ??= await countSimulatorEpisodes(this.store.sql);
    const seeds = Array.from({ length: this.o.batchSize }, (_, i) => seedAt(DEPLOYMENT_SEEDS, this.next! + i));
    const episodes = await playEpisodes(this.o.game, seeds,
      (prompts, seed) => this.engine.complete(version, prompts, DEPLOYMENT_SAMPLING, this.o.maxNewTokens, seed),
      onProgress ? { onProgress } : {});
    const requests: AppendRequest[] = [];
    const limits = { maxBytes: this.o.maxEventBytes, maxDepth: this.o.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH };
    const rejected: DeadLetter[] = [];
    for (const e of episodes) {
      const bytes = Buffer.from(JSON.stringify(episodeMessage(e, version)));
      const decoded = decodeInteraction(bytes, { kind: 'simulator', episodeSeed: e.seed }, limits, 'simulated episode');
      // What ingestion refuses (a model can write U+0000, which PostgreSQL cannot store) is a dead letter, as from Kafka.
      if (decoded.ok) requests.push({ streamId: STREAMS.interaction(decoded.event.data.interactionId), expectedVersion: 'any', events: [decoded.event] });
      else {
        const origin = `${this.o.game.id} seed ${e.seed}`;
        rejected.push({ source: 'simulator', origin, reason: `${decoded.kind}: ${decoded.reason}`, payload: deadLetterPayload(bytes), key: deadLetterKey('simulator', origin, bytes) });
      }
    }
    await this.store.append(requests, { trusted: true, alsoInTransaction: async (tx) => { await recordDeadLetters(tx, rejected); } });
    this.next += episodes.length;
    return episodeStats(episodes);
  }
}
