import type { Sql } from '../db/sql.ts';
import { NOT_REPLAYED_PREFIX } from './checkpoints.ts';
import { projectionHashes } from './hash.ts';
import type { Projection } from './projection.ts';
import { Projector } from './projector.ts';
import { createProjectionSchema, LIVE_SCHEMA, schemaName } from './schema.ts';

export interface ReplayOptions {
  untilPosition?: number;
  untilTime?: Date;
  batchSize?: number;
  onProgress?: (projection: string, applied: number) => void;
}

export interface ReplayResult {
  /** Where the rebuilt tables are: the live schema after a swap, or a kept snapshot schema for --until. */
  schema: string;
  swapped: boolean;
  hashes: Record<string, string>;
  events: Record<string, number>;
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
  await sql.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await createProjectionSchema(sql, schema, projections);
  const events: Record<string, number> = {};
  try {
    for (const p of projections) {
      const projector = new Projector(sql, p, { schema, batchSize: o.batchSize ?? 5000, untilPosition: o.untilPosition, untilTime: o.untilTime });
      events[p.name] = await projector.catchUp((n) => o.onProgress?.(p.name, n));
    }
    const hashes = await projectionHashes(sql, schema, projections);
    if (bounded) return { schema, swapped: false, hashes, events };
    await sql.transaction(async (tx) => {
      // Processors a replay does not rebuild (the outbox relay) keep their checkpoint: carried over by name.
      await tx.query(
        `INSERT INTO ${schema}.projection_checkpoints (name, transaction_id, global_position, definition_hash)
         SELECT name, transaction_id, global_position, definition_hash FROM ${LIVE_SCHEMA}.projection_checkpoints
          WHERE name LIKE '${NOT_REPLAYED_PREFIX}%'
         ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position`);
      await tx.query(`DROP SCHEMA IF EXISTS ${LIVE_SCHEMA} CASCADE`);
      await tx.query(`ALTER SCHEMA ${schema} RENAME TO ${LIVE_SCHEMA}`);
    });
    return { schema: LIVE_SCHEMA, swapped: true, hashes, events };
  } catch (err) {
    await sql.exec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    throw err;
  }
}
