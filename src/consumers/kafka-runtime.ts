/**
 * Kafka as the daemon runs it: the intake (every daemon is a consumer-group member) and the
 * publication relay (run by the leader). Brokers may be down at start: the intake keeps trying in
 * the background instead of failing the daemon.
 */
import type { Config } from '../config.ts';
import type { Sql } from '../db/sql.ts';
import type { Metrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';
import { slowestProjectionLag } from '../projections/checkpoints.ts';
import { OutboxRelay } from '../publication/outbox-relay.ts';
import type { EventStore } from '../store/event-store.ts';
import { KafkaIntake } from './kafka-intake.ts';
import { kafkaClient, KafkajsBatchConsumer, KafkajsPublisher } from './kafkajs-bus.ts';
import type { Publisher } from './message-bus.ts';

export type KafkaRuntime = ReturnType<typeof startKafka>;

export function startKafka(config: Config, log: Logger, store: EventStore, sql: Sql, metrics: Metrics) {
  const client = kafkaClient(config, log);
  const publisher: Publisher = new KafkajsPublisher(client);
  let intake!: KafkaIntake;
  const consumer = new KafkajsBatchConsumer(client, config.kafkaInteractionsTopic, config.kafkaGroupId, config.kafkaSessionTimeoutMs, {
    onRebalance: (a) => intake.onRebalance(a),
    onCrash: (e, restarting) => intake.onCrash(e, restarting),
  }, config.kafkaFetchMaxWaitMs);
  intake = new KafkaIntake(store, consumer, publisher, {
    groupId: config.kafkaGroupId, topic: config.kafkaInteractionsTopic, deadLetterTopic: config.kafkaDeadLetterTopic, pauseLagEvents: config.pauseLagEvents,
    maxEventBytes: config.maxEventBytes, maxJsonDepth: config.maxJsonDepth, deadLetterCopyMaxBytes: config.deadLetterCopyMaxBytes,
  }, metrics, log, () => slowestProjectionLag(sql));
  const relay = new OutboxRelay(sql, publisher, config.kafkaModelVersionsTopic);
  let stopped = false;
  // Brokers may be down at start: keep trying in the background instead of failing the daemon.
  const starting = (async () => {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        await intake.start();
        log.info({ brokers: config.kafkaBrokers, topic: config.kafkaInteractionsTopic, group: config.kafkaGroupId }, 'Kafka intake started');
        return;
      } catch (err) {
        log.error({ err, attempt }, 'Kafka intake could not start; retrying in 5 s');
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
  })();
  return {
    intake, relay, publisher,
    async stop() { stopped = true; await starting; await intake.stop(); },
  };
}
