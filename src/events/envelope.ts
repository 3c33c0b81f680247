import type { EventDataMap, EventType } from './schemas.ts';

/** An event about to be appended: what the caller decides. */
export interface NewEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  schemaVersion?: number;
  data: EventDataMap[T];
  occurredAt?: Date;
  causationId?: string | null;
  correlationId?: string | null;
}

/** An event as stored: what the store decides (positions, transaction, recorded time). */
export interface RecordedEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  schemaVersion: number;
  streamId: string;
  streamPosition: number;
  globalPosition: number;
  transactionId: string;
  data: EventDataMap[T];
  occurredAt: Date;
  recordedAt: Date;
  causationId: string | null;
  correlationId: string | null;
}

export function isType<T extends EventType>(e: RecordedEvent, type: T): e is RecordedEvent<T> {
  return e.type === type;
}
