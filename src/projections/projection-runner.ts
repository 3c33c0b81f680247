import type { Sql } from '../db/sql.ts';
import type { Logger } from '../log.ts';
import type { Processor } from '../processing/processor.ts';
import { runLoop, type StepOutcome } from '../processing/run-loop.ts';
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
  private readonly wakers = new Set<() => void>();
  /** Passes running now, and who waits for none to run (exclusive work). */
  private inFlight = 0;
  private readonly idleWaiters: (() => void)[] = [];
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
  notify(): void { for (const wake of [...this.wakers]) wake(); }

  /**
   * Two loops of the same kind: the projections in one, the other processors (the relay) in the
   * other, so that a broker that is away (the relay's sends waiting and failing) never holds up
   * the projections, nor their failures the relay. Both pause for exclusive work.
   */
  async run(signal: AbortSignal): Promise<void> {
    const options = {
      idleMs: this.options.pollMs,
      // Capped at 5 s: after a database outage the processors catch up within seconds of its return.
      backoff: { firstMs: 400, maxMs: 5000 },
      sleep: (ms: number, s: AbortSignal) => this.sleep(ms, s),
    };
    await Promise.all([
      runLoop(signal, () => this.pass(signal, () => this.projectors), options),
      this.others.length ? runLoop(signal, () => this.pass(signal, () => this.others), options) : undefined,
    ]);
  }

  /** One batch of each processor; throws the last failure after the others had their turn. */
  private async pass(signal: AbortSignal, processors: () => readonly Processor[]): Promise<StepOutcome> {
    if (this.paused) return 'idle';
    this.inFlight++;
    let allCaughtUp = true;
    let failed: unknown;
    try {
      for (const p of processors()) {
        if (signal.aborted) break;
        try {
          const r = await p.step();
          if (!r.caughtUp) allCaughtUp = false;
          if (p instanceof Projector) this.progress.set(p.name, { name: p.name, globalPosition: p.checkpoint.globalPosition, caughtUp: r.caughtUp });
          this.onBatch({ processor: p.name, applied: r.applied });
        } catch (err) {
          failed = err;
          this.onBatch({ processor: p.name, applied: 0, error: err });
          this.log.error({ err, processor: p.name }, `${p.name} failed a batch; it will be retried from its checkpoint`);
        }
      }
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    if (failed !== undefined) throw failed;
    return allCaughtUp ? 'idle' : 'busy';
  }

  private untilIdle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Runs fn while no batch is in flight and none starts, then rebuilds the projectors from their
   * tables (fn may have swapped them, as a replay does).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusiveTail.then(async () => {
      this.paused++;
      try {
        await this.untilIdle();
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
      const done = () => { clearTimeout(t); signal.removeEventListener('abort', done); this.wakers.delete(done); resolve(); };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
