import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { backpressureDecision } from '../src/consumers/backpressure.ts';
import { KafkaIntake } from '../src/consumers/kafka-intake.ts';
import { KafkajsBatchConsumer, KafkajsPublisher } from '../src/consumers/kafkajs-bus.ts';
import { createMetrics } from '../src/http/metrics.ts';
import { createLogger } from '../src/log.ts';
import { EventStore } from '../src/store/event-store.ts';
import { serverDatabase } from './helpers/databases.ts';
import { goodMessage } from './helpers/interaction-messages.ts';
import { produce, testKafka } from './helpers/kafka-client.ts';
import { startMockKafka } from './helpers/mock-kafka.ts';

describe('backpressure', () => {
  it('pauses above the limit and resumes only below half of it', () => {
    assert.equal(backpressureDecision(false, 101, 100), 'pause');
    assert.equal(backpressureDecision(false, 100, 100), null);
    assert.equal(backpressureDecision(true, 60, 100), null, 'no flapping just under the limit');
    assert.equal(backpressureDecision(true, 49, 100), 'resume');
  });

  it('restarts a consumer the Kafka client gave up on (a non-retriable error in SyncGroup) and consumes everything', async () => {
    const kafka = await startMockKafka(1);
    await kafka.createTopic('in', 2);
    await kafka.createTopic('dlq', 1);
    const db = await serverDatabase();
    const client = testKafka(kafka.brokers);
    const metrics = createMetrics();
    const crashes: boolean[] = [];
    let intake!: KafkaIntake;
    const consumer = new KafkajsBatchConsumer(client, 'in', 'crash', 6000, {
      onRebalance: (a) => intake.onRebalance(a),
      onCrash: (e, restarting) => { crashes.push(restarting); intake.onCrash(e, restarting); },
    });
    const publisher = new KafkajsPublisher(client);
    intake = new KafkaIntake(new EventStore(db.sql), consumer, publisher,
      { groupId: 'crash', topic: 'in', deadLetterTopic: 'dlq', maxEventBytes: 65536, pauseLagEvents: 1_000_000, restartDelayMs: 200 },
      metrics, createLogger('silent'), async () => 0);
    const stored = async () => (await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n;
    try {
      await produce(client, 'in', Array.from({ length: 40 }, (_, i) => ({ value: goodMessage(i) })));
      // SyncGroup (API key 14) answered with INVALID_REQUEST (42): kafkajs crashes without restarting.
      await kafka.failRequests(14, 1, 42);
      await intake.start();
      for (let i = 0; i < 150 && (await stored()) < 40; i++) await sleep(100);
      assert.deepEqual(crashes, [false], 'the client gave up once, and did not restart by itself');
      assert.equal(await stored(), 40, 'oeld restarted the consumer, which consumed every message');
      assert.match(await metrics.registry.metrics(), /^oeld_ingest_consumer_crashes_total 1$/m);
    } finally {
      await intake.stop();
      await publisher.close();
      await db.drop();
      await kafka.stop();
    }
  });

  it('stops Kafka intake while the store is behind and picks up where it left off', async () => {
    const kafka = await startMockKafka(1);
    await kafka.createTopic('in', 2);
    await kafka.createTopic('dlq', 1);
    const db = await serverDatabase();
    const client = testKafka(kafka.brokers);
    const metrics = createMetrics();
    let lag = 0;
    let intake!: KafkaIntake;
    const consumer = new KafkajsBatchConsumer(client, 'in', 'bp', 6000, { onRebalance: (a) => intake.onRebalance(a) });
    const publisher = new KafkajsPublisher(client);
    intake = new KafkaIntake(new EventStore(db.sql), consumer, publisher, { groupId: 'bp', topic: 'in', deadLetterTopic: 'dlq', maxEventBytes: 65536, pauseLagEvents: 100 },
      metrics, createLogger('silent'), async () => lag);
    const stored = async () => (await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n;
    try {
      await intake.start();
      await produce(client, 'in', Array.from({ length: 50 }, (_, i) => ({ value: goodMessage(i) })));
      for (let i = 0; i < 100 && (await stored()) < 50; i++) await sleep(100);
      assert.equal(await stored(), 50);

      lag = 1000;
      for (let i = 0; i < 50 && !intake.status().paused; i++) await sleep(100);
      assert.equal(intake.status().paused, true);
      assert.match(await metrics.registry.metrics(), /^oeld_ingest_paused_partitions 2$/m);
      await produce(client, 'in', Array.from({ length: 50 }, (_, i) => ({ value: goodMessage(100 + i) })));
      // No batch arrives while paused, yet the lag gauge follows the brokers' high-water marks.
      const lagSum = async () => [...(await metrics.registry.metrics()).matchAll(/^oeld_ingest_consumer_lag_messages\{partition="\d+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      for (let i = 0; i < 100 && (await lagSum()) !== 50; i++) await sleep(100);
      assert.equal(await lagSum(), 50, 'lag shows the 50 waiting messages');
      assert.equal(await stored(), 50, 'nothing consumed while paused');

      lag = 10;
      for (let i = 0; i < 100 && (await stored()) < 100; i++) await sleep(100);
      assert.equal(await stored(), 100, 'everything consumed after resuming');
      assert.equal(intake.status().paused, false);
      assert.match(await metrics.registry.metrics(), /^oeld_ingest_paused_partitions 0$/m);
    } finally {
      await intake.stop();
      await publisher.close();
      await db.drop();
      await kafka.stop();
    }
  });
});

describe('ingestion rate window', () => {
  it('averages what was added over the last minute and forgets older counts', async () => {
    const { RateWindow } = await import('../src/consumers/rate-window.ts');
    let now = 0;
    const w = new RateWindow(60_000, () => now);
    w.add(600);
    now = 30_000;
    w.add(600);
    assert.equal(w.perSecond(), 20);
    now = 61_000;
    assert.equal(w.perSecond(), 10);
    now = 200_000;
    assert.equal(w.perSecond(), 0);
  });
});
