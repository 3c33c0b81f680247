/**
 * Applies the retention policy (retention-policy.ts) to the artifact store: decides from the
 * models stream, records each pruned version as ModelVersionPruned (appended only if the stream
 * has not moved since it was read: a rollback or a round that lands meanwhile makes this attempt
 * give up, and the next one decides again), then removes the files.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { newEventId } from '../events/ids.ts';
import { STREAMS } from '../events/streams.ts';
import { WrongExpectedVersionError } from '../store/errors.ts';
import type { EventStore } from '../store/event-store.ts';
import { readStream } from '../store/log-queries.ts';
import { foldRegistry, versionsToPrune, type RetentionPolicy } from './retention-policy.ts';

export interface PruneResult { pruned: { version: string; bytes: number }[]; skipped?: string }

/** Bytes of the files under a folder (0 when it is gone). */
export function folderBytes(path: string): number {
  let total = 0;
  let entries;
  try { entries = readdirSync(path, { withFileTypes: true }); } catch { return 0; }
  for (const e of entries) {
    const p = join(path, e.name);
    total += e.isDirectory() ? folderBytes(p) : statSync(p, { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}

export async function pruneVersions(store: EventStore, artifactRoot: string, policy: RetentionPolicy, o: { now?: Date; beforeAppend?: () => Promise<void> } = {}): Promise<PruneResult> {
  const registry = foldRegistry(await readStream(store.sql, STREAMS.models));
  const models = resolve(artifactRoot, 'models') + sep;
  const decisions = versionsToPrune(registry, policy, o.now ?? new Date(), (path) => resolve(path).startsWith(models));
  if (decisions.length === 0) return { pruned: [] };
  const sized = decisions.map((d) => ({ ...d, bytes: folderBytes(d.path) }));
  await o.beforeAppend?.();
  try {
    await store.append([{ streamId: STREAMS.models, expectedVersion: registry.streamPosition, events: sized.map((d) => ({
      id: newEventId(), type: 'ModelVersionPruned' as const, data: { version: d.version, reason: d.reason, bytes: d.bytes },
    })) }]);
  } catch (err) {
    if (err instanceof WrongExpectedVersionError) return { pruned: [], skipped: 'the model registry changed while pruning was being decided (a round or a rollback); the next attempt decides again' };
    throw err;
  }
  for (const d of sized) rmSync(d.path, { recursive: true, force: true });
  return { pruned: sized.map((d) => ({ version: d.version, bytes: d.bytes })) };
}
