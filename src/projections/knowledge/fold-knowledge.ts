import type { RecordedEvent } from '../../events/envelope.ts';
import {
  accumulate, knowledgeHash, poolHash, poolKey, poolTokens, type KnowledgeItem, type Pool,
} from './knowledge-base.ts';
import { approximateTokens } from './tokens.ts';

/** The current knowledge base, held in memory by the projection. */
export interface KnowledgeState {
  version: number;
  seq: number;
  pools: Map<string, Pool>;
  poolHashes: Map<string, string>;
}

export interface VersionRecord {
  version: number;
  eventId: string;
  globalPosition: number;
  change: 'extracted' | 'retracted' | 'rolled_back';
  rolledBackTo: number | null;
  itemCount: number;
  tokens: number;
  poolCount: number;
  contentHash: string;
  recordedAt: Date;
}

/** What one event changed: the new version, the items that entered it and those that left it. */
export interface KnowledgeChange {
  record: VersionRecord;
  added: KnowledgeItem[];
  removed: string[];
}

export const emptyKnowledgeState = (): KnowledgeState => ({ version: 0, seq: 0, pools: new Map(), poolHashes: new Map() });

export const EMPTY_KNOWLEDGE_HASH = knowledgeHash([]);

function touch(state: KnowledgeState, key: string): void {
  const pool = state.pools.get(key);
  if (!pool || pool.items.length === 0) { state.pools.delete(key); state.poolHashes.delete(key); } else state.poolHashes.set(key, poolHash(pool));
}

function record(state: KnowledgeState, e: RecordedEvent, change: VersionRecord['change'], rolledBackTo: number | null): VersionRecord {
  let itemCount = 0;
  let tokens = 0;
  for (const p of state.pools.values()) { itemCount += p.items.length; tokens += poolTokens(p); }
  return {
    version: state.version, eventId: e.id, globalPosition: e.globalPosition, change, rolledBackTo,
    itemCount, tokens, poolCount: state.pools.size, contentHash: knowledgeHash(state.poolHashes), recordedAt: e.recordedAt,
  };
}

function findItem(state: KnowledgeState, itemId: string): { key: string; index: number } | undefined {
  for (const [key, pool] of state.pools) {
    const index = pool.items.findIndex((i) => i.itemId === itemId);
    if (index >= 0) return { key, index };
  }
  return undefined;
}

/** KnowledgeExtracted: append to the (task, model version, slot) pool, cap it by its budget. */
export function foldExtracted(state: KnowledgeState, e: RecordedEvent<'KnowledgeExtracted'>): KnowledgeChange | null {
  const d = e.data;
  const taskId = d.taskId ?? '';
  const key = poolKey(taskId, d.extractingModelVersion, d.poolSlot);
  const pool = state.pools.get(key) ?? { taskId, modelVersion: d.extractingModelVersion, slot: d.poolSlot, items: [] };
  const fresh = d.items.filter((i) => !findItem(state, i.id));
  if (fresh.length === 0) return null;
  const added: KnowledgeItem[] = fresh.map((i) => ({
    itemId: i.id, taskId, modelVersion: d.extractingModelVersion, slot: d.poolSlot, seq: ++state.seq, text: i.text,
    tokens: i.tokens ?? Math.max(1, approximateTokens(i.text)), sourceInteractionIds: d.sourceInteractionIds, eventId: e.id,
  }));
  const dropped = accumulate(pool, added, d.tokenBudget);
  state.pools.set(key, pool);
  touch(state, key);
  state.version++;
  const droppedIds = new Set(dropped.map((i) => i.itemId));
  return {
    record: record(state, e, 'extracted', null),
    // An item added and dropped by the same event (over budget on arrival) never entered a version.
    added: added.filter((i) => !droppedIds.has(i.itemId)),
    removed: dropped.filter((i) => !added.includes(i)).map((i) => i.itemId),
  };
}

/** KnowledgeItemRetracted: the item leaves whichever pool holds it; unknown items change nothing. */
export function foldRetracted(state: KnowledgeState, e: RecordedEvent<'KnowledgeItemRetracted'>): KnowledgeChange | null {
  const at = findItem(state, e.data.itemId);
  if (!at) return null;
  state.pools.get(at.key)!.items.splice(at.index, 1);
  touch(state, at.key);
  state.version++;
  return { record: record(state, e, 'retracted', null), added: [], removed: [e.data.itemId] };
}

/**
 * KnowledgeBaseRolledBack: the knowledge base becomes exactly the target version's content
 * (`target`, read from history by the caller) under a new version number; history is kept.
 */
export function foldRolledBack(state: KnowledgeState, e: RecordedEvent<'KnowledgeBaseRolledBack'>, target: KnowledgeItem[]): KnowledgeChange {
  const before = new Map<string, KnowledgeItem>();
  for (const p of state.pools.values()) for (const i of p.items) before.set(i.itemId, i);
  const after = new Set(target.map((i) => i.itemId));
  state.pools = new Map();
  for (const i of [...target].sort((a, b) => a.seq - b.seq)) {
    const key = poolKey(i.taskId, i.modelVersion, i.slot);
    const pool = state.pools.get(key) ?? { taskId: i.taskId, modelVersion: i.modelVersion, slot: i.slot, items: [] };
    pool.items.push(i);
    state.pools.set(key, pool);
  }
  state.poolHashes = new Map();
  for (const key of state.pools.keys()) touch(state, key);
  state.version++;
  return {
    record: record(state, e, 'rolled_back', e.data.toVersion),
    added: target.filter((i) => !before.has(i.itemId)),
    removed: [...before.keys()].filter((id) => !after.has(id)),
  };
}
