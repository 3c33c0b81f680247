/**
 * The learning half as the leader runs it, wired: the model worker, each task with its round
 * runner and gate, the simulators (the game's players, the support desk's customers), the trigger,
 * and the metrics they report to.
 */
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { createEngine, createTrainer } from './model-runtime.ts';
import { screenFor } from '../evaluation/task-screen.ts';
import { createGate } from '../evaluation/task-gate.ts';
import { openAiExtractFn } from '../extraction/openai-endpoint.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';
import { LearningLoop } from '../loop/learning-loop.ts';
import { reportRoundProgress, ROUND_SECONDS_STAGES } from '../loop/round-progress.ts';
import { EVALUATION_SAMPLING } from '../model/inference/sampling.ts';
import { RoundRunner, type RoundSettings } from '../rounds/round-runner.ts';
import { Simulator } from '../simulator/simulator.ts';
import { companyNow, DeskSimulator } from '../simulator/desk-simulator.ts';
import type { UserSide } from '../loop/learning-loop.ts';
import type { EventStore } from '../store/event-store.ts';
import type { ChatTask, DeskWorld, GameTask, Task } from '../tasks/task.ts';
import { DESK_TASK_NAME } from '../tasks/task-config.ts';
import { VersionSeries } from '../http/version-series.ts';
import { DEFAULT_ROUND_TRAINING } from '../trainer/opcd-round.ts';
import { trainingFor } from '../tasks/task-training.ts';

/** Model versions whose labelled metric series are kept besides the newest round's two (older ones are pruned). */
const KEPT_VERSION_SERIES = 6;

/** The learning loop (run by the leader): model worker, tasks with their round runners and gates, simulators, trigger. */
export function createLearning(config: Config, tasks: Task[], log: Logger, store: EventStore, metrics: Metrics) {
  const engine = createEngine(config);
  const { trainer, check: checkTrainer } = createTrainer(config, engine, log);
  const artifactRoot = join(config.dataDir, 'artifacts');
  const gameTask = tasks.find((t): t is GameTask => t.kind === 'game');
  const deskTasks = tasks.filter((t): t is ChatTask & { world: DeskWorld } => t.kind === 'chat' && t.world !== undefined);
  if (config.simulator === 'on' && !gameTask && deskTasks.length === 0) throw new Error(`OELD_SIMULATOR=on: the simulator plays a game task or the support desk, and OELD_TASKS=${JSON.stringify(config.tasks.join(','))} names neither`);
  const simulatorOn = config.simulator === 'on' || (config.simulator === 'auto' && !config.kafkaBrokers);
  const limits = { maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth };
  const simulators: { simulator: UserSide; task: Task }[] = !simulatorOn ? [] : [
    ...(gameTask ? [{ task: gameTask, simulator: new Simulator(store, engine, { game: gameTask.game, batchSize: config.simulatorBatch, maxNewTokens: gameTask.responseTokens, ...limits }) }] : []),
    ...deskTasks.map((task) => ({
      task,
      simulator: new DeskSimulator(store, engine, {
        taskId: task.id, companySeed: task.world.companySeed, ...(task.world.drift ? { drift: task.world.drift } : {}),
        batchSize: config.simulatorBatch, maxNewTokens: task.responseTokens, ...limits,
      }),
    })),
  ];
  const training = { ...DEFAULT_ROUND_TRAINING, method: config.distillation, steps: config.roundSteps, batchSize: config.roundBatchSize, learningRate: config.roundLearningRate };
  const settings: RoundSettings = {
    trajectoriesPerRound: config.roundTrajectories, poolSlots: config.poolSlots, poolTrajectories: config.poolTrajectories,
    tokenBudget: config.knowledgeTokenBudget, teacherContext: config.teacherContext, training,
  };
  const runners = tasks.map((task) => ({
    task,
    runner: new RoundRunner({
      store, engine, trainer, artifactRoot, task, settings: { ...settings, training: trainingFor(task, training) }, skipUnchanged: config.skipUnchangedRounds,
      screen: screenFor(engine, task, config.poolScreenEpisodes, task.kind === 'chat' && task.world ? () => companyNow(store.sql, task.id, task.world!) : undefined),
      // OELD_EVAL_EPISODES=0 turns off a game's evaluation only: a chat task is always measured.
      gate: createGate(engine, store, task, {
        gameEpisodes: config.evalEpisodes, gate: config.activationGate, gameTolerance: config.gateTolerance,
        gameHistory: config.gateHistory, watchUntrained: config.gateWatchUntrained,
        temperature: training.temperature, topK: training.topK, seed: training.seed,
      }),
      ...(config.extractionUrl ? {
        extractFnFor: (version: string) => openAiExtractFn({
          baseUrl: config.extractionUrl!, modelVersion: version, sampling: EVALUATION_SAMPLING, maxTokens: task.extractionTokens, templateVariables: task.templateVariables,
          ...(config.extractionApiKey ? { apiKey: config.extractionApiKey } : {}),
        }),
      } : {}),
      onProgress: (p) => reportRoundProgress(p, metrics, log),
    }),
  }));
  log.info({ tasks: tasks.map((t) => `${t.id} (${t.kind})`), simulator: simulators.length ? simulators.map((s) => s.task.id) : 'off' }, `learning tasks: ${tasks.map((t) => `${t.id} (${t.kind})`).join(', ')}; simulated: ${simulators.length ? simulators.map((s) => s.task.id).join(', ') : 'none'}`);
  if (simulators.length > 0 && deskTasks.length === 0) {
    log.info(`the built-in support desk is not among the tasks; OELD_TASKS=${[...config.tasks.filter((t) => t !== 'chat'), DESK_TASK_NAME, ...config.tasks.filter((t) => t === 'chat')].join(',')} adds it, with OELD_BASE_MODEL_DIR=models/oeld-desk (a model that serves both; docs/support-desk.md)`);
  }
  // Series that exist (at 0) from the start when learning is on: increase() and the alerts then see
  // the first round, the first failure and the first round's seconds (a labelled counter born at 1
  // shows no increase), and a daemon with learning off has no oeld_rounds_total series at all.
  for (const outcome of ['completed', 'failed']) metrics.roundsTotal.inc({ outcome }, 0);
  for (const stage of ROUND_SECONDS_STAGES) metrics.roundSeconds.inc({ stage }, 0);
  // A chat task's gate measurements are NaN ("not measured yet") until its first round sets them.
  for (const t of tasks) if (t.kind === 'chat') for (const measurement of ['gap_before', 'gap_after', 'retention']) metrics.chatGateKl.set({ task: t.id, measurement }, Number.NaN);
  const versionSeries = new VersionSeries();
  const loop = new LearningLoop({
    store, engine, tasks: runners, artifactRoot,
    simulators,
    trigger: { minInteractions: config.roundMinInteractions, minIntervalSeconds: config.roundMinIntervalS, poolTrajectories: config.poolTrajectories, maxRounds: config.maxRounds, refusalBackoffSeconds: config.refusalBackoffS },
    ...(config.roundCron ? { roundCron: config.roundCron } : {}),
    baseModel: { dir: config.baseModelDir, version: config.baseModelVersion },
    retryAfterFailureMs: 60_000,
    retention: { keepVersions: config.keepVersions, rollbackWindowMs: config.rollbackWindowHours * 3_600_000 },
    simulatorTarget: (task) => Math.max(task.minInteractions, config.roundTrajectories, config.poolTrajectories),
    events: {
      say: (line) => log.info(line),
      onLoadRefused: () => metrics.loadRefusals.inc({ by: 'learning-loop' }),
      onPruned: (r) => { for (const p of r.pruned) { metrics.versionsPruned.inc(); metrics.prunedBytes.inc(p.bytes); } },
      onRoundDone: (o) => {
        metrics.roundsTotal.inc({ outcome: 'completed' });
        metrics.roundStage.set(0);
        const task = o.taskId;
        for (const [stats, version] of [[o.after, o.newVersion], [o.before, o.baseVersion]] as const) {
          if (!stats) continue;
          metrics.validationPassRate.set({ task, version }, stats.passRate);
          metrics.validationResponseTokens.set({ task, version }, stats.meanResponseTokens);
          versionSeries.record(metrics.validationPassRate, { task, version });
          versionSeries.record(metrics.validationResponseTokens, { task, version });
        }
        // Series of versions no longer relevant go: the round's two versions and the newest few stay.
        versionSeries.prune(new Set([o.baseVersion, o.newVersion]), KEPT_VERSION_SERIES);
        for (const [stage, s] of Object.entries(o.seconds)) metrics.roundSeconds.inc({ stage }, s);
        if (o.chat) {
          for (const [measurement, v] of [['gap_before', o.chat.gapBefore], ['gap_after', o.chat.gapAfter], ['retention', o.chat.retentionKl], ['retention_base', o.chat.baseRetentionKl ?? null]] as const) {
            if (v !== null) metrics.chatGateKl.set({ task: o.taskId, measurement }, v);
          }
        }
        void engine.memory().then((m) => metrics.modelTensorBytes.set(m.bytes), () => {});
      },
      onRoundFailed: () => { metrics.roundsTotal.inc({ outcome: 'failed' }); metrics.roundStage.set(0); },
      onRoundSkipped: () => { metrics.roundsTotal.inc({ outcome: 'skipped' }); metrics.roundStage.set(0); },
      onModelLoaded: (version, info) => {
        log.info({ version, parameters: info.parameters, backend: info.backend }, `model ${version} loaded on the ${info.backend} backend (${info.parameters} parameters)`);
        metrics.modelBackend.reset();
        metrics.modelBackend.set({ backend: info.backend }, 1);
        void engine.memory().then((m) => metrics.modelTensorBytes.set(m.bytes), () => {});
      },
      onRoundStarted: () => metrics.roundsStarted.inc(),
      onSimulatorBatch: (task, version, stats) => {
        metrics.simulatorEpisodes.inc({ task, version }, stats.episodes);
        metrics.simulatorPassRate.set({ task, version }, stats.passRate);
        versionSeries.record(metrics.simulatorEpisodes, { task, version });
        versionSeries.record(metrics.simulatorPassRate, { task, version });
        if (stats.factAccuracy !== undefined) {
          metrics.simulatorFactAccuracy.set({ task, version }, stats.factAccuracy);
          versionSeries.record(metrics.simulatorFactAccuracy, { task, version });
        }
        if (stats.changedFacts !== undefined) metrics.simulatorChangedFacts.set({ task }, stats.changedFacts.length);
      },
    },
  });
  return { engine, trainer, checkTrainer, loop, tasks };
}
