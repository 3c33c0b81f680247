import type { Queryable } from '../db/sql.ts';
import type { Metrics } from '../http/metrics.ts';
import { readCheckpoints } from '../projections/checkpoints.ts';
import { LIVE_SCHEMA } from '../projections/schema.ts';
import { ageOfFirstEventAfter, headPosition } from '../store/log-queries.ts';

/**
 * Gauges that describe stored state are read from the database at scrape time (at most once a
 * second), so followers and the leader report the same figures.
 */
export function createMetricsRefresher(q: Queryable, metrics: Metrics, outboxBacklog?: () => Promise<number>, minIntervalMs = 1000): () => Promise<void> {
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
    const { rows: [k] } = await q.query<{ version: number; item_count: number; tokens: number }>(
      `SELECT version, item_count, tokens FROM ${LIVE_SCHEMA}.knowledge_versions ORDER BY version DESC LIMIT 1`);
    metrics.knowledgeVersion.set(Number(k?.version ?? 0));
    metrics.knowledgeItems.set(Number(k?.item_count ?? 0));
    metrics.knowledgeTokens.set(Number(k?.tokens ?? 0));
    const { rows: pools } = await q.query<{ slot: number; tokens: string }>(
      `SELECT pool_slot AS slot, sum(tokens) AS tokens FROM ${LIVE_SCHEMA}.knowledge_items
        WHERE valid_to IS NULL AND pool_model_version = (
          SELECT pool_model_version FROM ${LIVE_SCHEMA}.knowledge_items WHERE valid_to IS NULL ORDER BY seq DESC LIMIT 1)
        GROUP BY pool_slot`);
    metrics.knowledgePoolTokens.reset();
    for (const p of pools) metrics.knowledgePoolTokens.set({ slot: String(p.slot) }, Number(p.tokens));
    const { rows: [a] } = await q.query<{ version: string }>(
      `SELECT version FROM ${LIVE_SCHEMA}.model_activations ORDER BY global_position DESC LIMIT 1`);
    metrics.modelActiveInfo.reset();
    if (a) metrics.modelActiveInfo.set({ version: a.version }, 1);
    if (outboxBacklog) metrics.outboxBacklog.set(await outboxBacklog());
  };
  return async () => {
    if (Date.now() - last < minIntervalMs) return inFlight;
    last = Date.now();
    inFlight = refresh();
    return inFlight;
  };
}
