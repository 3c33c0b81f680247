import type { RecordedEvent } from '../events/envelope.ts';
import type { EventType } from '../events/schemas.ts';
import type { Queryable } from '../db/sql.ts';

/** A reader's place in the log: global order is (transactionId, globalPosition). */
export interface Checkpoint { transactionId: string; globalPosition: number }
export const START: Checkpoint = { transactionId: '0', globalPosition: 0 };

export interface ReadOptions {
  after: Checkpoint;
  limit: number;
  /** Only these types are returned (the checkpoint still moves past the others). */
  types?: readonly EventType[];
  /** Stop at this global position or recorded time (replay --until). */
  untilPosition?: number;
  untilTime?: Date;
  /**
   * Only these top-level keys of each event's data are read (a missing one comes as null), and of
   * `present` only whether the key exists (true, or null): a reader that needs a few fields of
   * large events (a projection over every interaction) then fetches and parses little.
   */
  dataFields?: DataFields;
  /** Like dataFields, per event type (types not named are read whole); for a reader serving several projections at once. */
  dataFieldsByType?: Partial<Record<EventType, DataFields>>;
}

export interface DataFields { keys: readonly string[]; present?: readonly string[] }

function dataSelect(o: ReadOptions): string {
  if (o.dataFields) return dataExpression(o.dataFields);
  const byType = Object.entries(o.dataFieldsByType ?? {}) as [EventType, DataFields][];
  if (byType.length === 0) return 'e.data';
  const type = (t: string) => { if (!/^[A-Za-z]+$/.test(t)) throw new Error(`event type ${JSON.stringify(t)}: expected letters`); return t; };
  return `CASE e.type ${byType.map(([t, f]) => `WHEN '${type(t)}' THEN ${dataExpression(f)}`).join(' ')} ELSE e.data END`;
}

/** The SELECT expression of the data column for `fields` (keys are SQL literals checked to be plain names). */
function dataExpression(fields: DataFields | undefined): string {
  if (!fields) return 'e.data';
  const name = (k: string) => { if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) throw new Error(`data field ${JSON.stringify(k)}: expected a plain key`); return k; };
  const parts = [
    ...fields.keys.map((k) => `'${name(k)}', e.data->'${name(k)}'`),
    ...(fields.present ?? []).map((k) => `'${name(k)}', CASE WHEN e.data ? '${name(k)}' THEN 'true'::jsonb END`),
  ];
  return `jsonb_build_object(${parts.join(', ')})`;
}

export interface Batch {
  events: RecordedEvent[];
  /** Where the reader stands after this batch, including skipped (filtered) events. */
  next: Checkpoint;
  /** True when the batch reached the end of what is safe to read now. */
  caughtUp: boolean;
}

interface EventRow {
  event_id: string; type: string; schema_version: number; stream_id: string; stream_position: number;
  global_position: number; transaction_id: string; data: unknown; occurred_at: Date | number; recorded_at: Date | number;
  causation_id: string | null; correlation_id: string | null;
}

export const toRecorded = (r: EventRow): RecordedEvent => ({
  id: r.event_id, type: r.type as EventType, schemaVersion: r.schema_version, streamId: r.stream_id,
  streamPosition: Number(r.stream_position), globalPosition: Number(r.global_position), transactionId: String(r.transaction_id),
  data: r.data as never, occurredAt: new Date(r.occurred_at), recordedAt: new Date(r.recorded_at),
  causationId: r.causation_id, correlationId: r.correlation_id,
});

/**
 * A timestamp as whole epoch milliseconds (float8): a number is parsed far faster than a timestamp
 * string (the parse was a sixth of a replay's CPU in node), and a JavaScript Date holds ms anyway.
 */
const EPOCH_MS = (column: string): string => `floor(extract(epoch FROM ${column}) * 1000)::float8`;

/**
 * Reads the next batch in global order. Only rows of transactions older than the oldest one still
 * running are visible, so an event whose transaction commits late is read later, never skipped.
 * One statement, one snapshot: the batch and the high-water mark agree.
 */
export async function readEventsBatch(q: Queryable, o: ReadOptions): Promise<Batch> {
  const filters: string[] = [];
  const params: unknown[] = [o.after.transactionId, o.after.globalPosition, o.limit];
  if (o.types) { params.push(o.types); filters.push(`AND type = ANY($${params.length}::text[])`); }
  const bound: string[] = [];
  if (o.untilPosition !== undefined) { params.push(o.untilPosition); bound.push(`AND global_position <= $${params.length}`); }
  if (o.untilTime !== undefined) { params.push(o.untilTime.toISOString()); bound.push(`AND recorded_at <= $${params.length}::timestamptz`); }
  const { rows } = await q.query<EventRow & { kind: 'e' | 'h' }>(
    `WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
     batch AS (
       SELECT 'e' AS kind, e.event_id, e.stream_id, e.stream_position, e.type, e.schema_version, ${dataSelect(o)} AS data,
              ${EPOCH_MS('e.occurred_at')} AS occurred_at, ${EPOCH_MS('e.recorded_at')} AS recorded_at, e.causation_id, e.correlation_id, e.transaction_id, e.global_position FROM events e, horizon
        WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
          AND e.transaction_id < horizon.xmin ${filters.join(' ')} ${bound.join(' ')}
        ORDER BY e.transaction_id, e.global_position
        LIMIT $3),
     high AS (
       SELECT 'h' AS kind, e.event_id, e.stream_id, e.stream_position, e.type, e.schema_version, NULL::jsonb AS data,
              NULL::float8 AS occurred_at, NULL::float8 AS recorded_at, e.causation_id, e.correlation_id, e.transaction_id, e.global_position FROM events e, horizon
        WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
          AND e.transaction_id < horizon.xmin ${bound.join(' ')}
        ORDER BY e.transaction_id DESC, e.global_position DESC
        LIMIT 1)
     SELECT * FROM batch UNION ALL SELECT * FROM high`,
    params,
  );
  const events: RecordedEvent[] = [];
  let high: EventRow | undefined;
  for (const r of rows) {
    if (r.kind === 'h') high = r; else events.push(toRecorded(r));
  }
  const full = events.length === o.limit;
  const last = events.at(-1);
  let next = o.after;
  if (full && last) next = { transactionId: last.transactionId, globalPosition: last.globalPosition };
  else if (high) next = { transactionId: String(high.transaction_id), globalPosition: Number(high.global_position) };
  return { events, next, caughtUp: !full };
}
