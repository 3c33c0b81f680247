import type { Sql } from './sql.ts';
import { withTimeout } from './transient-errors.ts';

export type ProbeResult = { up: true; ms: number } | { up: false; error: string };

/**
 * Asks the database `SELECT 1` with at most one probe in flight, and answers within `timeoutMs`
 * whatever the database does: readiness must be known even when the network to it is silent.
 */
export class DatabaseProbe {
  private inFlight?: Promise<ProbeResult>;
  private readonly listeners: ((r: ProbeResult) => void)[] = [];

  constructor(private readonly sql: Sql, private readonly timeoutMs: number) {}

  /** Hears every probe's result (for a gauge, and for logging the changes). */
  onResult(l: (r: ProbeResult) => void): void { this.listeners.push(l); }

  check(): Promise<ProbeResult> {
    // The embedded database lives in this process and cannot be away; its one session may be busy
    // with a long transaction (a replay), which is not an outage.
    if (this.sql.kind === 'pglite') return Promise.resolve(this.report({ up: true, ms: 0 }));
    this.inFlight ??= (async (): Promise<ProbeResult> => {
      const t0 = performance.now();
      try {
        await this.sql.query('SELECT 1');
        return { up: true, ms: performance.now() - t0 };
      } catch (err) {
        return { up: false, error: (err as Error).message };
      }
    })().finally(() => { this.inFlight = undefined; });
    const timedOut: ProbeResult = { up: false, error: `no answer within ${this.timeoutMs} ms` };
    return withTimeout(this.inFlight, this.timeoutMs, 'readiness probe').catch(() => timedOut).then((r) => this.report(r));
  }

  private report(r: ProbeResult): ProbeResult {
    for (const l of this.listeners) l(r);
    return r;
  }
}
