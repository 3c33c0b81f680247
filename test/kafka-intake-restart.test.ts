import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { goodMessage } from './helpers/interaction-messages.ts';
import { produce } from './helpers/kafka-client.ts';
import { intakeOnMockKafka } from './helpers/mock-intake.ts';

describe('Kafka intake after a consumer crash', () => {
  it('restarts a consumer the Kafka client gave up on (a non-retriable error in SyncGroup) and consumes everything', async () => {
    const crashes: boolean[] = [];
    const { kafka, client, metrics, intake, stored, close } = await intakeOnMockKafka('crash', {
      pauseLagEvents: 1_000_000, restartDelayMs: 200, lag: () => 0, onCrash: (restarting) => crashes.push(restarting),
    });
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
      await close();
    }
  });
});
