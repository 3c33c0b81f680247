import { createHash, randomUUID } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const newEventId = (): string => randomUUID();
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);

/**
 * A UUID derived from a key (name-based, SHA-256, RFC 9562 version 8 layout). The same input
 * line, Kafka message or extraction always gets the same event id, which makes re-delivery a no-op.
 */
export function uuidFromKey(key: string): string {
  const h = createHash('sha256').update(key).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
