/** What the round runner, the trigger and the simulator read: the trajectories projection for what to learn from, the log for the rest. */
import type { Queryable } from '../db/sql.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { newestTrajectoryEventIds } from '../projections/trajectories/trajectory-queries.ts';
import { countInteractions, openStreams, readEventsByIds } from '../store/log-queries.ts';

export interface LoggedTrajectory { id: string; data: EventDataMap['InteractionRecorded'] }

/** The newest `limit` trajectories (interactions with turns) produced by `modelVersion`, oldest first. */
export async function readTrajectories(q: Queryable, modelVersion: string, limit: number): Promise<LoggedTrajectory[]> {
  const events = await readEventsByIds(q, await newestTrajectoryEventIds(q, modelVersion, limit));
  return events.map((e) => {
    const data = e.data as EventDataMap['InteractionRecorded'];
    return { id: data.interactionId, data };
  });
}

/** Rounds that started and never completed or failed: a process died in the middle of them. */
export async function readUnfinishedRounds(q: Queryable): Promise<{ roundId: string; streamId: string; startedAt: Date }[]> {
  const started = await openStreams(q, 'RoundStarted', ['RoundCompleted', 'RoundFailed']);
  return started.map((e) => ({ roundId: (e.data as EventDataMap['RoundStarted']).roundId, streamId: e.streamId, startedAt: e.recordedAt }));
}

/**
 * Simulator episodes recorded so far (the next episode's deployment seed index). Counted in the log,
 * not the projection: read once at start, it must be exact even while the projection catches up.
 */
export function countSimulatorEpisodes(q: Queryable): Promise<number> {
  return countInteractions(q, { sourceKind: 'simulator' });
}
