import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SERVER_URL, serverDatabase } from './helpers/databases.ts';
import { goodMessage } from './helpers/interaction-messages.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';

const OELD = new URL('../bin/oeld', import.meta.url).pathname;
const LINES = 20_000;

/** `oeld ingest`, calling onProgress with the lines read so far as its progress line says. */
async function ingest(file: string, databaseUrl: string, onProgress: (lines: number) => void = () => {}) {
  const child = spawn(OELD, ['ingest', file], { env: { ...process.env, DATABASE_URL: databaseUrl, OELD_LOG_LEVEL: 'warn', OELD_DB_CONNECT_TIMEOUT_MS: '1000' } });
  let stderr = '', stdout = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => {
    stderr += d;
    const last = [...stderr.matchAll(/(\d+) lines: /g)].at(-1);
    if (last) onProgress(Number(last[1]));
  });
  const [code] = await once(child, 'exit') as [number];
  return { code, stdout, stderr };
}

describe('oeld ingest when the database goes away', () => {
  it('says so in one line, exits 4, and a rerun completes the import exactly', async () => {
    const db = await serverDatabase();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(SERVER_URL).port || 5432));
    const dir = mkdtempSync(join(tmpdir(), 'oeld-cli-lost-'));
    try {
      const file = join(dir, 'big.jsonl');
      writeFileSync(file, `${Array.from({ length: LINES }, (_, i) => goodMessage(i)).join('\n')}\n`);
      let cut = false;
      const first = await ingest(file, proxy.url(db.url!), (lines) => { if (!cut && lines >= 4000) { cut = true; proxy.restart(); } });
      assert.ok(cut, 'the import was still running when the database went away');
      assert.equal(first.code, 4, first.stderr);
      const lines = first.stderr.split(/[\r\n]/).filter((l) => l.startsWith('oeld '));
      assert.equal(lines.length, 1, first.stderr);
      assert.match(lines[0]!, /^oeld ingest: the database went away \(.+\); what was committed stays: run the same command again to finish$/);
      assert.doesNotMatch(first.stderr, /\n\s+at /, 'no stack trace');
      const { rows: [partial] } = await db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
      assert.ok(partial!.n >= 500 && partial!.n < LINES, `${partial!.n} events after the first try`);

      proxy.up();
      const second = await ingest(file, proxy.url(db.url!));
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, new RegExp(`${LINES} lines, ${LINES - partial!.n} appended, ${partial!.n} already stored, 0 rejected`));
      const { rows: [all] } = await db.sql.query<{ n: number; d: number }>("SELECT count(*)::int AS n, count(DISTINCT data->>'interactionId')::int AS d FROM events");
      assert.deepEqual(all, { n: LINES, d: LINES });
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await proxy.close();
      await db.drop();
    }
  });
});
