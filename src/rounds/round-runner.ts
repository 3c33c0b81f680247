/**
 * One OEL round, start to finish: read the active version's trajectories, extract the knowledge
 * pool with that same version, consolidate it by context distillation into a new version,
 * evaluate old and new on the validation seeds, and record the outcome.
 *
 * Crash safety: RoundStarted is the only event written before the work. Everything the round
 * produces (the KnowledgeExtracted events, the published and maybe activated model version, the
 * evaluations, RoundCompleted) is appended in ONE transaction at the end, so a process that dies
 * mid-round has published nothing and left the knowledge base as it was; the unfinished round is
 * marked failed at the next start (recoverInterruptedRounds) and can simply be run again. Model
 * folders are written under a fresh name by rename, so a half-written version never exists.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GameSpec } from '../envs/environment.ts';
import type { SeedRange } from '../envs/seed-ranges.ts';
import type { NewEvent } from '../events/envelope.ts';
import { STREAMS } from '../events/streams.ts';
import { knowledgeExtractedEventId } from '../extraction/accumulate-pool.ts';
import { extractPool, type ExtractFn } from '../extraction/extract-pool.ts';
import { renderTrajectory } from '../extraction/extraction-prompt.ts';
import { evaluateVersion } from '../evaluation/evaluate.ts';
import type { ModelEngine } from '../model/model-engine.ts';
import { EVALUATION_SAMPLING } from '../model/sampling.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { approximateTokens } from '../projections/knowledge/tokens.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { EventStore } from '../store/event-store.ts';
import { countEvents } from '../store/log-queries.ts';
import type { RoundTrainingOptions, StepReport } from '../trainer/opcd-round.ts';
import { readTrajectories, readUnfinishedRounds } from './round-queries.ts';

export interface RoundSettings {
  /** The newest trajectories of the active version a round learns from. */
  trajectoriesPerRound: number;
  poolSlots: number;
  poolTrajectories: number;
  tokenBudget: number;
  extractionMaxTokens: number;
  /** What the teacher sees: extracted knowledge, or raw trajectories (the paper's ablation). */
  teacherContext: 'knowledge' | 'raw';
  training: RoundTrainingOptions;
  /** Evaluation of the old and new version on validation seeds; null: none (activate always). */
  evaluation: { game: GameSpec; seeds: SeedRange; maxNewTokens: number; gate: boolean; tolerance: number } | null;
}

export type RoundStage = 'collect' | 'extract' | 'train' | 'evaluate' | 'record';

export interface RoundProgress {
  stage: RoundStage;
  /** Extraction: trajectory position; training: optimiser step; evaluation: episodes done. */
  done?: number;
  of?: number;
  step?: StepReport;
  message?: string;
}

export interface RoundOutcome {
  roundId: string;
  baseVersion: string;
  newVersion: string;
  activated: boolean;
  before: EpisodeStats | null;
  after: EpisodeStats | null;
  loss: { first: number; last: number; mean: number };
  /** By stage: collect, extract, train (and its parts sampling, teacher, backward), evaluate, record. */
  seconds: Record<string, number>;
  /** Wall time of the whole round. */
  totalSeconds: number;
  knowledgeItems: number;
}

export interface RoundRunnerDeps {
  store: EventStore;
  engine: ModelEngine;
  /** Model versions go to <artifactRoot>/models/<version>, checkpoints to <artifactRoot>/rounds/<roundId>. */
  artifactRoot: string;
  settings: RoundSettings;
  /** Extraction by another route than the engine (an OpenAI-compatible endpoint), per version. */
  extractFnFor?: (version: string) => Promise<ExtractFn>;
  onProgress?: (p: RoundProgress) => void;
}

export class RoundFailedError extends Error {
  constructor(readonly roundId: string, readonly stage: RoundStage, cause: Error) {
    super(`round ${roundId} failed at ${stage}: ${cause.message}`, { cause });
    this.name = 'RoundFailedError';
  }
}

const roundEvent = <T extends NewEvent['type']>(type: T, data: NewEvent<T>['data']): NewEvent<T> => ({ id: randomUUID(), type, data });

export class RoundRunner {
  /** Validation statistics per version (a version never changes, nor do its seeds). */
  private readonly evaluated = new Map<string, EpisodeStats>();

  constructor(private readonly d: RoundRunnerDeps) {}

  async run(trigger: 'threshold' | 'cron' | 'manual'): Promise<RoundOutcome> {
    const { store, engine, settings } = this.d;
    const progress = this.d.onProgress ?? (() => {});
    const active = await readActiveModel(store.sql);
    if (!active) throw new Error('no active model version: publish and activate one first');
    const knowledge = await readKnowledgeVersion(store.sql);
    const roundId = randomUUID();
    const stream = STREAMS.round(roundId);
    await store.append([{ streamId: stream, expectedVersion: 'no_stream', events: [roundEvent('RoundStarted', {
      roundId, trigger, baseModelVersion: active.version, knowledgeVersion: knowledge?.version ?? 0,
      config: { ...settings, evaluation: settings.evaluation ? { ...settings.evaluation, game: settings.evaluation.game.id } : null },
    })] }]);

    const newVersion = `${active.version.replace(/-r\d+-[0-9a-f]{8}$/, '')}-r${(await this.roundNumber()) + 1}-${roundId.slice(0, 8)}`;
    const outDir = join(this.d.artifactRoot, 'models', newVersion);
    const checkpointDir = join(this.d.artifactRoot, 'rounds', roundId);
    const seconds: Record<string, number> = {};
    const roundStart = performance.now();
    let stage: RoundStage = 'collect';
    let recorded = false;
    const timed = async <T>(s: RoundStage, fn: () => Promise<T>): Promise<T> => {
      stage = s;
      const t0 = performance.now();
      try { return await fn(); } finally { seconds[s] = (performance.now() - t0) / 1000; }
    };
    try {
      await engine.load(active.version, active.path);
      const trajectories = await timed('collect', () => readTrajectories(store.sql, active.version, settings.trajectoriesPerRound));
      if (trajectories.length === 0) throw new Error(`no trajectories from version ${active.version} to learn from`);
      progress({ stage: 'collect', done: trajectories.length, message: `${trajectories.length} trajectories from ${active.version}` });

      const extractFn: ExtractFn = this.d.extractFnFor
        ? await this.d.extractFnFor(active.version)
        : (prompts, seed) => engine.complete(active.version, prompts, EVALUATION_SAMPLING, settings.extractionMaxTokens, seed);
      const pool = await timed('extract', async () => {
        if (settings.teacherContext === 'raw') {
          // The ablation: the teacher reads raw trajectories instead of extracted items.
          const texts = trajectories.slice(-settings.poolSlots).map((t) => renderTrajectory(t.data));
          return { events: [], texts, itemCounts: texts.map(() => 0), emptyAnswers: 0 };
        }
        return extractPool(trajectories, extractFn, {
          extractingModelVersion: active.version, slots: settings.poolSlots, trajectoriesPerSlot: settings.poolTrajectories,
          tokenBudget: settings.tokenBudget, countTokens: approximateTokens, seed: settings.training.seed,
          onProgress: (p) => progress({ stage: 'extract', done: p.position, of: p.of, message: `${p.items} items in ${settings.poolSlots} slots` }),
        });
      });
      const knowledgeTexts = pool.texts.filter((t) => t.trim().length > 0);
      if (knowledgeTexts.length === 0) throw new Error(`extraction produced no experience items (${pool.emptyAnswers} answers had no marked line)`);

      const situations = trajectories.flatMap((t) => t.data.turns!.map((turn) => turn.prompt));
      const trained = await timed('train', () => engine.trainRound(active.version, {
        situations, knowledgeTexts, options: settings.training, outDir, checkpointDir,
      }, (s) => progress({ stage: 'train', done: s.step, of: s.of, step: s })));
      for (const [k, ms] of Object.entries(trained.report.timings)) seconds[k.replace(/Ms$/, '')] = ms / 1000;

      let before: EpisodeStats | null = null;
      let after: EpisodeStats | null = null;
      const evaluations: NewEvent<'EvaluationRecorded'>[] = [];
      const ev = settings.evaluation;
      if (ev) {
        await timed('evaluate', async () => {
          await engine.load(newVersion, outDir);
          const run = async (version: string) => {
            const r = await evaluateVersion(engine, version, {
              game: ev.game, seeds: ev.seeds, split: 'validation', maxNewTokens: ev.maxNewTokens, roundId,
              onProgress: (p) => progress({ stage: 'evaluate', done: p.episodesDone, of: p.episodes, message: version }),
            });
            evaluations.push(roundEvent('EvaluationRecorded', r.event));
            return r.stats;
          };
          before = this.evaluated.get(active.version) ?? await run(active.version);
          this.evaluated.set(active.version, before);
          after = await run(newVersion);
          this.evaluated.set(newVersion, after);
        });
      }
      const activate = !ev || !ev.gate || (after !== null && before !== null && (after as EpisodeStats).passRate >= (before as EpisodeStats).passRate - ev.tolerance);

      await timed('record', () => store.transact(async (_tx, append) => {
        if (pool.events.length > 0) {
          await append([{ streamId: STREAMS.knowledge, expectedVersion: 'any', events: pool.events.map((data) => ({ id: knowledgeExtractedEventId(data), type: 'KnowledgeExtracted' as const, data })) }]);
        }
        const modelEvents: NewEvent[] = [roundEvent('ModelVersionPublished', { version: newVersion, path: outDir, sha256: trained.sha256, baseVersion: active.version, roundId })];
        if (activate) modelEvents.push(roundEvent('ModelVersionActivated', { version: newVersion, reason: 'promoted', previousVersion: active.version }));
        await append([{ streamId: STREAMS.models, expectedVersion: 'any', events: modelEvents }]);
        await append([{ streamId: stream, expectedVersion: 'any', events: [...evaluations, roundEvent('RoundCompleted', {
          roundId, newModelVersion: newVersion, steps: trained.report.steps.length, lossSummary: trained.report.loss,
          ...(ev ? { evaluation: { before, after, activated: activate } } : {}),
          curve: trained.report.steps.map((s) => ({ step: s.step, loss: s.loss, gradNorm: s.gradNorm, responseTokens: s.responseTokens })),
          seconds,
        })] }]);
      }));
      recorded = true;
      // The round is recorded: tidying up may fail without failing it (the version stays published).
      if (!activate) await engine.unload(newVersion).catch(() => {});
      rmSync(checkpointDir, { recursive: true, force: true });
      return {
        roundId, baseVersion: active.version, newVersion, activated: activate, before, after, loss: trained.report.loss, seconds,
        totalSeconds: (performance.now() - roundStart) / 1000, knowledgeItems: pool.itemCounts.reduce((a, b) => a + b, 0),
      };
    } catch (err) {
      const error = err as Error;
      if (recorded) throw error;
      rmSync(outDir, { recursive: true, force: true });
      rmSync(checkpointDir, { recursive: true, force: true });
      await engine.unload(newVersion).catch(() => {});
      await store.append([{ streamId: stream, expectedVersion: 'any', events: [roundEvent('RoundFailed', { roundId, stage, error: error.message.slice(0, 10_000) })] }]);
      throw new RoundFailedError(roundId, stage, error);
    }
  }

  private async roundNumber(): Promise<number> {
    return countEvents(this.d.store.sql, ['RoundCompleted']);
  }
}

/**
 * Marks rounds a dead process left unfinished as failed (stage "interrupted") and removes their
 * unpublished files. Run by the leader before it schedules rounds.
 */
export async function recoverInterruptedRounds(store: EventStore, artifactRoot: string): Promise<string[]> {
  const unfinished = await readUnfinishedRounds(store.sql);
  for (const r of unfinished) {
    rmSync(join(artifactRoot, 'rounds', r.roundId), { recursive: true, force: true });
    await store.append([{ streamId: r.streamId, expectedVersion: 'any', events: [roundEvent('RoundFailed', {
      roundId: r.roundId, stage: 'interrupted', error: 'the process running this round stopped before it finished; nothing was published',
    })] }]);
  }
  const models = join(artifactRoot, 'models');
  if (existsSync(models)) for (const f of readdirSync(models)) if (f.includes('.partial-')) rmSync(join(models, f), { recursive: true, force: true });
  return unfinished.map((r) => r.roundId);
}
