import type { Sql } from '../db/sql.ts';
import type { Logger } from '../log.ts';
import { withTimeout } from '../db/transient-errors.ts';

export const LEADER_LOCK = 'oeld:leader';

/**
 * Leader election by a session-level advisory lock held on a dedicated connection: only the
 * leader runs projections and rounds. If that connection dies the lock is gone, so the leader
 * checks its session and steps down (stopping its work) as soon as the check fails or goes
 * unanswered for `checkTimeoutMs` (a silent network: the server may already have given the lock
 * to another daemon). Election is retried every `retryMs` for as long as the daemon runs.
 */
export class Leadership {
  private stopped = false;
  private wake?: () => void;
  private done?: Promise<void>;

  constructor(private readonly sql: Sql, private readonly log: Logger, private readonly retryMs: number, private readonly checkTimeoutMs = Math.max(1000, retryMs)) {}

  /** Runs `lead` while leader; `lead` receives a signal that aborts when leadership is lost or stop() is called. */
  start(lead: (signal: AbortSignal) => Promise<void>, onChange: (leader: boolean) => void): void {
    this.done = (async () => {
      while (!this.stopped) {
        try {
          await this.sql.session(async (s) => {
            const { rows } = await this.timed(s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [LEADER_LOCK]), 'leader election');
            if (!rows[0]?.ok) return;
            const abort = new AbortController();
            onChange(true);
            this.log.info('elected leader');
            const work = lead(abort.signal).catch((err) => this.log.error({ err }, 'leader work failed'));
            try {
              while (!this.stopped) {
                await this.sleep(this.retryMs);
                await this.timed(s.query('SELECT 1'), 'leader session check');
              }
            } catch (err) {
              this.log.error({ err }, 'leader session lost; stepping down');
            } finally {
              abort.abort();
              await work;
              onChange(false);
              await this.timed(s.query('SELECT pg_advisory_unlock(hashtext($1))', [LEADER_LOCK]), 'leader unlock').catch(() => {});
            }
          });
        } catch (err) {
          this.log.warn({ err }, 'leader election attempt failed');
        }
        if (!this.stopped) await this.sleep(this.retryMs);
      }
    })();
  }

  /**
   * A session query given at most checkTimeoutMs. Not on the embedded database: its one session
   * cannot be lost, and a long transaction ahead of the check (a replay) is no reason to step down.
   */
  private timed<T>(query: Promise<T>, what: string): Promise<T> {
    return this.sql.kind === 'pglite' ? query : withTimeout(query, this.checkTimeoutMs, what);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => { clearTimeout(t); resolve(); };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
  }
}
