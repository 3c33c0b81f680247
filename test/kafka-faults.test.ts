import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { produce, readTopic, testKafka } from './helpers/kafka-client.ts';
import { badMessages, goodMessage } from './helpers/interaction-messages.ts';
import { createOeldTopics, startMockKafka, type MockKafka } from './helpers/mock-kafka.ts';

const MAX = 4096;
const PARTITIONS = 6;

async function setup(): Promise<{ kafka: MockKafka; db: TestDatabase; env: Record<string, string> }> {
  const kafka = await startMockKafka(3);
  await createOeldTopics(kafka, PARTITIONS);
  const db = await serverDatabase();
  return {
    kafka, db,
    env: { DATABASE_URL: db.url!, KAFKA_BROKERS: kafka.bootstrap, KAFKA_SESSION_TIMEOUT_MS: '6000', OELD_MAX_EVENT_BYTES: String(MAX), OELD_LOG_LEVEL: 'info' },
  };
}

async function counts(db: TestDatabase) {
  const { rows: [e] } = await db.sql.query<{ n: number; d: number }>(
    "SELECT count(*)::int AS n, count(DISTINCT data->>'interactionId')::int AS d FROM events WHERE type = 'InteractionRecorded'");
  const { rows: [l] } = await db.sql.query<{ n: number; d: number }>(
    "SELECT count(*)::int AS n, count(DISTINCT origin)::int AS d FROM dead_letters WHERE source = 'kafka'");
  return { events: e!.n, distinctInteractions: e!.d, deadLetters: l!.n, distinctDeadLetters: l!.d };
}

async function waitForCounts(db: TestDatabase, events: number, deadLetters: number, timeoutMs = 120_000) {
  const end = Date.now() + timeoutMs;
  let c = await counts(db);
  while (Date.now() < end && (c.events < events || c.deadLetters < deadLetters)) { await sleep(250); c = await counts(db); }
  return c;
}

/** The mixed traffic of a run: `good` valid interactions, every bad kind three times, and repeats. */
function traffic(good: number) {
  const bad = [...badMessages('a', MAX), ...badMessages('b', MAX), ...badMessages('c', MAX)];
  const messages = Array.from({ length: good }, (_, i) => ({ value: goodMessage(i) as string | Buffer | null }));
  bad.forEach((b, k) => messages.splice(Math.floor((k * good) / bad.length), 0, { value: b.value }));
  messages.push(...Array.from({ length: 50 }, (_, i) => ({ value: goodMessage(i * 7) })));
  return { messages, bad: bad.length };
}

async function committedOffsets(kafka: MockKafka, groupId: string): Promise<number[]> {
  const admin = testKafka(kafka.brokers).admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId, topics: ['oel.interactions'] });
    return t!.partitions.sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
  } finally {
    await admin.disconnect();
  }
}

async function endOffsets(kafka: MockKafka): Promise<number[]> {
  const admin = testKafka(kafka.brokers).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets('oel.interactions');
    return offsets.sort((a, b) => a.partition - b.partition).map((p) => Number(p.high));
  } finally {
    await admin.disconnect();
  }
}

describe('Kafka ingestion under faults', () => {
  it('kill -9 at random points and broker outages: exactly the valid events, every bad one dead-lettered, offsets committed', async () => {
    const { kafka, db, env } = await setup();
    const client = testKafka(kafka.brokers);
    const { messages, bad } = traffic(3000);
    let daemon: DaemonProcess | undefined;
    try {
      const phases = 4;
      // The last 300 messages arrive while no daemon runs: the final restart has work for sure.
      const tail = messages.splice(messages.length - 300);
      const per = Math.ceil(messages.length / phases);
      for (let phase = 0; phase < phases; phase++) {
        daemon = spawnDaemon(env);
        await daemon.waitForLog(/Kafka intake started/);
        const sending = produce(client, 'oel.interactions', messages.slice(phase * per, (phase + 1) * per));
        if (phase === 1) { await sleep(300); await kafka.brokerDown(1); await sleep(1500); await kafka.brokerUp(1); }
        if (phase === 2) { await sleep(200); await kafka.brokerDown(2); await kafka.brokerDown(3); await sleep(1000); await kafka.brokerUp(2); await kafka.brokerUp(3); }
        // Killed while messages are still arriving: batches are cut off at random points.
        await sleep(100 + Math.random() * 700);
        if (process.env.OELD_TEST_DEBUG) (await import('node:fs')).writeFileSync(`/tmp/daemon-phase${phase}.log`, daemon.stderr());
        assert.equal(await daemon.kill('SIGKILL'), null, `the daemon was still running when killed; its log:\n${daemon.stderr().slice(-3000)}`);
        await sending;
      }
      await produce(client, 'oel.interactions', tail);
      daemon = spawnDaemon(env);
      await daemon.waitForLog(/Kafka intake started/);
      const c = await waitForCounts(db, 3000, bad);
      assert.deepEqual(c, { events: 3000, distinctInteractions: 3000, deadLetters: bad, distinctDeadLetters: bad }, 'no loss, no duplicates');
      // A copy can be sent twice (a kill between sending it and committing): read until every origin is there.
      const originOf = (m: { headers?: Record<string, unknown> }) => `${m.headers!['oeld-origin-partition']}/${m.headers!['oeld-origin-offset']}`;
      const dlq = await readTopic(client, 'oel.interactions.dlq', (got) => new Set(got.map(originOf)).size >= bad);
      const origins = new Set(dlq.map(originOf));
      assert.equal(origins.size, bad, 'every bad message is in the dead-letter topic (repeats allowed, same origin)');
      assert.deepEqual(await committedOffsets(kafka, 'oeld'), await endOffsets(kafka), 'offsets committed past everything');
      assert.equal(await daemon.kill('SIGTERM'), 0);
    } finally {
      await daemon?.kill('SIGKILL');
      await db.drop();
      await kafka.stop();
    }
  });

  it('two daemons in one group: partitions move to the survivor when one dies, still exactly once', async () => {
    const { kafka, db, env } = await setup();
    const client = testKafka(kafka.brokers);
    const { messages, bad } = traffic(2000);
    const a = spawnDaemon(env);
    const b = spawnDaemon(env);
    try {
      await a.waitForLog(/Kafka intake started/);
      await b.waitForLog(/Kafka intake started/);
      await produce(client, 'oel.interactions', messages.slice(0, 1000));
      await sleep(500);
      assert.equal(await a.kill('SIGKILL'), null);
      await produce(client, 'oel.interactions', messages.slice(1000));
      const c = await waitForCounts(db, 2000, bad);
      assert.deepEqual(c, { events: 2000, distinctInteractions: 2000, deadLetters: bad, distinctDeadLetters: bad },
        `survivor's warnings and errors:\n${b.stderr().split('\n').filter((l) => /"level":[456]/.test(l)).slice(-15).join('\n').slice(0, 6000)}`);
      // The survivor ends up owning every partition. (It usually gets there through two
      // rebalances; when the mock cluster refuses its first SyncGroup, the consumer restarts and
      // joins once, after the other died.)
      const assignments = b.stderr().split('\n').filter((l) => l.includes('"consumer group rebalanced"')).map((l) => (JSON.parse(l) as { assigned: number[] }).assigned);
      assert.deepEqual(assignments.at(-1)?.slice().sort((x, y) => x - y), Array.from({ length: PARTITIONS }, (_, i) => i), `the survivor's assignments: ${JSON.stringify(assignments)}`);
      assert.match(await (await fetch(`${await b.url()}/metrics`)).text(), /oeld_ingest_rebalances_total [1-9]/);
    } finally {
      await a.kill('SIGKILL');
      await b.kill('SIGKILL');
      await db.drop();
      await kafka.stop();
    }
  });
});
