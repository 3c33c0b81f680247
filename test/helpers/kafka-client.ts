import { Kafka, logLevel, Partitioners, type KafkaMessage } from 'kafkajs';

export const testKafka = (brokers: string[]) => new Kafka({ clientId: 'oeld-test', brokers, logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100 } });

/** Produces with retries: a test producer must ride out the broker outages the test injects. */
export async function produce(kafka: Kafka, topic: string, messages: { key?: string; value: Buffer | string | null; partition?: number }[], chunk = 200): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += chunk) {
      const part = messages.slice(i, i + chunk);
      for (let attempt = 0; ; attempt++) {
        try { await producer.send({ topic, messages: part }); break; } catch (err) { if (attempt > 20) throw err; await new Promise((r) => setTimeout(r, 250)); }
      }
    }
  } finally {
    await producer.disconnect();
  }
}

/** Reads a whole topic from the beginning until `expected` messages arrived (or the timeout passed). */
/**
 * Reads a topic from the beginning until `expected` messages arrived (or, given a function, until it
 * says the messages read are enough: a topic with repeats needs more than its distinct count), or
 * the timeout passed.
 */
export async function readTopic(kafka: Kafka, topic: string, expected: number | ((got: KafkaMessage[]) => boolean), timeoutMs = 30_000): Promise<KafkaMessage[]> {
  const enough = typeof expected === 'number' ? (got: KafkaMessage[]) => got.length >= expected : expected;
  const consumer = kafka.consumer({ groupId: `reader-${Math.random().toString(36).slice(2)}`, sessionTimeout: 6000, rebalanceTimeout: 6000, heartbeatInterval: 500 });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    void consumer.run({ eachMessage: async ({ message }) => { got.push(message); if (enough(got)) { clearTimeout(t); resolve(); } } });
  });
  await consumer.disconnect();
  return got;
}
