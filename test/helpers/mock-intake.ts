/**
 * A KafkaIntake wired to a one-broker mock cluster (topic `in` with two partitions, dead letters to
 * `dlq`) and a fresh PostgreSQL database, for tests of the intake's own behaviour.
 */
import { KafkaIntake } from '../../src/consumers/kafka-intake.ts';
import { KafkajsBatchConsumer, KafkajsPublisher } from '../../src/consumers/kafkajs-bus.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { createLogger } from '../../src/log.ts';
import { EventStore } from '../../src/store/event-store.ts';
import { serverDatabase } from './databases.ts';
import { testKafka } from './kafka-client.ts';
import { startMockKafka } from './mock-kafka.ts';

export async function intakeOnMockKafka(group: string, o: {
  deadLetterCopyMaxBytes?: number;
  pauseLagEvents: number;
  restartDelayMs?: number;
  /** The projections' lag the intake sees, in events. */
  lag: () => number;
  onCrash?: (restarting: boolean) => void;
}) {
  const kafka = await startMockKafka(1);
  await kafka.createTopic('in', 2);
  await kafka.createTopic('dlq', 1);
  const db = await serverDatabase();
  const client = testKafka(kafka.brokers);
  const metrics = createMetrics();
  let intake!: KafkaIntake;
  const consumer = new KafkajsBatchConsumer(client, 'in', group, 6000, {
    onRebalance: (a) => intake.onRebalance(a),
    onCrash: (e, restarting) => { o.onCrash?.(restarting); intake.onCrash(e, restarting); },
  });
  const publisher = new KafkajsPublisher(client);
  intake = new KafkaIntake(new EventStore(db.sql), consumer, publisher, {
    groupId: group, topic: 'in', deadLetterTopic: 'dlq', maxEventBytes: 65536, maxJsonDepth: 64, deadLetterCopyMaxBytes: o.deadLetterCopyMaxBytes ?? 262144, pauseLagEvents: o.pauseLagEvents,
    ...(o.restartDelayMs !== undefined ? { restartDelayMs: o.restartDelayMs } : {}),
  }, metrics, createLogger('silent'), async () => o.lag());
  return {
    kafka, client, metrics, intake,
    db,
    stored: async () => (await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]!.n,
    async close() {
      await intake.stop();
      await publisher.close();
      await db.drop();
      await kafka.stop();
    },
  };
}
