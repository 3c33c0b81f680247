import type { Queryable } from '../db/sql.ts';
import { headPosition } from '../store/log-queries.ts';
import type { Checkpoint } from '../store/read-events.ts';
import { LIVE_SCHEMA } from './schema.ts';

export class CheckpointConflictError extends Error {
  constructor(readonly projection: string, readonly expected: Checkpoint) {
    super(`projection ${projection}: checkpoint moved under us (expected ${expected.transactionId}/${expected.globalPosition}); is a second projector running?`);
    this.name = 'CheckpointConflictError';
  }
}

/**
 * Processors whose work is outside the database (the outbox relay publishes to Kafka) keep their
 * checkpoint in the same table as the projections, under a name with this prefix: a replay
 * rebuilds every projection and carries these rows over unchanged (what was published stays
 * published), and the projection figures (status, lag, backpressure) leave them out.
 */
export const NOT_REPLAYED_PREFIX = 'outbox:';
export const isReplayed = (name: string): boolean => !name.startsWith(NOT_REPLAYED_PREFIX);

/** Every live projection's checkpoint, by name (processors that are not replayed left out). */
export async function readCheckpoints(q: Queryable): Promise<{ name: string; checkpoint: Checkpoint }[]> {
  const { rows } = await q.query<{ name: string; transaction_id: string; global_position: number }>(
    `SELECT name, transaction_id::text AS transaction_id, global_position FROM ${LIVE_SCHEMA}.projection_checkpoints
      WHERE name NOT LIKE '${NOT_REPLAYED_PREFIX}%' ORDER BY name`);
  return rows.map((r) => ({ name: r.name, checkpoint: { transactionId: r.transaction_id, globalPosition: Number(r.global_position) } }));
}

/** How many events the slowest projection is behind the head of the log. */
export async function slowestProjectionLag(q: Queryable): Promise<number> {
  const checkpoints = await readCheckpoints(q);
  if (checkpoints.length === 0) return 0;
  return Math.max(0, (await headPosition(q)) - Math.min(...checkpoints.map((c) => c.checkpoint.globalPosition)));
}

/**
 * Creates a processor's checkpoint row at the start of the log if it has none; `seed`, when given,
 * is where it starts instead (a checkpoint kept elsewhere by an older version of oeld).
 */
export async function ensureCheckpoint(q: Queryable, name: string, seed?: Checkpoint): Promise<void> {
  await q.query(
    `INSERT INTO projection_checkpoints (name, transaction_id, global_position, definition_hash)
     VALUES ($1, $2::xid8, $3, 'not replayed') ON CONFLICT (name) DO NOTHING`,
    [name, seed?.transactionId ?? '0', seed?.globalPosition ?? 0]);
}

export async function loadCheckpoint(q: Queryable, name: string): Promise<Checkpoint> {
  const { rows } = await q.query<{ transaction_id: string; global_position: number }>(
    'SELECT transaction_id::text AS transaction_id, global_position FROM projection_checkpoints WHERE name = $1', [name]);
  const r = rows[0];
  if (!r) throw new Error(`projection ${name} has no checkpoint row; were its tables created?`);
  return { transactionId: r.transaction_id, globalPosition: Number(r.global_position) };
}

/**
 * Locks the checkpoint row for this transaction and checks it is where this projector left it,
 * before anything is applied: a second projector waits here, then fails instead of double-applying.
 */
export async function claimCheckpoint(q: Queryable, name: string, expected: Checkpoint): Promise<void> {
  const { rows } = await q.query<{ transaction_id: string; global_position: number }>(
    'SELECT transaction_id::text AS transaction_id, global_position FROM projection_checkpoints WHERE name = $1 FOR UPDATE', [name]);
  const r = rows[0];
  if (!r || r.transaction_id !== expected.transactionId || Number(r.global_position) !== expected.globalPosition) {
    throw new CheckpointConflictError(name, expected);
  }
}

/** Compare-and-set: moves the checkpoint only from where this projector last left it. */
export async function storeCheckpoint(q: Queryable, name: string, from: Checkpoint, to: Checkpoint): Promise<void> {
  const { rows } = await q.query(
    `UPDATE projection_checkpoints SET transaction_id = $4::xid8, global_position = $5
      WHERE name = $1 AND transaction_id = $2::xid8 AND global_position = $3 RETURNING name`,
    [name, from.transactionId, from.globalPosition, to.transactionId, to.globalPosition]);
  if (rows.length !== 1) throw new CheckpointConflictError(name, from);
}
