/**
 * A model folder into the registry: checked (check-folder.ts: config read as the runtime resolves it, safetensors
 * headers, tokenizer loads, chat template renders), copied into the artifact store (a version's
 * files never change after publication, whatever happens to the folder it came from), and
 * published with its sha256, activated when asked. The appends are made against the models stream
 * as read, so a version name cannot be published twice by two callers at once.
 */
import { cpSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileSha256 } from '../engine/verify-version.ts';
import { newEventId } from '../events/ids.ts';
import { ModelVersionPublishedV1 } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import { checkModelFolder } from '../model/formats/check-folder.ts';
import { WrongExpectedVersionError } from '../store/errors.ts';
import type { EventStore } from '../store/event-store.ts';
import { readStream } from '../store/log-queries.ts';
import { foldRegistry } from './retention-policy.ts';

export class PublishError extends Error {
  constructor(message: string) { super(message); this.name = 'PublishError'; }
}

export async function publishFolder(
  store: EventStore, artifactRoot: string, folder: string, version: string, o: { activate: boolean; reason: 'initial' | 'published' },
): Promise<{ path: string; sha256: string; activated: boolean }> {
  const name = ModelVersionPublishedV1.shape.version.safeParse(version);
  if (!name.success) throw new PublishError(`version ${JSON.stringify(version)}: ${name.error.issues[0]!.message}`);
  const registry = foldRegistry(await readStream(store.sql, STREAMS.models));
  if (registry.versions.some((v) => v.version === version)) throw new PublishError(`version ${version} is already published (versions never change; choose another name)`);
  const problem = await checkModelFolder(resolve(folder));
  if (problem) throw new PublishError(problem);
  const path = join(artifactRoot, 'models', version);
  const staging = `${path}.copying-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  cpSync(resolve(folder), staging, { recursive: true });
  rmSync(path, { recursive: true, force: true });
  renameSync(staging, path);
  const sha256 = await fileSha256(join(path, 'model.safetensors'));
  const previous = registry.activations.at(-1)?.version;
  try {
    await store.append([{ streamId: STREAMS.models, expectedVersion: registry.streamPosition, events: [
      { id: newEventId(), type: 'ModelVersionPublished', data: { version, path, sha256 } },
      ...(o.activate ? [{ id: newEventId(), type: 'ModelVersionActivated' as const, data: { version, reason: o.reason, ...(previous ? { previousVersion: previous } : {}) } }] : []),
    ] }]);
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    if (err instanceof WrongExpectedVersionError) throw new PublishError('the model registry changed meanwhile (a round, a rollback or another publication); publish again');
    throw err;
  }
  return { path, sha256, activated: o.activate };
}
