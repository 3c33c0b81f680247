/**
 * The leader's learning duty: make sure a model version is active (the shipped base model at
 * first), let the simulator play it when there is no other user side, check the round triggers
 * on a node-cron schedule, and run rounds one at a time. Rounds and the simulator share the
 * model worker, so the simulator waits while a round runs.
 */
import { verifyPublishedWeights, WeightsMismatchError } from '../engine/verify-version.ts';
import { recordLoadRefusal } from '../operations/load-refusals.ts';
import { pruneVersions, type PruneResult } from '../operations/prune-versions.ts';
import { publishFolder } from '../operations/publish-folder.ts';
import type { RetentionPolicy } from '../operations/retention-policy.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelEngine } from '../engine/model-engine.ts';
import { countRefusedSince } from '../projections/rounds/round-projection.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import { countFreshInteractions, readLastRoundEnd, readNewestRoundEnd } from '../projections/trajectories/trajectory-queries.ts';
import { RoundFailedError, RoundRunner, recoverInterruptedRounds, type RoundOutcome, type RoundSkip } from '../rounds/round-runner.ts';
import { RoundScheduler } from '../rounds/round-scheduler.ts';
import type { RoundTrigger, TaskTrigger, TaskTriggerDecision, TriggerSettings } from '../rounds/round-trigger.ts';
import { heldOutPercentOf, type Task } from '../tasks/task.ts';
import type { EpisodeStats } from '../simulator/play-episodes.ts';
import { isTransientDatabaseError } from '../db/transient-errors.ts';
import { abortableSleep as sleep, runLoop } from '../processing/run-loop.ts';
import type { EventStore } from '../store/event-store.ts';

/** What a built-in user side reports per batch (the support desk adds its fact accuracy and the facts its policy changed). */
export interface UserSideStats extends EpisodeStats { factAccuracy?: number; changedFacts?: string[] }
/** A built-in user side: plays a batch with a loaded version and records it. */
export interface UserSide { playBatch(version: string): Promise<UserSideStats> }

export interface LearningLoopEvents {
  /** Human progress lines (npm start prints them). */
  say: (line: string) => void;
  onRoundStarted?: () => void;
  onRoundDone?: (o: RoundOutcome) => void;
  /** A round that could not improve anything (RoundSkipped): nothing trained or published. */
  onRoundSkipped?: (o: RoundSkip) => void;
  /** A published version's weights were refused (changed or missing); `recorded`: its event is new. */
  onLoadRefused?: (version: string, recorded: boolean) => void;
  /** After the retention policy ran. */
  onPruned?: (r: PruneResult) => void;
  onRoundFailed?: (err: Error) => void;
  onSimulatorBatch?: (taskId: string, version: string, stats: UserSideStats) => void;
  onModelLoaded?: (version: string, info: { parameters: number; backend: string }) => void;
}

export interface LearningLoopOptions {
  store: EventStore;
  engine: ModelEngine;
  /** The tasks rounds learn, each with its round runner, in trigger order. */
  tasks: { task: Task; runner: RoundRunner }[];
  /** The built-in user sides (a game's players, the support desk's customers) and the task each plays; they take turns. */
  simulators: { simulator: UserSide; task: Task }[];
  artifactRoot: string;
  trigger: TriggerSettings;
  roundCron?: string;
  /** Published and activated when no version is active. */
  baseModel: { dir: string; version: string } | null;
  /** A simulator rests once the active version has this many of its task's interactions (a round needs no more). */
  simulatorTarget: (task: Task) => number;
  /** How long threshold checks wait after a failed round before starting another. */
  retryAfterFailureMs: number;
  /** Model versions' files kept (docs/retention.md); the rest are pruned after each round and at start. */
  retention?: RetentionPolicy;
  events: LearningLoopEvents;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export class LearningLoop {
  private roundRunning: Promise<void> | null = null;
  private roundsHere = 0;
  private scheduler: RoundScheduler | null = null;
  private loaded = new Set<string>();
  private lastFailure: number | null = null;
  /** The simulator that played last (they take turns). */
  private lastSimulator = -1;

  constructor(private readonly o: LearningLoopOptions) {}

  get running(): boolean { return this.roundRunning !== null; }

  /** Runs until `signal` aborts (leadership lost or shutdown). */
  async run(signal: AbortSignal): Promise<void> {
    const { store, events } = this.o;
    const started = await this.retryWhileDatabaseAway(signal, 'the learning loop could not start', async () => {
      const interrupted = await recoverInterruptedRounds(store, this.o.artifactRoot);
      await this.prune();
      if (interrupted.length) events.say(`marked ${interrupted.length} interrupted round(s) as failed: ${interrupted.join(', ')}`);
      await this.ensureActiveModel();
      return true;
    });
    if (!started) return; // the signal aborted while the database was away
    // The active version is loaded now, not at the first round or simulator batch: the log says
    // what was loaded on which backend (oeld_model_backend_info too), and a model that cannot load
    // is reported at start. Rounds still wait for thresholds.
    await this.loadActive().catch((err: Error) => events.say(`the active model version could not be loaded: ${err.message}`));
    this.scheduler = new RoundScheduler({
      ...(this.o.roundCron ? { roundExpression: this.o.roundCron } : {}),
      state: () => this.triggerState(),
      startRound: async (taskId, trigger) => { this.startRound(taskId, trigger); },
      onError: (err) => events.say(`round trigger check failed: ${err.message}`),
    });
    this.scheduler.start();
    try {
      // The simulator plays while the active version needs interactions and no round runs; a failure
      // (the database away, above all) is reported once and retried, backing off to 5 s.
      await runLoop(signal, async () => {
        if (this.roundRunning) return 'idle';
        const next = await this.simulatorWithWork();
        if (next) { await this.simulate(next); return 'busy'; }
        return 'idle';
      }, {
        idleMs: 500, backoff: { firstMs: 1000, maxMs: 5000 },
        onError: (err, failures, retryInMs) => {
          if (failures === 1) events.say(`the simulator failed: ${(err as Error).message}; retrying every ${retryInMs / 1000}-5 s`);
        },
      });
    } finally {
      await this.scheduler.stop();
      this.scheduler = null;
      await this.roundRunning;
    }
  }

  /**
   * Runs fn until it succeeds, waiting while the database is away (1 s, doubling to 5 s); other
   * errors end the loop as before. Resolves to fn's value, or undefined once the signal aborted.
   */
  private async retryWhileDatabaseAway<T>(signal: AbortSignal, what: string, fn: () => Promise<T>): Promise<T | undefined> {
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        return await fn();
      } catch (err) {
        if (signal.aborted) return undefined; // leadership lost (or shutdown): the loop ends here either way
        if (!isTransientDatabaseError(err)) throw err;
        const waitMs = Math.min(5000, 1000 * 2 ** failures);
        if (failures === 0) this.o.events.say(`${what}: the database is away (${(err as Error).message}); retrying every ${waitMs / 1000}-5 s`);
        await sleep(waitMs, signal);
      }
    }
    return undefined;
  }

  /** The manual trigger (CLI / admin API): starts a round now if one can start. */
  async requestRound(taskId?: string): Promise<TaskTriggerDecision> {
    if (!this.scheduler) return { start: false, reason: 'this daemon is not the leader (or the learning loop is off)' };
    return this.scheduler.requestManual(taskId);
  }

  /**
   * Interactions the next round of the active version can learn from: those recorded after the
   * newest round ended (a round the gate refused, or one that failed, has used the ones before;
   * running it again on them would repeat it exactly). Read from the trajectories projection.
   */
  private freshInteractions(task: Task, active: { version: string }): Promise<number> {
    return countFreshInteractions(this.o.store.sql, task.id, active.version, heldOutPercentOf(task));
  }

  /** Each task's trigger state: its counts and its round end come from one projection, so they agree. */
  private async triggerState(): Promise<TaskTrigger[]> {
    const active = await readActiveModel(this.o.store.sql);
    const newestEnd = (await readNewestRoundEnd(this.o.store.sql))?.endedAt ?? null;
    const states: TaskTrigger[] = [];
    for (const { task } of this.o.tasks) {
      states.push({
        taskId: task.id,
        settings: { ...this.o.trigger, minInteractions: task.minInteractions },
        taskRoundEndedAt: (await readLastRoundEnd(this.o.store.sql, task.id))?.endedAt ?? null,
        state: {
          now: new Date(),
          roundRunning: this.roundRunning !== null,
          activeVersion: active?.version ?? null,
          interactionsFromActive: active ? await this.freshInteractions(task, active) : 0,
          lastRoundEndedAt: newestEnd,
          activeSince: active?.activatedAt ?? null,
          refusedInARow: active ? await countRefusedSince(this.o.store.sql, active.version, active.activatedAt) : 0,
          roundsCompletedHere: this.roundsHere,
        },
      });
    }
    return states;
  }

  private startRound(taskId: string, trigger: RoundTrigger): void {
    const entry = this.o.tasks.find((t) => t.task.id === taskId);
    if (this.roundRunning || !entry) return;
    // After a failure, threshold checks wait before trying again (a cron or manual trigger does not).
    if (trigger === 'threshold' && this.lastFailure !== null && Date.now() - this.lastFailure < this.o.retryAfterFailureMs) return;
    const { events } = this.o;
    events.say(`round ${this.roundsHere + 1}: starting (task ${taskId}, ${trigger})`);
    events.onRoundStarted?.();
    this.roundRunning = entry.runner.run(trigger).then(async (outcome) => {
      this.roundsHere++;
      this.lastFailure = null;
      if ('skipped' in outcome) {
        events.say(`round ${this.roundsHere} skipped after ${outcome.totalSeconds.toFixed(0)} s (task ${taskId}): ${outcome.skipped}`);
        events.onRoundSkipped?.(outcome);
        return outcome.roundId;
      }
      // The worker holds only the versions in use: once a new version is active (and loaded by the
      // round), the round-start version goes; a rollback to it loads it again.
      if (outcome.activated && outcome.baseVersion !== outcome.newVersion) {
        this.loaded.delete(outcome.baseVersion);
        this.loaded.add(outcome.newVersion);
        await this.o.engine.unload(outcome.baseVersion).catch(() => {});
      }
      events.say(`round ${this.roundsHere} done in ${outcome.totalSeconds.toFixed(0)} s (task ${taskId}): ${outcome.baseVersion} -> ${outcome.newVersion} ${outcome.activated ? '(activated)' : '(NOT activated: refused by the gate)'}; ${evaluationText(outcome)}; loss ${outcome.loss.first.toFixed(4)} -> ${outcome.loss.last.toFixed(4)}; ${outcome.knowledgeItems} knowledge items`);
      events.onRoundDone?.(outcome);
      await this.prune();
      return outcome.roundId;
    }, (err: Error) => {
      this.lastFailure = Date.now();
      events.say(`round failed: ${err.message}${trigger === 'threshold' ? `; the next threshold round waits ${(this.o.retryAfterFailureMs / 1000).toFixed(0)} s` : ''}`);
      events.onRoundFailed?.(err);
      return err instanceof RoundFailedError ? err.roundId : null;
    }).then((roundId) => this.untilRoundEndFolded(roundId, taskId)).finally(() => { this.roundRunning = null; });
  }

  /**
   * Waits (at most 30 s) until the trajectories projection has folded this round's end: until
   * then its counts still include what the round used, and a check could start the same round
   * again. A round whose end could not be recorded is not waited for long.
   */
  private async untilRoundEndFolded(roundId: string | null, taskId: string): Promise<void> {
    if (roundId === null) return;
    for (let i = 0; i < 300; i++) {
      const folded = await readLastRoundEnd(this.o.store.sql, taskId).catch(() => null);
      if (folded?.roundId === roundId) return;
      await sleep(100);
    }
  }

  /** The next simulator (after the one that played last) whose task the active version needs interactions of. */
  private async simulatorWithWork(): Promise<{ simulator: UserSide; task: Task } | null> {
    const sims = this.o.simulators;
    if (sims.length === 0) return null;
    const active = await readActiveModel(this.o.store.sql);
    if (!active) return null;
    for (let k = 1; k <= sims.length; k++) {
      const i = (this.lastSimulator + k) % sims.length;
      if (await this.freshInteractions(sims[i]!.task, active) < this.o.simulatorTarget(sims[i]!.task)) { this.lastSimulator = i; return sims[i]!; }
    }
    return null;
  }

  /** Applies the retention policy; a failure is reported and waits for the next round (nothing is lost by not pruning). */
  private async prune(): Promise<void> {
    if (!this.o.retention) return;
    try {
      const r = await pruneVersions(this.o.store, this.o.artifactRoot, this.o.retention);
      if (r.pruned.length) this.o.events.say(`pruned ${r.pruned.length} model version${r.pruned.length === 1 ? '' : 's'} (${r.pruned.map((p) => p.version).join(', ')}; ${(r.pruned.reduce((n, p) => n + p.bytes, 0) / 2 ** 20).toFixed(1)} MiB freed; OELD_KEEP_VERSIONS=${this.o.retention.keepVersions})`);
      else if (r.skipped) this.o.events.say(`pruning skipped: ${r.skipped}`);
      this.o.events.onPruned?.(r);
    } catch (err) {
      this.o.events.say(`pruning model versions failed (tried again after the next round): ${(err as Error).message}`);
    }
  }

  /** Loads the active version into the engine unless it is there; returns it (null: none active). */
  private async loadActive(): Promise<{ version: string; path: string } | null> {
    const active = await readActiveModel(this.o.store.sql);
    if (!active) return null;
    if (!this.loaded.has(active.version)) {
      await verifyPublishedWeights(active).catch(async (err) => {
        if (err instanceof WeightsMismatchError) {
          const fresh = await recordLoadRefusal(this.o.store, err, 'learning-loop').catch(() => false);
          this.o.events.onLoadRefused?.(active.version, fresh);
        }
        throw err;
      });
      const info = await this.o.engine.load(active.version, active.path);
      this.loaded.add(active.version);
      this.o.events.onModelLoaded?.(active.version, info);
    }
    return active;
  }

  private async simulate(sim: { simulator: UserSide; task: Task }): Promise<void> {
    const active = await this.loadActive();
    if (!active) return;
    const stats = await sim.simulator.playBatch(active.version);
    const facts = stats.factAccuracy === undefined ? ''
      : `, fact accuracy ${pct(stats.factAccuracy)}${stats.changedFacts?.length ? ` (policy changed: ${stats.changedFacts.join(', ')})` : ''}`;
    const unit = stats.factAccuracy === undefined ? ['episodes', 'turns'] : ['conversations', 'questions'];
    this.o.events.say(`simulator ${sim.task.id}: ${stats.episodes} ${unit[0]} with ${active.version}: pass rate ${pct(stats.passRate)}${facts}, ${stats.meanResponseTokens.toFixed(2)} response tokens, ${stats.meanTurns.toFixed(2)} ${unit[1]}`);
    this.o.events.onSimulatorBatch?.(sim.task.id, active.version, stats);
  }

  private async ensureActiveModel(): Promise<void> {
    if (await readActiveModel(this.o.store.sql)) return;
    const base = this.o.baseModel;
    if (!base) { this.o.events.say('no active model version and no base model configured: rounds wait for one'); return; }
    if (!existsSync(join(base.dir, 'model.safetensors'))) throw new Error(`OELD_BASE_MODEL_DIR=${JSON.stringify(base.dir)}: no model.safetensors there (run scripts/make-base-model.ts, or point it at a Hugging Face folder)`);
    // The base is copied into the artifact store, as every version is: upgrading oeld (whose
    // installation holds models/oeld-base) must not change what "base", or a rollback to it, loads.
    const { path, sha256 } = await publishFolder(this.o.store, this.o.artifactRoot, base.dir, base.version, { activate: true, reason: 'initial' });
    this.o.events.say(`published and activated the base model ${base.version} (copied from ${base.dir} to ${path}, sha256 ${sha256.slice(0, 12)}...)`);
    // The projection folds the activation shortly; wait for it so the first checks see a version.
    for (let i = 0; i < 100 && !(await readActiveModel(this.o.store.sql)); i++) await sleep(100);
  }
}

/** The gate's figures in one clause: a game's pass rates, or a chat task's checks with their numbers. */
function evaluationText(o: RoundOutcome): string {
  const b = o.before;
  const a = o.after;
  // The support desk: a chat task's checks, its validation fact accuracy among them.
  if (o.chat) return o.gateReasons.length ? o.gateReasons.join(', ') : 'not evaluated';
  if (b && a) {
    return `pass rate ${pct(b.passRate)} -> ${pct(a.passRate)}, response tokens ${b.meanResponseTokens.toFixed(2)} -> ${a.meanResponseTokens.toFixed(2)}, turns ${b.meanTurns.toFixed(2)} -> ${a.meanTurns.toFixed(2)} (validation, ${a.episodes} episodes, no knowledge in context)`;
  }
  return o.gateReasons.length ? o.gateReasons.join(', ') : 'not evaluated';
}
