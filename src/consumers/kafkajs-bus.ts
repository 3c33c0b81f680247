import { readFileSync } from 'node:fs';
import { Kafka, logLevel, Partitioners, type Admin, type Consumer, type KafkaConfig, type Producer, type SASLOptions } from 'kafkajs';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { BatchConsumer, BatchHandler, ConsumerEvents, OutboundMessage, Publisher } from './message-bus.ts';

/** kafkajs client options from oeld's configuration (brokers, SASL, TLS), logging through our logger. */
export function kafkaClient(config: Config, log: Logger): Kafka {
  const sasl: SASLOptions | undefined = config.kafkaSaslMechanism
    ? { mechanism: config.kafkaSaslMechanism, username: config.kafkaSaslUsername!, password: config.kafkaSaslPassword! } as SASLOptions
    : undefined;
  const options: KafkaConfig = {
    clientId: config.kafkaClientId,
    brokers: config.kafkaBrokers!,
    ssl: config.kafkaTls ? (config.kafkaTlsCaFile ? { ca: [readFileSync(config.kafkaTlsCaFile, 'utf8')] } : true) : undefined,
    sasl,
    logLevel: logLevel.WARN,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    logCreator: () => ({ namespace, level, log: entry }) => {
      const { message, ...rest } = entry;
      const fields = { kafka: namespace, ...rest };
      if (level === logLevel.ERROR) log.error(fields, message); else log.warn(fields, message);
    },
  };
  return new Kafka(options);
}

/** A consumer group member on one topic: manual offsets, committed only after the handler resolves. */
export class KafkajsBatchConsumer implements BatchConsumer {
  private readonly consumer: Consumer;
  private isPaused = false;
  private readonly admin: Admin;
  private adminConnected?: Promise<void>;

  constructor(kafka: Kafka, private readonly topic: string, groupId: string, sessionTimeoutMs: number, events: ConsumerEvents = {}, fetchMaxWaitMs = 5000) {
    this.consumer = kafka.consumer({
      groupId, sessionTimeout: sessionTimeoutMs, rebalanceTimeout: sessionTimeoutMs, maxWaitTimeInMs: fetchMaxWaitMs,
      heartbeatInterval: Math.max(100, Math.floor(sessionTimeoutMs / 10)), maxBytesPerPartition: 4 * 1024 * 1024,
    });
    const { GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, (e) => {
      const assigned = Object.entries(e.payload.memberAssignment).flatMap(([topic, ps]) => (ps as number[]).map((partition) => ({ topic, partition })));
      events.onRebalance?.(assigned);
    });
    this.consumer.on(CRASH, (e) => events.onCrash?.(e.payload.error, e.payload.restart));
    this.admin = kafka.admin();
  }

  async highWatermarks(): Promise<Map<number, bigint>> {
    this.adminConnected ??= this.admin.connect();
    await this.adminConnected;
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  }

  get paused(): boolean { return this.isPaused; }

  async start(handler: BatchHandler): Promise<void> {
    try {
      await this.consumer.connect();
      await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await this.run(handler);
    } catch (err) {
      // Leave the client clean so that a later start() can subscribe again.
      await this.consumer.disconnect().catch(() => {});
      throw err;
    }
  }

  private async run(handler: BatchHandler): Promise<void> {
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        await handler({
          topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark,
          messages: batch.messages.map((m) => ({
            offset: m.offset, key: m.key ?? null, value: m.value ?? null,
            headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, Array.isArray(v) ? String(v[0]) : String(v ?? '')])),
          })),
        }, heartbeat);
        // The batch is in PostgreSQL: only now does Kafka learn it was consumed. (With autoCommit
        // off, commitOffsetsIfNecessary commits nothing: the commit is explicit.)
        resolveOffset(batch.lastOffset());
        await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() }]);
      },
    });
  }

  pause(): void {
    this.isPaused = true;
    this.consumer.pause([{ topic: this.topic }]);
  }

  resume(): void {
    this.isPaused = false;
    this.consumer.resume([{ topic: this.topic }]);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    if (this.adminConnected) await this.admin.disconnect().catch(() => {});
  }
}

/**
 * A plain (non-idempotent) producer: delivery is at least once, and every message carries its
 * event id in a header so consumers drop repeats. (The idempotent producer needs broker features
 * the test broker lacks, and would not cover a relay crash between send and mark anyway.)
 */
export class KafkajsPublisher implements Publisher {
  private readonly producer: Producer;
  private connected?: Promise<void>;

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  }

  async connect(): Promise<void> {
    this.connected ??= this.producer.connect();
    await this.connected;
  }

  async send(topic: string, messages: OutboundMessage[]): Promise<void> {
    await this.connect();
    await this.producer.send({ topic, acks: -1, messages });
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect();
  }
}
