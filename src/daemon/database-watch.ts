import { DatabaseProbe, type ProbeResult } from '../db/database-probe.ts';
import type { Sql } from '../db/sql.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';

export interface DatabaseWatch {
  /** A probe now (shared with one in flight), answered within the readiness timeout. */
  check(): Promise<ProbeResult>;
  stop(): void;
}

/**
 * Probes the database every `everyMs` (and on each check(), as /readyz makes): the
 * oeld_database_up gauge, and one log line when it goes away and one, with how long it was
 * gone, when it is back.
 */
export function watchDatabase(sql: Sql, timeoutMs: number, metrics: Metrics, log: Logger, everyMs = 2000): DatabaseWatch {
  const probe = new DatabaseProbe(sql, timeoutMs);
  let downSince: number | undefined;
  probe.onResult((r) => {
    metrics.databaseUp.set(r.up ? 1 : 0);
    if (!r.up && downSince === undefined) { downSince = Date.now(); log.error({ error: r.error }, 'the database is not answering: /readyz answers 503 until it does'); }
    if (r.up && downSince !== undefined) { log.info({ awayMs: Date.now() - downSince }, 'the database answers again'); downSince = undefined; }
  });
  const timer = setInterval(() => { void probe.check(); }, everyMs);
  return { check: () => probe.check(), stop: () => clearInterval(timer) };
}
