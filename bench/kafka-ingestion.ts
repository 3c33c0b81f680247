/**
 * End-to-end ingestion: BENCH_KAFKA_N (200,000) interactions of ~1 KB produced to the mock Kafka
 * cluster (librdkafka, scripts/ensure-kafka-mock.sh), consumed by a daemon process into PostgreSQL.
 * Figure: messages/s from the first to the last event recorded. Baseline in the same run: the event
 * store's own append rate (validated, batches of 1000) for the same number of events.
 * Also the daemon's RSS at the start and the end of the run (memory must stay flat).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { STREAMS } from '../src/events/streams.ts';
import type { NewEvent } from '../src/events/envelope.ts';
import { EventStore } from '../src/store/event-store.ts';
import { interaction } from '../test/helpers/events.ts';
import { spawnDaemon } from '../test/helpers/daemon-process.ts';
import { produce, testKafka } from '../test/helpers/kafka-client.ts';
import { createOeldTopics, startMockKafka } from '../test/helpers/mock-kafka.ts';
import { benchDatabase, emit, envInt, fmt, log, round, rssMb } from './lib.ts';

const N = envInt('BENCH_KAFKA_N', 200_000);
// librdkafka's mock broker keeps about 5 MB per partition (older messages are deleted, like
// retention), so the whole backlog must fit: 64 partitions hold 200,000 messages of 1 KB.
const PARTITIONS = envInt('BENCH_KAFKA_PARTITIONS', 64);

const kafka = await startMockKafka(3);
await createOeldTopics(kafka, PARTITIONS);
const db = await benchDatabase();
const baselineDb = await benchDatabase();
try {
  log(`producing ${fmt(N)} interactions of ~1 KB over ${PARTITIONS} partitions...`);
  const messages = Array.from({ length: N }, (_, i) => ({ value: JSON.stringify(interaction(i, { bytes: 1000, prefix: 'bench' }).data), partition: Math.floor(i / 1000) % PARTITIONS }));
  const t0 = Date.now();
  // The mock broker answers a fetch with one produced record batch; real brokers fill a fetch with
  // many. Producing 1,000 messages to one partition per request gives batches of the size Kafka would.
  await produce(testKafka(kafka.brokers), 'oel.interactions', messages, 1000);
  log(`  produced in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const daemon = spawnDaemon({ DATABASE_URL: db.url, KAFKA_BROKERS: kafka.bootstrap, KAFKA_SESSION_TIMEOUT_MS: '10000', OELD_LOG_LEVEL: 'info' });
  await daemon.waitForLog(/Kafka intake started/);
  const rssStart = rssMb(daemon.child.pid!);
  let rssPeak = rssStart;
  const rssAt: string[] = [];
  for (;;) {
    const { rows } = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
    rssPeak = Math.max(rssPeak, rssMb(daemon.child.pid!));
    const quarter = Math.floor((4 * rows[0]!.n) / N);
    if (quarter > rssAt.length && quarter <= 4) rssAt.push(`${25 * quarter}%: ${rssMb(daemon.child.pid!).toFixed(0)} MB`);
    if (rows[0]!.n >= N) break;
    if (/offsets skipped/.test(daemon.stderr())) throw new Error('the mock broker deleted messages before they were consumed: raise BENCH_KAFKA_PARTITIONS');
    await sleep(500);
  }
  const rssEnd = rssMb(daemon.child.pid!);
  const metricsText = await (await fetch(`${await daemon.url()}/metrics`)).text();
  const metric = (name: string) => Number(metricsText.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? NaN);
  const batches = metric('oeld_ingest_batch_duration_seconds_count');
  log(`  ${fmt(batches)} batches, ${fmt(N / batches)} messages per batch on average, ${(1000 * metric('oeld_ingest_batch_duration_seconds_sum') / batches).toFixed(1)} ms each to make durable`);
  const { rows: [span] } = await db.sql.query<{ s: number }>('SELECT extract(epoch FROM max(recorded_at) - min(recorded_at))::float8 AS s FROM events');
  await daemon.kill('SIGTERM');
  const rate = N / Number(span!.s);

  const store = new EventStore(baselineDb.sql);
  const events = Array.from({ length: N }, (_, i) => interaction(i, { bytes: 1000, prefix: 'base' }) as NewEvent<'InteractionRecorded'>);
  const b0 = Date.now();
  for (let i = 0; i < N; i += 1000) {
    await store.append(events.slice(i, i + 1000).map((e) => ({ streamId: STREAMS.interaction(e.data.interactionId), events: [e] })));
  }
  const baseline = N / ((Date.now() - b0) / 1000);

  log(`end-to-end Kafka -> PostgreSQL: ${fmt(rate)} messages/s (goal >= 20,000)`);
  log(`event store raw append (same run): ${fmt(baseline)} events/s; ratio ${(rate / baseline).toFixed(2)} (goal >= 0.5)`);
  log(`daemon RSS: ${rssStart.toFixed(0)} MB at start, ${rssPeak.toFixed(0)} MB peak, ${rssEnd.toFixed(0)} MB at the end; by progress ${rssAt.join(', ')}`);
  emit({ name: 'kafka-ingestion', messages: N, messagesPerSecond: round(rate), baselineEventsPerSecond: round(baseline), ratio: round(rate / baseline, 2), rssStartMb: round(rssStart), rssPeakMb: round(rssPeak), rssEndMb: round(rssEnd) });
} finally {
  await db.drop();
  await baselineDb.drop();
  await kafka.stop();
}
