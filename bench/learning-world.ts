/** What the learning benchmarks share: a fresh database with a base model published and active. */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { catchUpProjections } from '../src/operations/catch-up.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { STREAMS } from '../src/events/streams.ts';
import { EventStore } from '../src/store/event-store.ts';
import { benchDatabase } from './lib.ts';

/** A fresh database with the model folder `dir` published and activated as `version`. */
export async function freshWorld(dir: string, version = 'base') {
  const db = await benchDatabase();
  await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
  const store = new EventStore(db.sql);
  const sha256 = createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex');
  await store.append([{ streamId: STREAMS.models, events: [
    { id: randomUUID(), type: 'ModelVersionPublished', data: { version, path: dir, sha256 } },
    { id: randomUUID(), type: 'ModelVersionActivated', data: { version, reason: 'initial' } },
  ] }]);
  await catchUpProjections(db.sql);
  return { db, store };
}
