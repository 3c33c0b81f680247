/**
 * A database with the tiny model published and active, and a batch of its FrozenLake episodes
 * played (the trajectories a round learns from): the setting of the trainer tests' rounds.
 */
import { migrate } from '../../src/db/migrate.ts';
import { localEngine } from '../../src/engine/local-engine.ts';
import type { ModelEngine } from '../../src/engine/model-engine.ts';
import { frozenLakeSpec } from '../../src/envs/frozenlake.ts';
import { uuidFromKey } from '../../src/events/ids.ts';
import { createProjections } from '../../src/projections/all-projections.ts';
import { readActiveModel } from '../../src/projections/models/model-projection.ts';
import { Projector } from '../../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../../src/projections/schema.ts';
import { Simulator } from '../../src/simulator/simulator.ts';
import { EventStore } from '../../src/store/event-store.ts';
import { serverDatabase, type TestDatabase } from './databases.ts';
import { makeTinyModel, modelSha256 } from './tiny-model.ts';

export interface TinyRoundWorld {
  db: TestDatabase;
  store: EventStore;
  engine: ModelEngine;
  /** The tiny model's folder, published and activated as version `tiny`. */
  modelDir: string;
  catchUp(): Promise<void>;
  /** The active version (loaded into the engine if needed) plays a batch of episodes, folded by the projections. */
  play(): Promise<void>;
  close(): Promise<void>;
}

export async function tinyRoundWorld(key: string): Promise<TinyRoundWorld> {
  const db = await serverDatabase();
  await migrate(db.sql);
  await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
  const store = new EventStore(db.sql);
  const modelDir = await makeTinyModel();
  const catchUp = async () => { for (const p of createProjections()) await new Projector(db.sql, p).catchUp(); };
  await store.append([{ streamId: 'models', events: [
    { id: uuidFromKey(`${key}-pub`), type: 'ModelVersionPublished', data: { version: 'tiny', path: modelDir, sha256: modelSha256(modelDir) } },
    { id: uuidFromKey(`${key}-act`), type: 'ModelVersionActivated', data: { version: 'tiny', reason: 'initial' } },
  ] }]);
  await catchUp();
  const engine = localEngine();
  const play = async () => {
    const active = (await readActiveModel(db.sql))!;
    await engine.load(active.version, active.path);
    await new Simulator(store, engine, { game: frozenLakeSpec(), batchSize: 8, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch(active.version);
    await catchUp();
  };
  await play();
  return { db, store, engine, modelDir, catchUp, play, close: async () => { await engine.close(); await db.drop(); } };
}
