import type { Sql } from '../db/sql.ts';
import type { Logger } from '../log.ts';
import type { Processor } from '../processing/processor.ts';
import { runLoop } from '../processing/run-loop.ts';
import type { Projection } from './projection.ts';
import { Projector } from './projector.ts';

export interface RunnerOptions { batchSize: number; pollMs: number }

export interface ProjectionProgress { name: string; globalPosition: number; caughtUp: boolean }

/**
 * Keeps every processor (the projections, and the outbox relay where Kafka is configured) on the
 * log's new events. One loop, one batch at a time, so that exclusive work (a replay) can wait for
 * the batch in flight and run with every processor still.
 */
export class ProjectionRunner {
  private projectors: Projector[];
  private readonly others: Processor[];
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
    private readonly onBatch: (r: { processor: string; applied: number; error?: unknown }) => void = () => {},
    /** Processors besides the projections (the outbox relay): not rebuilt by a replay, paused by it. */
    others: Processor[] = [],
  ) {
    this.projectors = this.build();
    this.others = others;
  }

  private build(): Projector[] {
    return this.makeProjections().map((p) => new Projector(this.sql, p, { batchSize: this.options.batchSize }));
  }

  get projections(): Projection[] { return this.projectors.map((p) => p.projection); }

  /** New events were appended: look now instead of at the next poll. */
  notify(): void { this.wake?.(); }

  async run(signal: AbortSignal): Promise<void> {
    await runLoop(signal, async () => {
      if (this.paused) return 'idle';
      let release!: () => void;
      this.idle = new Promise((r) => { release = r; });
      let allCaughtUp = true;
      let failed: unknown;
      try {
        for (const p of [...this.projectors, ...this.others]) {
          if (signal.aborted) break;
          const name = p instanceof Projector ? p.projection.name : p.name;
          try {
            const r = await p.step();
            if (!r.caughtUp) allCaughtUp = false;
            if (p instanceof Projector) this.progress.set(name, { name, globalPosition: p.checkpoint.globalPosition, caughtUp: r.caughtUp });
            this.onBatch({ processor: name, applied: r.applied });
          } catch (err) {
            // The others still run this pass; the loop backs off once they have.
            failed = err;
            this.onBatch({ processor: name, applied: 0, error: err });
            this.log.error({ err, processor: name }, `${name} failed a batch; it will be retried from its checkpoint`);
          }
        }
      } finally {
        release();
      }
      if (failed !== undefined) throw failed;
      return allCaughtUp ? 'idle' : 'busy';
    }, {
      idleMs: this.options.pollMs,
      // Capped at 5 s: after a database outage the processors catch up within seconds of its return.
      backoff: { firstMs: 400, maxMs: 5000 },
      sleep: (ms, s) => this.sleep(ms, s),
    });
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
