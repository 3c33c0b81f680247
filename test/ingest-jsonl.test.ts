import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { uuidFromKey } from '../src/events/ids.ts';
import { countDeadLetters, deadLetterPayload } from '../src/ingest/dead-letters.ts';
import { decodeInteraction, lineEventId, type DecodeLimits } from '../src/ingest/decode-interaction.ts';

/** A line of a file as the file importer decodes it. */
const decodeInteractionLine = (bytes: Buffer, origin: { file: string; line: number }, limits: DecodeLimits) =>
  decodeInteraction(bytes, { kind: 'file', file: basename(origin.file), line: origin.line }, limits, 'line');
import { DEAD_LETTER_SOURCE, importJsonl, readLines, type ImportProgress } from '../src/ingest/import-jsonl.ts';
import { EventStore } from '../src/store/event-store.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';

const MAX = 8192;
const LIMITS = { maxBytes: MAX, maxDepth: 64 };
const NASTY = `'); DROP TABLE events; -- \\ " $1 %s \`x\` ; /* */ E'\\x00'`;
const dir = mkdtempSync(join(tmpdir(), 'oeld-ingest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const turnLine = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  interactionId: `game-${i}`, modelVersion: 'v0', taskId: 'frozenlake',
  turns: [{ prompt: `board ${i}`, response: 'I move [right]', action: 'right' }], outcome: { success: true, reward: 1 }, ...extra,
});
const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const EXPLICIT_ID = uuidFromKey('ingest-test:explicit');

/** The test file: each entry is one line's bytes; `good` lines must become events, `bad` ones dead letters. */
function fixture(): { lines: { bytes: Buffer; good?: true; bad?: RegExp; eol?: string }[] } {
  const nasty = {
    interactionId: NASTY, modelVersion: 'v1:a.b-c_d', taskId: NASTY,
    source: { kind: 'file', file: NASTY, line: 7 },
    turns: [{ prompt: NASTY, response: NASTY, action: NASTY }], outcome: { feedback: NASTY },
  };
  const chat = {
    id: EXPLICIT_ID.toUpperCase(), schemaVersion: 1, interactionId: 'chat-1', modelVersion: 'v0', taskId: 'chat',
    messages: [{ role: 'user', content: NASTY, name: NASTY }, { role: 'assistant', content: 'ok' }],
  };
  return {
    lines: [
      /* 1 */ { bytes: json(turnLine(1)), good: true, eol: '\r\n' },
      /* 2 */ { bytes: json(nasty), good: true, eol: '\r\n' },
      /* 3 */ { bytes: Buffer.from('{"interactionId": "x",'), bad: /invalid JSON: .+/ },
      /* 4 */ { bytes: Buffer.from('') },
      /* 5 */ { bytes: json(turnLine(5, { taskId: 42 })), bad: /data\.taskId: .*\(got 42\)/ },
      /* 6 */ { bytes: json(turnLine(6, { modelVersion: undefined })), bad: /data\.modelVersion: / },
      /* 7 */ { bytes: json(turnLine(7, { turns: [{ prompt: 'x'.repeat(70_000), response: 'r' }] })), bad: new RegExp(`70\\d{3} bytes, over the limit of ${MAX} bytes`) },
      /* 8 */ { bytes: Buffer.concat([Buffer.from('{"interactionId": "bad-'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('", "taskId": "t"}')]), bad: /^invalid UTF-8$/ },
      /* 9 */ { bytes: json(turnLine(9, { turns: [{ prompt: 'p', response: 'a\u0000b' }] })), bad: /data\.turns\[0\]\.response: contains U\+0000/ },
      /* 10 */ { bytes: Buffer.from(JSON.stringify(turnLine(10, { taskId: 'PLACEHOLDER' })).replace('PLACEHOLDER', 'x\\ud800')), bad: /data\.taskId: contains a lone UTF-16 surrogate/ },
      /* 11 */ { bytes: json({ ...turnLine(11), schemaVersion: 3 }), bad: /schemaVersion: unknown schema version for InteractionRecorded; known: 1, 2 \(got 3\)/ },
      /* 12 */ { bytes: json(chat), good: true },
      /* 13 */ { bytes: Buffer.from('[1, 2]'), bad: /must be a JSON object \(got \[1,2\]\)/ },
      /* 14 */ { bytes: Buffer.from('{"interactionId": "raw\u0000nul"}'), bad: /invalid JSON: .*control character/i },
      /* 15 */ { bytes: json({ ...turnLine(15), id: 42 }), bad: /id: must be a UUID, or a string that names the interaction \(got 42\)/ },
      /* 16 */ { bytes: json({ ...chat, taskId: 'other' }), bad: new RegExp(`id ${EXPLICIT_ID} is already stored: same id, different data`) },
      /* 17 */ { bytes: json(turnLine(1)) }, // byte-identical to line 1: a duplicate, not a new event
      /* 18 */ { bytes: Buffer.from('   \t') },
      /* 19 */ { bytes: json({ ...turnLine(19), schemaVersion: '1' }), bad: /schemaVersion: must be an integer/ },
      /* 20 */ { bytes: Buffer.from('\u0000{}'), bad: /^invalid JSON: / }, // V8 quotes the NUL in its message: the reason must still be storable
      /* 21 */ { bytes: json(chat) }, // line 12 again, explicit id and all: a duplicate, though its source (the line number) differs
      /* 22 */ { bytes: json(turnLine(22)), good: true, eol: '' }, // no trailing newline
    ],
  };
}

function writeFixture(name: string): { path: string; lines: ReturnType<typeof fixture>['lines'] } {
  const { lines } = fixture();
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat(lines.flatMap((l) => [l.bytes, Buffer.from(l.eol ?? '\n')])));
  return { path, lines };
}

describe('decoding a line of a file', () => {
  const origin = { file: '/data/in/x.jsonl', line: 3 };
  it('derives a stable id from the bytes and a file source from the origin', () => {
    const bytes = json(turnLine(1));
    const r = decodeInteractionLine(bytes, origin, LIMITS);
    assert.ok(r.ok);
    assert.equal(r.event.id, lineEventId(bytes));
    assert.equal(r.event.type, 'InteractionRecorded');
    assert.equal(r.event.schemaVersion, 2);
    assert.deepEqual(r.event.data.source, { kind: 'file', file: 'x.jsonl', line: 3 });
    const again = decodeInteractionLine(Buffer.from(bytes), { ...origin, line: 9 }, LIMITS);
    assert.ok(again.ok && again.event.id === r.event.id);
  });
  it('keeps an explicit id (lower-cased); an input\'s own source is only its claim, kept apart', () => {
    const claim = { kind: 'simulator', episodeSeed: 7 };
    const r = decodeInteractionLine(json({ ...turnLine(2), id: EXPLICIT_ID.toUpperCase(), source: claim }), origin, LIMITS);
    assert.ok(r.ok);
    assert.equal(r.event.id, EXPLICIT_ID);
    assert.deepEqual(r.event.data.source, { kind: 'file', file: 'x.jsonl', line: 3 });
    assert.deepEqual(r.event.data.claimedSource, claim);
    assert.ok(!('id' in r.event.data));
  });
  it('gives a reason naming the cause', () => {
    const reason = (b: Buffer, max = MAX): string => { const r = decodeInteractionLine(b, origin, { ...LIMITS, maxBytes: max }); assert.ok(!r.ok); return r.reason; };
    assert.equal(reason(json(turnLine(1)), 10), `line is ${json(turnLine(1)).length} bytes, over the limit of 10 bytes (OELD_MAX_EVENT_BYTES)`);
    assert.equal(reason(Buffer.from([0x7b, 0xc0, 0x7d])), 'invalid UTF-8');
    assert.match(reason(Buffer.from('{"a":')), /^invalid JSON: /);
    assert.match(reason(Buffer.from('null')), /must be a JSON object \(got null\)/);
    assert.match(reason(json(turnLine(1, { turns: [] }))), /^data\.turns: /);
    assert.match(reason(json(turnLine(1, { messages: [{ role: 'user', content: 'hi' }] }))), /exactly one of turns/);
    assert.match(reason(json(turnLine(1, { outcome: { reward: 'high' } }))), /data\.outcome\.reward: .*\(got "high"\)/);
    assert.match(reason(json({ ...turnLine(1), schemaVersion: 7 })), /unknown schema version .*\(got 7\)/);
    assert.equal(reason(Buffer.from(`{"a":${'['.repeat(65)}${']'.repeat(65)}}`)), 'line nests arrays and objects more than 64 levels deep (OELD_MAX_JSON_DEPTH)');
  });
});

describe('readLines and deadLetterPayload', () => {
  it('splits on \\n across chunk boundaries, drops \\r, caps kept bytes', async () => {
    const path = join(dir, 'split.txt');
    writeFileSync(path, 'ab\r\n\n' + 'x'.repeat(50) + '\nlast');
    const got: { n: number; s: string; size: number; offset: number }[] = [];
    for await (const l of readLines(path, 20, 3)) got.push({ n: l.number, s: l.bytes.toString(), size: l.size, offset: l.offset });
    assert.deepEqual(got, [
      { n: 1, s: 'ab', size: 2, offset: 0 }, { n: 2, s: '', size: 0, offset: 4 },
      { n: 3, s: 'x'.repeat(20), size: 50, offset: 5 }, { n: 4, s: 'last', size: 4, offset: 56 },
    ]);
  });
  it('keeps valid text cut at a character boundary, null for invalid UTF-8 or NUL', () => {
    assert.equal(deadLetterPayload(Buffer.from('é'.repeat(40_000)))!.length, 32_768);
    assert.equal(deadLetterPayload(Buffer.from([0x61, 0xff])), null);
    assert.equal(deadLetterPayload(Buffer.from('a\u0000b')), null);
    assert.equal(deadLetterPayload(Buffer.from(NASTY)), NASTY);
  });
});

for (const backend of BACKENDS) {
  describe(`JSONL import on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    before(async () => { db = await backend.open(); store = new EventStore(db.sql); });
    after(async () => { await db.drop(); });

    it('appends exactly the good lines, dead-letters each bad one with its reason, and re-imports as a no-op', async () => {
      const { path, lines } = writeFixture(`mixed-${backend.name}.jsonl`);
      const progress: ImportProgress[] = [];
      const report = await importJsonl(store, path, { maxEventBytes: MAX, batchSize: 3, onProgress: (p) => progress.push(p) });

      const good = lines.map((l, i) => ({ ...l, n: i + 1 })).filter((l) => l.good);
      const bad = lines.map((l, i) => ({ ...l, n: i + 1 })).filter((l) => l.bad);
      assert.equal(report.lines, lines.length);
      assert.equal(report.appended, good.length);
      assert.equal(report.duplicates, 2, 'line 17 repeats line 1 byte for byte, line 21 repeats line 12');
      assert.deepEqual(report.rejected.map((r) => r.line), bad.map((l) => l.n));
      for (const l of bad) assert.match(report.rejected.find((r) => r.line === l.n)!.reason, l.bad!, `line ${l.n}`);
      assert.equal(report.rejectedCount, bad.length);
      assert.equal(report.deadLettered, bad.length);
      assert.ok(progress.length > 1);
      assert.deepEqual(progress.at(-1), { lines: lines.length, appended: good.length, duplicates: 2, rejected: bad.length });

      // The events table holds the good lines verbatim, nothing else.
      const { rows } = await db.sql.query<{ id: string; stream_id: string; data: Record<string, unknown> }>(
        "SELECT event_id AS id, stream_id, data FROM events WHERE type = 'InteractionRecorded' ORDER BY global_position");
      assert.equal(rows.length, good.length);
      const expected = good.map((l) => {
        const { id, schemaVersion, source: claimed, ...data } = JSON.parse(l.bytes.toString()) as Record<string, unknown>;
        void schemaVersion;
        return {
          id: typeof id === 'string' ? id.toLowerCase() : lineEventId(l.bytes),
          data: { ...data, source: { kind: 'file', file: basename(path), line: l.n }, ...(claimed === undefined ? {} : { claimedSource: claimed }) },
        };
      });
      assert.deepEqual(rows.map((r) => ({ id: r.id, data: r.data })), expected);
      const nasty = rows.find((r) => r.data.taskId === NASTY)!;
      assert.equal(nasty.stream_id, `interaction-${NASTY}`);
      const { source: claimed, ...nastyLine } = JSON.parse(lines[1]!.bytes.toString()) as Record<string, unknown>;
      assert.deepEqual(nasty.data, { ...nastyLine, source: { kind: 'file', file: basename(path), line: 2 }, claimedSource: claimed }, 'the line\'s own source is its claim, kept apart');

      // Every bad line is a dead letter with its origin, reason and (storable) raw text.
      const letters = await db.sql.query<{ origin: string; reason: string; payload: string | null }>(
        'SELECT origin, reason, payload FROM dead_letters WHERE source = $1 ORDER BY id', [DEAD_LETTER_SOURCE]);
      assert.equal(await countDeadLetters(db.sql, DEAD_LETTER_SOURCE), bad.length);
      assert.deepEqual(letters.rows.map((r) => r.origin).sort(), bad.map((l) => `${path}:${l.n}`).sort());
      for (const l of bad) {
        const row = letters.rows.find((r) => r.origin === `${path}:${l.n}`)!;
        assert.match(row.reason, l.bad!);
        assert.equal(row.payload, deadLetterPayload(l.bytes), `payload of line ${l.n}`);
      }
      assert.equal(letters.rows.find((r) => r.origin === `${path}:8`)!.payload, null, 'invalid UTF-8 is not kept as text');
      assert.equal(letters.rows.find((r) => r.origin === `${path}:14`)!.payload, null, 'a raw NUL is not kept as text');
      assert.equal(letters.rows.find((r) => r.origin === `${path}:7`)!.payload!.length, 65_536, 'an oversize line is kept cut to 64 KiB');
      assert.equal(letters.rows.find((r) => r.origin === `${path}:16`)!.payload, lines[15]!.bytes.toString());

      const again = await importJsonl(store, path, { maxEventBytes: MAX });
      assert.equal(again.appended, 0);
      assert.equal(again.duplicates, good.length + 2);
      assert.deepEqual(again.rejected.map((r) => r.line), bad.map((l) => l.n));
      assert.equal(again.deadLettered, 0, 'a re-import records no dead letter twice');
      assert.equal(await countDeadLetters(db.sql, DEAD_LETTER_SOURCE), bad.length);
      const count = await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE type = 'InteractionRecorded'");
      assert.equal(count.rows[0]!.n, good.length);
    });

    it('caps the rejected list at 1000 but counts every line, and commits good lines between bad ones', async () => {
      const path = join(dir, `many-${backend.name}.jsonl`);
      const body = Array.from({ length: 1205 }, (_, i) => (i % 100 === 0 ? JSON.stringify(turnLine(10_000 + i)) : `{bad ${i}`));
      writeFileSync(path, body.join('\n') + '\n');
      const before = await countDeadLetters(db.sql);
      const report = await importJsonl(store, path, { maxEventBytes: MAX, batchSize: 50 });
      assert.equal(report.appended, 13);
      assert.equal(report.rejected.length, 1000);
      assert.equal(report.rejectedCount, 1205 - 13);
      assert.equal(await countDeadLetters(db.sql) - before, 1205 - 13);
      assert.equal(report.rejected[0]!.line, 2);
    });
  });
}

// Keeps the fixture file's raw bytes honest: what was written is what the importer read.
it('writes the fixture as intended (CRLF first lines, no final newline)', () => {
  const { path } = writeFixture('check.jsonl');
  const raw = readFileSync(path);
  assert.equal(raw.subarray(0, raw.indexOf(0x0a) + 1).at(-2), 0x0d);
  assert.notEqual(raw.at(-1), 0x0a);
});
