/**
 * The built-in user side of the support desk: customers of one company (drawn from a seed) ask the
 * ACTIVE model version about its policies in conversations (deployment phrasings, deployment
 * sampling, the deployed system message and nothing else in context), confirm or correct its
 * answers, and each conversation is recorded as a chat log through the ingestion path a Kafka
 * message takes (record-simulated.ts). Conversation seeds continue from the number of the task's
 * simulator conversations already recorded. A drift schedule changes some of the company's facts
 * once that many conversations have been recorded, so the policy the loop learned goes stale.
 */
import { DEPLOYMENT_SEEDS, seedAt } from '../envs/seed-ranges.ts';
import { changeFacts, drawCompany, drawFactIds, type Company } from '../envs/support-desk/company.ts';
import { factAccuracy, playConversations, type Conversation } from '../envs/support-desk/conversations.ts';
import { uuidFromKey } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { DEPLOYMENT_SAMPLING } from '../model/inference/sampling.ts';
import { countSimulatorEpisodes } from '../rounds/round-queries.ts';
import type { EventStore } from '../store/event-store.ts';
import type { Queryable } from '../db/sql.ts';
import type { EpisodeStats } from './play-episodes.ts';
import { recordSimulated } from './record-simulated.ts';

export interface DeskDrift {
  /** The company changes once this many conversations of the task have been recorded. */
  afterConversations: number;
  /** How many facts change (drawn from the company's seed). */
  facts: number;
}

export interface DeskSimulatorOptions {
  taskId: string;
  companySeed: number;
  drift?: DeskDrift;
  /** Deployment seed index of the first conversation (default 0; benchmarks use other ranges per run). */
  firstSeedIndex?: number;
  /** Conversations per batch (one batched model call per assistant turn). */
  batchSize: number;
  maxNewTokens: number;
  maxEventBytes: number;
  maxJsonDepth?: number;
}

/** The company as its customers know it after `recorded` conversations. */
export function companyAt(o: { companySeed: number; drift?: DeskDrift | undefined }, recorded: number): { company: Company; changed: string[] } {
  const company = drawCompany(o.companySeed);
  if (!o.drift || o.drift.facts === 0 || recorded < o.drift.afterConversations) return { company, changed: [] };
  const changed = drawFactIds(o.drift.facts, o.companySeed);
  return { company: changeFacts(company, changed, o.companySeed), changed };
}

/** The company as its customers know it now: after the task's simulated conversations recorded so far. */
export async function companyNow(q: Queryable, taskId: string, world: { companySeed: number; drift?: DeskDrift | undefined }): Promise<Company> {
  return companyAt(world, await countSimulatorEpisodes(q, taskId)).company;
}

/** A conversation as the chat log a production system would send. */
export function conversationMessage(c: Conversation, taskId: string, companySeed: number, modelVersion: string): Omit<EventDataMap['InteractionRecorded'], 'source'> {
  return {
    interactionId: uuidFromKey(`simulator:${taskId}:${companySeed}:${modelVersion}:${c.seed}`),
    modelVersion,
    taskId,
    messages: c.messages.map((m) => ({ role: m.role, content: m.content })),
    outcome: c.outcome,
  };
}

export interface DeskBatchStats extends EpisodeStats {
  /** Share of answers that stated the company's current value. */
  factAccuracy: number;
  /** Facts changed by the drift schedule so far. */
  changedFacts: string[];
}

export class DeskSimulator {
  private next: number | undefined;

  constructor(private readonly store: EventStore, private readonly engine: ModelEngine, private readonly o: DeskSimulatorOptions) {}

  /** Plays one batch of conversations with `version` (already loaded in the engine) and records them. */
  async playBatch(version: string): Promise<DeskBatchStats> {
    this.next ??= await countSimulatorEpisodes(this.store.sql, this.o.taskId);
    const { company, changed } = companyAt(this.o, this.next);
    const seeds = Array.from({ length: this.o.batchSize }, (_, i) => seedAt(DEPLOYMENT_SEEDS, (this.o.firstSeedIndex ?? 0) + this.next! + i));
    const conversations = await playConversations(company, seeds,
      (prompts, seed) => this.engine.complete(version, prompts, DEPLOYMENT_SAMPLING, this.o.maxNewTokens, seed),
      { phrasings: 'deployment' });
    await recordSimulated(this.store, conversations.map((c) => ({
      message: conversationMessage(c, this.o.taskId, this.o.companySeed, version), seed: c.seed, origin: `${this.o.taskId} seed ${c.seed}`,
    })), this.o);
    this.next += conversations.length;
    const accuracy = factAccuracy(conversations);
    const answers = conversations.flatMap((c) => c.questions);
    return {
      episodes: conversations.length,
      passRate: conversations.filter((c) => c.outcome.success).length / Math.max(1, conversations.length),
      meanResponseTokens: accuracy.meanResponseTokens,
      meanTurns: answers.length / Math.max(1, conversations.length),
      factAccuracy: accuracy.accuracy,
      changedFacts: changed,
    };
  }
}
