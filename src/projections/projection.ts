import type { Queryable } from '../db/sql.ts';
import type { RecordedEvent } from '../events/envelope.ts';
import type { EventType } from '../events/schemas.ts';
import type { DataFields, EventRun } from '../store/read-events.ts';

/**
 * A projection folds events into tables of its own. Its tables live in a projection schema
 * (live: oeld_proj; a replay builds a fresh one and swaps it in), so every statement uses
 * unqualified names and the projector sets the search path.
 */
export interface Projection {
  readonly name: string;
  /** The only event types it reads; the checkpoint moves past the rest. */
  readonly types: readonly EventType[];
  /**
   * Per event type, the data keys it reads (store/read-events.ts DataFields); a type not named is
   * read whole. A projection that keeps a few fields of large events reads only those.
   */
  readonly dataFields?: Partial<Record<EventType, DataFields>>;
  /**
   * Types whose events it folds in the database, reading them there (store/event-rows.ts): it is
   * handed runs of them (EventRun: where, how many) among its other events, not the events, so a
   * replay over millions of interactions sends none of them to node. Only a projection that names
   * types here receives runs.
   */
  readonly foldedInDatabase?: readonly EventType[];
  /** CREATE TABLE IF NOT EXISTS statements, unqualified. */
  readonly ddl: string;
  /** Tables and their key order, for the content hash. */
  readonly tables: readonly { name: string; orderBy: string }[];
  /** Loads in-memory state from the tables (at start, after a failed batch, after a swap). */
  load(q: Queryable): Promise<void>;
  /** Folds a batch inside the projector's transaction. On error the transaction rolls back and load() runs again. */
  apply(tx: Queryable, events: (RecordedEvent | EventRun)[]): Promise<void>;
}
