import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';
import { startDaemon, type Daemon } from '../src/daemon.ts';
import { createLogger } from '../src/log.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { createOeldTopics, startMockKafka, type MockKafka } from './helpers/mock-kafka.ts';
import { produce, readTopic, testKafka } from './helpers/kafka-client.ts';
import { badMessages, goodMessage } from './helpers/interaction-messages.ts';
import { uuidFromKey } from '../src/events/ids.ts';

const MAX = 4096;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) { if (await check()) return; await sleep(100); }
  throw new Error(`timed out waiting for ${what}`);
}

describe('Kafka ingestion into the event store (in-process daemon)', () => {
  let kafka: MockKafka;
  let db: TestDatabase;
  let daemon: Daemon;
  before(async () => {
    kafka = await startMockKafka(3);
    await createOeldTopics(kafka, 4);
    db = await serverDatabase();
    daemon = await startDaemon(loadConfig({ OELD_LEARNING: 'false',
      DATABASE_URL: db.url, OELD_HTTP_PORT: '0', KAFKA_BROKERS: kafka.bootstrap, KAFKA_SESSION_TIMEOUT_MS: '6000',
      OELD_MAX_EVENT_BYTES: String(MAX), OELD_PROJECTION_POLL_MS: '50',
    }), createLogger('silent'));
  });
  after(async () => { await daemon.stop(); await db.drop(); await kafka.stop(); });

  it('appends valid messages once, dead-letters bad ones with their reason, and counts it all', async () => {
    const client = testKafka(kafka.brokers);
    const good = Array.from({ length: 200 }, (_, i) => ({ value: goodMessage(i) }));
    const repeats = good.slice(0, 20); // a producer retry: the same bytes again
    const conflict = { value: JSON.stringify({ ...JSON.parse(goodMessage(0)), taskId: 'other' }) };
    const bad = badMessages('p', MAX);
    await produce(client, 'oel.interactions', [...good, ...bad.map((b) => ({ value: b.value })), ...repeats]);
    await produce(client, 'oel.interactions', [conflict]);

    await waitFor('all messages ingested', async () => {
      const { rows } = await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM dead_letters WHERE source = 'kafka'");
      return rows[0]!.n >= bad.length + 1;
    });
    const { rows: ev } = await db.sql.query<{ n: number; d: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT data->>'interactionId')::int AS d FROM events WHERE type = 'InteractionRecorded'");
    assert.deepEqual(ev[0], { n: 200, d: 200 }, 'every valid interaction exactly once');
    const { rows: back } = await db.sql.query<{ p: string }>("SELECT data->'turns'->0->>'prompt' AS p FROM events WHERE data->>'interactionId' = 'k-3'");
    assert.equal(back[0]!.p, `board 3 'quote' "dq" ; DROP TABLE events; --`);
    const { rows: stored } = await db.sql.query<{ t: string }>('SELECT data->>\'taskId\' AS t FROM events WHERE event_id = $1', [uuidFromKey('kafka-msg-0')]);
    assert.equal(stored[0]!.t, 'frozenlake', 'a conflicting redelivery never overwrites');

    const dlq = await readTopic(client, 'oel.interactions.dlq', bad.length + 1);
    const kinds = dlq.map((m) => String(m.headers!['oeld-reason-kind'])).sort();
    assert.deepEqual(kinds, [...bad.map((b) => b.kind), 'conflict'].sort());
    for (const m of dlq) {
      assert.equal(String(m.headers!['oeld-origin-topic']), 'oel.interactions');
      assert.match(String(m.headers!['oeld-origin-offset']), /^\d+$/);
      assert.ok(String(m.headers!['oeld-reason']).length > 5);
    }
    const reasons = dlq.map((m) => String(m.headers!['oeld-reason']));
    assert.ok(reasons.some((r) => /data\.taskId: expected string/i.test(r) || /data\.taskId/.test(r)), reasons.join('\n'));
    assert.ok(reasons.some((r) => /over the limit of 4096 bytes/.test(r)));

    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    assert.match(metrics, /^oeld_ingest_messages_appended_total 200$/m);
    assert.match(metrics, /^oeld_ingest_messages_dead_lettered_total\{reason="invalid_utf8"\} 1$/m);
    assert.match(metrics, /^oeld_ingest_messages_deduplicated_total\{by="event_id"\} 20$/m);
    assert.match(metrics, /^oeld_ingest_consumer_lag_messages\{partition="\d"\} 0$/m);
  });

  it('publishes model-version events to the model-versions topic, in order, with the event id in a header', async () => {
    const ids = [uuidFromKey('pub-v1'), uuidFromKey('act-v1')];
    await daemon.store.append([{ streamId: 'models', events: [
      { id: ids[0]!, type: 'ModelVersionPublished', data: { version: 'v1', path: '/m/v1', sha256: 'e'.repeat(64) } },
      { id: ids[1]!, type: 'ModelVersionActivated', data: { version: 'v1', reason: 'promoted' } },
    ] }]);
    const got = await readTopic(testKafka(kafka.brokers), 'oel.model-versions', 2);
    assert.deepEqual(got.map((m) => String(m.headers!['oeld-event-id'])), ids);
    assert.equal(JSON.parse(String(got[0]!.value)).data.version, 'v1');
    assert.equal(String(got[0]!.key), 'models');
  });
});

describe('Kafka intake falling behind the topic retention', () => {
  it('reports the offsets it never saw (metric and error log) and still stores everything it was given', async () => {
    const kafka = await startMockKafka(1);
    await kafka.createTopic('oel.interactions', 1);
    await kafka.createTopic('oel.interactions.dlq', 1);
    await kafka.createTopic('oel.model-versions', 1);
    const db = await serverDatabase();
    const client = testKafka(kafka.brokers);
    const config = loadConfig({ OELD_LEARNING: 'false', DATABASE_URL: db.url, OELD_HTTP_PORT: '0', KAFKA_BROKERS: kafka.bootstrap, KAFKA_SESSION_TIMEOUT_MS: '6000' });
    const count = async () => (await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n;
    let daemon = await startDaemon(config, createLogger('silent'));
    try {
      await produce(client, 'oel.interactions', Array.from({ length: 100 }, (_, i) => ({ value: goodMessage(i) })));
      await waitFor('the first 100', async () => (await count()) === 100);
      await daemon.stop();
      // While oeld is down, far more than the mock broker keeps (about 5 MB a partition) arrives:
      // the oldest of it is deleted before oeld comes back, as retention would on a real cluster.
      const pad = 'p'.repeat(2000);
      await produce(client, 'oel.interactions', Array.from({ length: 6000 }, (_, i) => {
        const m = JSON.parse(goodMessage(1000 + i)) as { turns: { prompt: string }[] };
        m.turns[0]!.prompt += pad;
        return { value: JSON.stringify(m) };
      }), 500);
      daemon = await startDaemon(config, createLogger('silent'));
      await waitFor('the surviving messages', async () => /oeld_ingest_offsets_skipped_total [1-9]/.test(await (await fetch(`${daemon.url}/metrics`)).text()));
      const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
      const skipped = Number(metrics.match(/^oeld_ingest_offsets_skipped_total (\d+)/m)![1]);
      await waitFor('all delivered messages stored', async () => (await count()) === 100 + 6000 - skipped);
      assert.ok(skipped > 0 && skipped < 6000, `some, not all, were lost to retention (${skipped})`);
    } finally {
      await daemon.stop();
      await db.drop();
      await kafka.stop();
    }
  });
});
