import { canonicalJson } from '../events/canonical-json.ts';
import type { NewEvent } from '../events/envelope.ts';
import { isUuid } from '../events/ids.ts';
import { CURRENT_SCHEMA_VERSION, type EventType } from '../events/schemas.ts';
import { validateEventData, ValidationError } from '../events/validate.ts';
import type { Queryable } from '../db/sql.ts';
import { WrongExpectedVersionError } from './errors.ts';

export type ExpectedVersion = 'any' | 'no_stream' | number;

export interface AppendRequest {
  streamId: string;
  /** Optimistic concurrency: the stream's version before this append ('any' skips the check). */
  expectedVersion?: ExpectedVersion;
  events: NewEvent[];
}

export interface AppendResult {
  /** Appended events with their global positions, in append order. */
  appended: { id: string; type: EventType; globalPosition: number }[];
  /** Event ids already in the store with the same content: a redelivery, skipped. */
  duplicates: string[];
  /** Event ids already in the store with different content: reported, not written. */
  conflicts: { id: string; reason: string }[];
}

interface Row {
  id: string; streamId: string; type: EventType; schemaVersion: number; data: string;
  causationId: string | null; correlationId: string | null; occurredAt: string;
}

/**
 * Appends events inside the caller's transaction. Idempotent by event id; per-stream optimistic
 * concurrency through the streams table, whose row lock orders concurrent writers to one stream.
 * Validates every event unless the caller already did (`trusted`).
 */
export async function appendEvents(tx: Queryable, requests: AppendRequest[], options: { trusted?: boolean } = {}): Promise<AppendResult> {
  const rows: Row[] = [];
  const seen = new Set<string>();
  for (const req of requests) {
    if (typeof req.streamId !== 'string' || req.streamId.length === 0 || req.streamId.length > 500) {
      throw new ValidationError('streamId', 'must be a string of 1 to 500 characters', req.streamId);
    }
    for (const e of req.events) {
      if (!isUuid(e.id)) throw new ValidationError('id', 'must be a UUID', e.id);
      const id = e.id.toLowerCase();
      if (seen.has(id)) throw new ValidationError('id', 'appears twice in one append', e.id);
      seen.add(id);
      const schemaVersion = e.schemaVersion ?? CURRENT_SCHEMA_VERSION[e.type];
      const data = options.trusted ? e.data : validateEventData(e.type, schemaVersion, e.data);
      rows.push({
        id, streamId: req.streamId, type: e.type, schemaVersion, data: JSON.stringify(data),
        causationId: e.causationId ?? null, correlationId: e.correlationId ?? null,
        occurredAt: (e.occurredAt ?? new Date()).toISOString(),
      });
    }
  }
  const result: AppendResult = { appended: [], duplicates: [], conflicts: [] };
  if (rows.length === 0) return result;

  const existing = await tx.query<{ event_id: string; type: string; schema_version: number; data: unknown }>(
    'SELECT event_id, type, schema_version, data FROM events WHERE event_id = ANY($1::uuid[])',
    [rows.map((r) => r.id)],
  );
  const stored = new Map(existing.rows.map((r) => [r.event_id, r]));
  const fresh = rows.filter((r) => {
    const prior = stored.get(r.id);
    if (!prior) return true;
    if (prior.type === r.type && prior.schema_version === r.schemaVersion && canonicalJson(prior.data) === canonicalJson(JSON.parse(r.data))) {
      result.duplicates.push(r.id);
    } else {
      result.conflicts.push({ id: r.id, reason: prior.type !== r.type ? `stored as ${prior.type}, sent as ${r.type}` : 'same id, different data' });
    }
    return false;
  });
  if (fresh.length === 0) return result;

  // Claim stream positions: one upsert for all streams in the batch, sorted to avoid deadlocks.
  const counts = new Map<string, number>();
  for (const r of fresh) counts.set(r.streamId, (counts.get(r.streamId) ?? 0) + 1);
  const streamIds = [...counts.keys()].sort();
  const versions = await tx.query<{ stream_id: string; version: number }>(
    `INSERT INTO streams AS s (stream_id, version)
       SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (stream_id) DO UPDATE SET version = s.version + excluded.version
     RETURNING stream_id, version`,
    [streamIds, streamIds.map((s) => counts.get(s)!)],
  );
  const expectedByStream = new Map<string, ExpectedVersion>();
  for (const r of requests) if (!expectedByStream.has(r.streamId)) expectedByStream.set(r.streamId, r.expectedVersion ?? 'any');
  const next = new Map<string, number>();
  for (const v of versions.rows) {
    const before = Number(v.version) - counts.get(v.stream_id)!;
    const expected = expectedByStream.get(v.stream_id) ?? 'any';
    if (expected === 'no_stream' ? before !== 0 : typeof expected === 'number' && before !== expected) {
      throw new WrongExpectedVersionError(v.stream_id, expected, before);
    }
    next.set(v.stream_id, before);
  }
  const positions = fresh.map((r) => {
    const p = next.get(r.streamId)! + 1;
    next.set(r.streamId, p);
    return p;
  });

  const inserted = await tx.query<{ event_id: string; global_position: number }>(
    `INSERT INTO events (event_id, stream_id, stream_position, type, schema_version, data, causation_id, correlation_id, occurred_at)
     SELECT e, s, p, t, v, d::jsonb, c, k, o
       FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::uuid[], $8::uuid[], $9::timestamptz[])
         AS x(e, s, p, t, v, d, c, k, o)
     RETURNING event_id, global_position`,
    [fresh.map((r) => r.id), fresh.map((r) => r.streamId), positions, fresh.map((r) => r.type), fresh.map((r) => r.schemaVersion),
      fresh.map((r) => r.data), fresh.map((r) => r.causationId), fresh.map((r) => r.correlationId), fresh.map((r) => r.occurredAt)],
  );
  const typeOf = new Map(fresh.map((r) => [r.id, r.type]));
  result.appended = inserted.rows.map((r) => ({ id: r.event_id, type: typeOf.get(r.event_id)!, globalPosition: Number(r.global_position) }));
  return result;
}
