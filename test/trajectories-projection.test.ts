import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { uuidFromKey } from '../src/events/ids.ts';
import type { NewEvent } from '../src/events/envelope.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { projectionHashes } from '../src/projections/hash.ts';
import { Projector } from '../src/projections/projector.ts';
import { replay } from '../src/projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { TrajectoryProjection } from '../src/projections/trajectories/trajectory-projection.ts';
import { countFreshInteractions, newestTrajectoryEventIds, readLastRoundEnd } from '../src/projections/trajectories/trajectory-queries.ts';
import { EventStore } from '../src/store/event-store.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

const chat = (i: number, model: string): NewEvent<'InteractionRecorded'> => {
  const { turns: _turns, ...data } = interaction(i, { model, prefix: 'chat' }).data;
  return { id: uuidFromKey(`chat:${i}`), type: 'InteractionRecorded', data: { ...data, source: { kind: 'http' }, taskId: 'support', messages: [{ role: 'user', content: 'hi' }] } };
};
const roundEnd = (roundId: string, type: 'RoundCompleted' | 'RoundFailed'): NewEvent[] => [
  { id: uuidFromKey(`${roundId}:start`), type: 'RoundStarted', data: { roundId, trigger: 'threshold', baseModelVersion: 'v0', knowledgeVersion: 0, config: {} } },
  type === 'RoundCompleted'
    ? { id: uuidFromKey(`${roundId}:end`), type, data: { roundId, steps: 1 } }
    : { id: uuidFromKey(`${roundId}:end`), type, data: { roundId, stage: 'extract', error: 'no items' } },
];

for (const backend of BACKENDS) {
  describe(`the trajectories projection on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    const ids: Record<string, string[]> = { v0: [], v1: [] };
    before(async () => {
      db = await backend.open();
      store = new EventStore(db.sql);
      await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
      const add = async (streamId: string, events: NewEvent[]) => { await store.append([{ streamId, events }]); };
      for (let i = 0; i < 3; i++) { const e = interaction(i, { model: 'v0' }); ids.v0!.push(e.id); await add(`i-${i}`, [e]); }
      await add('chat-1', [chat(1, 'v0')]);
      await add('round-a', roundEnd('a', 'RoundFailed'));
      for (let i = 3; i < 5; i++) { const e = interaction(i, { model: 'v0' }); ids.v0!.push(e.id); await add(`i-${i}`, [e]); }
      const v1 = interaction(5, { model: 'v1' });
      ids.v1!.push(v1.id);
      await add('i-5', [v1]);
      await add('chat-2', [chat(2, 'v0')]);
    });
    after(async () => { await db.drop(); });

    it('counts what came after the newest round end, per version, and finds the newest trajectories', async () => {
      // Batches of 2: the round's end falls inside a batch, and its snapshot must still sit at its place.
      await new Projector(db.sql, new TrajectoryProjection(), { batchSize: 2 }).catchUp();
      assert.equal(await countFreshInteractions(db.sql, 'v0'), 3, 'two game trajectories and a chat after round a');
      assert.equal(await countFreshInteractions(db.sql, 'v1'), 1);
      assert.equal(await countFreshInteractions(db.sql, 'v2'), 0);
      assert.equal((await readLastRoundEnd(db.sql))?.roundId, 'a');
      assert.deepEqual(await newestTrajectoryEventIds(db.sql, 'v0', 10), ids.v0, 'all game trajectories, oldest first; chats are not');
      assert.deepEqual(await newestTrajectoryEventIds(db.sql, 'v0', 2), ids.v0!.slice(-2));

      await store.append([{ streamId: 'round-b', events: roundEnd('b', 'RoundCompleted') }]);
      await new Projector(db.sql, new TrajectoryProjection()).catchUp();
      assert.equal(await countFreshInteractions(db.sql, 'v0'), 0);
      assert.equal(await countFreshInteractions(db.sql, 'v1'), 0);
      assert.equal((await readLastRoundEnd(db.sql))?.roundId, 'b');
    });

    it('a replay rebuilds the same tables', async () => {
      const live = await projectionHashes(db.sql, LIVE_SCHEMA, createProjections());
      const rebuilt = await replay(db.sql, createProjections);
      assert.equal(rebuilt.hashes.trajectories, live.trajectories);
      assert.equal(await countFreshInteractions(db.sql, 'v0'), 0);
    });
  });
}
