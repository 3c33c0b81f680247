/** Records a refused load of a published version (ModelVersionLoadRefused), once per version and file state. */
import { uuidFromKey } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import type { WeightsMismatchError } from '../engine/verify-version.ts';
import type { EventStore } from '../store/event-store.ts';

/** Appends the refusal (a no-op when this version was already refused in this state); true when it is new. */
export async function recordLoadRefusal(store: EventStore, err: WeightsMismatchError, by: EventDataMap['ModelVersionLoadRefused']['by']): Promise<boolean> {
  const r = await store.append([{ streamId: STREAMS.models, events: [{
    id: uuidFromKey(`load-refused:${err.version}:${err.actualSha256 ?? 'missing'}:${by}`), type: 'ModelVersionLoadRefused',
    data: { version: err.version, expectedSha256: err.expectedSha256, ...(err.actualSha256 ? { actualSha256: err.actualSha256 } : {}), by },
  }] }]);
  return r.appended.length > 0;
}
