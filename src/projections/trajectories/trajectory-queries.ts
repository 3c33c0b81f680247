/** What rounds and the round trigger read from the trajectories projection (its tables are read nowhere else). */
import type { Queryable } from '../../db/sql.ts';

/**
 * Interactions of `modelVersion` recorded after the newest round ended: what a round has not yet
 * learned from (a round that failed, or whose version the gate refused, used the ones before it).
 * One row per task and intake, whatever the length of the log.
 */
export async function countFreshInteractions(q: Queryable, modelVersion: string): Promise<number> {
  const { rows } = await q.query<{ n: number | null }>(
    'SELECT sum(recorded - at_last_round_end)::bigint AS n FROM trajectory_counts WHERE model_version = $1', [modelVersion]);
  return Number(rows[0]?.n ?? 0);
}

/** The newest round end the projection has folded (its id and time), or null before any. */
export async function readLastRoundEnd(q: Queryable): Promise<{ roundId: string; endedAt: Date } | null> {
  const { rows } = await q.query<{ round_id: string; ended_at: Date }>('SELECT round_id, ended_at FROM trajectory_last_round');
  const r = rows[0];
  return r ? { roundId: r.round_id, endedAt: new Date(r.ended_at) } : null;
}

/** The event ids of the newest `limit` game trajectories (turns) of `modelVersion`, oldest first. */
export async function newestTrajectoryEventIds(q: Queryable, modelVersion: string, limit: number): Promise<string[]> {
  const { rows } = await q.query<{ event_id: string }>(
    `SELECT event_id FROM trajectories WHERE model_version = $1 AND shape = 'turns' ORDER BY global_position DESC LIMIT $2`, [modelVersion, limit]);
  return rows.map((r) => r.event_id).reverse();
}
