import type { Queryable } from '../../db/sql.ts';
import { renderKnowledgeBase, renderPool, type KnowledgeItem, type Pool, poolKey } from './knowledge-base.ts';
import { EMPTY_KNOWLEDGE_HASH } from './fold-knowledge.ts';

interface ItemRow {
  item_id: string; pool_task_id: string; pool_model_version: string; pool_slot: number; seq: number; text: string;
  tokens: number; source_interaction_ids: string[]; event_id: string;
}

const toItem = (r: ItemRow): KnowledgeItem => ({
  itemId: r.item_id, taskId: r.pool_task_id, modelVersion: r.pool_model_version, slot: Number(r.pool_slot), seq: Number(r.seq), text: r.text,
  tokens: Number(r.tokens), sourceInteractionIds: r.source_interaction_ids, eventId: r.event_id,
});

/** The items of knowledge version `version` (null: the current one), oldest first. */
export async function readItemsAt(q: Queryable, version: number | null): Promise<KnowledgeItem[]> {
  const { rows } = version === null
    ? await q.query<ItemRow>('SELECT * FROM knowledge_items WHERE valid_to IS NULL ORDER BY seq')
    : await q.query<ItemRow>(
      'SELECT * FROM knowledge_items WHERE valid_from <= $1 AND (valid_to IS NULL OR valid_to > $1) ORDER BY seq', [version]);
  return rows.map(toItem);
}

export async function versionExists(q: Queryable, version: number): Promise<boolean> {
  if (version === 0) return true;
  const { rows } = await q.query('SELECT 1 FROM knowledge_versions WHERE version = $1', [version]);
  return rows.length === 1;
}

export interface KnowledgeVersionView {
  version: number;
  contentHash: string;
  itemCount: number;
  tokens: number;
  change: string | null;
  rolledBackTo: number | null;
  pools: { taskId: string; modelVersion: string; slot: number; tokens: number; items: { itemId: string; text: string }[]; text: string }[];
  text: string;
}

export function groupPools(items: KnowledgeItem[]): Pool[] {
  const pools = new Map<string, Pool>();
  for (const i of items) {
    const key = poolKey(i.taskId, i.modelVersion, i.slot);
    const p = pools.get(key) ?? { taskId: i.taskId, modelVersion: i.modelVersion, slot: i.slot, items: [] };
    p.items.push(i);
    pools.set(key, p);
  }
  return [...pools.values()];
}

/** Every knowledge version's size, oldest first. */
export async function readKnowledgeHistory(q: Queryable): Promise<{ version: number; itemCount: number; tokens: number; recordedAt: Date }[]> {
  const { rows } = await q.query<{ version: string; item_count: number; tokens: number; recorded_at: Date }>(
    'SELECT version, item_count, tokens, recorded_at FROM knowledge_versions ORDER BY version');
  return rows.map((r) => ({ version: Number(r.version), itemCount: Number(r.item_count), tokens: Number(r.tokens), recordedAt: r.recorded_at }));
}

/** The newest knowledge version's number, item count and tokens (zeros before any), without its items. */
export async function readKnowledgeSummary(q: Queryable): Promise<{ version: number; itemCount: number; tokens: number }> {
  const { rows: [k] } = await q.query<{ version: number; item_count: number; tokens: number }>('SELECT version, item_count, tokens FROM knowledge_versions ORDER BY version DESC LIMIT 1');
  return { version: Number(k?.version ?? 0), itemCount: Number(k?.item_count ?? 0), tokens: Number(k?.tokens ?? 0) };
}

/** Per task, the tokens in each pool slot of the task's newest extracting model version (the latest round's knowledge). */
export async function readNewestPoolTokens(q: Queryable): Promise<{ taskId: string; slot: number; tokens: number }[]> {
  const { rows } = await q.query<{ task: string; slot: number; tokens: string }>(
    `WITH newest AS (
       SELECT DISTINCT ON (pool_task_id) pool_task_id, pool_model_version FROM knowledge_items WHERE valid_to IS NULL ORDER BY pool_task_id, seq DESC)
     SELECT k.pool_task_id AS task, k.pool_slot AS slot, sum(k.tokens) AS tokens FROM knowledge_items k JOIN newest n USING (pool_task_id, pool_model_version)
      WHERE k.valid_to IS NULL GROUP BY k.pool_task_id, k.pool_slot ORDER BY 1, 2`);
  return rows.map((r) => ({ taskId: r.task, slot: Number(r.slot), tokens: Number(r.tokens) }));
}

/** A version as operators and the trainer read it: pools, rendered text, hash. */
export async function readKnowledgeVersion(q: Queryable, version?: number): Promise<KnowledgeVersionView | null> {
  const { rows } = version === undefined
    ? await q.query<{ version: number; content_hash: string; item_count: number; tokens: number; change: string; rolled_back_to: number | null }>(
      'SELECT * FROM knowledge_versions ORDER BY version DESC LIMIT 1')
    : await q.query<{ version: number; content_hash: string; item_count: number; tokens: number; change: string; rolled_back_to: number | null }>(
      'SELECT * FROM knowledge_versions WHERE version = $1', [version]);
  const row = rows[0];
  if (!row && version !== undefined && version !== 0) return null;
  const v = row ? Number(row.version) : 0;
  const pools = groupPools(await readItemsAt(q, v));
  return {
    version: v,
    contentHash: row?.content_hash ?? EMPTY_KNOWLEDGE_HASH,
    itemCount: row ? Number(row.item_count) : 0,
    tokens: row ? Number(row.tokens) : 0,
    change: row?.change ?? null,
    rolledBackTo: row?.rolled_back_to == null ? null : Number(row.rolled_back_to),
    pools: pools.map((p) => ({
      taskId: p.taskId, modelVersion: p.modelVersion, slot: p.slot, tokens: p.items.reduce((n, i) => n + i.tokens, 0),
      items: p.items.map((i) => ({ itemId: i.itemId, text: i.text })), text: renderPool(p),
    })),
    text: renderKnowledgeBase(pools),
  };
}
