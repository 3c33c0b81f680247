import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventStore } from '../src/store/event-store.ts';
import { DuplicateEventConflictError, WrongExpectedVersionError } from '../src/store/errors.ts';
import { START, type Checkpoint } from '../src/store/read-events.ts';
import { ValidationError } from '../src/events/validate.ts';
import type { RecordedEvent } from '../src/events/envelope.ts';
import type { Sql } from '../src/db/sql.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

async function readAll(store: EventStore, from: Checkpoint = START): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  let at = from;
  for (;;) {
    const b = await store.read({ after: at, limit: 100 });
    out.push(...b.events);
    at = b.next;
    if (b.caughtUp) return out;
  }
}

for (const backend of BACKENDS) {
  describe(`event store on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    before(async () => { db = await backend.open(); store = new EventStore(db.sql); });
    after(async () => { await db.drop(); });

    it('appends and reads back in global order with the full envelope', async () => {
      const events = [interaction(1), interaction(2), interaction(3)];
      const r = await store.append(events.map((e) => ({ streamId: `interaction-${e.data.interactionId}`, expectedVersion: 'no_stream' as const, events: [e] })));
      assert.equal(r.appended.length, 3);
      const all = await readAll(store);
      assert.deepEqual(all.map((e) => e.id), events.map((e) => e.id));
      const first = all[0]!;
      assert.equal(first.type, 'InteractionRecorded');
      assert.equal(first.schemaVersion, 2, 'the current schema version');
      assert.equal(first.streamPosition, 1);
      assert.deepEqual(first.data, events[0]!.data);
      assert.ok(first.recordedAt instanceof Date && !Number.isNaN(first.recordedAt.getTime()));
    });

    it('is idempotent by event id: a redelivered event is a no-op', async () => {
      const e = interaction(10);
      await store.append([{ streamId: 's-10', events: [e] }]);
      const again = await store.append([{ streamId: 's-10', events: [e] }]);
      assert.deepEqual(again.duplicates, [e.id]);
      assert.equal(again.appended.length, 0);
      const { rows } = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE event_id = $1', [e.id]);
      assert.equal(rows[0]!.n, 1);
    });

    it('reports an event id reused with different content and never overwrites it', async () => {
      const e = interaction(20);
      await store.append([{ streamId: 's-20', events: [e] }]);
      const altered = { ...e, data: { ...e.data, taskId: 'sokoban' } };
      await assert.rejects(store.append([{ streamId: 's-20', events: [altered] }]), DuplicateEventConflictError);
      const reported = await store.append([{ streamId: 's-20', events: [altered] }], { onConflict: 'report' });
      assert.equal(reported.conflicts.length, 1);
      const { rows } = await db.sql.query<{ task: string }>("SELECT data->>'taskId' AS task FROM events WHERE event_id = $1", [e.id]);
      assert.equal(rows[0]!.task, 'frozenlake');
    });

    it('appends new events that expect no version in one statement with no transaction around it', async () => {
      let transactions = 0;
      let statements = 0;
      const counted: Sql = { ...db.sql, query: (text, params) => { statements++; return db.sql.query(text, params); }, transaction: (fn) => { transactions++; return db.sql.transaction(fn); } };
      const s = new EventStore(counted);
      const events = [interaction(130), interaction(131)];
      const r = await s.append(events.map((e) => ({ streamId: `s-${e.id}`, events: [e] })));
      assert.deepEqual(r.appended.map((a) => a.id), events.map((e) => e.id));
      assert.ok(r.appended.every((a) => a.globalPosition > 0));
      assert.deepEqual([statements, transactions], [1, 0]);
      // An expected version takes the transaction, as do statements of the caller's.
      await s.append([{ streamId: 's-32', expectedVersion: 'no_stream', events: [interaction(132)] }]);
      await s.append([{ streamId: 's-33', events: [interaction(133)] }], { alsoInTransaction: async () => {} });
      assert.equal(transactions, 2);
    });

    it('a batch of stored and new ids without expected versions: the new appended, the stored reported', async () => {
      const [a, b] = [interaction(134), interaction(135)];
      await store.append([{ streamId: 's-34', events: [a] }]);
      const r = await store.append([{ streamId: 's-34', events: [a] }, { streamId: 's-35', events: [b] }]);
      assert.deepEqual(r.duplicates, [a.id]);
      assert.deepEqual(r.appended.map((x) => x.id), [b.id]);
      const { rows } = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[])', [[a.id, b.id]]);
      assert.equal(rows[0]!.n, 2);
    });

    it('a reused id with other content beside new events writes none of them, nor their streams', async () => {
      const [a, b] = [interaction(136), interaction(137)];
      await store.append([{ streamId: 's-36', events: [a] }]);
      const altered = { ...a, data: { ...a.data, taskId: 'sokoban' } };
      await assert.rejects(store.append([{ streamId: 's-36', events: [altered] }, { streamId: 's-37', events: [b] }]), DuplicateEventConflictError);
      const { rows } = await db.sql.query<{ events: number; streams: number }>(
        "SELECT (SELECT count(*)::int FROM events WHERE event_id = $1) AS events, (SELECT count(*)::int FROM streams WHERE stream_id IN ('s-37')) AS streams", [b.id]);
      assert.deepEqual(rows[0], { events: 0, streams: 0 });
      const { rows: [v] } = await db.sql.query<{ version: string }>("SELECT version::text FROM streams WHERE stream_id = 's-36'");
      assert.equal(v!.version, '1', 'the stored stream keeps its version');
    });

    it('enforces the expected stream version', async () => {
      await store.append([{ streamId: 'knowledge-x', expectedVersion: 'no_stream', events: [interaction(30)] }]);
      await assert.rejects(store.append([{ streamId: 'knowledge-x', expectedVersion: 'no_stream', events: [interaction(31)] }]), WrongExpectedVersionError);
      await assert.rejects(store.append([{ streamId: 'knowledge-x', expectedVersion: 5, events: [interaction(31)] }]), /expected version 5, found 1/);
      await store.append([{ streamId: 'knowledge-x', expectedVersion: 1, events: [interaction(31)] }]);
      const { rows } = await db.sql.query<{ p: number }>("SELECT max(stream_position) AS p FROM events WHERE stream_id = 'knowledge-x'");
      assert.equal(Number(rows[0]!.p), 2);
    });

    it('rejects invalid events naming the field and value, and writes nothing of the batch', async () => {
      const good = interaction(40);
      const bad = interaction(41);
      (bad.data.turns![0] as { action: unknown }).action = 42;
      await assert.rejects(store.append([{ streamId: 'a', events: [good] }, { streamId: 'b', events: [bad] }]),
        (err: unknown) => err instanceof ValidationError && err.field === 'data.turns[0].action' && /got 42/.test(err.message));
      const nul = interaction(42);
      nul.data.turns![0]!.response = 'a\u0000b';
      await assert.rejects(store.append([{ streamId: 'c', events: [nul] }]), /data\.turns\[0\]\.response: contains U\+0000/);
      const lone = interaction(43);
      lone.data.taskId = 'x\ud800';
      await assert.rejects(store.append([{ streamId: 'd', events: [lone] }]), /data\.taskId: contains a lone UTF-16 surrogate/);
      await assert.rejects(store.append([{ streamId: 'e', events: [{ ...interaction(44), id: 'not-a-uuid' }] }]), /id: must be a UUID \(got "not-a-uuid"\)/);
      const { rows } = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE event_id = $1', [good.id]);
      assert.equal(rows[0]!.n, 0);
    });

    it('stores SQL metacharacters as data, never as SQL', async () => {
      const nasty = `'); DROP TABLE events; -- \\ " $1 %s`;
      const e = interaction(50);
      e.data.taskId = nasty;
      e.data.turns![0]!.prompt = nasty;
      await store.append([{ streamId: nasty, events: [e] }]);
      const back = (await readAll(store)).find((x) => x.id === e.id)!;
      assert.equal(back.streamId, nasty);
      assert.equal((back.data as { taskId: string }).taskId, nasty);
    });
  });
}
