import { newEventId } from '../events/ids.ts';
import { STREAMS } from '../events/streams.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { readActiveModel, readModelVersion } from '../projections/models/model-projection.ts';
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

/** Appends ModelVersionActivated with reason rollback for an earlier published version. */
export async function rollbackModel(store: EventStore, version: string): Promise<{ eventId: string; sha256: string; previousVersion: string | null }> {
  const target = await readModelVersion(store.sql, version);
  if (!target) throw new RollbackError(`--model: version ${JSON.stringify(version)} was never published`);
  const active = await readActiveModel(store.sql);
  if (active?.version === version) throw new RollbackError(`--model: version ${version} is already active`);
  const eventId = newEventId();
  await store.append([{ streamId: STREAMS.models, events: [{
    id: eventId, type: 'ModelVersionActivated',
    data: { version, reason: 'rollback', ...(active ? { previousVersion: active.version } : {}) },
  }] }]);
  return { eventId, sha256: target.sha256, previousVersion: active?.version ?? null };
}
