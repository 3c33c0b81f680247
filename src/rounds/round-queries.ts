/** What the round runner and the trigger read from the event log (public.events). */
import type { Queryable } from '../db/sql.ts';
import type { EventDataMap } from '../events/schemas.ts';

export interface LoggedTrajectory { id: string; data: EventDataMap['InteractionRecorded'] }

/** The newest `limit` trajectories (interactions with turns) produced by `modelVersion`, oldest first. */
export async function readTrajectories(q: Queryable, modelVersion: string, limit: number): Promise<LoggedTrajectory[]> {
  const { rows } = await q.query<{ event_id: string; data: EventDataMap['InteractionRecorded'] }>(
    `SELECT event_id, data FROM public.events
      WHERE type = 'InteractionRecorded' AND data->>'modelVersion' = $1 AND data ? 'turns'
      ORDER BY global_position DESC LIMIT $2`, [modelVersion, limit]);
  return rows.reverse().map((r) => ({ id: r.data.interactionId, data: r.data }));
}

/** Interactions recorded from `modelVersion`. */
export async function countInteractions(q: Queryable, modelVersion: string): Promise<number> {
  const { rows } = await q.query<{ n: string }>(
    `SELECT count(*) AS n FROM public.events WHERE type = 'InteractionRecorded' AND data->>'modelVersion' = $1`, [modelVersion]);
  return Number(rows[0]!.n);
}

/** Interactions recorded from `modelVersion` after `since` (all of them when since is null). */
export async function countInteractionsSince(q: Queryable, modelVersion: string, since: Date | null): Promise<number> {
  if (since === null) return countInteractions(q, modelVersion);
  const { rows } = await q.query<{ n: string }>(
    `SELECT count(*) AS n FROM public.events
      WHERE type = 'InteractionRecorded' AND data->>'modelVersion' = $1 AND recorded_at > $2`, [modelVersion, since]);
  return Number(rows[0]!.n);
}

/** Rounds that started and never completed or failed: a process died in the middle of them. */
export async function readUnfinishedRounds(q: Queryable): Promise<{ roundId: string; streamId: string; startedAt: Date }[]> {
  const { rows } = await q.query<{ round_id: string; stream_id: string; recorded_at: Date }>(
    `SELECT s.data->>'roundId' AS round_id, s.stream_id, s.recorded_at FROM public.events s
      WHERE s.type = 'RoundStarted' AND NOT EXISTS (
        SELECT 1 FROM public.events f WHERE f.stream_id = s.stream_id AND f.type IN ('RoundCompleted', 'RoundFailed'))
      ORDER BY s.global_position`);
  return rows.map((r) => ({ roundId: r.round_id, streamId: r.stream_id, startedAt: r.recorded_at }));
}

/** When the newest round ended (completed or failed), or null. */
export async function lastRoundEnd(q: Queryable): Promise<Date | null> {
  const { rows } = await q.query<{ at: Date | null }>(
    `SELECT max(recorded_at) AS at FROM public.events WHERE type IN ('RoundCompleted', 'RoundFailed')`);
  return rows[0]?.at ?? null;
}

/** Simulator episodes recorded so far (the next episode's deployment seed index). */
export async function countSimulatorEpisodes(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ n: string }>(
    `SELECT count(*) AS n FROM public.events WHERE type = 'InteractionRecorded' AND data->'source'->>'kind' = 'simulator'`);
  return Number(rows[0]!.n);
}
