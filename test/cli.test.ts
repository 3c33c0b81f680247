import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { oeld } from './helpers/oeld-cli.ts';
import { spawnDaemon } from './helpers/daemon-process.ts';

describe('oeld CLI', () => {
  let db: TestDatabase;
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    db = await serverDatabase();
    dir = mkdtempSync(join(tmpdir(), 'oeld-cli-'));
    env = { DATABASE_URL: db.url! };
  });
  after(async () => { await db.drop(); rmSync(dir, { recursive: true, force: true }); });

  it('prints help for every command and fails on unknown ones', async () => {
    for (const c of ['start', 'migrate', 'status', 'ingest', 'replay', 'rollback']) {
      const r = await oeld([c, '--help'], env);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, new RegExp(`^usage: oeld ${c}`), c);
    }
    const bad = await oeld(['frobnicate'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
    const opt = await oeld(['status', '--bogus'], env);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /bogus/);
  });

  it('migrates, ingests a JSONL file with a bad line, reports status, rolls back with clear errors, replays', async () => {
    assert.equal((await oeld(['migrate'], env)).code, 0);
    const file = join(dir, 'export.jsonl');
    const good = (i: number) => JSON.stringify({ interactionId: `c-${i}`, modelVersion: 'v0', taskId: 'chat', messages: [{ role: 'user', content: `hi ${i}` }, { role: 'assistant', content: 'hello' }], outcome: { success: true } });
    writeFileSync(file, [good(1), '{"interactionId": "broken"', good(2), JSON.stringify({ interactionId: 'c-3', modelVersion: 'v0', taskId: 'chat', messages: [{ role: 'robot', content: 'x' }] })].join('\n'));
    const ingest = await oeld(['ingest', file, '--json'], env);
    assert.equal(ingest.code, 3, 'some lines were rejected');
    const report = JSON.parse(ingest.stdout) as { appended: number; rejected: { line: number; reason: string }[] };
    assert.equal(report.appended, 2);
    assert.deepEqual(report.rejected.map((r) => r.line), [2, 4]);
    assert.match(report.rejected[1]!.reason, /data\.messages\[0\]\.role/);
    const again = await oeld(['ingest', file, '--json'], env);
    assert.equal((JSON.parse(again.stdout) as { appended: number; duplicates: number }).appended, 0);

    const status = JSON.parse((await oeld(['status', '--json'], env)).stdout) as { events: number; deadLetters: number };
    assert.equal(status.events, 2);
    assert.ok(status.deadLetters >= 2);

    const rb = await oeld(['rollback', '--knowledge', '5'], env);
    assert.equal(rb.code, 1);
    assert.match(rb.stderr, /--knowledge: version 5 does not exist \(current version is 0\)/);
    const both = await oeld(['rollback', '--knowledge', '1', '--model', 'v1'], env);
    assert.equal(both.code, 2);

    const replay = JSON.parse((await oeld(['replay', '--json'], env)).stdout) as { swapped: boolean; hashes: Record<string, string> };
    assert.equal(replay.swapped, true);
    // The replayed projections count the chats per task, and say why none is usable: v0 is no version of oeld's.
    const perTask = await oeld(['status'], env);
    assert.match(perTask.stdout, /^task +chat \(chat\): 0 usable for the next round; 2 from versions oeld never published \(v0: 2\)$/m);
    assert.match(perTask.stdout, /^task +frozenlake \(game\): 0 usable for the next round$/m);
    const pit = JSON.parse((await oeld(['replay', '--until', '1', '--json'], env)).stdout) as { swapped: boolean; schema: string };
    assert.equal(pit.swapped, false);
    assert.match(pit.schema, /^oeld_replay_\d+$/);
    const badUntil = await oeld(['replay', '--until', 'yesterday'], env);
    assert.equal(badUntil.code, 2);
    assert.match(badUntil.stderr, /--until: expected a global position/);
  });

  it('refuses to replay under a running leader, and to open an embedded database another process holds', async () => {
    const d = spawnDaemon({ ...env, OELD_LEADER_RETRY_MS: '100' });
    try {
      await d.waitForLog(/elected leader/);
      const r = await oeld(['replay'], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /POST \/admin\/replay/);
    } finally {
      await d.kill('SIGTERM');
    }
    const embedded = { OELD_DATA_DIR: join(dir, 'embedded') };
    const e = spawnDaemon(embedded);
    try {
      await e.waitForLog(/elected leader/);
      const r = await oeld(['status'], embedded);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /is in use by process \d+/);
    } finally {
      await e.kill('SIGTERM');
    }
    const after = await oeld(['status', '--json'], embedded);
    assert.equal(after.code, 0, after.stderr);
    assert.equal((JSON.parse(after.stdout) as { database: string }).database, 'pglite');
  });
});
