import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KafkajsPublisher } from '../src/consumers/kafkajs-bus.ts';
import { uuidFromKey } from '../src/events/ids.ts';
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
});
