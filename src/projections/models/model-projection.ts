import { readFileSync } from 'node:fs';
import type { Queryable } from '../../db/sql.ts';
import { isType, type RecordedEvent } from '../../events/envelope.ts';
import type { Projection } from '../projection.ts';

const DDL = readFileSync(new URL('./tables.sql', import.meta.url), 'utf8');

/** Model versions (registry), which one is active, and the names logs use for them (aliases). Model events are rare: plain statements suffice. */
export class ModelProjection implements Projection {
  readonly name = 'models';
  readonly types = ['ModelVersionPublished', 'ModelVersionActivated', 'ModelVersionAliased', 'ModelVersionPruned', 'ModelVersionRestored'] as const;
  readonly ddl = DDL;
  readonly tables = [
    { name: 'model_versions', orderBy: 'version' },
    { name: 'model_activations', orderBy: 'global_position' },
    { name: 'model_aliases', orderBy: 'alias' },
  ] as const;

  async load(): Promise<void> {}

  async apply(tx: Queryable, events: RecordedEvent[]): Promise<void> {
    for (const e of events) {
      if (isType(e, 'ModelVersionPublished')) {
        const d = e.data;
        // A re-publication of a version keeps the first record: versions are immutable.
        await tx.query(
          `INSERT INTO model_versions (version, path, sha256, base_version, round_id, event_id, global_position, published_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (version) DO NOTHING`,
          [d.version, d.path, d.sha256, d.baseVersion ?? null, d.roundId ?? null, e.id, e.globalPosition, e.recordedAt]);
      } else if (isType(e, 'ModelVersionActivated')) {
        const d = e.data;
        await tx.query(
          `INSERT INTO model_activations (global_position, version, reason, previous_version, event_id, activated_at)
           VALUES ($1, $2, $3, $4, $5, $6)`,
          [e.globalPosition, d.version, d.reason, d.previousVersion ?? null, e.id, e.recordedAt]);
      } else if (isType(e, 'ModelVersionPruned')) {
        await tx.query('UPDATE model_versions SET pruned_at = $2, pruned_bytes = $3 WHERE version = $1', [e.data.version, e.recordedAt, e.data.bytes]);
      } else if (isType(e, 'ModelVersionRestored')) {
        await tx.query('UPDATE model_versions SET pruned_at = NULL, pruned_bytes = NULL WHERE version = $1', [e.data.version]);
      } else if (isType(e, 'ModelVersionAliased')) {
        const d = e.data;
        await tx.query(
          `INSERT INTO model_aliases (alias, version, follows_active, set_by, global_position, set_at) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (alias) DO UPDATE SET version = excluded.version, follows_active = excluded.follows_active, set_by = excluded.set_by,
             global_position = excluded.global_position, set_at = excluded.set_at`,
          [d.alias, d.version ?? null, d.followsActive === true, d.setBy, e.globalPosition, e.recordedAt]);
      }
    }
  }
}

export interface ModelVersionView { version: string; path: string; sha256: string; baseVersion: string | null; roundId: string | null; publishedAt: Date }

export async function readActiveModel(q: Queryable): Promise<(ModelVersionView & { reason: string; activatedAt: Date }) | null> {
  const { rows } = await q.query<{ version: string; path: string; sha256: string; base_version: string | null; round_id: string | null; published_at: Date; reason: string; activated_at: Date }>(
    `SELECT v.*, a.reason, a.activated_at FROM model_activations a JOIN model_versions v USING (version)
      ORDER BY a.global_position DESC LIMIT 1`);
  const r = rows[0];
  return r ? { version: r.version, path: r.path, sha256: r.sha256, baseVersion: r.base_version, roundId: r.round_id, publishedAt: r.published_at, reason: r.reason, activatedAt: r.activated_at } : null;
}

/** Every published version in publication order: what it was trained from, by which round, when. */
export async function readVersionHistory(q: Queryable): Promise<{ version: string; baseVersion: string | null; roundId: string | null; publishedAt: Date }[]> {
  const { rows } = await q.query<{ version: string; base_version: string | null; round_id: string | null; published_at: Date }>(
    'SELECT version, base_version, round_id, published_at FROM model_versions ORDER BY global_position');
  return rows.map((r) => ({ version: r.version, baseVersion: r.base_version, roundId: r.round_id, publishedAt: r.published_at }));
}

/** The names of every published version. */
export async function readPublishedVersions(q: Queryable): Promise<Set<string>> {
  const { rows } = await q.query<{ version: string }>('SELECT version FROM model_versions');
  return new Set(rows.map((r) => r.version));
}

export async function readModelVersion(q: Queryable, version: string): Promise<ModelVersionView | null> {
  const { rows } = await q.query<{ version: string; path: string; sha256: string; base_version: string | null; round_id: string | null; published_at: Date }>(
    'SELECT * FROM model_versions WHERE version = $1', [version]);
  const r = rows[0];
  return r ? { version: r.version, path: r.path, sha256: r.sha256, baseVersion: r.base_version, roundId: r.round_id, publishedAt: r.published_at } : null;
}

/** A name logs use for a version: a fixed version, or whichever is active. */
export interface AliasView { alias: string; version: string | null; followsActive: boolean; setBy: string; setAt: Date }

/** Every alias, by name. */
export async function readAliases(q: Queryable): Promise<AliasView[]> {
  const { rows } = await q.query<{ alias: string; version: string | null; follows_active: boolean; set_by: string; set_at: Date }>(
    'SELECT alias, version, follows_active, set_by, set_at FROM model_aliases ORDER BY alias');
  return rows.map((r) => ({ alias: r.alias, version: r.version, followsActive: r.follows_active, setBy: r.set_by, setAt: new Date(r.set_at) }));
}

/** Published versions whose files are kept, and those pruned (and the bytes pruning freed). */
export async function readRetention(q: Queryable): Promise<{ kept: number; pruned: number; prunedBytes: number }> {
  const { rows } = await q.query<{ kept: string; pruned: string; bytes: string | null }>(
    'SELECT count(*) FILTER (WHERE pruned_at IS NULL) AS kept, count(*) FILTER (WHERE pruned_at IS NOT NULL) AS pruned, sum(pruned_bytes) AS bytes FROM model_versions');
  return { kept: Number(rows[0]?.kept ?? 0), pruned: Number(rows[0]?.pruned ?? 0), prunedBytes: Number(rows[0]?.bytes ?? 0) };
}

/** The `limit` versions activated most recently (each once, newest activation first) whose files are kept, with their folders. */
export async function readRecentlyActive(q: Queryable, limit: number): Promise<{ version: string; path: string }[]> {
  const { rows } = await q.query<{ version: string; path: string }>(
    `SELECT a.version, v.path FROM model_activations a JOIN model_versions v USING (version)
      WHERE v.pruned_at IS NULL GROUP BY a.version, v.path ORDER BY max(a.global_position) DESC LIMIT $1`, [limit]);
  return rows.map((r) => ({ version: r.version, path: r.path }));
}

/** The root of a version's lineage: following what each was trained from back to a version no round made (a published base). */
export async function readLineageRoot(q: Queryable, version: string): Promise<{ version: string; path: string; pruned: boolean } | null> {
  const { rows } = await q.query<{ version: string; path: string; pruned: boolean }>(
    `WITH RECURSIVE lineage(version, base_version, path, pruned, depth) AS (
       SELECT version, base_version, path, pruned_at IS NOT NULL, 0 FROM model_versions WHERE version = $1
       UNION ALL
       SELECT v.version, v.base_version, v.path, v.pruned_at IS NOT NULL, l.depth + 1 FROM model_versions v JOIN lineage l ON v.version = l.base_version WHERE l.depth < 100000
     ) SELECT version, path, pruned FROM lineage ORDER BY depth DESC LIMIT 1`, [version]);
  return rows[0] ?? null;
}
