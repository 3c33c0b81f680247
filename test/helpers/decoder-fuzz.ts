/**
 * Inputs for fuzzing the interaction decoder, from a seed: structural ones (depth, width, sizes,
 * number edge cases, string escapes, encodings) and mutations of valid records; and the check of
 * the decoder's contract on one input. Used by test/decoder-fuzz.test.ts (a fixed seed in
 * `npm test`) and scripts/fuzz-decoder.ts (long runs; saves what it finds as fixtures).
 */
import { canonicalJson } from '../../src/events/canonical-json.ts';
import { isUuid } from '../../src/events/ids.ts';
import { validateEventData } from '../../src/events/validate.ts';
import { decodeInteraction, type DecodeLimits, type InteractionSource } from '../../src/ingest/decode-interaction.ts';
import { seededRandom } from '../../src/model/network/rng.ts';

export const FUZZ_LIMITS: DecodeLimits = { maxBytes: 64 * 1024, maxDepth: 64 };
const SOURCE: InteractionSource = { kind: 'kafka', topic: 'fuzz', partition: 0, offset: '7' };
const KINDS = new Set(['oversize', 'too_deep', 'invalid_utf8', 'invalid_json', 'not_an_object', 'unknown_schema', 'invalid_field', 'conflict', 'decoder_error']);

/** The inputs' random source, from a seed (mulberry32, as the model's sampling uses). */
export const rng = seededRandom;

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const NUMBERS = ['0', '-0', '1', '-1', '0.5', '1e308', '-1e308', '1e309', '-1e400', '5e-324', '1e-400', '9007199254740993', '18446744073709551616',
  '123456789012345678901234567890', '1.0e+2', '1E2', '0.0000001', '2.2250738585072014e-308', '01', '-', '1.', '.5', '1e', '+1', 'NaN', 'Infinity', '0x10'];
const STRINGS = ['""', '"x"', '"\\u0000"', '"a\\u0000b"', '"\\ud800"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"', '"é"', '"\u{1F600}"', '"\\"\\\\\\/\\b\\f\\n\\r\\t"',
  '"\\x41"', '"\\u12"', '"\t"', '"__proto__"', '"constructor"', '"\u2028\u2029"', '"\uFEFF"', `"${'y'.repeat(300)}"`, '"user"', '"assistant"', '"system"', '"tool"'];
const KEYS = ['interactionId', 'modelVersion', 'taskId', 'turns', 'messages', 'outcome', 'source', 'claimedSource', 'id', 'schemaVersion', 'prompt',
  'response', 'action', 'role', 'content', 'name', 'success', 'reward', 'feedback', '__proto__', 'constructor', 'toString', '', 'kind', 'x'];

/** A random JSON-ish text (sometimes invalid on purpose), nesting at most `depth`, of about `budget` values at most. */
function randomText(r: Rand, depth: number, budget = { left: 150 }): string {
  const roll = r();
  budget.left--;
  if (depth <= 0 || budget.left <= 0 || roll < 0.35) {
    const leaf = r();
    if (leaf < 0.35) return pick(r, NUMBERS);
    if (leaf < 0.75) return pick(r, STRINGS);
    return pick(r, ['null', 'true', 'false', 'nul', 'True', '"unterminated', '']);
  }
  const n = r() < 0.1 ? int(r, 200) : int(r, 5);
  if (roll < 0.65) return `[${Array.from({ length: n }, () => randomText(r, depth - 1, budget)).join(',')}]`;
  return `{${Array.from({ length: n }, () => `${JSON.stringify(pick(r, KEYS))}:${randomText(r, depth - 1, budget)}`).join(',')}}`;
}

/** A valid interaction record, as a producer would send it. */
export function validRecord(r: Rand, i: number): Record<string, unknown> {
  const chat = r() < 0.5;
  const record: Record<string, unknown> = {
    interactionId: `fuzz-${i}`, modelVersion: pick(r, ['v0', 'base', 'base-r1-0a1b2c3d', 'Qwen3:8b']), taskId: pick(r, ['frozenlake', 'support', 'chat']),
    ...(chat
      ? { messages: Array.from({ length: 1 + int(r, 4) }, (_, k) => ({ role: pick(r, ['system', 'user', 'assistant', 'tool']), content: `message ${k} é \u{1F600}` })) }
      : { turns: Array.from({ length: 1 + int(r, 3) }, (_, k) => ({ prompt: `board ${k}`, response: 'go [down]', action: r() < 0.5 ? 'down' : null })) }),
  };
  if (r() < 0.5) record.outcome = { success: r() < 0.5, reward: int(r, 3) - 1, ...(r() < 0.3 ? { feedback: 'No, it is 30 days.' } : {}) };
  if (r() < 0.3) record.id = '0b9f3c52-6a1e-4c2b-9d3f-8e7a6b5c4d3e';
  if (r() < 0.1) record.schemaVersion = 1;
  if (r() < 0.1) record.source = { kind: 'simulator', episodeSeed: int(r, 1000) };
  return record;
}

/** Sets a random place of a parsed record to `value` (walking down at most a few levels). */
function replaceSomewhere(r: Rand, root: Record<string, unknown>, value: unknown): void {
  let node: unknown = root;
  for (let d = 0; d < 4; d++) {
    const keys = node !== null && typeof node === 'object' ? Object.keys(node) : [];
    if (keys.length === 0) break;
    const k = pick(r, keys);
    const child = (node as Record<string, unknown>)[k];
    if (d === 3 || child === null || typeof child !== 'object' || r() < 0.4) { (node as Record<string, unknown>)[k] = value; return; }
    node = child;
  }
  root[pick(r, KEYS)] = value;
}

function deep(r: Rand): string {
  const n = 1 + int(r, 20_000);
  return pick(r, [() => `${'['.repeat(n)}${']'.repeat(n)}`, () => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`, () => '['.repeat(n), () => `${'[{"content":'.repeat(n)}"x"${'}]'.repeat(n)}`])();
}

function mutateBytes(r: Rand, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const at = int(r, Math.max(1, out.length));
  switch (int(r, 7)) {
    case 0: out[at] = int(r, 256); return out;
    case 1: return Buffer.concat([out.subarray(0, at), Buffer.from([int(r, 256)]), out.subarray(at)]);
    case 2: return Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(r, 20))]);
    case 3: return out.subarray(0, at);
    case 4: return Buffer.concat([out.subarray(0, at), Buffer.from(pick(r, ['[', '{', '"', '\\', ']', '}', ',', ':', '\u0000', '\\u0000', '\\ud800'])), out.subarray(at)]);
    case 5: return Buffer.concat([out.subarray(0, at), out.subarray(at, at + 50), out.subarray(at)]);
    default: return Buffer.concat([out, out]);
  }
}

const ENCODINGS: ((s: string) => Buffer)[] = [
  (s) => Buffer.from(s, 'utf16le'),
  (s) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(s)]), // a byte-order mark
  (s) => Buffer.from(s, 'latin1'),
  (s) => Buffer.from(s.replace('"', '"\u00e9'), 'latin1'), // a lone Latin-1 byte: invalid UTF-8
  (s) => Buffer.concat([Buffer.from(s.slice(0, 5)), Buffer.from([0xc0, 0xaf]), Buffer.from(s.slice(5))]), // overlong encoding
  (s) => Buffer.concat([Buffer.from(s.slice(0, 5)), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(s.slice(5))]), // a UTF-8-encoded surrogate
];

/** `count` inputs from `seed`: each a name (its family) and the bytes. */
export function* fuzzInputs(seed: number, count: number): Generator<{ family: string; bytes: Buffer }> {
  const r = rng(seed);
  for (let i = 0; i < count; i++) {
    const roll = r();
    const record = validRecord(r, i);
    if (roll < 0.2) yield { family: 'structure', bytes: Buffer.from(randomText(r, int(r, 80))) };
    else if (roll < 0.3) yield { family: 'valid', bytes: Buffer.from(JSON.stringify(record)) };
    else if (roll < 0.5) {
      replaceSomewhere(r, record, JSON.parse('0')); // replaced below by text, to keep number and escape forms JSON.stringify would normalise
      const text = JSON.stringify(record).replace(/:0(?=[,}\]])/, `:${r() < 0.05 ? deep(r) : randomText(r, int(r, 70))}`);
      yield { family: 'replace', bytes: Buffer.from(text) };
    } else if (roll < 0.75) {
      let b: Buffer = Buffer.from(JSON.stringify(record));
      for (let k = 1 + int(r, 3); k > 0; k--) b = mutateBytes(r, b);
      yield { family: 'mutate', bytes: b };
    } else if (roll < 0.85) yield { family: 'encoding', bytes: pick(r, ENCODINGS)(JSON.stringify(record)) };
    else if (roll < 0.9) yield { family: 'deep', bytes: Buffer.from(deep(r)) };
    else if (roll < 0.95) {
      const width = int(r, 2000);
      const field = pick(r, ['messages', 'turns', 'extra']);
      yield { family: 'wide', bytes: Buffer.from(JSON.stringify({ ...record, [field]: Array.from({ length: width }, () => (r() < 0.5 ? {} : [])) })) };
    } else {
      const size = FUZZ_LIMITS.maxBytes - 64 + int(r, 128); // around the size limit
      const text = JSON.stringify({ ...record, turns: undefined, messages: [{ role: 'user', content: '' }] });
      yield { family: 'size', bytes: Buffer.from(text.replace('"content":""', `"content":"${'z'.repeat(Math.max(0, size - text.length))}"`)) };
    }
  }
}

/**
 * The decoder's contract on one input: it returns (never throws) either an event that validates
 * again, serialises, and carries the intake's source, or a rejection of a known kind with a short
 * reason. `violation` says what was broken; `accepted` whether it became an event.
 */
export function checkDecoder(bytes: Buffer, limits: DecodeLimits = FUZZ_LIMITS): { violation?: string; accepted: boolean } {
  let result;
  try {
    result = decodeInteraction(bytes, SOURCE, limits);
  } catch (err) {
    return { violation: `threw ${(err as Error)?.name}: ${(err as Error)?.message}`, accepted: false };
  }
  try {
    if (result.ok) {
      const { event } = result;
      if (!isUuid(event.id)) return { violation: `event id ${event.id} is not a UUID`, accepted: true };
      validateEventData('InteractionRecorded', event.schemaVersion ?? 1, event.data);
      JSON.stringify(event.data);
      if (canonicalJson(event.data.source) !== canonicalJson(SOURCE)) return { violation: `source is ${JSON.stringify(event.data.source)}, not the intake's`, accepted: true };
      canonicalJson(event.data);
      return { accepted: true };
    }
    if (!KINDS.has(result.kind)) return { violation: `unknown rejection kind ${result.kind}`, accepted: false };
    if (typeof result.reason !== 'string' || result.reason.length === 0 || result.reason.length > 2000) return { violation: `reason of ${String(result.reason).length} characters`, accepted: false };
    if (result.kind === 'decoder_error') return { violation: `decoder_error: ${result.reason}`, accepted: false };
    return { accepted: false };
  } catch (err) {
    return { violation: `the decoded event broke a reader: ${(err as Error)?.name}: ${(err as Error)?.message}`, accepted: result.ok };
  }
}
