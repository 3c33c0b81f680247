import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import { migrate } from './db/migrate.ts';
import { describeDatabase, openDatabase } from './db/open-database.ts';
import { Leadership } from './daemon/leader.ts';
import { createMetricsRefresher } from './daemon/metrics-refresh.ts';
import { createAdminRoutes } from './http/admin-routes.ts';
import { createMetrics } from './http/metrics.ts';
import { createHttpServer, type Route } from './http/server.ts';
import type { Logger } from './log.ts';
import { createProjections } from './projections/all-projections.ts';
import { ProjectionRunner } from './projections/projection-runner.ts';
import { replay } from './projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA, staleProjections } from './projections/schema.ts';
import { EventStore } from './store/event-store.ts';

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
  log.info({ database: describeDatabase(config) }, 'opening database');
  const sql = await openDatabase(config);
  try {
    const applied = await migrate(sql);
    if (applied.length) log.info({ applied }, 'migrations applied');
    await createProjectionSchema(sql, LIVE_SCHEMA, createProjections());
  } catch (err) {
    await sql.close();
    throw err;
  }
  log.info('no Kafka brokers configured: interactions arrive through `oeld ingest` and the admin API only');

  const metrics = createMetrics();
  const store = new EventStore(sql);
  const runner = new ProjectionRunner(sql, createProjections, { batchSize: config.projectionBatch, pollMs: config.projectionPollMs }, log,
    ({ projection, error }) => { if (error) metrics.projectionErrors.inc({ projection: projection.name }); });
  store.onAppended((r) => {
    if (r.duplicates.length) metrics.eventsDeduplicated.inc(r.duplicates.length);
    for (const e of r.appended) metrics.eventsAppended.inc({ type: e.type });
    if (r.appended.length) runner.notify();
  });
  const refreshMetrics = createMetricsRefresher(sql, metrics);
  let ready = false;
  let leader = false;

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
        await sql.query('SELECT 1');
        return ready ? { status: 200, body: { ready: true, leader } } : { status: 503, body: { ready: false } };
      },
    },
    {
      method: 'GET', path: '/metrics', handle: async () => {
        await refreshMetrics().catch((err) => log.warn({ err }, 'metrics refresh failed'));
        return { status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
      },
    },
    ...createAdminRoutes({ sql, store, leader: () => leader, replay: (until) => until ? runner.exclusive(() => replay(sql, createProjections, until)) : rebuild('admin API') }),
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
    await runner.run(signal);
  }, (isLeader) => { leader = isLeader; metrics.leader.set(isLeader ? 1 : 0); });
  ready = true;

  let stopping: Promise<void> | undefined;
  return {
    url, store,
    stop: () => stopping ??= (async () => {
      ready = false;
      log.info('shutting down: intake stopped');
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
      // A batch in flight commits or, past the timeout, is abandoned uncommitted when the pool closes.
      const timeout = new Promise<'timeout'>((r) => setTimeout(r, config.shutdownTimeoutMs, 'timeout').unref());
      if (await Promise.race([leadership.stop().then(() => 'done' as const), timeout]) === 'timeout') {
        log.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight work abandoned without commit');
      }
      await sql.close();
      log.info('stopped');
    })(),
  };
}
