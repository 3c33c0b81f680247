import type { Sql } from '../db/sql.ts';
import type { Processor } from '../processing/processor.ts';
import { eventCount, readEventsBatch, START, type Checkpoint } from '../store/read-events.ts';
import { claimCheckpoint, loadCheckpoint, storeCheckpoint } from './checkpoints.ts';
import type { Projection } from './projection.ts';
import { LIVE_SCHEMA, useSchema } from './schema.ts';

export interface ProjectorOptions {
  schema?: string;
  batchSize?: number;
  untilPosition?: number;
  untilTime?: Date;
}

const same = (a: Checkpoint, b: Checkpoint) => a.transactionId === b.transactionId && a.globalPosition === b.globalPosition;

/**
 * Runs one projection: reads the next batch after its checkpoint and applies it in one
 * transaction together with the compare-and-set checkpoint move. A crash anywhere leaves the
 * tables and the checkpoint as of the last commit, so nothing is lost or applied twice.
 */
export class Projector implements Processor {
  private at: Checkpoint = START;
  private loaded = false;
  readonly schema: string;

  constructor(private readonly sql: Sql, readonly projection: Projection, private readonly options: ProjectorOptions = {}) {
    this.schema = options.schema ?? LIVE_SCHEMA;
  }

  get name(): string { return this.projection.name; }

  get checkpoint(): Checkpoint { return this.at; }

  /** (Re)loads the checkpoint and the projection's in-memory state from its tables. */
  async load(): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await useSchema(tx, this.schema);
      this.at = await loadCheckpoint(tx, this.projection.name);
      await this.projection.load(tx);
    });
    this.loaded = true;
  }

  /** Applies one batch; returns how many events it folded and whether it reached the head. */
  async step(): Promise<{ applied: number; caughtUp: boolean }> {
    if (!this.loaded) await this.load();
    const batch = await readEventsBatch(this.sql, {
      after: this.at, limit: this.options.batchSize ?? 1000, types: this.projection.types,
      ...(this.projection.dataFields ? { dataFieldsByType: this.projection.dataFields } : {}),
      ...(this.projection.foldedInDatabase ? { runsOf: this.projection.foldedInDatabase } : {}),
      untilPosition: this.options.untilPosition, untilTime: this.options.untilTime,
    });
    if (same(batch.next, this.at)) return { applied: 0, caughtUp: true };
    try {
      await this.sql.transaction(async (tx) => {
        await useSchema(tx, this.schema);
        await claimCheckpoint(tx, this.projection.name, this.at);
        if (batch.events.length) await this.projection.apply(tx, batch.events);
        await storeCheckpoint(tx, this.projection.name, this.at, batch.next);
      });
    } catch (err) {
      this.loaded = false; // in-memory state may hold the rolled-back batch
      throw err;
    }
    this.at = batch.next;
    return { applied: eventCount(batch.events), caughtUp: batch.caughtUp };
  }

  /** Steps until caught up with what is safe to read now. */
  async catchUp(onProgress?: (applied: number) => void): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.step();
      total += r.applied;
      if (r.applied) onProgress?.(total);
      if (r.caughtUp) return total;
    }
  }
}
