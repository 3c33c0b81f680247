import { STREAMS } from '../events/streams.ts';
import { deadLetterKey, deadLetterPayload, recordDeadLetters, type DeadLetter } from '../ingest/dead-letters.ts';
import { decodeInteraction, type DecodeLimits, type RejectKind } from '../ingest/decode-interaction.ts';
import type { NewEvent } from '../events/envelope.ts';
import type { EventStore } from '../store/event-store.ts';
import { copyToDeadLetterTopic, type RejectedMessage } from './dead-letter-copies.ts';
import { lockNextOffset, storeNextOffset } from './kafka-offsets.ts';
import type { InboundBatch, InboundMessage, Publisher } from './message-bus.ts';

export interface InteractionsConsumerOptions {
  groupId: string;
  deadLetterTopic: string;
  maxEventBytes: number;
  maxJsonDepth: number;
  /** Bytes of a rejected message's value its dead-letter copy keeps. */
  deadLetterCopyMaxBytes: number;
}

export interface BatchOutcome {
  consumed: number;
  /** Offsets already in the store (a redelivery after a crash before the Kafka commit). */
  alreadyStored: number;
  appended: number;
  /** Valid events whose id was already stored with the same content (a producer retry, a repeat at another offset). */
  duplicates: number;
  deadLettered: { kind: RejectKind; reason: string; offset: string }[];
  /** Dead letters whose copy the dead-letter topic refused (recorded in the table with the refusal). */
  copiesRefused: { offset: string; error: string }[];
  /**
   * Offsets between what the store holds and the first message delivered: messages deleted by
   * retention before they were consumed (or compacted away). They cannot be recovered: reported.
   */
  skippedOffsets: number;
}

export const DEAD_LETTER_SOURCE = 'kafka';

/**
 * Turns one partition's batch into events, effectively once: the events, the dead letters and the
 * partition's next offset commit in one PostgreSQL transaction; bad messages are copied to the
 * dead-letter topic before that commit (so a crash can repeat a copy, never lose a dead letter).
 * The caller commits the Kafka offsets only after this resolves.
 */
export async function ingestBatch(store: EventStore, publisher: Publisher, o: InteractionsConsumerOptions, batch: InboundBatch): Promise<BatchOutcome> {
  const { topic, partition } = batch;
  const limits: DecodeLimits = { maxBytes: o.maxEventBytes, maxDepth: o.maxJsonDepth };
  return store.transact(async (tx, append) => {
    const next = await lockNextOffset(tx, o.groupId, topic, partition);
    const fresh = batch.messages.filter((m) => BigInt(m.offset) >= next);
    const first = BigInt(batch.messages[0]!.offset);
    const outcome: BatchOutcome = {
      consumed: batch.messages.length, alreadyStored: batch.messages.length - fresh.length, appended: 0, duplicates: 0, deadLettered: [], copiesRefused: [],
      skippedOffsets: next > 0n && first > next ? Number(first - next) : 0,
    };
    if (fresh.length === 0) return outcome;

    const rejected: RejectedMessage[] = [];
    const accepted: { message: InboundMessage; event: NewEvent<'InteractionRecorded'> }[] = [];
    const seen = new Set<string>();
    for (const message of fresh) {
      const r = message.value === null
        ? { ok: false as const, kind: 'invalid_json' as const, reason: 'empty message (null value)' }
        : decodeInteraction(message.value, { kind: 'kafka', topic, partition, offset: message.offset }, limits, 'message');
      if (!r.ok) { rejected.push({ message, kind: r.kind, reason: r.reason }); continue; }
      // The same id twice in one batch (a producer retry): the first one stands.
      if (seen.has(r.event.id)) { outcome.duplicates++; continue; }
      seen.add(r.event.id);
      accepted.push({ message, event: r.event });
    }

    if (accepted.length) {
      const result = await append(accepted.map((a) => ({ streamId: STREAMS.interaction(a.event.data.interactionId), events: [a.event] })), { trusted: true });
      outcome.appended = result.appended.length;
      outcome.duplicates += result.duplicates.length;
      for (const c of result.conflicts) {
        const a = accepted.find((x) => x.event.id === c.id)!;
        rejected.push({ message: a.message, kind: 'conflict', reason: `event id ${c.id} is already stored with different content (${c.reason})` });
      }
    }

    if (rejected.length) {
      const refused = await copyToDeadLetterTopic(publisher, o, topic, partition, rejected);
      const letters: DeadLetter[] = rejected.map((r, i) => {
        const origin = `${topic}/${partition}/${r.message.offset}`;
        const copyError = refused.get(i);
        return {
          source: DEAD_LETTER_SOURCE, origin, reason: r.reason, key: deadLetterKey(DEAD_LETTER_SOURCE, origin, r.message.value),
          payload: r.message.value === null ? null : deadLetterPayload(r.message.value),
          ...(copyError === undefined ? {} : { copyError: `the dead-letter topic refused the copy: ${copyError}` }),
        };
      });
      await recordDeadLetters(tx, letters);
      outcome.deadLettered = rejected.map((r) => ({ kind: r.kind, reason: r.reason, offset: r.message.offset }));
      outcome.copiesRefused = [...refused].map(([i, error]) => ({ offset: rejected[i]!.message.offset, error }));
    }
    await storeNextOffset(tx, o.groupId, topic, partition, BigInt(batch.messages.at(-1)!.offset) + 1n);
    return outcome;
  });
}
