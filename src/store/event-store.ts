import type { Queryable, Sql } from '../db/sql.ts';
import { appendEvents, appendIfAllNew, type AppendRequest, type AppendResult } from './append-events.ts';
import { DuplicateEventConflictError, isUniqueViolation } from './errors.ts';
import { headPosition } from './log-queries.ts';
import { readEventsBatch, type Batch, type ReadOptions } from './read-events.ts';

export interface AppendOptions {
  /** Events were validated by the caller (ingestion validates to dead-letter bad input). */
  trusted?: boolean;
  /** 'throw' (default) fails the append when an id is reused with other content; 'report' returns it. */
  onConflict?: 'throw' | 'report';
  /** Extra statements in the same transaction (e.g. Kafka dedupe keys), run after the append. */
  alsoInTransaction?: (tx: Queryable, result: AppendResult) => Promise<void>;
}

/** Hears every committed append, with how long it took (seconds, from the first statement to the commit). */
export interface AppendListener { (result: AppendResult, seconds: number): void }

/** The event store: append (effectively once) and read in gap-safe global order. */
export class EventStore {
  private readonly listeners: AppendListener[] = [];
  constructor(readonly sql: Sql) {}

  onAppended(l: AppendListener): void { this.listeners.push(l); }

  async append(requests: AppendRequest[], options: AppendOptions = {}): Promise<AppendResult> {
    // Two writers racing with the same new event id: the loser hits the unique index; on retry
    // it sees the winner's row and treats its copy as a duplicate.
    const t0 = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        // Without expected versions or statements of the caller's, new events need no transaction
        // around their one statement; ids already stored (null: nothing written) take the full path.
        const single = !options.alsoInTransaction && requests.every((r) => (r.expectedVersion ?? 'any') === 'any');
        const result = (single ? await appendIfAllNew(this.sql, requests, options) : null) ?? await this.sql.transaction(async (tx) => {
          const r = await appendEvents(tx, requests, options);
          if (r.conflicts.length && (options.onConflict ?? 'throw') === 'throw') throw new DuplicateEventConflictError(r.conflicts);
          if (options.alsoInTransaction) await options.alsoInTransaction(tx, r);
          return r;
        });
        const seconds = (performance.now() - t0) / 1000;
        for (const l of this.listeners) l(result, seconds);
        return result;
      } catch (err) {
        if (attempt < 3 && isUniqueViolation(err, 'events_event_id_key')) continue;
        throw err;
      }
    }
  }

  /**
   * Runs fn in one transaction in which it may append (and do its own statements, such as
   * recording a Kafka offset); listeners hear of the appends only after the commit.
   */
  async transact<T>(fn: (tx: Queryable, append: (requests: AppendRequest[], options?: { trusted?: boolean }) => Promise<AppendResult>) => Promise<T>): Promise<T> {
    const results: AppendResult[] = [];
    const t0 = performance.now();
    const value = await this.sql.transaction((tx) => fn(tx, async (requests, options = {}) => {
      const r = await appendEvents(tx, requests, options);
      results.push(r);
      return r;
    }));
    const seconds = (performance.now() - t0) / 1000;
    for (const r of results) for (const l of this.listeners) l(r, seconds);
    return value;
  }

  read(options: Omit<ReadOptions, 'runsOf'>): Promise<Batch> { return readEventsBatch(this.sql, options); }
  head(): Promise<number> { return headPosition(this.sql); }
}
