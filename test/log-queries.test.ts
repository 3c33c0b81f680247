import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { uuidFromKey } from '../src/events/ids.ts';
import { EventStore } from '../src/store/event-store.ts';
import {
  ageOfFirstEventAfter, countEvents, countEventsAfter, countInteractions, headPosition, lastRecordedAt, openStreams, readEventsOfTypes,
} from '../src/store/log-queries.ts';
import { readEventsBatch, START } from '../src/store/read-events.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

const round = (id: string, type: 'RoundStarted' | 'RoundCompleted' | 'RoundFailed') => ({
  id: uuidFromKey(`${id}:${type}`), type,
  data: type === 'RoundStarted' ? { roundId: id, trigger: 'manual' as const, baseModelVersion: 'v0', knowledgeVersion: 0, config: {} }
    : type === 'RoundCompleted' ? { roundId: id, steps: 1 } : { roundId: id, stage: 'train', error: 'x' },
});

for (const backend of BACKENDS) {
  describe(`queries on the log on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    let before3: Date;
    before(async () => {
      db = await backend.open();
      store = new EventStore(db.sql);
      for (let i = 0; i < 5; i++) await store.append([{ streamId: `interaction-${i}`, events: [interaction(i, { model: i < 3 ? 'v0' : 'v1' })] }]);
      const chat = interaction(9, { model: 'v0' });
      const { turns: _turns, ...chatData } = chat.data;
      await store.append([{ streamId: 'interaction-chat', events: [{ ...chat, data: { ...chatData, source: { kind: 'http' }, messages: [{ role: 'user', content: 'hi' }] } }] }]);
      await store.append([{ streamId: 'round-a', events: [round('a', 'RoundStarted'), round('a', 'RoundCompleted')] }]);
      before3 = new Date();
      await store.append([{ streamId: 'round-b', events: [round('b', 'RoundStarted')] }]);
    });
    after(async () => { await db.drop(); });

    it('counts and reads by type, by checkpoint and by stream', async () => {
      assert.equal(await headPosition(db.sql), 9);
      assert.equal(await countEvents(db.sql), 9);
      assert.equal(await countEvents(db.sql, ['RoundStarted', 'RoundCompleted']), 3);
      const firstSix = await readEventsBatch(db.sql, { after: START, limit: 6 });
      assert.equal(await countEventsAfter(db.sql, firstSix.next, ['RoundStarted', 'InteractionRecorded']), 2);
      assert.equal(await ageOfFirstEventAfter(db.sql, firstSix.next) > 0, true);
      const all = await readEventsBatch(db.sql, { after: START, limit: 100 });
      assert.equal(await ageOfFirstEventAfter(db.sql, all.next), 0, 'nothing left to read');
      assert.deepEqual((await readEventsOfTypes(db.sql, ['RoundStarted', 'RoundCompleted'])).map((e) => `${e.type}:${e.streamId}`),
        ['RoundStarted:round-a', 'RoundCompleted:round-a', 'RoundStarted:round-b']);
      assert.ok((await lastRecordedAt(db.sql, ['RoundCompleted']))! <= before3);
      assert.equal(await lastRecordedAt(db.sql, ['RoundFailed']), null);
      assert.deepEqual((await openStreams(db.sql, 'RoundStarted', ['RoundCompleted', 'RoundFailed'])).map((e) => e.streamId), ['round-b']);
    });

    it('filters interactions by model version, time and intake', async () => {
      assert.equal(await countInteractions(db.sql), 6);
      assert.equal(await countInteractions(db.sql, { modelVersion: 'v0' }), 4);
      assert.equal(await countInteractions(db.sql, { modelVersion: 'v0', since: before3 }), 0);
      assert.equal(await countInteractions(db.sql, { modelVersion: 'v0', since: null }), 4);
      assert.equal(await countInteractions(db.sql, { sourceKind: 'simulator' }), 5);
      assert.equal(await countInteractions(db.sql, { sourceKind: 'http' }), 1);
    });
  });
}
