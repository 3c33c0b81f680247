import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RecordedEvent } from '../src/events/envelope.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { projectionHashes } from '../src/projections/hash.ts';
import type { Projection } from '../src/projections/projection.ts';
import { Projector } from '../src/projections/projector.ts';
import { replay } from '../src/projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA, useSchema } from '../src/projections/schema.ts';
import { TrajectoryProjection } from '../src/projections/trajectories/trajectory-projection.ts';
import { eventRowsQuery } from '../src/store/event-rows.ts';
import { EventStore } from '../src/store/event-store.ts';
import { readEventsBatch, START, type EventRun } from '../src/store/read-events.ts';
import { splitBucket, splitBucketSql } from '../src/tasks/held-out.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

const roundStarted = (roundId: string) => ({
  id: uuidFromKey(`folded:${roundId}:start`), type: 'RoundStarted' as const,
  data: { roundId, trigger: 'manual' as const, baseModelVersion: 'v0', knowledgeVersion: 0, config: {} },
});

/** Reads interactions whole: in a replay beside it, the trajectories projection is handed events, not runs. */
class WholeInteractions implements Projection {
  readonly name = 'whole_interactions';
  readonly types = ['InteractionRecorded'] as const;
  readonly ddl = 'CREATE TABLE IF NOT EXISTS whole_interactions (global_position bigint PRIMARY KEY, turns int NOT NULL);';
  readonly tables = [{ name: 'whole_interactions', orderBy: 'global_position' }] as const;
  handedRuns = 0;
  async load(): Promise<void> {}
  async apply(tx: import('../src/db/sql.ts').Queryable, events: (RecordedEvent | EventRun)[]): Promise<void> {
    for (const e of events) {
      if ('kind' in e) { this.handedRuns++; continue; }
      await tx.query('INSERT INTO whole_interactions VALUES ($1, $2)', [e.globalPosition, (e as RecordedEvent<'InteractionRecorded'>).data.turns!.length]);
    }
  }
}

for (const backend of BACKENDS) {
  describe(`interactions folded in the database on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    let all: RecordedEvent[];
    before(async () => {
      db = await backend.open();
      store = new EventStore(db.sql);
      for (let i = 0; i < 3; i++) await store.append([{ streamId: `folded-${i}`, events: [interaction(i)] }]);
      await store.append([{ streamId: 'round-x', events: [roundStarted('x')] }]);
      // Several in one transaction, then one more: one run.
      await store.append([{ streamId: 'folded-3', events: [interaction(3)] }, { streamId: 'folded-4', events: [interaction(4)] }]);
      await store.append([{ streamId: 'folded-5', events: [interaction(5)] }]);
      all = (await readEventsBatch(db.sql, { after: START, limit: 100 })).events;
    });
    after(async () => { await db.drop(); });

    const at = (e: RecordedEvent) => ({ transactionId: e.transactionId, globalPosition: e.globalPosition });

    it('the reader hands runs of the named types, each with where it begins and ends and how many, counted toward the limit', async () => {
      const types = ['InteractionRecorded', 'RoundStarted'] as const;
      const whole = await readEventsBatch(db.sql, { after: START, limit: 100, types, runsOf: ['InteractionRecorded'] });
      assert.deepEqual(whole.events.map((e) => ('kind' in e ? `run ${e.count}` : e.type)), ['run 3', 'RoundStarted', 'run 3']);
      const [first, , second] = whole.events as [EventRun, RecordedEvent, EventRun];
      assert.deepEqual([first.from, first.through], [at(all[0]!), at(all[2]!)]);
      assert.deepEqual([second.from, second.through], [at(all[4]!), at(all[6]!)]);
      assert.equal(whole.caughtUp, true);
      assert.deepEqual(whole.next, at(all[6]!));
      const part = await readEventsBatch(db.sql, { after: START, limit: 5, types, runsOf: ['InteractionRecorded'] });
      assert.deepEqual(part.events.map((e) => ('kind' in e ? `run ${e.count}` : e.type)), ['run 3', 'RoundStarted', 'run 1']);
      assert.equal(part.caughtUp, false);
      assert.deepEqual(part.next, at(all[4]!), 'the next batch starts after the fifth event');
    });

    it('reads the events of a stretch as rows in the database, both ends included, and names a bad field or column', async () => {
      const q = eventRowsQuery({
        type: 'InteractionRecorded', from: at(all[1]!), through: at(all[4]!), limit: 10,
        columns: { position: 'globalPosition', id: { text: ['interactionId'] }, kind: { text: ['source', 'kind'] }, seed: { text: ['source', 'episodeSeed'] }, game: { has: 'turns' }, chat: { has: 'messages' } },
      });
      const { rows } = await db.sql.query<{ position: string; id: string; kind: string; seed: string; game: boolean; chat: boolean }>(q.text, q.params);
      assert.deepEqual(rows.map((r) => [Number(r.position), r.id, r.kind, r.seed, r.game, r.chat]), [
        [all[1]!.globalPosition, 'test-1', 'simulator', '1', true, false],
        [all[2]!.globalPosition, 'test-2', 'simulator', '2', true, false],
        [all[4]!.globalPosition, 'test-3', 'simulator', '3', true, false],
      ]);
      assert.throws(() => eventRowsQuery({ type: 'InteractionRecorded', from: START, through: START, limit: 1, columns: { x: { text: ["a'; DROP TABLE events; --"] } } }), /data field "a'; DROP TABLE events; --": expected a plain key/);
      assert.throws(() => eventRowsQuery({ type: 'InteractionRecorded', from: START, through: START, limit: 1, columns: { 'X y': 'eventId' } }), /column name "X y"/);
    });

    it('the split bucket in SQL is the one in node, for every id', async () => {
      const ids = [...Array.from({ length: 2000 }, (_, i) => `chat-${i}-${(i * 7919) % 1000}`), 'ünïcödé-ид-标识', "quote'd \"id\"", 'emoji-🙂', ' '];
      const { rows } = await db.sql.query<{ id: string; bucket: number }>(
        `SELECT id, ${splitBucketSql('id')} AS bucket FROM unnest($1::text[]) AS id`, [ids]);
      const differ = rows.filter((r) => Number(r.bucket) !== splitBucket(r.id));
      assert.equal(rows.length, ids.length);
      assert.deepEqual(differ, []);
      assert.ok(new Set(rows.map((r) => Number(r.bucket))).size === 100, 'all 100 buckets occur');
    });

    it('refuses a run the log does not hold as given (count off by one), and moves nothing', async () => {
      await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
      const run: EventRun = { kind: 'run', type: 'InteractionRecorded', from: at(all[0]!), through: at(all[2]!), count: 4 };
      await assert.rejects(db.sql.transaction(async (tx) => {
        await useSchema(tx, LIVE_SCHEMA);
        await new TrajectoryProjection().apply(tx, [run]);
      }), new RegExp(`folded 3 interactions from the log between positions ${all[0]!.globalPosition} and ${all[2]!.globalPosition}, expected 4`));
      const { rows } = await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.trajectories`);
      assert.equal(rows[0]!.n, 0);
    });

    it('live, replayed, and replayed beside a reader of whole interactions: the same trajectories', async () => {
      await new Projector(db.sql, new TrajectoryProjection(), { batchSize: 2 }).catchUp();
      const live = await projectionHashes(db.sql, LIVE_SCHEMA, [new TrajectoryProjection()]);
      const { rows } = await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.trajectories`);
      assert.equal(rows[0]!.n, 6);
      const rebuilt = await replay(db.sql, createProjections, { batchSize: 3 });
      assert.equal(rebuilt.hashes.trajectories, live.trajectories);
      const whole = new WholeInteractions();
      const beside = await replay(db.sql, () => [...createProjections(), whole], { batchSize: 3 });
      assert.equal(beside.hashes.trajectories, live.trajectories);
      assert.equal(beside.events.whole_interactions, 6);
      assert.equal(whole.handedRuns, 0, 'a reader that does not fold in the database is never handed runs');
    });
  });
}
