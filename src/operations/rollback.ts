import { newEventId } from '../events/ids.ts';
import { STREAMS } from '../events/streams.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { WrongExpectedVersionError } from '../store/errors.ts';
import { readStream } from '../store/log-queries.ts';
import { foldRegistry } from './retention-policy.ts';
import type { EventStore } from '../store/event-store.ts';

export class RollbackError extends Error {
  constructor(message: string) { super(message); this.name = 'RollbackError'; }
}

/** Appends KnowledgeBaseRolledBack; the projection then makes version `toVersion`'s content current again. */
export async function rollbackKnowledge(store: EventStore, toVersion: number, reason = 'operator rollback'): Promise<{ eventId: string; contentHash: string }> {
  if (!Number.isInteger(toVersion) || toVersion < 0) throw new RollbackError(`--knowledge: expected a version number >= 0, got ${JSON.stringify(toVersion)}`);
  const target = await readKnowledgeVersion(store.sql, toVersion);
  if (!target) {
    const current = await readKnowledgeVersion(store.sql);
    throw new RollbackError(`--knowledge: version ${toVersion} does not exist (current version is ${current?.version ?? 0})`);
  }
  const eventId = newEventId();
  await store.append([{ streamId: STREAMS.knowledge, events: [{ id: eventId, type: 'KnowledgeBaseRolledBack', data: { toVersion, reason } }] }]);
  return { eventId, contentHash: target.contentHash };
}

/**
 * Appends ModelVersionActivated with reason rollback for an earlier published version not pruned
 * (its weights are checked against their sha256 when it is loaded). Decided from the models stream and appended only if it has not moved since
 * (so that a version pruned meanwhile is never activated).
 */
export async function rollbackModel(store: EventStore, version: string): Promise<{ eventId: string; sha256: string; previousVersion: string | null }> {
  const registry = foldRegistry(await readStream(store.sql, STREAMS.models));
  const target = registry.versions.find((v) => v.version === version);
  if (!target) throw new RollbackError(`--model: version ${JSON.stringify(version)} was never published`);
  const active = registry.activations.at(-1)?.version ?? null;
  if (active === version) throw new RollbackError(`--model: version ${version} is already active`);
  if (target.pruned) throw new RollbackError(`--model: version ${version}'s files were pruned by the retention policy (OELD_KEEP_VERSIONS, OELD_ROLLBACK_WINDOW_HOURS); bring them back with \`oeld rederive ${version} --restore\`, then roll back`);
  const of = target.adapterOf ? registry.versions.find((v) => v.version === target.adapterOf) : undefined;
  if (of?.pruned) throw new RollbackError(`--model: version ${version} is an adapter on ${of.version}, whose files were pruned; bring them back with \`oeld rederive ${of.version} --restore\`, then roll back`);
  const eventId = newEventId();
  try {
    await store.append([{ streamId: STREAMS.models, expectedVersion: registry.streamPosition, events: [{
      id: eventId, type: 'ModelVersionActivated',
      data: { version, reason: 'rollback', ...(active ? { previousVersion: active } : {}) },
    }] }]);
  } catch (err) {
    if (err instanceof WrongExpectedVersionError) throw new RollbackError('--model: the model registry changed meanwhile (a round or pruning); run the rollback again');
    throw err;
  }
  return { eventId, sha256: target.sha256, previousVersion: active };
}
