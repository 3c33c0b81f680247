import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { backpressureDecision } from '../src/consumers/backpressure.ts';
import { goodMessage } from './helpers/interaction-messages.ts';
import { produce } from './helpers/kafka-client.ts';
import { intakeOnMockKafka } from './helpers/mock-intake.ts';

describe('backpressure', () => {
  it('pauses above the limit and resumes only below half of it', () => {
    assert.equal(backpressureDecision(false, 101, 100), 'pause');
    assert.equal(backpressureDecision(false, 100, 100), null);
    assert.equal(backpressureDecision(true, 60, 100), null, 'no flapping just under the limit');
    assert.equal(backpressureDecision(true, 49, 100), 'resume');
  });

  it('stops Kafka intake while the store is behind and picks up where it left off', async () => {
    let lag = 0;
    const { client, metrics, intake, stored, close } = await intakeOnMockKafka('bp', { pauseLagEvents: 100, lag: () => lag });
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
      await close();
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
