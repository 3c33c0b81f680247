import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { goodMessage } from './helpers/interaction-messages.ts';
import { produce, readTopic } from './helpers/kafka-client.ts';
import { intakeOnMockKafka } from './helpers/mock-intake.ts';

const POISON = readFileSync(new URL('./fixtures/decoder/deep-array-in-messages.json', import.meta.url));
const PRODUCE = 0;
const MESSAGE_TOO_LARGE = 10;

const metric = (text: string, name: string): number => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? NaN);

describe('a poison message on a Kafka partition', () => {
  it('is dead-lettered; the valid messages behind it are all stored, with no consumer crash', async (t) => {
    const crashes: boolean[] = [];
    const { client, metrics, intake, stored, db, close } = await intakeOnMockKafka('poison', {
      pauseLagEvents: 1_000_000, lag: () => 0, onCrash: (restarting) => crashes.push(restarting),
    });
    try {
      // Everything on one partition: the poison first, then 200 valid messages behind it.
      await produce(client, 'in', [{ value: POISON, partition: 0 }, ...Array.from({ length: 200 }, (_, i) => ({ value: goodMessage(i), partition: 0 }))]);
      const t0 = performance.now();
      await intake.start();
      for (let i = 0; i < 300 && (await stored()) < 200; i++) await sleep(50);
      t.diagnostic(`the 200 valid messages behind the poison were stored ${((performance.now() - t0) / 1000).toFixed(1)} s after the consumer started`);
      assert.equal(await stored(), 200);
      const { rows } = await db.sql.query<{ origin: string; reason: string }>("SELECT origin, reason FROM dead_letters WHERE source = 'kafka'");
      assert.deepEqual(rows.map((r) => r.origin), ['in/0/0']);
      assert.match(rows[0]!.reason, /nests arrays and objects more than 64 levels deep/);
      const copies = await readTopic(client, 'dlq', 1);
      assert.equal(copies.length, 1);
      assert.equal(copies[0]!.headers!['oeld-reason-kind']!.toString(), 'too_deep');
      assert.deepEqual(crashes, []);
      assert.equal(metric(await metrics.registry.metrics(), 'oeld_ingest_consumer_crashes_total'), 0);
    } finally {
      await close();
    }
  });
});

describe('a dead-letter topic that refuses copies', () => {
  it('never holds up valid messages: refused copies are recorded with the refusal and counted', async () => {
    const { kafka, client, metrics, intake, stored, db, close } = await intakeOnMockKafka('refusing', {
      pauseLagEvents: 1_000_000, lag: () => 0, deadLetterCopyMaxBytes: 1000,
    });
    try {
      const bad = ['{"interactionId": ', `{"big": "${'x'.repeat(5000)}`, '[1]'];
      await produce(client, 'in', [
        ...bad.map((value) => ({ value, partition: 0 })),
        ...Array.from({ length: 100 }, (_, i) => ({ value: goodMessage(i), partition: 0 })),
      ]);
      // Every Produce request from here on is answered MESSAGE_TOO_LARGE (a non-retriable refusal):
      // the batch send, then each copy alone.
      await kafka.failRequests(PRODUCE, 50, MESSAGE_TOO_LARGE);
      await intake.start();
      for (let i = 0; i < 300 && (await stored()) < 100; i++) await sleep(50);
      assert.equal(await stored(), 100, 'every valid message stored');
      const { rows } = await db.sql.query<{ origin: string; copy_error: string | null }>("SELECT origin, copy_error FROM dead_letters WHERE source = 'kafka' ORDER BY origin");
      assert.deepEqual(rows.map((r) => r.origin), ['in/0/0', 'in/0/1', 'in/0/2']);
      for (const r of rows) assert.match(r.copy_error ?? '', /dead-letter topic refused the copy: .*(too large|MESSAGE_TOO_LARGE)/i);
      assert.equal(metric(await metrics.registry.metrics(), 'oeld_ingest_dead_letter_copies_refused_total'), 3);
    } finally {
      await close();
    }
  });

  it('cuts a large copy to the configured size, says so in a header, and sends a refused group again one copy at a time', async () => {
    const { kafka, client, intake, stored, db, close } = await intakeOnMockKafka('cut', { pauseLagEvents: 1_000_000, lag: () => 0, deadLetterCopyMaxBytes: 1000 });
    try {
      const big = `{"big": "${'x'.repeat(5000)}`;
      await produce(client, 'in', [{ value: big, partition: 1 }, { value: '{', partition: 1 }, { value: '[]', partition: 1 }, { value: goodMessage(1), partition: 1 }]);
      await kafka.failRequests(PRODUCE, 1, MESSAGE_TOO_LARGE); // only the first send (all three copies) is refused
      await intake.start();
      for (let i = 0; i < 300 && (await stored()) < 1; i++) await sleep(50);
      const copies = await readTopic(client, 'dlq', 3);
      assert.deepEqual(copies.map((c) => c.headers!['oeld-origin-offset']!.toString()).sort(), ['0', '1', '2'], 'each copy sent again alone');
      const cut = copies.find((c) => c.headers!['oeld-origin-offset']!.toString() === '0')!;
      assert.equal(cut.value!.toString(), big.slice(0, 1000));
      assert.equal(cut.headers!['oeld-truncated']!.toString(), `the first 1000 of ${big.length} bytes (OELD_DEAD_LETTER_COPY_MAX_BYTES)`);
      const { rows } = await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM dead_letters WHERE copy_error IS NOT NULL");
      assert.equal(rows[0]!.n, 0, 'no copy was finally refused');
    } finally {
      await close();
    }
  });
});

describe('what counts as a refusal of a dead-letter copy', () => {
  it('the broker answering an error counts; a broker that does not answer does not (the batch is tried again)', async () => {
    // kafkajs's own error classes (a CommonJS module: its classes hang off the default export).
    const k = (await import('kafkajs')).default as unknown as Record<string, new (...args: unknown[]) => Error>;
    const KafkaJSProtocolError = k.KafkaJSProtocolError!, KafkaJSNumberOfRetriesExceeded = k.KafkaJSNumberOfRetriesExceeded!;
    const KafkaJSConnectionError = k.KafkaJSConnectionError!, KafkaJSAggregateError = k.KafkaJSAggregateError!;
    const { isRefusal } = await import('../src/consumers/dead-letter-copies.ts');
    const tooLarge = new KafkaJSProtocolError({ message: 'The request included a message larger than the max message size the server will accept', type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false });
    const notEnoughReplicas = new KafkaJSProtocolError({ message: 'Messages are rejected since there are fewer in-sync replicas than required', type: 'NOT_ENOUGH_REPLICAS', code: 19, retriable: true });
    const down = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    assert.equal(isRefusal(tooLarge), true);
    assert.equal(isRefusal(notEnoughReplicas), false, 'a retriable answer is an outage');
    assert.equal(isRefusal(new KafkaJSNumberOfRetriesExceeded(notEnoughReplicas, { retryCount: 8, retryTime: 5000 })), false);
    assert.equal(isRefusal(down), false);
    assert.equal(isRefusal(new KafkaJSNumberOfRetriesExceeded(down, { retryCount: 8, retryTime: 5000 })), false);
    assert.equal(isRefusal(new KafkaJSAggregateError('several', [tooLarge, tooLarge])), true);
    assert.equal(isRefusal(new KafkaJSAggregateError('several', [tooLarge, down])), false);
    assert.equal(isRefusal(new Error('other')), false);
  });
});
