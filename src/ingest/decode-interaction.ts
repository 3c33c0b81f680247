import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { NewEvent } from '../events/envelope.ts';
import { isUuid, uuidFromKey } from '../events/ids.ts';
import { CURRENT_SCHEMA_VERSION, type EventDataMap } from '../events/schemas.ts';

export type InteractionSource = EventDataMap['InteractionRecorded']['source'];
import { preview, validateEventData, ValidationError } from '../events/validate.ts';

export type DecodeResult =
  | { ok: true; event: NewEvent<'InteractionRecorded'>; /** id came from the line's bytes, not the line */ idDerived: boolean }
  | { ok: false; kind: RejectKind; reason: string };

/** Why input was rejected, as a small closed set (a metric label). */
export type RejectKind = 'oversize' | 'invalid_utf8' | 'invalid_json' | 'not_an_object' | 'unknown_schema' | 'invalid_field' | 'conflict';

// fatal: a malformed byte sequence throws instead of silently becoming U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export const oversizeReason = (size: number, maxBytes: number, what = 'line'): string =>
  `${what} is ${size} bytes, over the limit of ${maxBytes} bytes (OELD_MAX_EVENT_BYTES)`;

/** The event id of a line without an `id`: a hash of its bytes, so re-importing a file is a no-op. */
export const lineEventId = (bytes: Buffer): string =>
  uuidFromKey(`file-line:${createHash('sha256').update(bytes).digest('hex')}`);

/**
 * One JSONL line (without its line terminator) to an InteractionRecorded event, or the reason it
 * cannot be one. The line is the event's data, plus optional `id` and `schemaVersion`.
 */
export function decodeInteractionLine(bytes: Buffer, origin: { file: string; line: number }, maxBytes: number): DecodeResult {
  return decodeInteraction(bytes, { kind: 'file', file: basename(origin.file), line: origin.line }, maxBytes, 'line');
}

/**
 * Raw bytes (a file line, a Kafka message value) to an InteractionRecorded event. `source` is
 * recorded unless the input names its own; without an `id` the event id is a hash of the bytes,
 * so the same input delivered twice is one event.
 */
export function decodeInteraction(bytes: Buffer, source: InteractionSource, maxBytes: number, what = 'input'): DecodeResult {
  if (bytes.length > maxBytes) return { ok: false, kind: 'oversize', reason: oversizeReason(bytes.length, maxBytes, what) };
  let text: string;
  try { text = utf8.decode(bytes); } catch { return { ok: false, kind: 'invalid_utf8', reason: 'invalid UTF-8' }; }
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (err) { return { ok: false, kind: 'invalid_json', reason: `invalid JSON: ${(err as Error).message}` }; }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, kind: 'not_an_object', reason: `a ${what} must be a JSON object (got ${preview(parsed)})` };
  }
  const { id, schemaVersion, ...data } = parsed as Record<string, unknown>;
  try {
    if (id !== undefined && !isUuid(id)) throw new ValidationError('id', 'must be a UUID', id);
    if (schemaVersion !== undefined && !Number.isInteger(schemaVersion)) throw new ValidationError('schemaVersion', 'must be an integer', schemaVersion);
    const version = (schemaVersion as number | undefined) ?? CURRENT_SCHEMA_VERSION.InteractionRecorded;
    if (data.source === undefined) data.source = source;
    const valid = validateEventData('InteractionRecorded', version, data);
    const eventId = id === undefined ? lineEventId(bytes) : (id as string).toLowerCase();
    return { ok: true, idDerived: id === undefined, event: { id: eventId, type: 'InteractionRecorded', schemaVersion: version, data: valid } };
  } catch (err) {
    if (err instanceof ValidationError) return { ok: false, kind: err.field === 'schemaVersion' ? 'unknown_schema' : 'invalid_field', reason: err.message };
    throw err;
  }
}
