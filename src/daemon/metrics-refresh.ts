import type { Queryable } from '../db/sql.ts';
import type { Metrics } from '../http/metrics.ts';
import { readCheckpoints } from '../projections/checkpoints.ts';
import { taskUsage } from '../operations/task-usage.ts';
import { readKnowledgeSummary, readNewestPoolTokens } from '../projections/knowledge/knowledge-queries.ts';
import { readActiveModel, readPublishedVersions } from '../projections/models/model-projection.ts';
import { readInteractionCounts } from '../projections/trajectories/trajectory-queries.ts';
import { heldOutPercentOf, type Task } from '../tasks/task.ts';
import { ageOfFirstEventAfter, headPosition } from '../store/log-queries.ts';

/**
 * Gauges that describe stored state are read from the database at scrape time (at most once a
 * second), so followers and the leader report the same figures.
 */
export function createMetricsRefresher(q: Queryable, metrics: Metrics, tasks: readonly Task[], outboxBacklog?: () => Promise<number>, minIntervalMs = 1000): () => Promise<void> {
  let last = 0;
  let inFlight: Promise<void> | undefined;
  const refresh = async () => {
    const head = await headPosition(q);
    metrics.headPosition.set(head);
    for (const c of await readCheckpoints(q)) {
      metrics.projectionPosition.set({ projection: c.name }, c.checkpoint.globalPosition);
      metrics.projectionLagEvents.set({ projection: c.name }, Math.max(0, head - c.checkpoint.globalPosition));
      metrics.projectionLagSeconds.set({ projection: c.name }, await ageOfFirstEventAfter(q, c.checkpoint));
    }
    const k = await readKnowledgeSummary(q);
    metrics.knowledgeVersion.set(k.version);
    metrics.knowledgeItems.set(k.itemCount);
    metrics.knowledgeTokens.set(k.tokens);
    metrics.knowledgePoolTokens.reset();
    for (const p of await readNewestPoolTokens(q)) metrics.knowledgePoolTokens.set({ task: p.taskId === '' ? '(before tasks)' : p.taskId, slot: String(p.slot) }, p.tokens);
    const active = await readActiveModel(q);
    metrics.modelActiveInfo.reset();
    if (active) metrics.modelActiveInfo.set({ version: active.version }, 1);
    metrics.taskInteractions.reset();
    const counts = await readInteractionCounts(q, new Map(tasks.map((t) => [t.id, heldOutPercentOf(t)])));
    const usage = taskUsage(counts, active?.version ?? null, await readPublishedVersions(q), tasks);
    for (const u of usage) {
      const states: [string, number][] = [['usable', u.usable], ['held_out', u.why.heldOut], ['used', u.why.usedByRounds], ['older_version', u.why.olderVersions],
        ['unknown_version', Object.values(u.why.unknownVersions).reduce((a, b) => a + b, 0)], ['task_not_configured', u.why.taskNotConfigured]];
      for (const [state, n] of states) metrics.taskInteractions.set({ task: u.taskId, state }, n);
    }
    metrics.unknownModelInteractions.reset();
    for (const [name, n] of unknownNames(counts.filter((c) => c.unresolved).map((c) => ({ name: c.modelVersion, recorded: c.recorded })))) metrics.unknownModelInteractions.set({ name }, n);
    if (outboxBacklog) metrics.outboxBacklog.set(await outboxBacklog());
  };
  return async () => {
    if (Date.now() - last < minIntervalMs) return inFlight;
    last = Date.now();
    inFlight = refresh();
    return inFlight;
  };
}

/** Label values stay bounded: the names with the most interactions (over all tasks), the rest summed under one. */
export const UNKNOWN_NAMES_SHOWN = 20;
export function unknownNames(counts: readonly { name: string; recorded: number }[]): [string, number][] {
  const byName = new Map<string, number>();
  for (const c of counts) byName.set(c.name, (byName.get(c.name) ?? 0) + c.recorded);
  const sorted = [...byName].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = sorted.slice(0, UNKNOWN_NAMES_SHOWN);
  const rest = sorted.slice(UNKNOWN_NAMES_SHOWN).reduce((n, [, k]) => n + k, 0);
  return rest > 0 ? [...shown, ['(other names)', rest]] : shown;
}
