import { createHash } from 'node:crypto';

/** One experience item in one pool. seq orders items by when they were added (newest highest). */
export interface KnowledgeItem {
  itemId: string;
  /** The task of the pool ('' for extractions from before tasks). */
  taskId: string;
  modelVersion: string;
  slot: number;
  seq: number;
  text: string;
  tokens: number;
  sourceInteractionIds: string[];
  eventId: string;
}

/** A pool: the knowledge one seed slot accumulated for a task, keyed by the task and the model version that extracted it. */
export interface Pool {
  taskId: string;
  modelVersion: string;
  slot: number;
  items: KnowledgeItem[];
}

export const ITEM_MARKER = '- EXPERIENCE ITEM: ';

/** `version#slot` for pools from before tasks (their keys, and so the content hash, stay as they were), `task/version#slot` otherwise. */
export const poolKey = (taskId: string, modelVersion: string, slot: number): string => `${taskId === '' ? '' : `${taskId}/`}${modelVersion}#${slot}`;

export const poolTokens = (pool: Pool): number => pool.items.reduce((n, i) => n + i.tokens, 0);

/** The text a teacher sees: one marked line per item, oldest first. */
export const renderPool = (pool: Pool): string => renderItemTexts(pool.items.map((i) => i.text));

/** Item texts as a knowledge text: one marked line each, oldest first (what the teacher reads). */
export const renderItemTexts = (texts: readonly string[]): string => texts.map((t) => `${ITEM_MARKER}${t}`).join('\n');

export const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export const sortedPools = (pools: Iterable<Pool>): Pool[] =>
  [...pools].filter((p) => p.items.length > 0).sort((a, b) =>
    a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : a.modelVersion < b.modelVersion ? -1 : a.modelVersion > b.modelVersion ? 1 : a.slot - b.slot);

/** The whole knowledge base as text: a header per pool, then its items. */
export function renderKnowledgeBase(pools: Iterable<Pool>): string {
  return sortedPools(pools).map((p) => `## pool ${poolKey(p.taskId, p.modelVersion, p.slot)}\n${renderPool(p)}`).join('\n\n');
}

/**
 * The content hash of a knowledge base: of each non-empty pool's key and rendered text. Equal
 * content gives an equal hash whatever version number or history led to it.
 */
export function knowledgeHash(poolHashes: Iterable<[key: string, hash: string]>): string {
  const lines = [...poolHashes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, h]) => `${k}\t${h}`);
  return sha256(lines.join('\n'));
}

export const poolHash = (pool: Pool): string => sha256(renderPool(pool));

/**
 * The OEL accumulation rule, the one place it is written: after new items are appended (oldest
 * first), the OLDEST are dropped until the tokens fit the budget. The knowledge projection's fold
 * and the extractor's slot reducer (extraction/accumulate-pool.ts) both apply it, so a slot
 * recorded as events replays to exactly the state the extractor saw.
 */
export function capOldestFirst<T extends { tokens: number }>(items: readonly T[], tokenBudget: number): { kept: T[]; dropped: T[] } {
  let total = items.reduce((n, i) => n + i.tokens, 0);
  let drop = 0;
  while (total > tokenBudget && drop < items.length) total -= items[drop++]!.tokens;
  return { kept: items.slice(drop), dropped: items.slice(0, drop) };
}

/** Appends `added` to the pool and applies the accumulation rule. Returns the items that were dropped. */
export function accumulate(pool: Pool, added: KnowledgeItem[], tokenBudget: number): KnowledgeItem[] {
  const { kept, dropped } = capOldestFirst([...pool.items, ...added], tokenBudget);
  pool.items = kept;
  return dropped;
}
