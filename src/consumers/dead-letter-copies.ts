import type { RejectKind } from '../ingest/decode-interaction.ts';
import type { InboundMessage, OutboundMessage, Publisher } from './message-bus.ts';

/** A rejected message on its way to the dead-letter topic. */
export interface RejectedMessage { message: InboundMessage; kind: RejectKind; reason: string }

export interface CopyOptions {
  deadLetterTopic: string;
  groupId: string;
  /** Bytes of a message's value a copy keeps; the rest is cut, and a header says so. */
  deadLetterCopyMaxBytes: number;
}

/** Bytes of messages per send: several small copies go in one request, a large one alone. */
const SEND_BUDGET_BYTES = 512 * 1024;

/**
 * Copies rejected messages to the dead-letter topic, each cut to `deadLetterCopyMaxBytes`, in
 * sends of at most SEND_BUDGET_BYTES. A send the broker refuses is retried one message at a time,
 * and a message it still refuses is given up on: the result maps its index to the refusal, so the
 * caller records it with the dead letter and the batch goes on. A refused copy never holds up
 * valid messages. An outage is not a refusal (isRefusal): it fails the batch, which is tried
 * again, as before.
 */
export async function copyToDeadLetterTopic(publisher: Publisher, o: CopyOptions, topic: string, partition: number, rejected: RejectedMessage[]): Promise<Map<number, string>> {
  const refused = new Map<number, string>();
  const copies = rejected.map((r) => deadLetterCopy(o, topic, partition, r));
  const sendOne = async (i: number): Promise<void> => {
    try {
      await publisher.send(o.deadLetterTopic, [copies[i]!]);
    } catch (err) {
      if (!isRefusal(err)) throw err;
      refused.set(i, errorText(err));
    }
  };
  for (const group of sendGroups(copies)) {
    try {
      await publisher.send(o.deadLetterTopic, group.map((i) => copies[i]!));
    } catch (err) {
      if (!isRefusal(err)) throw err;
      for (const i of group) await sendOne(i);
    }
  }
  return refused;
}

/**
 * The broker answered with an error that sending again will not cure: one of kafkajs's protocol
 * errors marked not retriable (MESSAGE_TOO_LARGE, INVALID_RECORD, TOPIC_AUTHORIZATION_FAILED...).
 * Retriable ones (no leader during an election, not enough replicas) that outlasted the client's
 * retries are an outage, like a broker that does not answer.
 */
export function isRefusal(err: unknown): boolean {
  const e = err as { name?: string; retriable?: boolean; errors?: unknown[] };
  if (e?.name === 'KafkaJSProtocolError') return e.retriable === false;
  if (e?.name === 'KafkaJSAggregateError' && Array.isArray(e.errors)) return e.errors.length > 0 && e.errors.every(isRefusal);
  return false;
}

/** Indexes of `copies` grouped into sends of at most SEND_BUDGET_BYTES (a larger copy alone). */
function sendGroups(copies: OutboundMessage[]): number[][] {
  const groups: number[][] = [];
  let current: number[] = [], bytes = 0;
  copies.forEach((c, i) => {
    const size = (c.value?.length ?? 0) + (c.key?.length ?? 0) + Object.entries(c.headers).reduce((n, [k, v]) => n + k.length + v.length, 0);
    if (current.length > 0 && bytes + size > SEND_BUDGET_BYTES) { groups.push(current); current = []; bytes = 0; }
    current.push(i);
    bytes += size;
  });
  if (current.length) groups.push(current);
  return groups;
}

function deadLetterCopy(o: CopyOptions, topic: string, partition: number, r: RejectedMessage): OutboundMessage {
  const value = r.message.value;
  const cut = value !== null && value.length > o.deadLetterCopyMaxBytes;
  return {
    key: r.message.key,
    value: cut ? value.subarray(0, o.deadLetterCopyMaxBytes) : value,
    headers: {
      'oeld-origin-topic': topic,
      'oeld-origin-partition': String(partition),
      'oeld-origin-offset': r.message.offset,
      'oeld-consumer-group': o.groupId,
      'oeld-reason-kind': r.kind,
      'oeld-reason': r.reason.slice(0, 4000),
      ...(cut ? { 'oeld-truncated': `the first ${o.deadLetterCopyMaxBytes} of ${value.length} bytes (OELD_DEAD_LETTER_COPY_MAX_BYTES)` } : {}),
    },
  };
}

const errorText = (err: unknown): string => {
  const e = err as { name?: string; message?: string; type?: string };
  return `${e.type ?? e.name ?? 'Error'}: ${e.message ?? String(err)}`.slice(0, 1000);
};
