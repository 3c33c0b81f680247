import { STREAMS } from '../events/streams.ts';
import { recordDeadLetters, deadLetterPayload, type DeadLetter } from '../ingest/dead-letters.ts';
import { decodeInteraction, type RejectKind } from '../ingest/decode-interaction.ts';
import type { NewEvent } from '../events/envelope.ts';
import { canonicalJson } from '../events/canonical-json.ts';
import type { Queryable } from '../db/sql.ts';
import type { EventStore } from '../store/event-store.ts';
import { lockNextOffset, storeNextOffset } from './kafka-offsets.ts';
import type { InboundBatch, InboundMessage, OutboundMessage, Publisher } from './message-bus.ts';

export interface InteractionsConsumerOptions {
  groupId: string;
  deadLetterTopic: string;
  maxEventBytes: number;
}

export interface BatchOutcome {
  consumed: number;
  /** Offsets already in the store (a redelivery after a crash before the Kafka commit). */
  alreadyStored: number;
  appended: number;
  /** Valid events whose id was already stored with the same content (a producer retry). */
  duplicates: number;
  deadLettered: { kind: RejectKind; reason: string; offset: string }[];
  /**
   * Offsets between what the store holds and the first message delivered: messages deleted by
   * retention before they were consumed (or compacted away). They cannot be recovered: reported.
   */
  skippedOffsets: number;
}

export const DEAD_LETTER_SOURCE = 'kafka';

interface Rejected { message: InboundMessage; kind: RejectKind; reason: string }

/**
 * Turns one partition's batch into events, effectively once: the events, the dead letters and the
 * partition's next offset commit in one PostgreSQL transaction; bad messages are copied to the
 * dead-letter topic before that commit (so a crash can repeat a dead letter, never lose one).
 * The caller commits the Kafka offsets only after this resolves.
 */
export async function ingestBatch(store: EventStore, publisher: Publisher, o: InteractionsConsumerOptions, batch: InboundBatch): Promise<BatchOutcome> {
  const { topic, partition } = batch;
  return store.transact(async (tx, append) => {
    const next = await lockNextOffset(tx, o.groupId, topic, partition);
    const fresh = batch.messages.filter((m) => BigInt(m.offset) >= next);
    const first = BigInt(batch.messages[0]!.offset);
    const outcome: BatchOutcome = {
      consumed: batch.messages.length, alreadyStored: batch.messages.length - fresh.length, appended: 0, duplicates: 0, deadLettered: [],
      skippedOffsets: next > 0n && first > next ? Number(first - next) : 0,
    };
    if (fresh.length === 0) return outcome;

    const rejected: Rejected[] = [];
    const accepted: { message: InboundMessage; event: NewEvent<'InteractionRecorded'>; idDerived: boolean }[] = [];
    const seen = new Set<string>();
    for (const message of fresh) {
      const r = message.value === null
        ? { ok: false as const, kind: 'invalid_json' as const, reason: 'empty message (null value)' }
        : decodeInteraction(message.value, { kind: 'kafka', topic, partition, offset: message.offset }, o.maxEventBytes, 'message');
      if (!r.ok) { rejected.push({ message, kind: r.kind, reason: r.reason }); continue; }
      // The same id twice in one batch (a producer retry): the first one stands.
      if (seen.has(r.event.id)) { outcome.duplicates++; continue; }
      seen.add(r.event.id);
      accepted.push({ message, event: r.event, idDerived: r.idDerived });
    }

    if (accepted.length) {
      const result = await append(accepted.map((a) => ({ streamId: STREAMS.interaction(a.event.data.interactionId), events: [a.event] })), { trusted: true });
      outcome.appended = result.appended.length;
      outcome.duplicates += result.duplicates.length;
      if (result.conflicts.length) {
        const sameApartFromSource = await storedWithoutSource(tx, result.conflicts.map((c) => c.id));
        for (const c of result.conflicts) {
          const a = accepted.find((x) => x.event.id === c.id)!;
          // The same message delivered again at another offset differs only in the source we filled in: a repeat.
          if (a.idDerived || sameApartFromSource.get(c.id) === canonicalJson({ ...a.event.data, source: undefined })) outcome.duplicates++;
          else rejected.push({ message: a.message, kind: 'conflict', reason: `event id ${c.id} is already stored with different content (${c.reason})` });
        }
      }
    }

    if (rejected.length) {
      await publisher.send(o.deadLetterTopic, rejected.map((r) => deadLetterMessage(topic, partition, o.groupId, r)));
      const letters: DeadLetter[] = rejected.map((r) => ({
        source: DEAD_LETTER_SOURCE, origin: `${topic}/${partition}/${r.message.offset}`, reason: r.reason,
        payload: r.message.value === null ? null : deadLetterPayload(r.message.value),
      }));
      await recordDeadLetters(tx, letters);
      outcome.deadLettered = rejected.map((r) => ({ kind: r.kind, reason: r.reason, offset: r.message.offset }));
    }
    await storeNextOffset(tx, o.groupId, topic, partition, BigInt(batch.messages.at(-1)!.offset) + 1n);
    return outcome;
  });
}

async function storedWithoutSource(tx: Queryable, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await tx.query<{ event_id: string; data: Record<string, unknown> }>('SELECT event_id, data FROM events WHERE event_id = ANY($1::uuid[])', [ids]);
  return new Map(rows.map((r) => [r.event_id, canonicalJson({ ...r.data, source: undefined })]));
}

function deadLetterMessage(topic: string, partition: number, groupId: string, r: Rejected): OutboundMessage {
  return {
    key: r.message.key,
    value: r.message.value,
    headers: {
      'oeld-origin-topic': topic,
      'oeld-origin-partition': String(partition),
      'oeld-origin-offset': r.message.offset,
      'oeld-consumer-group': groupId,
      'oeld-reason-kind': r.kind,
      'oeld-reason': r.reason.slice(0, 4000),
    },
  };
}
