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
   * Per event type, only these top-level keys of each event's data are read (a missing one comes
   * as null), and of `present` only whether the key exists (true, or null); types not named are
   * read whole. A reader that needs a few fields of large events (a projection over every
   * interaction) then fetches and parses little.
   */
  dataFieldsByType?: Partial<Record<EventType, DataFields>>;
  /**
   * Events of these types come as runs (EventRun: where a stretch of consecutive ones begins and
   * ends, and how many), not one by one: for a reader that folds them in the database
   * (event-rows.ts) and needs only where they are. They still count toward `limit`.
   */
  runsOf?: readonly EventType[];
}

/** Consecutive events of one type in a batch (no other event the reader reads between them), read only for where they are. */
export interface EventRun {
  kind: 'run';
  type: EventType;
  /** The first and the last of them, both included. */
  from: Checkpoint;
  through: Checkpoint;
  count: number;
}

export interface DataFields { keys: readonly string[]; present?: readonly string[] }

function dataSelect(o: ReadOptions): string {
  const byType = Object.entries(o.dataFieldsByType ?? {}) as [EventType, DataFields][];
  if (byType.length === 0) return 'e.data';
  const type = (t: string) => { if (!/^[A-Za-z]+$/.test(t)) throw new Error(`event type ${JSON.stringify(t)}: expected letters`); return t; };
  return `CASE e.type ${byType.map(([t, f]) => `WHEN '${type(t)}' THEN ${dataExpression(f)}`).join(' ')} ELSE e.data END`;
}

/** The SELECT expression of the data column for `fields` (keys are SQL literals checked to be plain names). */
function dataExpression(fields: DataFields): string {
  const name = (k: string) => { if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(k)) throw new Error(`data field ${JSON.stringify(k)}: expected a plain key`); return k; };
  const parts = [
    ...fields.keys.map((k) => `'${name(k)}', e.data->'${name(k)}'`),
    ...(fields.present ?? []).map((k) => `'${name(k)}', CASE WHEN e.data ? '${name(k)}' THEN 'true'::jsonb END`),
  ];
  return `jsonb_build_object(${parts.join(', ')})`;
}

/** How many events entries stand for (a run counts its events). */
export const eventCount = (entries: readonly (RecordedEvent | EventRun)[]): number =>
  entries.reduce((n, e) => n + ('kind' in e ? e.count : 1), 0);

export interface Batch<E = RecordedEvent> {
  /** In the log's order; with `runsOf`, runs of those types among the events. */
  events: E[];
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
export async function readEventsBatch(q: Queryable, o: ReadOptions & { runsOf?: undefined }): Promise<Batch>;
export async function readEventsBatch(q: Queryable, o: ReadOptions): Promise<Batch<RecordedEvent | EventRun>>;
export async function readEventsBatch(q: Queryable, o: ReadOptions): Promise<Batch<RecordedEvent | EventRun>> {
  const filters: string[] = [];
  const params: unknown[] = [o.after.transactionId, o.after.globalPosition, o.limit];
  if (o.types) { params.push(o.types); filters.push(`AND type = ANY($${params.length}::text[])`); }
  const bound: string[] = [];
  if (o.untilPosition !== undefined) { params.push(o.untilPosition); bound.push(`AND global_position <= $${params.length}`); }
  if (o.untilTime !== undefined) { params.push(o.untilTime.toISOString()); bound.push(`AND recorded_at <= $${params.length}::timestamptz`); }
  // A run's rows carry only their type and place: every other column is NULL (nothing to send or parse).
  let inRun = 'false';
  if (o.runsOf?.length) { params.push(o.runsOf); inRun = `e.type = ANY($${params.length}::text[])`; }
  const unlessRun = (column: string): string => (inRun === 'false' ? column : `CASE WHEN ${inRun} THEN NULL ELSE ${column} END`);
  const { rows } = await q.query<EventRow & { kind: 'e' | 'r' | 'h' }>(
    `WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
     batch AS (
       SELECT CASE WHEN ${inRun} THEN 'r' ELSE 'e' END AS kind, ${unlessRun('e.event_id')} AS event_id, ${unlessRun('e.stream_id')} AS stream_id,
              ${unlessRun('e.stream_position')} AS stream_position, e.type, ${unlessRun('e.schema_version')} AS schema_version, ${unlessRun(dataSelect(o))} AS data,
              ${unlessRun(EPOCH_MS('e.occurred_at'))} AS occurred_at, ${unlessRun(EPOCH_MS('e.recorded_at'))} AS recorded_at,
              ${unlessRun('e.causation_id')} AS causation_id, ${unlessRun('e.correlation_id')} AS correlation_id, e.transaction_id, e.global_position FROM events e, horizon
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
  const events: (RecordedEvent | EventRun)[] = [];
  let high: EventRow | undefined;
  let read = 0;
  let last: Checkpoint | undefined;
  for (const r of rows) {
    if (r.kind === 'h') { high = r; continue; }
    read++;
    last = { transactionId: String(r.transaction_id), globalPosition: Number(r.global_position) };
    if (r.kind === 'e') { events.push(toRecorded(r)); continue; }
    const run = events.at(-1);
    if (run && 'kind' in run && run.type === r.type) { run.through = last; run.count++; continue; }
    events.push({ kind: 'run', type: r.type as EventType, from: last, through: last, count: 1 });
  }
  const full = read === o.limit;
  let next = o.after;
  if (full && last) next = last;
  else if (high) next = { transactionId: String(high.transaction_id), globalPosition: Number(high.global_position) };
  return { events, next, caughtUp: !full };
}
