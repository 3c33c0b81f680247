/**
 * The questions the rest of oeld asks of the log, as functions: the only SQL against the events
 * table outside the store's own append (append-events.ts) and subscription read (read-events.ts).
 * Readers name what they want (types, a model version, a checkpoint), never a column.
 */
import type { Queryable } from '../db/sql.ts';
import type { RecordedEvent } from '../events/envelope.ts';
import type { EventDataMap, EventType } from '../events/schemas.ts';
import { toRecorded, type Checkpoint } from './read-events.ts';

/** The newest global position written (committed or not yet visible): for lag figures. */
export async function headPosition(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ head: number | null }>('SELECT max(global_position) AS head FROM events');
  return Number(rows[0]?.head ?? 0);
}

/** Events in the log, of the given types (all of them when none are given). */
export async function countEvents(q: Queryable, types?: readonly EventType[]): Promise<number> {
  const { rows } = types === undefined
    ? await q.query<{ n: number }>('SELECT count(*)::bigint AS n FROM events')
    : await q.query<{ n: number }>('SELECT count(*)::bigint AS n FROM events WHERE type = ANY($1::text[])', [types]);
  return Number(rows[0]?.n ?? 0);
}

/** Events of the given types after a reader's checkpoint, in its order (transaction id, position). */
export async function countEventsAfter(q: Queryable, after: Checkpoint, types: readonly EventType[]): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    'SELECT count(*)::bigint AS n FROM events WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint) AND type = ANY($3::text[])',
    [after.transactionId, after.globalPosition, types]);
  return Number(rows[0]?.n ?? 0);
}

/** Seconds since the first event after a reader's checkpoint was recorded; 0 when it has read everything. */
export async function ageOfFirstEventAfter(q: Queryable, after: Checkpoint): Promise<number> {
  const { rows } = await q.query<{ s: number | null }>(
    `SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8 AS s FROM events
      WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
      ORDER BY transaction_id, global_position LIMIT 1`, [after.transactionId, after.globalPosition]);
  return Math.max(0, Number(rows[0]?.s ?? 0));
}

/** Every event of the given types, in global order (for reports over a short history: rounds, evaluations). */
export async function readEventsOfTypes(q: Queryable, types: readonly EventType[]): Promise<RecordedEvent[]> {
  const { rows } = await q.query<Parameters<typeof toRecorded>[0]>('SELECT * FROM events WHERE type = ANY($1::text[]) ORDER BY global_position', [types]);
  return rows.map(toRecorded);
}

/** The events with these ids, in global order (ids not in the log are left out). */
export async function readEventsByIds(q: Queryable, ids: readonly string[]): Promise<RecordedEvent[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<Parameters<typeof toRecorded>[0]>('SELECT * FROM events WHERE event_id = ANY($1::uuid[]) ORDER BY global_position', [ids]);
  return rows.map(toRecorded);
}

/** One stream's events in order (for short streams: the model registry's). */
export async function readStream(q: Queryable, streamId: string): Promise<RecordedEvent[]> {
  const { rows } = await q.query<Parameters<typeof toRecorded>[0]>('SELECT * FROM events WHERE stream_id = $1 ORDER BY stream_position', [streamId]);
  return rows.map(toRecorded);
}

/** When the newest event of the given types was recorded, or null. */
export async function lastRecordedAt(q: Queryable, types: readonly EventType[]): Promise<Date | null> {
  const { rows } = await q.query<{ at: Date | null }>('SELECT max(recorded_at) AS at FROM events WHERE type = ANY($1::text[])', [types]);
  return rows[0]?.at ?? null;
}

/** The first event of each stream that has an event of type `opened` and none of the types `closedBy`, in global order. */
export async function openStreams(q: Queryable, opened: EventType, closedBy: readonly EventType[]): Promise<RecordedEvent[]> {
  const { rows } = await q.query<Parameters<typeof toRecorded>[0]>(
    `SELECT s.* FROM events s
      WHERE s.type = $1 AND NOT EXISTS (SELECT 1 FROM events f WHERE f.stream_id = s.stream_id AND f.type = ANY($2::text[]))
      ORDER BY s.global_position`, [opened, closedBy]);
  return rows.map(toRecorded);
}

export interface InteractionFilter {
  /** The model version that produced them. */
  modelVersion?: string;
  /** Only those recorded after this time. */
  since?: Date | null;
  /** Only those whose intake was of this kind (kafka, file, http, simulator). */
  sourceKind?: EventDataMap['InteractionRecorded']['source']['kind'];
  /** Only those of this task. */
  taskId?: string;
}

function interactionWhere(f: InteractionFilter, params: unknown[]): string {
  const where = ["type = 'InteractionRecorded'"];
  if (f.modelVersion !== undefined) { params.push(f.modelVersion); where.push(`data->>'modelVersion' = $${params.length}`); }
  if (f.since) { params.push(f.since); where.push(`recorded_at > $${params.length}`); }
  if (f.sourceKind !== undefined) { params.push(f.sourceKind); where.push(`data->'source'->>'kind' = $${params.length}`); }
  if (f.taskId !== undefined) { params.push(f.taskId); where.push(`data->>'taskId' = $${params.length}`); }
  return where.join(' AND ');
}

/** Interactions recorded that match the filter: a scan of the log's interactions (no index by their fields), for what must be exact at start. */
export async function countInteractions(q: Queryable, f: InteractionFilter = {}): Promise<number> {
  const params: unknown[] = [];
  const { rows } = await q.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM events WHERE ${interactionWhere(f, params)}`, params);
  return Number(rows[0]?.n ?? 0);
}
