/**
 * One OEL round of one task, start to finish, as named stages over a round context: collect the
 * active version's trajectories of the task, extract the knowledge pool with that same version,
 * train (consolidate the pool by context distillation into a new version), evaluate it with the
 * task's gate, decide, and record the outcome with what determined it (round-inputs.ts). A round
 * that cannot improve anything (round-skip.ts) stops after extraction and records RoundSkipped.
 *
 * Crash safety: RoundStarted is the only event written before the work. Everything the round
 * produces (the KnowledgeExtracted events, the published and maybe activated model version, the
 * evaluations, RoundCompleted) is appended in ONE transaction at the end, so a process that dies
 * mid-round has published nothing and left the knowledge base as it was; the unfinished round is
 * marked failed at the next start (recoverInterruptedRounds) and can simply be run again. Model
 * folders are written under a fresh name by rename, so a half-written version never exists.
 */
import { verifyPublishedWeights, WeightsMismatchError } from '../engine/verify-version.ts';
import { recordLoadRefusal } from '../operations/load-refusals.ts';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NewEvent } from '../events/envelope.ts';
import { STREAMS } from '../events/streams.ts';
import type { GateContext, GateResult } from '../evaluation/gate.ts';
import { knowledgeExtractedEventId } from '../extraction/accumulate-pool.ts';
import { extractPool, type ExtractedPool, type ExtractFn } from '../extraction/extract-pool.ts';
import { renderTrajectory } from '../extraction/extraction-prompt.ts';
import type { Prompt } from '../model/inference/chat-prompt.ts';
import { readingOf } from '../tasks/reading-prompts.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { EVALUATION_SAMPLING } from '../model/inference/sampling.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { approximateTokens } from '../projections/knowledge/tokens.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import type { EventStore } from '../store/event-store.ts';
import { countEvents, readEventsByIds } from '../store/log-queries.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { readRoundOfVersion } from '../projections/rounds/round-projection.ts';
import type { PoolScreen, PoolScreening } from '../evaluation/pool-screen.ts';
import { heldOutPercentOf, type Task } from '../tasks/task.ts';
import { trainedTrajectories, trainingPrompts } from '../tasks/training-prompts.ts';
import type { RoundTrainingOptions, RoundTrainingReport, StepReport } from '../trainer/opcd-round.ts';
import { checkVersionFolder } from '../model/formats/check-folder.ts';
import { tfjsTrainer } from '../trainer/tfjs-trainer.ts';
import type { Trainer, TrainingResult } from '../trainer/trainer-port.ts';
import { knowledgeDigest, promptsDigest, type RoundInputs } from './round-inputs.ts';
import { skipReason } from './round-skip.ts';
import { readTrajectories, readUnfinishedRounds, type LoggedTrajectory } from './round-queries.ts';

export interface RoundSettings {
  /** The newest trajectories of the active version a round learns from. */
  trajectoriesPerRound: number;
  poolSlots: number;
  poolTrajectories: number;
  tokenBudget: number;
  /** What the teacher sees: extracted knowledge, or raw trajectories (the paper's ablation). */
  teacherContext: 'knowledge' | 'raw';
  /** The task sets maxNewTokens, knowledgePlacement and templateVariables. */
  training: RoundTrainingOptions;
}

/** A task's evaluation of a candidate against the round-start version (game-gate.ts, chat-gate.ts). */
export interface RoundGate { evaluate(ctx: GateContext): Promise<GateResult> }

export type RoundStage = 'collect' | 'extract' | 'train' | 'evaluate' | 'record';

export interface RoundProgress {
  stage: RoundStage;
  /** Extraction: trajectory position; training: optimiser step; evaluation: episodes or measurements done. */
  done?: number;
  of?: number;
  step?: StepReport;
  message?: string;
}

export interface RoundOutcome {
  roundId: string;
  taskId: string;
  baseVersion: string;
  newVersion: string;
  activated: boolean;
  /** The gate's checks, one line each ([] without evaluation). */
  gateReasons: string[];
  before: EpisodeStats | null;
  after: EpisodeStats | null;
  chat: GateResult['chat'];
  loss: { first: number; last: number; mean: number };
  /** By stage: collect, extract, train (and its parts sampling, teacher, backward), evaluate, record. */
  seconds: Record<string, number>;
  /** Wall time of the whole round. */
  totalSeconds: number;
  knowledgeItems: number;
  trainingPrompts: number;
}

/** A round that could not improve anything (round-skip.ts): nothing trained or published; RoundSkipped records the reason. */
export interface RoundSkip {
  roundId: string;
  taskId: string;
  baseVersion: string;
  skipped: string;
  seconds: Record<string, number>;
  totalSeconds: number;
  knowledgeItems: number;
}

/** A round's outcome when it trained (not skipped), or an error naming the reason it was skipped (for callers that expect training). */
export function trained(r: RoundOutcome | RoundSkip): RoundOutcome {
  if ('skipped' in r) throw new Error(`round ${r.roundId} was skipped: ${r.skipped}`);
  return r;
}

export interface RoundRunnerDeps {
  store: EventStore;
  engine: ModelEngine;
  /** What trains the round (trainer-port.ts); default: the tfjs trainer on `engine`. */
  trainer?: Trainer;
  /** Model versions go to <artifactRoot>/models/<version>, checkpoints to <artifactRoot>/rounds/<roundId>. */
  artifactRoot: string;
  task: Task;
  settings: RoundSettings;
  /** Skip rounds that cannot improve anything (round-skip.ts; OELD_SKIP_UNCHANGED_ROUNDS); default true. */
  skipUnchanged?: boolean;
  /** Plays the pool's slots in context before training and says which to keep (task-screen.ts; game tasks and the support desk, OELD_POOL_SCREEN_EPISODES); absent: every slot is kept. */
  screen?: PoolScreen | undefined;
  /** The task's gate; null: no evaluation, the new version is activated. */
  gate: RoundGate | null;
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

/** What the stages share: the round's identity and what each stage leaves for the next. */
interface RoundContext {
  roundId: string;
  stream: string;
  active: { version: string; path: string; sha256: string; roundId: string | null };
  /** The engine's backend and kernels, as it loaded the round-start version. */
  engineRuntime: string;
  newVersion: string;
  outDir: string;
  checkpointDir: string;
  training: RoundTrainingOptions;
  trajectories: LoggedTrajectory[];
  /** The trajectories trained on, in order: `trajectories`, each failed one `failedRepeat` times (training-prompts.ts). */
  trainedOn: LoggedTrajectory[];
  pool: ExtractedPool;
  knowledgeTexts: string[];
  prompts: Prompt[];
  trained: TrainingResult;
  /** The pool's slots played in context before training, and which were kept (game tasks and the support desk, with screening on). */
  screening: PoolScreening | null;
  gate: GateResult | null;
  activate: boolean;
  seconds: Record<string, number>;
}

export class RoundRunner {
  private readonly trainer: Trainer;

  constructor(private readonly d: RoundRunnerDeps) {
    this.trainer = d.trainer ?? tfjsTrainer(d.engine);
  }

  private progress(p: RoundProgress): void { this.d.onProgress?.(p); }

  async run(trigger: 'threshold' | 'cron' | 'manual'): Promise<RoundOutcome | RoundSkip> {
    const { store, engine, settings, task } = this.d;
    const active = await readActiveModel(store.sql);
    if (!active) throw new Error('no active model version: publish and activate one first');
    const knowledge = await readKnowledgeVersion(store.sql);
    const roundId = randomUUID();
    const training: RoundTrainingOptions = {
      ...settings.training, maxNewTokens: task.responseTokens, knowledgePlacement: task.knowledgePlacement,
      ...(Object.keys(task.templateVariables).length ? { templateVariables: task.templateVariables } : {}),
    };
    const ctx = {
      roundId, stream: STREAMS.round(roundId), active, training, seconds: {},
      newVersion: `${active.version.replace(/-r\d+-[0-9a-f]{8}$/, '')}-r${(await this.roundNumber()) + 1}-${roundId.slice(0, 8)}`,
    } as Partial<RoundContext> as RoundContext;
    ctx.outDir = join(this.d.artifactRoot, 'models', ctx.newVersion);
    ctx.checkpointDir = join(this.d.artifactRoot, 'rounds', roundId);
    await store.append([{ streamId: ctx.stream, expectedVersion: 'no_stream', events: [roundEvent('RoundStarted', {
      roundId, trigger, taskId: task.id, baseModelVersion: active.version, knowledgeVersion: knowledge?.version ?? 0,
      config: { ...settings, training, trainer: this.trainer.kind, trainerSettings: this.trainer.settings, task: taskSummary(task) },
    })] }]);

    const roundStart = performance.now();
    let stage: RoundStage = 'collect';
    let recorded = false;
    const timed = async (s: RoundStage, fn: () => Promise<void>): Promise<void> => {
      stage = s;
      const t0 = performance.now();
      try { await fn(); } finally { ctx.seconds[s] = (performance.now() - t0) / 1000; }
    };
    try {
      await verifyPublishedWeights(active).catch(async (err) => {
        if (err instanceof WeightsMismatchError) await recordLoadRefusal(this.d.store, err, 'round').catch(() => {});
        throw err;
      });
      const loaded = await engine.load(active.version, active.path);
      ctx.engineRuntime = loaded.runtime ?? loaded.backend;
      await timed('collect', () => this.collect(ctx));
      await timed('extract', () => this.extract(ctx));
      const skipped = await this.whyNotTrain(ctx);
      if (skipped) {
        const knowledgeItems = ctx.pool.itemCounts.reduce((a, b) => a + b, 0);
        await store.append([{ streamId: ctx.stream, expectedVersion: 'any', events: [roundEvent('RoundSkipped', { roundId, reason: skipped, knowledgeItems })] }]);
        recorded = true;
        rmSync(ctx.checkpointDir, { recursive: true, force: true });
        return { roundId, taskId: task.id, baseVersion: active.version, skipped, seconds: ctx.seconds, totalSeconds: (performance.now() - roundStart) / 1000, knowledgeItems };
      }
      await timed('train', () => this.train(ctx));
      await timed('evaluate', () => this.evaluate(ctx));
      this.decide(ctx);
      await timed('record', () => this.record(ctx));
      recorded = true;
      // The round is recorded: tidying up may fail without failing it (the version stays published).
      if (!ctx.activate) await engine.unload(ctx.newVersion).catch(() => {});
      rmSync(ctx.checkpointDir, { recursive: true, force: true });
      return {
        roundId, taskId: task.id, baseVersion: active.version, newVersion: ctx.newVersion, activated: ctx.activate,
        gateReasons: ctx.gate?.reasons ?? [], before: ctx.gate?.before ?? null, after: ctx.gate?.after ?? null, chat: ctx.gate?.chat ?? null,
        loss: ctx.trained.report.loss, seconds: ctx.seconds, totalSeconds: (performance.now() - roundStart) / 1000,
        knowledgeItems: ctx.pool.itemCounts.reduce((a, b) => a + b, 0), trainingPrompts: ctx.prompts.length,
      };
    } catch (err) {
      const error = err as Error;
      if (recorded) throw error;
      rmSync(ctx.outDir, { recursive: true, force: true });
      rmSync(ctx.checkpointDir, { recursive: true, force: true });
      await engine.unload(ctx.newVersion).catch(() => {});
      await store.append([{ streamId: ctx.stream, expectedVersion: 'any', events: [roundEvent('RoundFailed', { roundId, stage, error: error.message.slice(0, 10_000) })] }]);
      throw new RoundFailedError(roundId, stage, error);
    }
  }

  /** collect: the newest trajectories of the task from the active version, outside the held-out split, and their prompts. */
  private async collect(ctx: RoundContext): Promise<void> {
    const { task, settings } = this.d;
    ctx.trajectories = await readTrajectories(this.d.store.sql, task.id, ctx.active.version, settings.trajectoriesPerRound, heldOutPercentOf(task));
    if (ctx.trajectories.length === 0) throw new Error(`no trajectories of task ${task.id} from version ${ctx.active.version} to learn from`);
    ctx.trainedOn = trainedTrajectories(ctx.trajectories, ctx.training.failedRepeat);
    ctx.prompts = ctx.trainedOn.flatMap((t) => trainingPrompts(t.data));
    if (ctx.prompts.length === 0) throw new Error(`the ${ctx.trajectories.length} trajectories of task ${task.id} have no assistant turn to train on`);
    this.progress({ stage: 'collect', done: ctx.trajectories.length, message: `${ctx.trajectories.length} trajectories of task ${task.id} from ${ctx.active.version}, ${ctx.prompts.length} prompts${ctx.trainedOn.length > ctx.trajectories.length ? ` (failed ones ${ctx.training.failedRepeat} times)` : ''}` });
  }

  /** extract: the knowledge pool, written by the version that acted (on-policy), or raw trajectories in the ablation. */
  private async extract(ctx: RoundContext): Promise<void> {
    const { engine, settings, task } = this.d;
    const variables = Object.keys(task.templateVariables).length ? task.templateVariables : undefined;
    const extractFn: ExtractFn = this.d.extractFnFor
      ? await this.d.extractFnFor(ctx.active.version)
      : (prompts, seed) => engine.complete(ctx.active.version, prompts, EVALUATION_SAMPLING, task.extractionTokens, seed, variables);
    if (settings.teacherContext === 'raw') {
      const texts = ctx.trajectories.slice(-settings.poolSlots).map((t) => renderTrajectory(t.data));
      ctx.pool = { events: [], texts, itemCounts: texts.map(() => 0), emptyAnswers: 0 };
    } else {
      ctx.pool = await extractPool(ctx.trajectories, extractFn, {
        extractingModelVersion: ctx.active.version, taskId: task.id, slots: settings.poolSlots, trajectoriesPerSlot: settings.poolTrajectories,
        tokenBudget: settings.tokenBudget, countTokens: approximateTokens, seed: settings.training.seed,
        onProgress: (p) => this.progress({ stage: 'extract', done: p.position, of: p.of, message: `${p.items} items in ${settings.poolSlots} slots` }),
      });
    }
    ctx.knowledgeTexts = ctx.pool.texts.filter((t) => t.trim().length > 0);
    if (ctx.knowledgeTexts.length === 0) throw new Error(`extraction produced no experience items (${ctx.pool.emptyAnswers} answers had no marked line)`);
  }

  /** Why the round should stop before training (nothing to improve, or no slot worth its knowledge), or null; screens the pool on the way. */
  private async whyNotTrain(ctx: RoundContext): Promise<string | null> {
    ctx.screening = null;
    const unchanged = await this.skipReason(ctx);
    if (unchanged || !this.d.screen || this.d.settings.teacherContext !== 'knowledge') return unchanged;
    await this.screen(ctx, this.d.screen);
    return ctx.knowledgeTexts.length === 0 ? `no slot's knowledge helped in context: ${screeningText(ctx.screening!)}` : null;
  }

  /** Whether the round can improve anything (round-skip.ts): the active version's validation and the pool it was trained on, against this round's pool. */
  private async skipReason(ctx: RoundContext): Promise<string | null> {
    if (this.d.skipUnchanged === false || this.d.settings.teacherContext !== 'knowledge' || !ctx.active.roundId) return null;
    const made = await readRoundOfVersion(this.d.store.sql, ctx.active.version);
    if (!made?.validation || !made.knowledgeEventIds) return null;
    const trainedOn = (await readEventsByIds(this.d.store.sql, made.knowledgeEventIds)).flatMap((e) => (e.data as EventDataMap['KnowledgeExtracted']).items.map((i) => i.text));
    return skipReason({
      validation: { ...made.validation, roundId: made.roundId },
      trainedItems: trainedOn,
      poolItems: ctx.pool.events.flatMap((e) => e.items.map((i) => i.text)),
    });
  }

  /** Keeps the slots whose knowledge, in the round-start version's context, plays at least as well as none (pool-screen.ts). */
  private async screen(ctx: RoundContext, screen: PoolScreen): Promise<void> {
    const texts = ctx.pool.texts.map((text, slot) => ({ slot, text })).filter((t) => t.text.trim().length > 0);
    const t0 = performance.now();
    ctx.screening = await screen(ctx.active.version, texts, (done, of) => this.progress({ stage: 'extract', done, of, message: 'screening the pool in context' }));
    ctx.seconds.screen = (performance.now() - t0) / 1000;
    const kept = new Set(ctx.screening.slots.filter((s) => s.kept).map((s) => s.slot));
    ctx.pool = { ...ctx.pool, events: ctx.pool.events.filter((e) => kept.has(e.poolSlot)) };
    ctx.knowledgeTexts = texts.filter((t) => kept.has(t.slot)).map((t) => t.text);
    this.progress({ stage: 'extract', message: `kept ${kept.size} of ${texts.length} slots: ${screeningText(ctx.screening)}` });
  }

  /** train: context distillation of the pool into a copy of the active version, written to the new version's folder by the trainer. */
  private async train(ctx: RoundContext): Promise<void> {
    ctx.trained = await this.trainer.train({
      version: ctx.active.version, dir: ctx.active.path,
      situations: ctx.prompts, knowledgeTexts: ctx.knowledgeTexts, options: ctx.training, outDir: ctx.outDir, checkpointDir: ctx.checkpointDir,
      ...readingOf(this.d.task, ctx.training),
    }, (s) => this.progress({ stage: 'train', done: s.step, of: s.of, step: s }));
    for (const [k, ms] of Object.entries(ctx.trained.report.timings)) ctx.seconds[k.replace(/Ms$/, '')] = ms / 1000;
    // Whatever wrote it, the new folder must load (config, weights' headers, tokenizer, chat template) before it is published.
    const problem = await checkVersionFolder(ctx.outDir);
    if (problem) throw new Error(`the ${this.trainer.kind} trainer wrote a version that would not load: ${problem}`);
  }

  /** evaluate: the task's gate compares the candidate with the round-start version. */
  private async evaluate(ctx: RoundContext): Promise<void> {
    if (!this.d.gate) { ctx.gate = null; return; }
    await this.d.engine.load(ctx.newVersion, ctx.outDir);
    ctx.gate = await this.d.gate.evaluate({
      roundId: ctx.roundId, baseVersion: ctx.active.version, candidateVersion: ctx.newVersion, knowledgeTexts: ctx.knowledgeTexts,
      onProgress: (p) => this.progress({ stage: 'evaluate', done: p.done, of: p.of, message: p.message }),
    });
  }

  /** decide: activate when the gate passed (or there is none); a refused version stays published. */
  private decide(ctx: RoundContext): void {
    ctx.activate = ctx.gate === null || ctx.gate.passed;
  }

  /** record: the pool, the new version (activated or not), the evaluations and RoundCompleted, in one transaction. */
  private async record(ctx: RoundContext): Promise<void> {
    const { pool, trained, gate } = ctx;
    await this.d.store.transact(async (_tx, append) => {
      if (pool.events.length > 0) {
        await append([{ streamId: STREAMS.knowledge, expectedVersion: 'any', events: pool.events.map((data) => ({ id: knowledgeExtractedEventId(data), type: 'KnowledgeExtracted' as const, data })) }]);
      }
      const modelEvents: NewEvent[] = [roundEvent('ModelVersionPublished', {
        version: ctx.newVersion, path: ctx.outDir, sha256: trained.sha256, baseVersion: ctx.active.version, roundId: ctx.roundId, ...(trained.adapterOf ? { adapterOf: trained.adapterOf } : {}),
      })];
      if (ctx.activate) modelEvents.push(roundEvent('ModelVersionActivated', { version: ctx.newVersion, reason: 'promoted', previousVersion: ctx.active.version }));
      await append([{ streamId: STREAMS.models, expectedVersion: 'any', events: modelEvents }]);
      await append([{ streamId: ctx.stream, expectedVersion: 'any', events: [
        ...(gate?.evaluations ?? []).map((e) => roundEvent('EvaluationRecorded', e)),
        roundEvent('RoundCompleted', {
          roundId: ctx.roundId, newModelVersion: ctx.newVersion, steps: trained.report.steps.length, lossSummary: trained.report.loss,
          ...(gate ? { evaluation: { before: gate.before, after: gate.after, chat: gate.chat, activated: ctx.activate, reasons: gate.reasons } } : {}),
          curve: trained.report.steps.map((s) => ({ step: s.step, loss: s.loss, gradNorm: s.gradNorm, responseTokens: s.responseTokens })),
          seconds: ctx.seconds,
          inputs: this.inputs(ctx),
          ...(ctx.screening ? { screening: ctx.screening } : {}),
        }),
      ] }]);
    });
  }

  /** What determined the new version besides RoundStarted's settings (round-inputs.ts): what `oeld rederive` re-runs from. */
  private inputs(ctx: RoundContext): RoundInputs {
    return {
      baseSha256: ctx.active.sha256,
      trajectoryEventIds: ctx.trainedOn.map((t) => t.eventId),
      knowledgeEventIds: ctx.pool.events.map(knowledgeExtractedEventId),
      knowledgeSha256: knowledgeDigest(ctx.knowledgeTexts),
      promptsSha256: promptsDigest(ctx.prompts),
      runtime: this.trainer.kind === 'tfjs' ? `tfjs trainer on ${ctx.engineRuntime}` : ctx.trained.runtime ?? this.trainer.kind,
    };
  }

  private async roundNumber(): Promise<number> {
    return countEvents(this.d.store.sql, ['RoundCompleted']);
  }
}

/** A screening in one clause: the pass rate without knowledge and each slot's, kept or not. */
function screeningText(s: PoolScreening): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  return `${s.episodes} episodes without knowledge ${pct(s.withoutKnowledge)}; slots ${s.slots.map((x) => `#${x.slot} ${pct(x.passRate)}${x.kept ? '' : ' (dropped)'}`).join(', ')}`;
}

/** The task as RoundStarted records it: the game by name, an evaluator without its secrets (the log keeps events forever). */
function taskSummary(task: Task): Record<string, unknown> {
  if (task.kind === 'game') return { ...task, game: task.game.id };
  const { evaluator, ...rest } = task;
  if (!evaluator) return rest;
  if ('command' in evaluator) return { ...rest, evaluator: { command: evaluator.command[0] } };
  let url = evaluator.url;
  try { const u = new URL(url); u.username = ''; u.password = ''; u.search = ''; url = u.toString(); } catch { url = '(unparseable)'; }
  return { ...rest, evaluator: { url, ...(evaluator.bearerToken ? { bearerToken: 'set' } : {}) } };
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
