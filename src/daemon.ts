import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { startKafka } from './consumers/kafka-runtime.ts';
import { migrate } from './db/migrate.ts';
import { describeDatabase, openDatabase } from './db/open-database.ts';
import { withTimeout } from './db/transient-errors.ts';
import { watchDatabase } from './daemon/database-watch.ts';
import { createLearning } from './daemon/learning.ts';
import { createServingNotify } from './daemon/serving-notify.ts';
import { createEngine } from './daemon/model-runtime.ts';
import { Leadership } from './daemon/leader.ts';
import { createMetricsRefresher } from './daemon/metrics-refresh.ts';
import { readAnchorPrompts } from './evaluation/anchor-prompts.ts';
import { join } from 'node:path';
import { createAdminRoutes } from './http/admin-routes.ts';
import { createServing } from './serving/serving.ts';
import type { ModelEngine } from './engine/model-engine.ts';
import { intakeRoute } from './http/intake-route.ts';
import { v1InteractionsRoute } from './http/v1-interactions-route.ts';
import { createMetrics } from './http/metrics.ts';
import { operationalRoutes } from './http/operational-routes.ts';
import { statusPageRoute } from './http/status-page.ts';
import { createHttpServer, isLoopbackHost, type Route } from './http/server.ts';
import type { Logger } from './log.ts';
import { createProjections } from './projections/all-projections.ts';
import { ProjectionRunner } from './projections/projection-runner.ts';
import { replay } from './projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA, staleProjections } from './projections/schema.ts';
import { readReportData } from './report/report-data.ts';
import { renderReport } from './report/render-report.ts';
import { EventStore } from './store/event-store.ts';
import { loadTasks } from './tasks/task-config.ts';

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
export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  // Tasks and their files are checked before anything starts: a bad one stops the daemon with its name.
  const tasks = loadTasks(config.tasks, config.tasksFile, { minInteractions: config.roundMinInteractions, maxRetentionKl: config.retentionMaxKl, maxBaseRetentionKl: config.retentionMaxBaseKl, anchorPromptsFile: config.anchorPromptsFile });
  if (config.learning) for (const t of tasks) if (t.kind === 'chat') readAnchorPrompts(t.anchorPromptsFile);
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
  if (!kafka) log.info('no Kafka brokers configured (KAFKA_BROKERS): interactions arrive through `oeld ingest`, POST /v1/interactions, POST /admin/interactions or the OpenAI-compatible endpoint; nothing is published');
  // One runner for every checkpointed processor: the projections and, with Kafka, the outbox relay.
  const runner = new ProjectionRunner(sql, createProjections, { batchSize: config.projectionBatch, pollMs: config.projectionPollMs }, log,
    ({ processor, applied, error }) => {
      if (kafka && processor === kafka.relay.name) { if (applied) metrics.outboxPublished.inc(applied); return; }
      if (error) metrics.projectionErrors.inc({ projection: processor });
    }, kafka ? [kafka.relay] : []);
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
  const learning = config.learning ? createLearning(config, tasks, log, store, metrics) : undefined;
  const servingNotify = createServingNotify(config, sql, metrics, log);
  await learning?.checkTrainer();

  // The endpoint's own engine (OELD_SERVE_WORKER=own, or no learning loop) starts at its first request.
  let servingEngine: ModelEngine | undefined;
  const sharedEngine = config.serveWorker === 'shared' ? learning?.engine : undefined;
  const serving = config.serve ? createServing(sql, store, () => sharedEngine ?? (servingEngine ??= createEngine(config)), {
    servedNames: config.servedModelNames, maxQueued: config.serveMaxQueued, maxBatch: config.serveMaxBatch, defaultMaxTokens: config.serveMaxTokens, record: config.serveRecord, recordFlushMs: config.serveRecordFlushMs,
  }, metrics, log) : undefined;

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
    ...operationalRoutes({
      database, ready: () => ready, leader: () => leader, metrics, log,
      refreshMetrics: () => { metrics.serveQueued.set(serving?.queued() ?? 0); return withTimeout(refreshMetrics(), Math.max(5000, 2 * config.readinessTimeoutMs), 'metrics refresh'); },
      report: async () => renderReport(await readReportData(sql)),
    }),
    statusPageRoute({
      sql, leader: () => leader, reportAvailable: () => true, tasks,
      kafka: () => (kafka ? kafka.intake.status() : null),
      ingestRate: () => (kafka ? kafka.intake.status().appendedPerSecond : 0),
      servingNotify: () => servingNotify?.notifier.status() ?? null,
    }),
    intakeRoute(store, { maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth }),
    v1InteractionsRoute(store, { maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth }),
    ...(serving?.routes ?? []),
    ...createAdminRoutes({ sql, store, artifactRoot: join(config.dataDir, 'artifacts'), leader: () => leader, extraStatus: () => ({ kafka: kafka ? kafka.intake.status() : null, servingNotify: servingNotify?.notifier.status() ?? null }), tasks, replay: (until) => until ? runner.exclusive(() => replay(sql, createProjections, until)) : rebuild('admin API'),
      ...(learning ? { requestRound: (taskId?: string) => learning.loop.requestRound(taskId) } : {}) }),
  ];
  const server = createHttpServer(routes, { adminToken: config.adminToken, apiToken: config.apiToken, apiOpenWithoutToken: isLoopbackHost(config.httpHost) }, log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.httpHost, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.httpHost}:${port}`;
  log.info({ url, admin: config.adminToken ? 'on' : 'off (no OELD_ADMIN_TOKEN)' }, 'HTTP server listening');
  const apiOpen = config.apiToken !== undefined || isLoopbackHost(config.httpHost);
  if (serving && apiOpen) {
    log.info({ endpoint: `${url}/v1`, models: config.servedModelNames }, `OpenAI-compatible endpoint: ${url}/v1 (model ${JSON.stringify(config.servedModelNames[0] ?? 'the active version')}${config.apiToken ? ', bearer token OELD_API_TOKEN' : ''}); every answer is recorded, POST /v1/feedback adds its outcome`);
  } else if (serving) {
    log.warn(`the OpenAI-compatible endpoint is off: OELD_HTTP_HOST=${config.httpHost} is not a loopback address and OELD_API_TOKEN is not set`);
  }

  const leadership = new Leadership(sql, log, config.leaderRetryMs);
  leadership.start(async (signal) => {
    const stale = await staleProjections(sql, runner.projections);
    if (stale.length) await rebuild(`projection definitions changed: ${stale.join(', ')}`);
    await Promise.all([
      runner.run(signal),
      learning ? learning.loop.run(signal).catch((err) => log.error({ err }, 'the learning loop stopped')) : undefined,
      servingNotify?.run(signal),
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
      // A round training in the torch process fails now (RoundFailed, nothing published) rather than at the timeout.
      await learning?.trainer.close().catch((err) => log.warn({ err }, 'stopping the trainer failed'));
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      // A batch in flight commits or, past the timeout, is abandoned uncommitted when the pool closes.
      const timeout = new Promise<'timeout'>((r) => setTimeout(r, config.shutdownTimeoutMs, 'timeout').unref());
      if (await Promise.race([leadership.stop().then(() => 'done' as const), timeout]) === 'timeout') {
        log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight work abandoned without commit');
      }
      await serving?.close().catch((err) => log.warn({ err }, 'recording the last served exchanges failed'));
      await learning?.engine.close().catch((err) => log.warn({ err }, 'closing the model worker failed'));
      await servingEngine?.close().catch((err) => log.warn({ err }, 'closing the serving model worker failed'));
      await kafka?.publisher.close().catch((err) => log.warn({ err }, 'closing the Kafka producer failed'));
      await sql.close();
      log.info('stopped');
    })(),
  };
}
