import type { Queryable } from '../db/sql.ts';
import type { Metrics } from '../http/metrics.ts';
import { LIVE_SCHEMA } from '../projections/schema.ts';

/**
 * Gauges that describe stored state are read from the database at scrape time (at most once a
 * second), so followers and the leader report the same figures.
 */
export function createMetricsRefresher(q: Queryable, metrics: Metrics, outboxBacklog?: () => Promise<number>, minIntervalMs = 1000): () => Promise<void> {
  let last = 0;
  let inFlight: Promise<void> | undefined;
  const refresh = async () => {
    const { rows: [head] } = await q.query<{ head: number | null }>('SELECT max(global_position) AS head FROM events');
    const headPosition = Number(head?.head ?? 0);
    metrics.headPosition.set(headPosition);
    const { rows: cps } = await q.query<{ name: string; global_position: number; lag_s: number | null }>(
      `SELECT c.name, c.global_position,
              (SELECT extract(epoch FROM clock_timestamp() - e.recorded_at) FROM events e
                WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
                ORDER BY e.transaction_id, e.global_position LIMIT 1)::float8 AS lag_s
         FROM ${LIVE_SCHEMA}.projection_checkpoints c`);
    for (const c of cps) {
      metrics.projectionPosition.set({ projection: c.name }, Number(c.global_position));
      metrics.projectionLagEvents.set({ projection: c.name }, Math.max(0, headPosition - Number(c.global_position)));
      metrics.projectionLagSeconds.set({ projection: c.name }, Math.max(0, Number(c.lag_s ?? 0)));
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
