import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import type { RecordedEvent } from '../src/events/envelope.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { makeTinyModel, modelSha256 } from './helpers/tiny-model.ts';

const run = promisify(execFile);
const OELD = new URL('../bin/oeld', import.meta.url).pathname;

async function oeld(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, ...(await run(OELD, args, { env: { ...process.env, OELD_LOG_LEVEL: 'warn', ...env } })) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('oeld eval, report and round', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  before(async () => {
    db = await serverDatabase();
    await migrate(db.sql);
    const dir = await makeTinyModel();
    await new EventStore(db.sql).append([{ streamId: 'models', events: [
      { id: uuidFromKey('cli-pub'), type: 'ModelVersionPublished', data: { version: 'tiny', path: dir, sha256: modelSha256(dir) } },
      { id: uuidFromKey('cli-act'), type: 'ModelVersionActivated', data: { version: 'tiny', reason: 'initial' } },
    ] }]);
    env = { DATABASE_URL: db.url!, OELD_TF_BACKEND: 'cpu' };
  });
  after(async () => { await db.drop(); });

  it('eval plays the held-out seeds, prints the figures and records them as an event', async () => {
    const r = await oeld(['eval', '--model', 'tiny', '--episodes', '3', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { modelVersion: string; split: string; episodes: number; passRate: number; seeds: { start: number; count: number } };
    assert.equal(out.modelVersion, 'tiny');
    assert.equal(out.split, 'test');
    assert.equal(out.episodes, 3);
    assert.deepEqual(out.seeds, { start: 1_000_000, count: 3 });
    const events = (await new EventStore(db.sql).read({ after: START, limit: 1000 })).events.filter((e) => e.type === 'EvaluationRecorded') as RecordedEvent<'EvaluationRecorded'>[];
    assert.equal(events.length, 1);
    const recorded = events[0]!.data;
    assert.equal(recorded.kind, 'game');
    assert.equal(recorded.kind === 'game' ? recorded.passRate : null, out.passRate);
    const ood = await oeld(['eval', '--model', 'tiny', '--episodes', '2', '--game', 'lake-XO', '--split', 'validation'], env);
    assert.equal(ood.code, 0, ood.stderr);
    assert.match(ood.stdout, /game +lake-XO, validation seeds 2000000\.\.2000001/);
    assert.match(ood.stdout, /pass rate +\d+\.\d% of 2 episodes/);
  });

  it('eval names what is wrong: unknown version, unknown pool, bad numbers', async () => {
    const missing = await oeld(['eval', '--model', 'nope'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--model "nope": no such model version/);
    const pool = await oeld(['eval', '--model', 'tiny', '--knowledge', 'tiny'], env);
    assert.equal(pool.code, 2);
    assert.match(pool.stderr, /--knowledge "tiny" --slot 0: the knowledge base has no such pool/);
    const bad = await oeld(['eval', '--model', 'tiny', '--episodes', '500'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--episodes must be an integer from 1 to 128, got "500"/);
  });

  it('report writes a self-contained HTML page with the evaluations', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'oeld-report-')), 'r.html');
    const r = await oeld(['report', '--out', file], env);
    assert.equal(r.code, 0, r.stderr);
    const html = readFileSync(file, 'utf8');
    assert.match(html, /<svg/);
    assert.match(html, /tiny/);
    assert.doesNotMatch(html, /<script/);
  });

  it('round explains when it cannot reach a daemon or has no token', async () => {
    const noToken = await oeld(['round'], env);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /OELD_ADMIN_TOKEN is not set/);
    const down = await oeld(['round', '--url', 'http://127.0.0.1:9'], { ...env, OELD_ADMIN_TOKEN: 'x'.repeat(20) });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /no daemon answered at http:\/\/127\.0\.0\.1:9/);
  });
});
