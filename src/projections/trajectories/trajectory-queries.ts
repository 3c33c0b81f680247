/** What rounds, the round trigger and status read from the trajectories projection (its tables are read nowhere else). */
import type { Queryable } from '../../db/sql.ts';
import { ANY_TASK } from './trajectory-projection.ts';

/**
 * Interactions of a task from `modelVersion` recorded after the task's newest round ended and
 * outside its held-out split: what a round has not yet learned from (a round that failed, or
 * whose version the gate refused, used the ones before it). A handful of rows whatever the log's length.
 */
export async function countFreshInteractions(q: Queryable, taskId: string, modelVersion: string, heldOutPercent = 0): Promise<number> {
  const { rows } = await q.query<{ n: number | null }>(
    `SELECT sum(recorded - at_last_round_end)::bigint AS n FROM trajectory_counts
     WHERE task_id = $1 AND model_version = $2 AND split_bucket >= $3`, [taskId, modelVersion, heldOutPercent]);
  return Number(rows[0]?.n ?? 0);
}

/** The newest round end the projection has folded for a task (its id and time), or null before any. */
export async function readLastRoundEnd(q: Queryable, taskId: string): Promise<{ roundId: string; endedAt: Date } | null> {
  const { rows } = await q.query<{ round_id: string; ended_at: Date }>(
    'SELECT round_id, ended_at FROM trajectory_last_round WHERE task_id = $1 OR task_id = $2 ORDER BY ended_at DESC LIMIT 1', [taskId, ANY_TASK]);
  const r = rows[0];
  return r ? { roundId: r.round_id, endedAt: new Date(r.ended_at) } : null;
}

/** The newest round end of any task (the shared interval runs from it), or null before any. */
export async function readNewestRoundEnd(q: Queryable): Promise<{ roundId: string; endedAt: Date } | null> {
  const { rows } = await q.query<{ round_id: string; ended_at: Date }>('SELECT round_id, ended_at FROM trajectory_last_round ORDER BY ended_at DESC LIMIT 1');
  const r = rows[0];
  return r ? { roundId: r.round_id, endedAt: new Date(r.ended_at) } : null;
}

/** The event ids of the newest `limit` trajectories of a task from `modelVersion` outside its held-out split, oldest first. */
export async function newestTrajectoryEventIds(q: Queryable, taskId: string, modelVersion: string, limit: number, heldOutPercent = 0): Promise<string[]> {
  const { rows } = await q.query<{ event_id: string }>(
    `SELECT event_id FROM trajectories WHERE task_id = $1 AND model_version = $2 AND split_bucket >= $3
     ORDER BY global_position DESC LIMIT $4`, [taskId, modelVersion, heldOutPercent, limit]);
  return rows.map((r) => r.event_id).reverse();
}

/** The event ids of the newest `limit` held-out trajectories of a task, of any version, newest first. */
export async function heldOutEventIds(q: Queryable, taskId: string, heldOutPercent: number, limit: number): Promise<string[]> {
  if (heldOutPercent <= 0) return [];
  const { rows } = await q.query<{ event_id: string }>(
    `SELECT event_id FROM trajectories WHERE task_id = $1 AND split_bucket < $2 ORDER BY global_position DESC LIMIT $3`, [taskId, heldOutPercent, limit]);
  return rows.map((r) => r.event_id);
}

/** Per task, model version and split (held out or not): interactions recorded, and those since the task's newest round ended. */
export interface InteractionCount {
  taskId: string; modelVersion: string; heldOut: boolean; recorded: number; fresh: number;
  /** Logged under a name no version or alias resolves (modelVersion is that name). */
  unresolved?: true;
}

/** Interactions whose model name resolves to no version (no published version or alias has it), per task and name, most first. */
export async function readUnresolvedCounts(q: Queryable): Promise<{ taskId: string; name: string; recorded: number }[]> {
  const { rows } = await q.query<{ task_id: string; logged_version: string; recorded: string }>(
    'SELECT task_id, logged_version, recorded FROM unresolved_interactions ORDER BY recorded DESC, task_id, logged_version');
  return rows.map((r) => ({ taskId: r.task_id, name: r.logged_version, recorded: Number(r.recorded) }));
}

/**
 * Every count, grouped by task, version and split for the given held-out percents (a task not
 * named holds out none); interactions of a name that resolves to no version are counted under
 * that name, outside the held-out split.
 */
export async function readInteractionCounts(q: Queryable, heldOutPercents: ReadonlyMap<string, number>): Promise<InteractionCount[]> {
  const { rows } = await q.query<{ task_id: string; model_version: string; split_bucket: number; recorded: string; fresh: string }>(
    `SELECT task_id, model_version, split_bucket, sum(recorded)::bigint AS recorded, sum(recorded - at_last_round_end)::bigint AS fresh
     FROM trajectory_counts GROUP BY task_id, model_version, split_bucket`);
  const out = new Map<string, InteractionCount>();
  for (const r of rows) {
    const heldOut = r.split_bucket < (heldOutPercents.get(r.task_id) ?? 0);
    const key = JSON.stringify([r.task_id, r.model_version, heldOut]);
    const c = out.get(key) ?? { taskId: r.task_id, modelVersion: r.model_version, heldOut, recorded: 0, fresh: 0 };
    c.recorded += Number(r.recorded);
    c.fresh += Number(r.fresh);
    out.set(key, c);
  }
  for (const u of await readUnresolvedCounts(q)) {
    const key = JSON.stringify([u.taskId, u.name, false]);
    const c = out.get(key) ?? { taskId: u.taskId, modelVersion: u.name, heldOut: false, recorded: 0, fresh: 0, unresolved: true as const };
    c.recorded += u.recorded;
    c.fresh += u.recorded;
    out.set(key, c);
  }
  return [...out.values()].sort((a, b) => a.taskId.localeCompare(b.taskId) || a.modelVersion.localeCompare(b.modelVersion) || Number(a.heldOut) - Number(b.heldOut));
}
