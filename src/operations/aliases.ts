/** Setting a version alias: checks against the registry, then one ModelVersionAliased event. */
import { newEventId } from '../events/ids.ts';
import { ModelVersionAliasedV1, type EventDataMap } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import { ValidationError } from '../events/validate.ts';
import { preview } from '../events/preview.ts';
import { readAliases, readModelVersion } from '../projections/models/model-projection.ts';
import type { EventStore } from '../store/event-store.ts';

export class AliasError extends Error {
  constructor(message: string) { super(message); this.name = 'AliasError'; }
}

export type AliasRequest = { alias: string; version?: string; followsActive?: true; setBy: EventDataMap['ModelVersionAliased']['setBy']; reason?: string };

/**
 * Maps `alias` to a published version, or to whichever version is active. Refuses a name that is
 * itself a published version (it already names one), a version never published, and a request
 * that changes nothing (returns `changed: false` then, appending nothing).
 */
export async function setAlias(store: EventStore, r: AliasRequest): Promise<{ eventId: string | null; changed: boolean }> {
  const parsed = ModelVersionAliasedV1.safeParse(r);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    const field = i.path.join('.') || 'alias';
    throw new ValidationError(field, i.message, (r as Record<string, unknown>)[String(i.path[0] ?? 'alias')]);
  }
  const d = parsed.data;
  if (await readModelVersion(store.sql, d.alias)) throw new AliasError(`alias ${preview(d.alias)} is the name of a published version; an alias must be another name`);
  if (d.version !== undefined && !(await readModelVersion(store.sql, d.version))) throw new AliasError(`version ${preview(d.version)} was never published`);
  const current = (await readAliases(store.sql)).find((a) => a.alias === d.alias);
  if (current && current.followsActive === (d.followsActive === true) && current.version === (d.version ?? null)) return { eventId: null, changed: false };
  const eventId = newEventId();
  await store.append([{ streamId: STREAMS.models, events: [{ id: eventId, type: 'ModelVersionAliased', data: d }] }]);
  return { eventId, changed: true };
}

