/**
 * Which model versions' files may go (docs/retention.md): pure logic over the registry as its log
 * stream tells it. Kept always: the active version, the version it was trained from, every root
 * version (one not trained by a round: a published base), the newest `keepVersions` versions, and
 * every version that was active at any time within the rollback window. Versions whose files are
 * not in oeld's artifact store (a folder the operator published in place) are never touched.
 */
import type { RecordedEvent } from '../events/envelope.ts';
import { isType } from '../events/envelope.ts';

export interface RetentionPolicy { keepVersions: number; rollbackWindowMs: number }

export interface RegistryVersion {
  version: string; path: string; sha256: string; baseVersion: string | null; publishedAt: Date; pruned: boolean;
  /** The round that trained it (null: a published base). */
  roundId: string | null;
  /** When `oeld rederive --restore` last brought its files back (it is then kept through the rollback window). */
  restoredAt: Date | null;
  /** An adapter version's full-weight version (its files are needed to load it). */
  adapterOf: string | null;
}

/** The registry as the models stream tells it, and that stream's position (for an append that must not race). */
export interface RegistryLog {
  versions: RegistryVersion[];
  activations: { version: string; at: Date }[];
  streamPosition: number;
}

export function foldRegistry(events: readonly RecordedEvent[]): RegistryLog {
  const versions = new Map<string, RegistryVersion>();
  const activations: { version: string; at: Date }[] = [];
  let streamPosition = 0;
  for (const e of events) {
    streamPosition = Math.max(streamPosition, e.streamPosition);
    if (isType(e, 'ModelVersionPublished') && !versions.has(e.data.version)) {
      versions.set(e.data.version, { version: e.data.version, path: e.data.path, sha256: e.data.sha256, baseVersion: e.data.baseVersion ?? null, adapterOf: e.data.adapterOf?.version ?? null, publishedAt: e.recordedAt, pruned: false, roundId: e.data.roundId ?? null, restoredAt: null });
    } else if (isType(e, 'ModelVersionActivated')) {
      activations.push({ version: e.data.version, at: e.recordedAt });
    } else if (isType(e, 'ModelVersionPruned')) {
      const v = versions.get(e.data.version);
      if (v) v.pruned = true;
    } else if (isType(e, 'ModelVersionRestored')) {
      const v = versions.get(e.data.version);
      if (v) { v.pruned = false; v.restoredAt = e.recordedAt; }
    }
  }
  return { versions: [...versions.values()], activations, streamPosition };
}

export interface PruneDecision { version: string; path: string; reason: string }

/** The versions to prune now, oldest first. `inStore(path)` says whether a path is in oeld's artifact store. */
export function versionsToPrune(r: RegistryLog, policy: RetentionPolicy, now: Date, inStore: (path: string) => boolean): PruneDecision[] {
  const active = r.activations.at(-1)?.version;
  const keep = new Set<string>();
  if (active !== undefined) keep.add(active);
  const byName = new Map(r.versions.map((v) => [v.version, v]));
  const activeBase = active !== undefined ? byName.get(active)?.baseVersion : null;
  if (activeBase) keep.add(activeBase);
  for (const v of r.versions) if (v.baseVersion === null) keep.add(v.version);
  for (const v of r.versions.slice(-policy.keepVersions)) keep.add(v.version);
  // Active at some moment since the window began: from its activation until the next one.
  const since = now.getTime() - policy.rollbackWindowMs;
  r.activations.forEach((a, i) => {
    const until = r.activations[i + 1]?.at.getTime() ?? Number.POSITIVE_INFINITY;
    if (until >= since) keep.add(a.version);
  });
  // Brought back on purpose (oeld rederive --restore): kept through the window like a recent activation.
  for (const v of r.versions) if (v.restoredAt && v.restoredAt.getTime() >= since) keep.add(v.version);
  // An adapter version loads through its full-weight version: that one stays while the adapter does.
  for (const v of [...keep]) { const of = byName.get(v)?.adapterOf; if (of) keep.add(of); }
  const hours = policy.rollbackWindowMs / 3_600_000;
  return r.versions
    .filter((v) => !v.pruned && !keep.has(v.version) && inStore(v.path))
    .map((v) => ({ version: v.version, path: v.path, reason: `not active, not the active version's base, not among the newest ${policy.keepVersions}, and not active within the last ${Number(hours.toFixed(2))} h` }));
}
