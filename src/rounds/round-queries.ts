/** What the round runner and the trigger ask of the event log, in the rounds' own terms (src/store/log-queries.ts runs the SQL). */
import type { Queryable } from '../db/sql.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { countInteractions, lastRecordedAt, openStreams, readNewestTrajectories } from '../store/log-queries.ts';

export interface LoggedTrajectory { id: string; data: EventDataMap['InteractionRecorded'] }

/** The newest `limit` trajectories (interactions with turns) produced by `modelVersion`, oldest first. */
export async function readTrajectories(q: Queryable, modelVersion: string, limit: number): Promise<LoggedTrajectory[]> {
  return (await readNewestTrajectories(q, { modelVersion }, limit)).map((data) => ({ id: data.interactionId, data }));
}

/** Interactions recorded from `modelVersion` after `since` (all of them when since is null). */
export function countInteractionsSince(q: Queryable, modelVersion: string, since: Date | null): Promise<number> {
  return countInteractions(q, { modelVersion, since });
}

/** Rounds that started and never completed or failed: a process died in the middle of them. */
export async function readUnfinishedRounds(q: Queryable): Promise<{ roundId: string; streamId: string; startedAt: Date }[]> {
  const started = await openStreams(q, 'RoundStarted', ['RoundCompleted', 'RoundFailed']);
  return started.map((e) => ({ roundId: (e.data as EventDataMap['RoundStarted']).roundId, streamId: e.streamId, startedAt: e.recordedAt }));
}

/** When the newest round ended (completed or failed), or null. */
export function lastRoundEnd(q: Queryable): Promise<Date | null> {
  return lastRecordedAt(q, ['RoundCompleted', 'RoundFailed']);
}

/** Simulator episodes recorded so far (the next episode's deployment seed index). */
export function countSimulatorEpisodes(q: Queryable): Promise<number> {
  return countInteractions(q, { sourceKind: 'simulator' });
}
