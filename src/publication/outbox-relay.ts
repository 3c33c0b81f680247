import type { Queryable, Sql } from '../db/sql.ts';
import type { Processor } from '../processing/processor.ts';
import type { RecordedEvent } from '../events/envelope.ts';
import type { EventType } from '../events/schemas.ts';
import type { OutboundMessage, Publisher } from '../consumers/message-bus.ts';
import { countEventsAfter } from '../store/log-queries.ts';
import { CheckpointConflictError, ensureCheckpoint, loadCheckpoint, NOT_REPLAYED_PREFIX, storeCheckpoint } from '../projections/checkpoints.ts';
import { readEventsBatch, type Checkpoint } from '../store/read-events.ts';

/** What leaves through the model-versions topic: model registry changes and knowledge versions. */
export const PUBLISHED_TYPES: readonly EventType[] = [
  'ModelVersionPublished', 'ModelVersionActivated', 'KnowledgeExtracted', 'KnowledgeItemRetracted', 'KnowledgeBaseRolledBack',
];

export const EVENT_ID_HEADER = 'oeld-event-id';

/** The wire form: the event envelope as JSON, keyed by stream so one stream's events stay in order on one partition. */
export function toOutboundMessage(e: RecordedEvent): OutboundMessage {
  return {
    key: e.streamId,
    value: JSON.stringify({
      id: e.id, type: e.type, schemaVersion: e.schemaVersion, streamId: e.streamId, streamPosition: e.streamPosition,
      globalPosition: e.globalPosition, occurredAt: e.occurredAt.toISOString(), recordedAt: e.recordedAt.toISOString(),
      causationId: e.causationId, correlationId: e.correlationId, data: e.data,
    }),
    headers: { [EVENT_ID_HEADER]: e.id, 'oeld-event-type': e.type, 'oeld-schema-version': String(e.schemaVersion) },
  };
}

export interface RelayHooks {
  /** Runs between the broker's acknowledgement and the checkpoint write (tests inject crashes here). */
  afterSend?: (events: RecordedEvent[]) => Promise<void>;
}

/**
 * The transactional outbox, with the event log as the outbox table: an event is in the log iff
 * its transaction committed, and the relay sends what follows its checkpoint, then moves the
 * checkpoint (compare-and-set). A crash between the two resends the same events with the same
 * event ids: at least once, deduplicable by the consumer.
 *
 * A processor like the projectors (the same checkpoint table and mechanism, run by the same
 * runner): its checkpoint is named `outbox:<name>`, which a replay carries over unchanged instead
 * of rebuilding (checkpoints.ts NOT_REPLAYED_PREFIX).
 */
export class OutboxRelay implements Processor {
  /** Its checkpoint's name: `outbox:` and the relay's name. */
  readonly name: string;
  /** The relay's name in public.outbox_relay_checkpoints, where oeld kept its checkpoint before. */
  private readonly legacyName: string;
  private ensured = false;

  constructor(
    private readonly sql: Sql,
    private readonly publisher: Publisher,
    private readonly topic: string,
    relayName = 'model-versions',
    private readonly batchSize = 500,
    private readonly hooks: RelayHooks = {},
  ) {
    this.name = `${NOT_REPLAYED_PREFIX}${relayName}`;
    this.legacyName = relayName;
  }

  /** The checkpoint row, created where the relay of an older oeld left off (its own table), or at the start. */
  private async checkpoint(q: Queryable): Promise<Checkpoint> {
    if (!this.ensured) {
      const { rows } = await q.query<{ t: string; p: number }>(
        `SELECT transaction_id::text AS t, global_position AS p FROM public.outbox_relay_checkpoints WHERE name = $1`, [this.legacyName]);
      await ensureCheckpoint(q, this.name, rows[0] ? { transactionId: rows[0].t, globalPosition: Number(rows[0].p) } : undefined);
      this.ensured = true;
    }
    return loadCheckpoint(q, this.name);
  }

  /** Sends the next batch; returns how many events went out and whether it reached the head. */
  async step(): Promise<{ applied: number; sent: number; caughtUp: boolean }> {
    const at = await this.checkpoint(this.sql);
    const batch = await readEventsBatch(this.sql, { after: at, limit: this.batchSize, types: PUBLISHED_TYPES });
    if (batch.next.transactionId === at.transactionId && batch.next.globalPosition === at.globalPosition) return { applied: 0, sent: 0, caughtUp: true };
    if (batch.events.length) await this.publisher.send(this.topic, batch.events.map(toOutboundMessage));
    await this.hooks.afterSend?.(batch.events);
    try {
      await storeCheckpoint(this.sql, this.name, at, batch.next);
    } catch (err) {
      if (err instanceof CheckpointConflictError) throw new Error(`outbox relay ${this.name}: checkpoint moved under us; is a second relay running?`);
      throw err;
    }
    return { applied: batch.events.length, sent: batch.events.length, caughtUp: batch.caughtUp };
  }

  /** Events of the published types not yet relayed. */
  async backlog(): Promise<number> {
    const at = await this.checkpoint(this.sql);
    return countEventsAfter(this.sql, at, PUBLISHED_TYPES);
  }
}
