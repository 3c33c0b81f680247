/**
 * The routes an operator's tools poll: /healthz (the process is up), /readyz (the database
 * answered its probe within the readiness timeout, and the daemon has started), /metrics
 * (Prometheus; it answers in time even while the database is away, with the gauges it last read),
 * /report (the learning report).
 */
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';
import type { Route } from './server.ts';

export interface OperationalRouteDeps {
  database: { check(): Promise<{ up: boolean; error?: string }> };
  ready: () => boolean;
  leader: () => boolean;
  metrics: Metrics;
  /** Reads the stored-state gauges; bounded in time by the caller. */
  refreshMetrics: () => Promise<unknown>;
  report: () => Promise<string>;
  log: Logger;
}

export function operationalRoutes(d: OperationalRouteDeps): Route[] {
  return [
    { method: 'GET', path: '/healthz', handle: async () => ({ status: 200, body: { ok: true } }) },
    {
      method: 'GET', path: '/readyz', handle: async () => {
        const db = await d.database.check();
        if (!db.up) return { status: 503, body: { ready: false, database: `unreachable: ${db.error}` } };
        return d.ready() ? { status: 200, body: { ready: true, leader: d.leader() } } : { status: 503, body: { ready: false } };
      },
    },
    {
      method: 'GET', path: '/metrics', handle: async () => {
        await d.refreshMetrics().catch((err) => d.log.warn({ err: (err as Error).message }, 'metrics refresh failed'));
        return { status: 200, body: await d.metrics.registry.metrics(), contentType: d.metrics.registry.contentType };
      },
    },
    { method: 'GET', path: '/report', handle: async () => ({ status: 200, body: await d.report(), contentType: 'text/html; charset=utf-8' }) },
  ];
}
