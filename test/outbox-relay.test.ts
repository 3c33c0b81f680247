import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KafkajsPublisher } from '../src/consumers/kafkajs-bus.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { migrate } from '../src/db/migrate.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { readCheckpoints } from '../src/projections/checkpoints.ts';
import { replay } from '../src/projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { OutboxRelay, EVENT_ID_HEADER } from '../src/publication/outbox-relay.ts';
import { EventStore } from '../src/store/event-store.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { readTopic, testKafka } from './helpers/kafka-client.ts';
import { startMockKafka, type MockKafka } from './helpers/mock-kafka.ts';
import { extraction, interaction } from './helpers/events.ts';

describe('outbox relay to the model-versions topic', () => {
  let kafka: MockKafka;
  let db: TestDatabase;
  before(async () => {
    kafka = await startMockKafka(1);
    await kafka.createTopic('oel.model-versions', 3);
    db = await serverDatabase();
    await migrate(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
  });
  after(async () => { await db.drop(); await kafka.stop(); });

  it('delivers every publish event at least once across relay crashes between send and mark; repeats carry the same event id', async () => {
    const store = new EventStore(db.sql);
    const published: string[] = [];
    for (let v = 1; v <= 30; v++) {
      const ids = [uuidFromKey(`pub${v}`), uuidFromKey(`act${v}`)];
      published.push(...ids, uuidFromKey(`test:extraction:${v}:v0:0`));
      await store.append([
        { streamId: 'models', events: [
          { id: ids[0]!, type: 'ModelVersionPublished', data: { version: `v${v}`, path: `/m/v${v}`, sha256: 'f'.repeat(64) } },
          { id: ids[1]!, type: 'ModelVersionActivated', data: { version: `v${v}`, reason: 'promoted' } }] },
        { streamId: 'knowledge', events: [extraction(v, { budget: 100 })] },
        { streamId: `interaction-${v}`, events: [interaction(v)] }, // not published
      ]);
    }
    const client = testKafka(kafka.brokers);
    const publisher = new KafkajsPublisher(client);
    let crashes = 0;
    const relay = new OutboxRelay(db.sql, publisher, 'oel.model-versions', 'model-versions', 7, {
      afterSend: async () => { if (Math.random() < 0.4) { crashes++; throw new Error('injected crash between send and mark'); } },
    });
    for (let i = 0; i < 200; i++) {
      try { if ((await relay.step()).caughtUp) break; } catch { /* the relay restarts from its checkpoint */ }
    }
    // Without the fault the relay drains the rest and then sends nothing more.
    const clean = new OutboxRelay(db.sql, publisher, 'oel.model-versions', 'model-versions', 7);
    while (!(await clean.step()).caughtUp) { /* drain */ }
    assert.equal((await clean.step()).sent, 0);
    assert.equal(await clean.backlog(), 0);
    await publisher.close();
    assert.ok(crashes > 0, 'faults were injected');

    const got = await readTopic(client, 'oel.model-versions', published.length + 1000, 8000);
    const ids = got.map((m) => String(m.headers![EVENT_ID_HEADER]));
    assert.deepEqual(new Set(ids), new Set(published), 'every publish event, and nothing else');
    assert.ok(got.length > published.length, `crashes caused resends (${got.length} messages for ${published.length} events)`);
    for (const m of got) assert.equal(JSON.parse(String(m.value)).id, String(m.headers![EVENT_ID_HEADER]), 'a repeat is the same event');
    // Per stream key the events arrive in log order (first copies, since repeats may follow).
    const firstSeen = [...new Map(got.filter((m) => String(m.key) === 'models').map((m) => [String(m.headers![EVENT_ID_HEADER]), JSON.parse(String(m.value)).streamPosition as number])).values()];
    assert.deepEqual(firstSeen, [...firstSeen].sort((a, b) => a - b));
  });

  it('keeps its checkpoint in the projections\' checkpoint table, out of their figures, and a replay carries it over: nothing is sent again', async () => {
    const client = testKafka(kafka.brokers);
    const publisher = new KafkajsPublisher(client);
    try {
      const relay = new OutboxRelay(db.sql, publisher, 'oel.model-versions', 'model-versions', 7);
      while (!(await relay.step()).caughtUp) { /* drain */ }
      assert.equal(await relay.backlog(), 0);
      const { rows } = await db.sql.query<{ name: string }>(`SELECT name FROM ${LIVE_SCHEMA}.projection_checkpoints WHERE name = 'outbox:model-versions'`);
      assert.equal(rows.length, 1, 'the relay is a processor with a checkpoint row of its own');
      assert.ok(!(await readCheckpoints(db.sql)).some((c) => c.name.startsWith('outbox:')), 'projection figures (lag, status, backpressure) leave it out');
      await replay(db.sql, createProjections);
      const after = new OutboxRelay(db.sql, publisher, 'oel.model-versions', 'model-versions', 7);
      assert.equal(await after.backlog(), 0, 'the replay rebuilt the projections and left the relay where it was');
      assert.equal((await after.step()).sent, 0);
    } finally {
      await publisher.close();
    }
  });

  it('starts where the relay of an older oeld left off (its own table)', async () => {
    const client = testKafka(kafka.brokers);
    const publisher = new KafkajsPublisher(client);
    try {
      const { rows: [head] } = await db.sql.query<{ t: string; p: string }>('SELECT transaction_id::text AS t, global_position::text AS p FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1');
      await db.sql.query(`INSERT INTO public.outbox_relay_checkpoints (name, transaction_id, global_position) VALUES ('legacy', $1::xid8, $2)`, [head!.t, head!.p]);
      const legacy = new OutboxRelay(db.sql, publisher, 'oel.model-versions', 'legacy', 7);
      assert.equal(await legacy.backlog(), 0, 'seeded from the old table: nothing to resend');
      const fresh = new OutboxRelay(db.sql, publisher, 'oel.model-versions', 'never-ran', 7);
      assert.ok(await fresh.backlog() > 0, 'a relay with no checkpoint anywhere starts at the beginning of the log');
    } finally {
      await publisher.close();
    }
  });
});
