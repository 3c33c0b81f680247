import { createHash } from 'node:crypto';
import type { NewEvent } from '../events/envelope.ts';
import { isUuid, uuidFromKey } from '../events/ids.ts';
import { jsonNestingDepth } from '../events/json-depth.ts';
import { unsupportedContent } from '../events/logged-messages.ts';
import { preview } from '../events/preview.ts';
import { CURRENT_SCHEMA_VERSION, type EventDataMap } from '../events/schemas.ts';
import { DEFAULT_TASK_ID } from '../tasks/task.ts';
import { validateEventData, ValidationError } from '../events/validate.ts';
import { normaliseRecord } from './openai-record.ts';

export type InteractionSource = EventDataMap['InteractionRecorded']['source'];

export type DecodeResult =
  | { ok: true; event: NewEvent<'InteractionRecorded'> }
  | { ok: false; kind: RejectKind; reason: string };

/** Why input was rejected, as a small closed set (a metric label). */
export type RejectKind = 'oversize' | 'too_deep' | 'invalid_utf8' | 'invalid_json' | 'not_an_object' | 'unknown_schema' | 'invalid_field' | 'conflict' | 'decoder_error';

/** What one input may be: its size in bytes and how deeply its JSON nests. */
export interface DecodeLimits { maxBytes: number; maxDepth: number }

/** OELD_MAX_JSON_DEPTH's default: far deeper than any chat log (tool schemas included), far shallower than a stack. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

// fatal: a malformed byte sequence throws instead of silently becoming U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

export const oversizeReason = (size: number, maxBytes: number, what = 'line'): string =>
  `${what} is ${size} bytes, over the limit of ${maxBytes} bytes (OELD_MAX_EVENT_BYTES)`;

/** The event id of an input without an `id`: a hash of its bytes, so re-importing a file is a no-op. */
export const lineEventId = (bytes: Buffer): string =>
  uuidFromKey(`file-line:${createHash('sha256').update(bytes).digest('hex')}`);

/**
 * Raw bytes (a file line, a Kafka message value, an HTTP body, a simulated episode) to an
 * InteractionRecorded event, or the reason it cannot be one. Total: whatever the bytes, it
 * returns and never throws (an unexpected failure is a `decoder_error` rejection), so one input
 * can never stop the intake that reads it.
 *
 * `source` is where the intake got the input and is always what is recorded; an input's own
 * `source` field is only its claim, kept apart as `claimedSource`. Without an `id` the event id
 * is a hash of the bytes, so the same input delivered twice is one event.
 */
export function decodeInteraction(bytes: Buffer, source: InteractionSource, limits: DecodeLimits, what = 'input'): DecodeResult {
  try {
    return decode(bytes, source, limits, what);
  } catch (err) {
    return { ok: false, kind: 'decoder_error', reason: `the decoder failed on this ${what}: ${describeError(err, true)}` };
  }
}

function decode(bytes: Buffer, source: InteractionSource, limits: DecodeLimits, what: string): DecodeResult {
  if (bytes.length > limits.maxBytes) return { ok: false, kind: 'oversize', reason: oversizeReason(bytes.length, limits.maxBytes, what) };
  const depth = jsonNestingDepth(bytes, limits.maxDepth);
  if (depth > limits.maxDepth) {
    return { ok: false, kind: 'too_deep', reason: `${what} nests arrays and objects more than ${limits.maxDepth} levels deep (OELD_MAX_JSON_DEPTH)` };
  }
  let text: string;
  try { text = utf8.decode(bytes); } catch { return { ok: false, kind: 'invalid_utf8', reason: 'invalid UTF-8' }; }
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (err) { return { ok: false, kind: 'invalid_json', reason: `invalid JSON: ${describeError(err)}` }; }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, kind: 'not_an_object', reason: `a ${what} must be a JSON object (got ${preview(parsed)})` };
  }
  const record = parsed as Record<string, unknown>;
  // A record that asks for schema version 1 is read as version 1 always was; any other is mapped
  // from what OpenAI-style logs carry (openai-record.ts).
  const { eventId: id, schemaVersion, claimedSource: claimed, data } = record.schemaVersion === 1
    ? (({ id: eventId, schemaVersion: v, source: s, ...rest }) => ({ eventId, schemaVersion: v, claimedSource: s, data: rest }))(record)
    : normaliseRecord(record, bytes);
  try {
    if (id !== undefined && !isUuid(id)) throw new ValidationError('id', 'must be a UUID, or a string that names the interaction', id);
    if (schemaVersion !== undefined && !Number.isInteger(schemaVersion)) throw new ValidationError('schemaVersion', 'must be an integer', schemaVersion);
    const version = (schemaVersion as number | undefined) ?? CURRENT_SCHEMA_VERSION.InteractionRecorded;
    // An interaction that names no task belongs to the default task (chat logs rarely carry one).
    const task = data.taskId === undefined ? { taskId: DEFAULT_TASK_ID } : {};
    const valid = validateEventData('InteractionRecorded', version, { ...data, ...task, source, ...(claimed === undefined ? {} : { claimedSource: claimed }) });
    const unsupported = valid.messages ? unsupportedContent(valid.messages) : undefined;
    const eventId = id === undefined ? lineEventId(bytes) : (id as string).toLowerCase();
    return { ok: true, event: { id: eventId, type: 'InteractionRecorded', schemaVersion: version, data: unsupported ? { ...valid, unsupportedContent: unsupported } : valid } };
  } catch (err) {
    if (err instanceof ValidationError) return { ok: false, kind: err.field === 'schemaVersion' ? 'unknown_schema' : 'invalid_field', reason: err.message };
    throw err;
  }
}

/** An error's message, cut short; never throws (a thrown value need not be an Error). */
function describeError(err: unknown, withName = false): string {
  try {
    const message = err instanceof Error ? (withName ? `${err.name}: ${err.message}` : err.message) : preview(err);
    return message.length > 300 ? `${message.slice(0, 297)}...` : message;
  } catch {
    return 'an unprintable error';
  }
}
