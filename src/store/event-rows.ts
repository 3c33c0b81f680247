/**
 * The events of one type in a stretch of the log as a row source for a statement that folds them
 * in the database (INSERT ... SELECT ... FROM (this)), for a reader over every event of a type
 * that keeps a few fields of each: the events' data then never leaves PostgreSQL. The store writes
 * the SQL against the events table; the reader names columns, never the table or its columns.
 */
import type { EventType } from '../events/schemas.ts';
import type { Checkpoint } from './read-events.ts';

/**
 * A column of the rows: the event's id, its global position, its recorded time (to the
 * millisecond, as read-events.ts reads it), a data field as text (a path of keys: a string as it
 * is, any other value as JSON, absent as NULL), or whether a data key is there.
 */
export type EventColumn = 'eventId' | 'globalPosition' | 'recordedAt' | { text: readonly string[] } | { has: string };

export interface EventRowsSpec {
  type: EventType;
  /** The first and the last event of the stretch, both included, in the log's order (transaction id, position). */
  from: Checkpoint;
  through: Checkpoint;
  /** Output column name -> what it holds. */
  columns: Readonly<Record<string, EventColumn>>;
  /**
   * At most this many rows, in the log's order. The caller knows how many events the stretch
   * holds; the bound also leads the planner to the log's order index (row comparisons alone are
   * estimated as a third of the table, and it would scan all of it).
   */
  limit: number;
}

const KEY = /^[A-Za-z][A-Za-z0-9_]*$/;
const COLUMN = /^[a-z][a-z0-9_]*$/;

function plainKey(k: string): string {
  if (!KEY.test(k)) throw new Error(`data field ${JSON.stringify(k)}: expected a plain key`);
  return k;
}

function expression(c: EventColumn): string {
  if (c === 'eventId') return 'e.event_id';
  if (c === 'globalPosition') return 'e.global_position';
  if (c === 'recordedAt') return `date_trunc('milliseconds', e.recorded_at)`;
  if ('has' in c) return `(e.data ? '${plainKey(c.has)}')`;
  if (c.text.length === 0) throw new Error('a data field needs a path of at least one key');
  return `(e.data #>> '{${c.text.map(plainKey).join(',')}}')`;
}

/** The SELECT for `spec` (parameters $1 to $6) and those parameters' values. */
export function eventRowsQuery(spec: EventRowsSpec): { text: string; params: unknown[] } {
  const columns = Object.entries(spec.columns).map(([name, c]) => {
    if (!COLUMN.test(name)) throw new Error(`column name ${JSON.stringify(name)}: expected lower-case letters, digits and _`);
    return `${expression(c)} AS ${name}`;
  });
  if (columns.length === 0) throw new Error('event rows need at least one column');
  const p = (i: number) => `$${1 + i}`;
  return {
    text: `SELECT ${columns.join(', ')} FROM events e
            WHERE e.type = ${p(0)}
              AND (e.transaction_id, e.global_position) >= (${p(1)}::xid8, ${p(2)}::bigint)
              AND (e.transaction_id, e.global_position) <= (${p(3)}::xid8, ${p(4)}::bigint)
            ORDER BY e.transaction_id, e.global_position
            LIMIT ${p(5)}`,
    params: [spec.type, spec.from.transactionId, spec.from.globalPosition, spec.through.transactionId, spec.through.globalPosition, spec.limit],
  };
}
