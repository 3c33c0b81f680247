/** What the round runner, the trigger and the simulator read: the trajectories projection for what to learn from, the log for the rest. */
import type { Queryable } from '../db/sql.ts';
import { uuidFromKey } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import type { Prompt } from '../model/inference/chat-prompt.ts';
import { heldOutEventIds, newestTrajectoryEventIds } from '../projections/trajectories/trajectory-queries.ts';
import { countInteractions, openStreams, readEventsByIds } from '../store/log-queries.ts';
import { trainingPrompts } from '../tasks/training-prompts.ts';

/** An interaction as a round reads it: its interaction id, the id of the event that recorded it, and the recorded data. */
export interface LoggedTrajectory { id: string; eventId: string; data: EventDataMap['InteractionRecorded'] }

const asTrajectory = (e: { id: string; data: unknown }): LoggedTrajectory => {
  const d = e.data as EventDataMap['InteractionRecorded'];
  return { id: d.interactionId, eventId: e.id, data: d };
};

/** The event id of an interaction's feedback: one per interaction (a second, different one is a conflict). */
export const feedbackEventId = (interactionId: string): string => uuidFromKey(`feedback:${interactionId}`);

/**
 * The newest `limit` trajectories of a task produced by `modelVersion`, outside its held-out
 * split, oldest first; feedback given after an interaction was recorded is its outcome (its
 * fields over the recorded ones).
 */
export async function readTrajectories(q: Queryable, taskId: string, modelVersion: string, limit: number, heldOutPercent = 0): Promise<LoggedTrajectory[]> {
  const trajectories = (await readEventsByIds(q, await newestTrajectoryEventIds(q, taskId, modelVersion, limit, heldOutPercent))).map(asTrajectory);
  const feedback = new Map((await readEventsByIds(q, trajectories.map((t) => feedbackEventId(t.data.interactionId))))
    .map((e) => { const d = e.data as EventDataMap['InteractionFeedbackRecorded']; return [d.interactionId, d.outcome] as const; }));
  return trajectories.map((t) => {
    const outcome = feedback.get(t.data.interactionId);
    return outcome ? { ...t, data: { ...t.data, outcome: { ...t.data.outcome, ...outcome } } } : t;
  });
}

/** Prompts (one per assistant turn) of a task's newest held-out logs, newest log first, at most `limit`. */
export async function readHeldOutPrompts(q: Queryable, taskId: string, heldOutPercent: number, limit: number): Promise<Prompt[]> {
  const ids = await heldOutEventIds(q, taskId, heldOutPercent, limit);
  const byId = new Map((await readEventsByIds(q, ids)).map((e) => [e.id, e]));
  const prompts: Prompt[] = [];
  for (const id of ids) {
    const e = byId.get(id);
    if (e) prompts.push(...trainingPrompts(asTrajectory(e).data).reverse());
    if (prompts.length >= limit) break;
  }
  return prompts.slice(0, limit);
}

/** Rounds that started and never completed or failed: a process died in the middle of them. */
export async function readUnfinishedRounds(q: Queryable): Promise<{ roundId: string; streamId: string; startedAt: Date }[]> {
  const started = await openStreams(q, 'RoundStarted', ['RoundCompleted', 'RoundSkipped', 'RoundFailed']);
  return started.map((e) => ({ roundId: (e.data as EventDataMap['RoundStarted']).roundId, streamId: e.streamId, startedAt: e.recordedAt }));
}

/**
 * A task's simulator episodes recorded so far (the next episode's deployment seed index). Counted
 * in the log, not the projection: read once at start, it must be exact even while the projection
 * catches up.
 */
export function countSimulatorEpisodes(q: Queryable, taskId: string): Promise<number> {
  return countInteractions(q, { sourceKind: 'simulator', taskId });
}
