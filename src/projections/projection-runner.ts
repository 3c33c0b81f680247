import type { Sql } from '../db/sql.ts';
import type { Logger } from '../log.ts';
import type { Projection } from './projection.ts';
import { Projector } from './projector.ts';

export interface RunnerOptions { batchSize: number; pollMs: number }

export interface ProjectionProgress { name: string; globalPosition: number; caughtUp: boolean }

/**
 * Keeps every projection folding new events. One loop, one batch at a time, so that exclusive
 * work (a replay) can wait for the batch in flight and run with the projections still.
 */
export class ProjectionRunner {
  private projectors: Projector[];
  private wake?: () => void;
  private idle: Promise<void> = Promise.resolve();
  private exclusiveTail: Promise<unknown> = Promise.resolve();
  private paused = 0;
  readonly progress = new Map<string, ProjectionProgress>();

  constructor(
    private readonly sql: Sql,
    private readonly makeProjections: () => Projection[],
    private readonly options: RunnerOptions,
    private readonly log: Logger,
    private readonly onBatch: (r: { projection: Projection; applied: number; error?: unknown }) => void = () => {},
  ) {
    this.projectors = this.build();
  }

  private build(): Projector[] {
    return this.makeProjections().map((p) => new Projector(this.sql, p, { batchSize: this.options.batchSize }));
  }

  get projections(): Projection[] { return this.projectors.map((p) => p.projection); }

  /** New events were appended: look now instead of at the next poll. */
  notify(): void { this.wake?.(); }

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (this.paused) { await this.sleep(this.options.pollMs, signal); continue; }
      let release!: () => void;
      this.idle = new Promise((r) => { release = r; });
      let allCaughtUp = true;
      try {
        for (const p of this.projectors) {
          if (signal.aborted) break;
          try {
            const r = await p.step();
            if (!r.caughtUp) allCaughtUp = false;
            this.progress.set(p.projection.name, { name: p.projection.name, globalPosition: p.checkpoint.globalPosition, caughtUp: r.caughtUp });
            this.onBatch({ projection: p.projection, applied: r.applied });
            failures = 0;
          } catch (err) {
            failures++;
            allCaughtUp = false;
            this.onBatch({ projection: p.projection, applied: 0, error: err });
            this.log.error({ err, projection: p.projection.name }, 'projection batch failed; it will be retried from its checkpoint');
          }
        }
      } finally {
        release();
      }
      // Capped at 5 s: after a database outage the projections catch up within seconds of its return.
      if (failures) await this.sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 8)), signal);
      else if (allCaughtUp) await this.sleep(this.options.pollMs, signal);
    }
  }

  /**
   * Runs fn while no batch is in flight and none starts, then rebuilds the projectors from their
   * tables (fn may have swapped them, as a replay does).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusiveTail.then(async () => {
      this.paused++;
      try {
        await this.idle;
        return await fn();
      } finally {
        this.projectors = this.build();
        this.paused--;
        this.notify();
      }
    });
    this.exclusiveTail = run.catch(() => {});
    return run;
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); signal.removeEventListener('abort', done); this.wake = undefined; resolve(); };
      const t = setTimeout(done, ms);
      this.wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
