import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeInteraction } from '../src/ingest/decode-interaction.ts';
import { countDeadLetters } from '../src/ingest/dead-letters.ts';
import { DEAD_LETTER_SOURCE, importJsonl } from '../src/ingest/import-jsonl.ts';
import { EventStore } from '../src/store/event-store.ts';
import { BACKENDS } from './helpers/databases.ts';
import { checkDecoder, fuzzInputs, validRecord, rng } from './helpers/decoder-fuzz.ts';

const FIXTURES = new URL('./fixtures/decoder/', import.meta.url).pathname;
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort().map((f) => ({ name: f, bytes: readFileSync(join(FIXTURES, f)) }));
const DEFAULT_LIMITS = { maxBytes: 1 << 20, maxDepth: 64 };

describe('the interaction decoder is total', () => {
  it('returns an event or a rejection, never a throw, for 100,000 fuzzed inputs (seed 20)', () => {
    const families = new Map<string, { n: number; accepted: number }>();
    const violations: string[] = [];
    for (const { family, bytes } of fuzzInputs(20, 100_000)) {
      const f = families.get(family) ?? { n: 0, accepted: 0 };
      f.n++;
      const { violation, accepted } = checkDecoder(bytes);
      if (violation) violations.push(`${family} (${bytes.length} bytes, ${JSON.stringify(bytes.subarray(0, 60).toString('latin1'))}): ${violation}`);
      if (accepted) f.accepted++;
      families.set(family, f);
    }
    assert.deepEqual(violations.slice(0, 5), [], `${violations.length} inputs broke the contract`);
    // The generators reach both sides of the decoder: valid records pass, and every family runs.
    assert.equal([...families.values()].reduce((n, f) => n + f.n, 0), 100_000);
    for (const name of ['structure', 'valid', 'replace', 'mutate', 'encoding', 'deep', 'wide', 'size']) assert.ok((families.get(name)?.n ?? 0) > 1000, `family ${name} ran`);
    assert.equal(families.get('valid')!.accepted, families.get('valid')!.n, 'every unmutated valid record is accepted');
    assert.ok(families.get('mutate')!.accepted > 0 && families.get('mutate')!.accepted < families.get('mutate')!.n, 'mutations give both outcomes');
  });

  it('rejects every saved crash input with a reason instead of throwing', () => {
    assert.ok(fixtures.length >= 2);
    for (const f of fixtures) {
      assert.equal(checkDecoder(f.bytes, DEFAULT_LIMITS).violation, undefined, f.name);
      const r = decodeInteraction(f.bytes, { kind: 'http' }, DEFAULT_LIMITS);
      assert.ok(!r.ok && r.kind === 'too_deep', `${f.name}: ${JSON.stringify(r).slice(0, 200)}`);
    }
  });

  it('a stack overflow anywhere in decoding is a dead letter, not a crash', () => {
    // The safety net under the depth limit: with the limit raised past what the stack holds, the
    // schema's recursive check of a claimed source overflows, and decoding still returns.
    const depth = 200_000;
    const bytes = Buffer.from(`{"interactionId":"i","modelVersion":"v0","taskId":"t","messages":[{"role":"user","content":"x"}],"source":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    const r = decodeInteraction(bytes, { kind: 'http' }, { maxBytes: 1 << 20, maxDepth: 1_000_000 });
    assert.ok(!r.ok);
    assert.equal(r.kind, 'decoder_error');
    assert.match(r.reason, /RangeError: Maximum call stack size exceeded/);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'oeld-poison-'));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const backend of BACKENDS) {
  describe(`a poison line in a file on ${backend.name}`, () => {
    it('stores every valid line around it and dead-letters each poison line with its number', async () => {
      const db = await backend.open();
      try {
        const r = rng(7);
        const valid = Array.from({ length: 40 }, (_, i) => Buffer.from(JSON.stringify({ ...validRecord(r, i), id: undefined, source: undefined })));
        const lines = [...valid];
        fixtures.forEach((f, k) => lines.splice(5 + k * 10, 0, f.bytes));
        const path = join(dir, `poison-${backend.name}.jsonl`);
        writeFileSync(path, Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
        const store = new EventStore(db.sql);
        const report = await importJsonl(store, path, { maxEventBytes: 1 << 20, batchSize: 8 });
        assert.equal(report.appended, valid.length);
        assert.deepEqual(report.rejected.map((x) => x.line), fixtures.map((_, k) => 6 + k * 10));
        for (const x of report.rejected) assert.match(x.reason, /more than 64 levels deep/);
        assert.equal(await countDeadLetters(db.sql, DEAD_LETTER_SOURCE), fixtures.length);
        const { rows } = await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE type = 'InteractionRecorded'");
        assert.equal(rows[0]!.n, valid.length);
      } finally {
        await db.drop();
      }
    });
  });
}
