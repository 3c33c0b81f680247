/**
 * Per task, what the next round can learn from and why the other interactions cannot: pure logic
 * over the trajectories projection's counts, the active version and the published versions.
 */
import type { InteractionCount } from '../projections/trajectories/trajectory-queries.ts';

/** What a task's interactions are to the next round (the kinds of what it cannot use are `why`). */
export interface TaskUsage {
  taskId: string;
  /** chat or game when the task is configured; null when no configured task has this id (never learned). */
  kind: 'chat' | 'game' | null;
  /** From the active version, outside the held-out split, after the task's newest round: the next round's material. */
  usable: number;
  why: {
    /** In the held-out split: measured by the chat gate, never trained on. */
    heldOut: number;
    /** From the active version, already learned from by an earlier round (or used by one that failed). */
    usedByRounds: number;
    /** From a version oeld published that is no longer active: extraction needs the version that acted. */
    olderVersions: number;
    /** From a model version oeld never published (a serving stack's own name), per name. */
    unknownVersions: Record<string, number>;
    /** Of a task no configuration names (OELD_TASKS): nothing learns from it. */
    taskNotConfigured: number;
  };
}

export function taskUsage(
  counts: readonly InteractionCount[],
  activeVersion: string | null,
  publishedVersions: ReadonlySet<string>,
  tasks: readonly { id: string; kind: 'chat' | 'game' }[],
): TaskUsage[] {
  const byTask = new Map<string, TaskUsage>();
  const entry = (taskId: string): TaskUsage => {
    let u = byTask.get(taskId);
    if (!u) {
      u = { taskId, kind: tasks.find((t) => t.id === taskId)?.kind ?? null, usable: 0, why: { heldOut: 0, usedByRounds: 0, olderVersions: 0, unknownVersions: {}, taskNotConfigured: 0 } };
      byTask.set(taskId, u);
    }
    return u;
  };
  for (const t of tasks) entry(t.id);
  for (const c of counts) {
    const u = entry(c.taskId);
    if (u.kind === null) u.why.taskNotConfigured += c.recorded;
    else if (c.heldOut) u.why.heldOut += c.recorded;
    else if (!publishedVersions.has(c.modelVersion)) u.why.unknownVersions[c.modelVersion] = (u.why.unknownVersions[c.modelVersion] ?? 0) + c.recorded;
    else if (c.modelVersion !== activeVersion) u.why.olderVersions += c.recorded;
    else { u.usable += c.fresh; u.why.usedByRounds += c.recorded - c.fresh; }
  }
  return [...byTask.values()];
}

/** One line per task for `oeld status`. */
export function describeTaskUsage(u: TaskUsage): string {
  const parts = [`${u.usable} usable for the next round`];
  if (u.why.heldOut) parts.push(`${u.why.heldOut} held out for the gate`);
  if (u.why.usedByRounds) parts.push(`${u.why.usedByRounds} already used by rounds`);
  if (u.why.olderVersions) parts.push(`${u.why.olderVersions} from older versions (extraction needs the version that acted)`);
  const unknown = Object.entries(u.why.unknownVersions);
  if (unknown.length) parts.push(`${unknown.reduce((n, [, k]) => n + k, 0)} from versions oeld never published (${unknown.map(([v, k]) => `${v}: ${k}`).join(', ')})`);
  if (u.why.taskNotConfigured) parts.push(`${u.why.taskNotConfigured} of a task OELD_TASKS does not name (not learned from)`);
  return `${u.taskId}${u.kind ? ` (${u.kind})` : ''}: ${parts.join('; ')}`;
}
