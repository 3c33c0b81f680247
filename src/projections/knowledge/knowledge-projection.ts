import { readFileSync } from 'node:fs';
import type { Queryable } from '../../db/sql.ts';
import type { RecordedEvent } from '../../events/envelope.ts';
import { isType } from '../../events/envelope.ts';
import type { Projection } from '../projection.ts';
import {
  emptyKnowledgeState, foldExtracted, foldRetracted, foldRolledBack,
  type KnowledgeChange, type KnowledgeState,
} from './fold-knowledge.ts';
import { poolHash, poolKey, type KnowledgeItem, type Pool } from './knowledge-base.ts';
import { readItemsAt, versionExists } from './knowledge-queries.ts';

const DDL = readFileSync(new URL('./tables.sql', import.meta.url), 'utf8');

/**
 * The versioned knowledge base. Folding is pure (fold-knowledge.ts) over an in-memory copy of the
 * current base; this class only loads that copy and writes each batch's changes in bulk.
 */
export class KnowledgeProjection implements Projection {
  readonly name = 'knowledge';
  readonly types = ['KnowledgeExtracted', 'KnowledgeItemRetracted', 'KnowledgeBaseRolledBack'] as const;
  readonly ddl = DDL;
  readonly tables = [
    { name: 'knowledge_items', orderBy: 'item_id, valid_from' },
    { name: 'knowledge_versions', orderBy: 'version' },
  ] as const;
  /** Rollback events naming a version that does not exist: skipped, reported here. */
  readonly skipped: { eventId: string; reason: string }[] = [];
  private state: KnowledgeState = emptyKnowledgeState();

  get current(): Readonly<KnowledgeState> { return this.state; }

  async load(q: Queryable): Promise<void> {
    const state = emptyKnowledgeState();
    const items = await readItemsAt(q, null);
    for (const i of items) {
      const key = poolKey(i.taskId, i.modelVersion, i.slot);
      const pool: Pool = state.pools.get(key) ?? { taskId: i.taskId, modelVersion: i.modelVersion, slot: i.slot, items: [] };
      pool.items.push(i);
      state.pools.set(key, pool);
    }
    for (const [key, pool] of state.pools) state.poolHashes.set(key, poolHash(pool));
    const { rows } = await q.query<{ v: number | null; s: number | null }>(
      'SELECT (SELECT max(version) FROM knowledge_versions) AS v, (SELECT max(seq) FROM knowledge_items) AS s');
    state.version = Number(rows[0]?.v ?? 0);
    state.seq = Number(rows[0]?.s ?? 0);
    this.state = state;
  }

  async apply(tx: Queryable, events: RecordedEvent[]): Promise<void> {
    let pending: KnowledgeChange[] = [];
    for (const e of events) {
      let change: KnowledgeChange | null = null;
      if (isType(e, 'KnowledgeExtracted')) change = foldExtracted(this.state, e);
      else if (isType(e, 'KnowledgeItemRetracted')) change = foldRetracted(this.state, e);
      else if (isType(e, 'KnowledgeBaseRolledBack')) {
        await writeChanges(tx, pending);
        pending = [];
        const to = e.data.toVersion;
        if (to > this.state.version || !(await versionExists(tx, to))) {
          this.skipped.push({ eventId: e.id, reason: `knowledge version ${to} does not exist (current ${this.state.version})` });
          continue;
        }
        change = foldRolledBack(this.state, e, await readItemsAt(tx, to));
      }
      if (change) pending.push(change);
    }
    await writeChanges(tx, pending);
  }
}

/** Writes a run of changes with three bulk statements: new rows, closed rows, version rows. */
async function writeChanges(tx: Queryable, changes: KnowledgeChange[]): Promise<void> {
  if (changes.length === 0) return;
  const inserts: { item: KnowledgeItem; from: number; to: number | null }[] = [];
  const openInBatch = new Map<string, { to: number | null }>();
  const closes: { id: string; to: number }[] = [];
  for (const c of changes) {
    for (const id of c.removed) {
      const row = openInBatch.get(id);
      if (row && row.to === null) row.to = c.record.version;
      else closes.push({ id, to: c.record.version });
      openInBatch.delete(id);
    }
    for (const item of c.added) {
      const row = { item, from: c.record.version, to: null as number | null };
      inserts.push(row);
      openInBatch.set(item.itemId, row);
    }
  }
  if (closes.length) {
    await tx.query(
      `UPDATE knowledge_items k SET valid_to = u.v FROM unnest($1::text[], $2::bigint[]) AS u(id, v)
        WHERE k.item_id = u.id AND k.valid_to IS NULL`,
      [closes.map((c) => c.id), closes.map((c) => c.to)]);
  }
  if (inserts.length) {
    await tx.query(
      `INSERT INTO knowledge_items (item_id, valid_from, valid_to, pool_model_version, pool_slot, seq, text, tokens, source_interaction_ids, event_id, pool_task_id)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::int[], $9::jsonb[], $10::uuid[], $11::text[])`,
      [inserts.map((r) => r.item.itemId), inserts.map((r) => r.from), inserts.map((r) => r.to),
        inserts.map((r) => r.item.modelVersion), inserts.map((r) => r.item.slot), inserts.map((r) => r.item.seq),
        inserts.map((r) => r.item.text), inserts.map((r) => r.item.tokens),
        inserts.map((r) => JSON.stringify(r.item.sourceInteractionIds)), inserts.map((r) => r.item.eventId), inserts.map((r) => r.item.taskId)]);
  }
  const v = changes.map((c) => c.record);
  await tx.query(
    `INSERT INTO knowledge_versions (version, event_id, global_position, change, rolled_back_to, item_count, tokens, pool_count, content_hash, recorded_at)
     SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::text[], $5::bigint[], $6::int[], $7::int[], $8::int[], $9::text[], $10::timestamptz[])`,
    [v.map((r) => r.version), v.map((r) => r.eventId), v.map((r) => r.globalPosition), v.map((r) => r.change),
      v.map((r) => r.rolledBackTo), v.map((r) => r.itemCount), v.map((r) => r.tokens), v.map((r) => r.poolCount),
      v.map((r) => r.contentHash), v.map((r) => r.recordedAt.toISOString())]);
}
