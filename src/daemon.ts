import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { migrate } from './db/migrate.ts';
import { describeDatabase, openDatabase } from './db/open-database.ts';
import { withTimeout } from './db/transient-errors.ts';
import { watchDatabase } from './daemon/database-watch.ts';
import { Leadership } from './daemon/leader.ts';
import { createMetricsRefresher } from './daemon/metrics-refresh.ts';
import { createAdminRoutes } from './http/admin-routes.ts';
import { intakeRoute } from './http/intake-route.ts';
import { createMetrics } from './http/metrics.ts';
import { statusPageRoute } from './http/status-page.ts';
import { createHttpServer, type Route } from './http/server.ts';
import type { Logger } from './log.ts';
import { createProjections } from './projections/all-projections.ts';
import { ProjectionRunner } from './projections/projection-runner.ts';
import { slowestProjectionLag } from './projections/checkpoints.ts';
import { replay } from './projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA, staleProjections } from './projections/schema.ts';
import { EventStore } from './store/event-store.ts';
import { KafkaIntake } from './consumers/kafka-intake.ts';
import { kafkaClient, KafkajsBatchConsumer, KafkajsPublisher } from './consumers/kafkajs-bus.ts';
import type { Publisher } from './consumers/message-bus.ts';
import { OutboxRelay } from './publication/outbox-relay.ts';
import { runRelay } from './publication/relay-loop.ts';
import type { Sql } from './db/sql.ts';
import { join } from 'node:path';
import { createGate } from './evaluation/task-gate.ts';
import { openAiExtractFn } from './extraction/openai-endpoint.ts';
import { LearningLoop } from './loop/learning-loop.ts';
import { EVALUATION_SAMPLING } from './model/inference/sampling.ts';
import { workerEngine } from './engine/worker-engine.ts';
import { RoundRunner, type RoundProgress, type RoundSettings } from './rounds/round-runner.ts';
import { loadTasks } from './tasks/task-config.ts';
import type { GameTask, Task } from './tasks/task.ts';
import { readAnchorPrompts } from './evaluation/anchor-prompts.ts';
import { Simulator } from './simulator/simulator.ts';
import { readReportData } from './report/report-data.ts';
import { renderReport } from './report/render-report.ts';
import { DEFAULT_ROUND_TRAINING } from './trainer/opcd-round.ts';

export interface Daemon {
  readonly url: string;
  readonly store: EventStore;
  /** Graceful stop: intake first, then the batch in flight (bounded by the shutdown timeout), then pools. */
  stop(): Promise<void>;
}

/**
 * The composition root: the only place that knows every concrete part. Start order: database,
 * migrations, projection tables, HTTP, then leader election (the leader runs the projections).
 */
export interface DaemonOptions {
  /** Human progress lines of the learning loop (`oeld start` prints them on stdout). */
  say?: (line: string) => void;
}

export async function startDaemon(config: Config, log: Logger, options: DaemonOptions = {}): Promise<Daemon> {
  // Tasks and their files are checked before anything starts: a bad one stops the daemon with its name.
  const tasks = config.learning ? loadTasks(config.tasks, config.tasksFile, { minInteractions: config.roundMinInteractions, maxRetentionKl: config.retentionMaxKl, anchorPromptsFile: config.anchorPromptsFile }) : [];
  for (const t of tasks) if (t.kind === 'chat') readAnchorPrompts(t.anchorPromptsFile);
  log.info({ database: describeDatabase(config) }, 'opening database');
  const sql = await openDatabase(config, (err) => log.warn({ err: err.message }, 'a database connection was lost; it is replaced on next use'));
  try {
    const applied = await migrate(sql);
    if (applied.length) log.info({ applied }, 'migrations applied');
    await createProjectionSchema(sql, LIVE_SCHEMA, createProjections());
  } catch (err) {
    await sql.close();
    throw err;
  }
  const metrics = createMetrics();
  const store = new EventStore(sql);
  const kafka = config.kafkaBrokers ? startKafka(config, log, store, sql, metrics) : undefined;
  if (!kafka) log.info('no Kafka brokers configured (KAFKA_BROKERS): interactions arrive through `oeld ingest` or POST /admin/interactions; nothing is published');
  const runner = new ProjectionRunner(sql, createProjections, { batchSize: config.projectionBatch, pollMs: config.projectionPollMs }, log,
    ({ projection, error }) => { if (error) metrics.projectionErrors.inc({ projection: projection.name }); });
  // Every projection reports 0 errors from the start, so rates and alerts have a series to work on.
  for (const p of runner.projections) metrics.projectionErrors.inc({ projection: p.name }, 0);
  store.onAppended((r, seconds) => {
    metrics.appendSeconds.observe(seconds);
    if (r.duplicates.length) metrics.eventsDeduplicated.inc(r.duplicates.length);
    for (const e of r.appended) metrics.eventsAppended.inc({ type: e.type });
    if (r.appended.length) runner.notify();
  });
  const refreshMetrics = createMetricsRefresher(sql, metrics, tasks, kafka ? () => kafka.relay.backlog() : undefined);
  const database = watchDatabase(sql, config.readinessTimeoutMs, metrics, log);
  await database.check();
  let ready = false;
  let leader = false;
  const learning = config.learning ? createLearning(config, tasks, log, store, metrics, options.say) : undefined;

  const rebuild = (reason: string) => runner.exclusive(async () => {
    log.info({ reason }, 'replaying the event log into fresh projection tables');
    const r = await replay(sql, createProjections, {
      onProgress: (projection, applied) => { if (applied % 100_000 < 5000) log.info({ projection, applied }, 'replay progress'); },
    });
    metrics.projectionRebuilds.inc();
    log.info({ hashes: r.hashes, events: r.events }, 'replay swapped in');
    return r;
  });

  const routes: Route[] = [
    { method: 'GET', path: '/healthz', handle: async () => ({ status: 200, body: { ok: true } }) },
    {
      method: 'GET', path: '/readyz', handle: async () => {
        const db = await database.check();
        if (!db.up) return { status: 503, body: { ready: false, database: `unreachable: ${db.error}` } };
        return ready ? { status: 200, body: { ready: true, leader } } : { status: 503, body: { ready: false } };
      },
    },
    {
      method: 'GET', path: '/metrics', handle: async () => {
        // A scrape answers in time even while the database is away, with the gauges it last read.
        await withTimeout(refreshMetrics(), Math.max(5000, 2 * config.readinessTimeoutMs), 'metrics refresh').catch((err) => log.warn({ err: (err as Error).message }, 'metrics refresh failed'));
        return { status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
      },
    },
    {
      method: 'GET', path: '/report', handle: async () => ({ status: 200, body: renderReport(await readReportData(sql)), contentType: 'text/html; charset=utf-8' }),
    },
    statusPageRoute({
      sql, leader: () => leader, reportAvailable: () => true, tasks,
      kafka: () => (kafka ? kafka.intake.status() : null),
      ingestRate: () => (kafka ? kafka.intake.status().appendedPerSecond : 0),
    }),
    intakeRoute(store, { maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth }),
    ...createAdminRoutes({ sql, store, leader: () => leader, extraStatus: () => ({ kafka: kafka ? kafka.intake.status() : null }), tasks, replay: (until) => until ? runner.exclusive(() => replay(sql, createProjections, until)) : rebuild('admin API'),
      ...(learning ? { requestRound: (taskId?: string) => learning.loop.requestRound(taskId) } : {}) }),
  ];
  const server = createHttpServer(routes, config.adminToken, log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.httpHost, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.httpHost}:${port}`;
  log.info({ url, admin: config.adminToken ? 'on' : 'off (no OELD_ADMIN_TOKEN)' }, 'HTTP server listening');

  const leadership = new Leadership(sql, log, config.leaderRetryMs);
  leadership.start(async (signal) => {
    const stale = await staleProjections(sql, runner.projections);
    if (stale.length) await rebuild(`projection definitions changed: ${stale.join(', ')}`);
    await Promise.all([
      runner.run(signal),
      kafka ? runRelay(kafka.relay, signal, config.projectionPollMs, (n) => metrics.outboxPublished.inc(n), log) : undefined,
      learning ? learning.loop.run(signal).catch((err) => log.error({ err }, 'the learning loop stopped')) : undefined,
    ]);
  }, (isLeader) => { leader = isLeader; metrics.leader.set(isLeader ? 1 : 0); });
  ready = true;

  let stopping: Promise<void> | undefined;
  return {
    url, store,
    stop: () => stopping ??= (async () => {
      ready = false;
      database.stop();
      await kafka?.stop();
      log.info('shutting down: intake stopped');
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      // A batch in flight commits or, past the timeout, is abandoned uncommitted when the pool closes.
      const timeout = new Promise<'timeout'>((r) => setTimeout(r, config.shutdownTimeoutMs, 'timeout').unref());
      if (await Promise.race([leadership.stop().then(() => 'done' as const), timeout]) === 'timeout') {
        log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight work abandoned without commit');
      }
      await learning?.engine.close().catch((err) => log.warn({ err }, 'closing the model worker failed'));
      await kafka?.publisher.close().catch((err) => log.warn({ err }, 'closing the Kafka producer failed'));
      await sql.close();
      log.info('stopped');
    })(),
  };
}

/** The learning loop (run by the leader): model worker, tasks with their round runners and gates, simulator, trigger. */
function createLearning(config: Config, tasks: Task[], log: Logger, store: EventStore, metrics: ReturnType<typeof createMetrics>, say?: (line: string) => void) {
  const engine = workerEngine();
  const artifactRoot = join(config.dataDir, 'artifacts');
  const gameTask = tasks.find((t): t is GameTask => t.kind === 'game');
  if (config.simulator === 'on' && !gameTask) throw new Error(`OELD_SIMULATOR=on: the simulator plays a game task, and OELD_TASKS=${JSON.stringify(config.tasks.join(','))} names none`);
  const simulatorOn = gameTask !== undefined && (config.simulator === 'on' || (config.simulator === 'auto' && !config.kafkaBrokers));
  const training = { ...DEFAULT_ROUND_TRAINING, method: config.distillation, steps: config.roundSteps, batchSize: config.roundBatchSize, learningRate: config.roundLearningRate };
  const settings: RoundSettings = {
    trajectoriesPerRound: config.roundTrajectories, poolSlots: config.poolSlots, poolTrajectories: config.poolTrajectories,
    tokenBudget: config.knowledgeTokenBudget, teacherContext: config.teacherContext, training,
  };
  const runners = tasks.map((task) => ({
    task,
    runner: new RoundRunner({
      store, engine, artifactRoot, task, settings,
      // OELD_EVAL_EPISODES=0 turns off a game's evaluation only: a chat task is always measured.
      gate: createGate(engine, store, task, {
        gameEpisodes: config.evalEpisodes, gate: config.activationGate, gameTolerance: config.gateTolerance,
        temperature: training.temperature, topK: training.topK, seed: training.seed,
      }),
      ...(config.extractionUrl ? {
        extractFnFor: (version: string) => openAiExtractFn({
          baseUrl: config.extractionUrl!, modelVersion: version, sampling: EVALUATION_SAMPLING, maxTokens: task.extractionTokens, templateVariables: task.templateVariables,
          ...(config.extractionApiKey ? { apiKey: config.extractionApiKey } : {}),
        }),
      } : {}),
      onProgress: (p) => reportRoundProgress(p, metrics, log, say),
    }),
  }));
  log.info({ tasks: tasks.map((t) => `${t.id} (${t.kind})`), simulator: simulatorOn ? gameTask!.id : 'off' }, `learning tasks: ${tasks.map((t) => `${t.id} (${t.kind})`).join(', ')}`);
  // Series that exist (at 0) from the start when learning is on: increase() and the alerts then see
  // the first round, the first failure and the first round's seconds (a labelled counter born at 1
  // shows no increase), and a daemon with learning off has no oeld_rounds_total series at all.
  for (const outcome of ['completed', 'failed']) metrics.roundsTotal.inc({ outcome }, 0);
  for (const stage of ROUND_SECONDS_STAGES) metrics.roundSeconds.inc({ stage }, 0);
  // A chat task's gate measurements are NaN ("not measured yet") until its first round sets them.
  for (const t of tasks) if (t.kind === 'chat') for (const measurement of ['gap_before', 'gap_after', 'retention']) metrics.chatGateKl.set({ task: t.id, measurement }, Number.NaN);
  const loop = new LearningLoop({
    store, engine, tasks: runners, artifactRoot,
    simulator: simulatorOn ? {
      task: gameTask!,
      simulator: new Simulator(store, engine, { game: gameTask!.game, batchSize: config.simulatorBatch, maxNewTokens: gameTask!.responseTokens, maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth }),
    } : null,
    trigger: { minInteractions: config.roundMinInteractions, minIntervalSeconds: config.roundMinIntervalS, poolTrajectories: config.poolTrajectories, maxRounds: config.maxRounds },
    ...(config.roundCron ? { roundCron: config.roundCron } : {}),
    baseModel: { dir: config.baseModelDir, version: config.baseModelVersion },
    retryAfterFailureMs: 60_000,
    simulatorTarget: Math.max(gameTask?.minInteractions ?? config.roundMinInteractions, config.roundTrajectories, config.poolTrajectories),
    events: {
      say: (line) => { log.info(line); say?.(line); },
      onRoundDone: (o) => {
        metrics.roundsTotal.inc({ outcome: 'completed' });
        metrics.roundStage.set(0);
        if (o.after) { metrics.validationPassRate.set({ version: o.newVersion }, o.after.passRate); metrics.validationResponseTokens.set({ version: o.newVersion }, o.after.meanResponseTokens); }
        if (o.before) { metrics.validationPassRate.set({ version: o.baseVersion }, o.before.passRate); metrics.validationResponseTokens.set({ version: o.baseVersion }, o.before.meanResponseTokens); }
        for (const [stage, s] of Object.entries(o.seconds)) metrics.roundSeconds.inc({ stage }, s);
        if (o.chat) {
          for (const [measurement, v] of [['gap_before', o.chat.gapBefore], ['gap_after', o.chat.gapAfter], ['retention', o.chat.retentionKl]] as const) {
            if (v !== null) metrics.chatGateKl.set({ task: o.taskId, measurement }, v);
          }
        }
        void engine.memory().then((m) => metrics.modelTensorBytes.set(m.bytes), () => {});
      },
      onRoundFailed: () => { metrics.roundsTotal.inc({ outcome: 'failed' }); metrics.roundStage.set(0); },
      onModelLoaded: (version, info) => {
        log.info({ version, parameters: info.parameters, backend: info.backend }, `model ${version} loaded on the ${info.backend} backend (${info.parameters} parameters)`);
        metrics.modelBackend.reset();
        metrics.modelBackend.set({ backend: info.backend }, 1);
        void engine.memory().then((m) => metrics.modelTensorBytes.set(m.bytes), () => {});
      },
      onRoundStarted: () => metrics.roundsStarted.inc(),
      onSimulatorBatch: (version, stats) => { metrics.simulatorEpisodes.inc({ version }, stats.episodes); metrics.simulatorPassRate.set({ version }, stats.passRate); },
    },
  });
  return { engine, loop, tasks };
}

/** A round's progress: the stage gauge, the step metrics, and a line for `oeld start`. */
function reportRoundProgress(p: RoundProgress, metrics: ReturnType<typeof createMetrics>, log: Logger, say?: (line: string) => void): void {
  metrics.roundStage.set(ROUND_STAGES.indexOf(p.stage) + 1);
  if (p.step) {
    metrics.roundSteps.inc();
    metrics.roundLoss.set(p.step.loss);
    metrics.roundTokensPerSecond.set(p.step.trainedTokens / Math.max(1e-3, p.step.timings.backwardMs / 1000));
    say?.(`round: train step ${p.step.step}/${p.step.of} loss ${p.step.loss.toFixed(4)} grad norm ${p.step.gradNorm.toFixed(3)} response tokens ${p.step.responseTokens.toFixed(1)} (sampling ${(p.step.timings.samplingMs / 1000).toFixed(1)} s, teacher ${(p.step.timings.teacherMs / 1000).toFixed(1)} s, backward ${(p.step.timings.backwardMs / 1000).toFixed(1)} s)`);
  } else {
    say?.(`round: ${p.stage}${p.done !== undefined ? ` ${p.done}${p.of !== undefined ? `/${p.of}` : ''}` : ''}${p.message ? ` (${p.message})` : ''}`);
  }
  log.debug({ round: p }, 'round progress');
}

const ROUND_STAGES = ['collect', 'extract', 'train', 'evaluate', 'record'] as const;
/** The stages of oeld_round_seconds_total: the round's stages, and the training step's parts (train is their sum plus checkpointing). */
const ROUND_SECONDS_STAGES = ['collect', 'extract', 'train', 'sampling', 'teacher', 'backward', 'evaluate', 'record'] as const;

/** Kafka intake (every daemon is a group member) and the publication relay (run by the leader). */
function startKafka(config: Config, log: Logger, store: EventStore, sql: Sql, metrics: ReturnType<typeof createMetrics>) {
  const client = kafkaClient(config, log);
  const publisher: Publisher = new KafkajsPublisher(client);
  let intake!: KafkaIntake;
  const consumer = new KafkajsBatchConsumer(client, config.kafkaInteractionsTopic, config.kafkaGroupId, config.kafkaSessionTimeoutMs, {
    onRebalance: (a) => intake.onRebalance(a),
    onCrash: (e, restarting) => intake.onCrash(e, restarting),
  }, config.kafkaFetchMaxWaitMs);
  intake = new KafkaIntake(store, consumer, publisher, {
    groupId: config.kafkaGroupId, topic: config.kafkaInteractionsTopic, deadLetterTopic: config.kafkaDeadLetterTopic, pauseLagEvents: config.pauseLagEvents,
    maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth, deadLetterCopyMaxBytes: config.deadLetterCopyMaxBytes,
  }, metrics, log, () => slowestProjectionLag(sql));
  const relay = new OutboxRelay(sql, publisher, config.kafkaModelVersionsTopic);
  let stopped = false;
  // Brokers may be down at start: keep trying in the background instead of failing the daemon.
  const starting = (async () => {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        await intake.start();
        log.info({ brokers: config.kafkaBrokers, topic: config.kafkaInteractionsTopic, group: config.kafkaGroupId }, 'Kafka intake started');
        return;
      } catch (err) {
        log.error({ err, attempt }, 'Kafka intake could not start; retrying in 5 s');
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
  })();
  return {
    intake, relay, publisher,
    async stop() { stopped = true; await starting; await intake.stop(); },
  };
}
