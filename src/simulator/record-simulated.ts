/**
 * Records what a simulated user side produced through the ingestion path a Kafka message takes:
 * each record is serialised to the message format, decoded and validated by decodeInteraction, and
 * appended; what ingestion refuses (a model can write U+0000, which PostgreSQL cannot store) is a
 * dead letter, as from Kafka, in the same transaction.
 */
import type { EventDataMap } from '../events/schemas.ts';
import { STREAMS } from '../events/streams.ts';
import { DEFAULT_MAX_JSON_DEPTH, decodeInteraction } from '../ingest/decode-interaction.ts';
import { deadLetterKey, deadLetterPayload, recordDeadLetters, type DeadLetter } from '../ingest/dead-letters.ts';
import type { AppendRequest } from '../store/append-events.ts';
import type { EventStore } from '../store/event-store.ts';

export interface SimulatedRecord {
  /** The message a production system would send (InteractionRecorded less the source, which the intake sets). */
  message: Omit<EventDataMap['InteractionRecorded'], 'source'>;
  seed: number;
  /** Where it came from, for a dead letter ("frozenlake seed 100000012"). */
  origin: string;
}

export interface RecordLimits { maxEventBytes: number; maxJsonDepth?: number }

/** Decodes and appends the records; returns how many were recorded and how many became dead letters. */
export async function recordSimulated(store: EventStore, records: readonly SimulatedRecord[], limits: RecordLimits): Promise<{ recorded: number; deadLetters: number }> {
  const requests: AppendRequest[] = [];
  const rejected: DeadLetter[] = [];
  const decodeLimits = { maxBytes: limits.maxEventBytes, maxDepth: limits.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH };
  for (const r of records) {
    const bytes = Buffer.from(JSON.stringify(r.message));
    const decoded = decodeInteraction(bytes, { kind: 'simulator', episodeSeed: r.seed }, decodeLimits, 'simulated episode');
    if (decoded.ok) requests.push({ streamId: STREAMS.interaction(decoded.event.data.interactionId), expectedVersion: 'any', events: [decoded.event] });
    else rejected.push({ source: 'simulator', origin: r.origin, reason: `${decoded.kind}: ${decoded.reason}`, payload: deadLetterPayload(bytes), key: deadLetterKey('simulator', r.origin, bytes) });
  }
  await store.append(requests, { trusted: true, alsoInTransaction: async (tx) => { await recordDeadLetters(tx, rejected); } });
  return { recorded: requests.length, deadLetters: rejected.length };
}
