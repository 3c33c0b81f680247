import type { Sql } from '../db/sql.ts';
import { projectionHashes } from './hash.ts';
import type { Projection } from './projection.ts';
import type { EventType } from '../events/schemas.ts';
import { eventCount, readEventsBatch, START, type DataFields } from '../store/read-events.ts';
import { claimCheckpoint, NOT_REPLAYED_PREFIX, storeCheckpoint } from './checkpoints.ts';
import { createIndexes, createProjectionSchema, LIVE_SCHEMA, schemaName, useSchema } from './schema.ts';

/** Point-in-time copies kept (--until): each new one drops the oldest beyond these. */
export const KEPT_SNAPSHOTS = 3;

export interface ReplayOptions {
  untilPosition?: number;
  untilTime?: Date;
  /** Point-in-time copies to keep, this one included (default KEPT_SNAPSHOTS). */
  keepSnapshots?: number;
  batchSize?: number;
  onProgress?: (projection: string, applied: number) => void;
}

export interface ReplayResult {
  /** Where the rebuilt tables are: the live schema after a swap, or a kept snapshot schema for --until. */
  schema: string;
  swapped: boolean;
  hashes: Record<string, string>;
  events: Record<string, number>;
  /** Schemas dropped: older point-in-time copies beyond the ones kept, and builds a crashed replay left. */
  dropped: string[];
}

/**
 * Rebuilds every projection from the log into a fresh schema. Without a bound the new schema
 * replaces the live one in one transaction, so readers see the old state or the new, never a
 * half-built one. With --until the rebuilt point-in-time state is kept beside the live one for
 * inspection (swapping it in would be undone by the live projector at once; use rollback events
 * to go back). The caller must hold the projection lock (see leader.ts).
 */
export async function replay(sql: Sql, makeProjections: () => Projection[], o: ReplayOptions = {}): Promise<ReplayResult> {
  const bounded = o.untilPosition !== undefined || o.untilTime !== undefined;
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 17);
  const schema = schemaName(bounded ? `oeld_replay_${stamp}` : `oeld_proj_build_${stamp}`);
  const projections = makeProjections();
  // A replay that died left its build schema behind (the caller holds the projection lock: no
  // other replay is building one now).
  const dropped = await dropSchemas(sql, await schemasLike(sql, 'oeld_proj_build_'));
  await sql.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const indexes = await createProjectionSchema(sql, schema, projections, { deferIndexes: true });
  const events: Record<string, number> = {};
  try {
    Object.assign(events, await foldTogether(sql, projections, schema, o));
    await createIndexes(sql, schema, indexes);
    const hashes = await projectionHashes(sql, schema, projections);
    if (bounded) {
      const snapshots = await schemasLike(sql, 'oeld_replay_');
      dropped.push(...await dropSchemas(sql, snapshots.slice(Math.max(1, o.keepSnapshots ?? KEPT_SNAPSHOTS))));
      return { schema, swapped: false, hashes, events, dropped };
    }
    await sql.transaction(async (tx) => {
      // Processors a replay does not rebuild (the outbox relay) keep their checkpoint: carried over by name.
      const { rows: live } = await tx.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${LIVE_SCHEMA}.projection_checkpoints`]);
      if (live[0]?.t) await tx.query(
        `INSERT INTO ${schema}.projection_checkpoints (name, transaction_id, global_position, definition_hash)
         SELECT name, transaction_id, global_position, definition_hash FROM ${LIVE_SCHEMA}.projection_checkpoints
          WHERE name LIKE '${NOT_REPLAYED_PREFIX}%'
         ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position`);
      await tx.query(`DROP SCHEMA IF EXISTS ${LIVE_SCHEMA} CASCADE`);
      await tx.query(`ALTER SCHEMA ${schema} RENAME TO ${LIVE_SCHEMA}`);
    });
    return { schema: LIVE_SCHEMA, swapped: true, hashes, events, dropped };
  } catch (err) {
    await sql.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    throw err;
  }
}

/** Schemas whose names start with `prefix`, newest first (their names end with a fixed-width time stamp). */
async function schemasLike(sql: Sql, prefix: string): Promise<string[]> {
  const { rows } = await sql.query<{ name: string }>(
    `SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname DESC`, [prefix]);
  return rows.map((r) => schemaName(r.name));
}

async function dropSchemas(sql: Sql, schemas: readonly string[]): Promise<string[]> {
  for (const s of schemas) await sql.exec(`DROP SCHEMA IF EXISTS ${schemaName(s)} CASCADE`);
  return [...schemas];
}

/**
 * Folds every projection from ONE scan of the log: each batch is read once (the union of their
 * types; of each type, only the data keys its readers keep, or all of it where one needs it all)
 * and handed to each projection in one transaction that moves every checkpoint together. The live
 * projector reads per projection; a replay starts them all at the log's start, so they move in step.
 */
async function foldTogether(sql: Sql, projections: readonly Projection[], schema: string, o: ReplayOptions): Promise<Record<string, number>> {
  const types = [...new Set(projections.flatMap((p) => p.types))];
  const dataFieldsByType: Partial<Record<EventType, DataFields>> = {};
  for (const t of types) {
    const fields = projections.filter((p) => p.types.includes(t)).map((p) => p.dataFields?.[t]);
    if (fields.some((f) => f === undefined)) continue;
    dataFieldsByType[t] = {
      keys: [...new Set(fields.flatMap((f) => f!.keys))],
      present: [...new Set(fields.flatMap((f) => f!.present ?? []))],
    };
  }
  // A type every reader of which folds it in the database is read as runs (where, how many).
  const runsOf = types.filter((t) => projections.every((p) => !p.types.includes(t) || p.foldedInDatabase?.includes(t)));
  await sql.transaction(async (tx) => {
    await useSchema(tx, schema);
    for (const p of projections) await p.load(tx);
  });
  const applied: Record<string, number> = Object.fromEntries(projections.map((p) => [p.name, 0]));
  const read = (after: typeof START) => readEventsBatch(sql, {
    after, limit: o.batchSize ?? 5000, types, dataFieldsByType, runsOf, untilPosition: o.untilPosition, untilTime: o.untilTime,
  });
  let at = START;
  let next = read(at);
  for (;;) {
    const batch = await next;
    if (batch.next.transactionId === at.transactionId && batch.next.globalPosition === at.globalPosition) break;
    // The next batch is read (on another connection of the pool) while this one is folded. The
    // embedded database has one session: there the read simply waits for the fold's transaction.
    if (!batch.caughtUp) { next = read(batch.next); next.catch(() => {}); }
    const from = at;
    await sql.transaction(async (tx) => {
      await useSchema(tx, schema);
      for (const p of projections) {
        await claimCheckpoint(tx, p.name, from);
        const mine = batch.events.filter((e) => p.types.includes(e.type));
        if (mine.length) await p.apply(tx, mine);
        await storeCheckpoint(tx, p.name, from, batch.next);
      }
    });
    for (const p of projections) {
      const n = eventCount(batch.events.filter((e) => p.types.includes(e.type)));
      if (n) { applied[p.name]! += n; o.onProgress?.(p.name, applied[p.name]!); }
    }
    at = batch.next;
    if (batch.caughtUp) break;
  }
  return applied;
}
