import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { loadConfig, ConfigError, type Config } from '../src/config.ts';
import { startDaemon, type Daemon } from '../src/daemon.ts';
import { createLogger } from '../src/log.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { extraction } from './helpers/events.ts';

const TOKEN = 'test-token-0123456789';
const log = createLogger('silent');

function configFor(db: TestDatabase, extra: Record<string, string> = {}): Config {
  return loadConfig({ DATABASE_URL: db.url, OELD_HTTP_PORT: '0', OELD_PROJECTION_POLL_MS: '20', OELD_LEADER_RETRY_MS: '100', OELD_LEARNING: 'false', ...extra });
}

describe('configuration', () => {
  it('reports every bad variable with its name and value, and applies defaults', () => {
    assert.throws(() => loadConfig({ OELD_HTTP_PORT: '99999', OELD_LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 3);
      assert.match(err.message, /OELD_HTTP_PORT="99999": expected an integer from 0 to 65535/);
      assert.match(err.message, /OELD_LOG_LEVEL="loud": expected one of fatal, error/);
      assert.match(err.message, /DATABASE_URL="mysql:\/\/x": expected a URL with scheme postgres:/);
      return true;
    });
    const c = loadConfig({});
    assert.equal(c.httpPort, 9820);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.adminToken, undefined);
  });

  it('checks Kafka settings: broker list, topic names, SASL needs its credentials', () => {
    assert.throws(() => loadConfig({ KAFKA_BROKERS: 'localhost:9092,nohost' }), /KAFKA_BROKERS="localhost:9092,nohost": expected host:port\[,host:port...\]; "nohost" is not host:port/);
    assert.throws(() => loadConfig({ KAFKA_INTERACTIONS_TOPIC: 'bad topic' }), /KAFKA_INTERACTIONS_TOPIC="bad topic": expected a Kafka topic name/);
    assert.throws(() => loadConfig({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }), /KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required/);
    assert.throws(() => loadConfig({ KAFKA_SASL_MECHANISM: 'gssapi' }), /expected one of plain, scram-sha-256, scram-sha-512/);
    const c = loadConfig({ KAFKA_BROKERS: 'a:1, b:2', KAFKA_TLS: 'true' });
    assert.deepEqual(c.kafkaBrokers, ['a:1', 'b:2']);
    assert.equal(c.kafkaTls, true);
    assert.equal(c.kafkaInteractionsTopic, 'oel.interactions');
  });

  it('never prints the admin token', () => {
    assert.throws(() => loadConfig({ OELD_ADMIN_TOKEN: 'hunter2' }), (err: Error) => !err.message.includes('hunter2') && /7 characters/.test(err.message));
  });
});

describe('daemon HTTP surface', () => {
  let db: TestDatabase;
  let daemon: Daemon;
  const admin = (path: string, body?: unknown, token = TOKEN) => fetch(`${daemon.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

  before(async () => {
    db = await serverDatabase();
    daemon = await startDaemon(configFor(db, { OELD_ADMIN_TOKEN: TOKEN }), log);
  });
  after(async () => { await daemon.stop(); await db.drop(); });

  it('serves health, readiness and metrics', async () => {
    assert.equal((await fetch(`${daemon.url}/healthz`)).status, 200);
    for (let i = 0; i < 50 && (await fetch(`${daemon.url}/readyz`)).status !== 200; i++) await sleep(50);
    assert.equal((await fetch(`${daemon.url}/readyz`)).status, 200);
    await daemon.store.append([{ streamId: 'knowledge', events: [extraction(1, { budget: 100 })] }]);
    let text = '';
    // A scrape reads checkpoints and knowledge in separate queries: wait until both show the fold.
    for (let i = 0; i < 100; i++) {
      await sleep(30);
      text = await (await fetch(`${daemon.url}/metrics`)).text();
      if (/^oeld_knowledge_version 1$/m.test(text) && /^oeld_projection_lag_events\{projection="knowledge"\} 0$/m.test(text)) break;
    }
    assert.match(text, /^oeld_knowledge_version 1$/m);
    assert.match(text, /^oeld_event_store_head_position 1$/m);
    assert.match(text, /^oeld_leader 1$/m);
    assert.match(text, /^oeld_events_appended_total\{type="KnowledgeExtracted"\} 1$/m);
    assert.match(text, /^oeld_projection_lag_events\{projection="knowledge"\} 0$/m);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
  });

  it('serves the HTML status page', async () => {
    const r = await fetch(`${daemon.url}/status`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await r.text(), /Kafka off/);
  });

  it('protects the admin API with the bearer token', async () => {
    assert.equal((await admin('/admin/status', undefined, 'wrong-token-0123456789')).status, 401);
    assert.equal((await fetch(`${daemon.url}/admin/status`)).status, 401);
    const r = await admin('/admin/status');
    assert.equal(r.status, 200);
    const s = await r.json() as { leader: boolean; database: string; headPosition: number };
    assert.equal(s.leader, true);
    assert.equal(s.database, 'postgres');
  });

  it('rolls back and replays through the admin API, with clear errors for bad requests', async () => {
    await daemon.store.append([{ streamId: 'knowledge', events: [extraction(2, { budget: 100 })] }]);
    await daemon.store.append([{ streamId: 'models', events: [
      { id: uuidFromKey('a'), type: 'ModelVersionPublished', data: { version: 'v0', path: '/m', sha256: 'd'.repeat(64) } },
      { id: uuidFromKey('b'), type: 'ModelVersionActivated', data: { version: 'v0', reason: 'initial' } }] }]);
    let status: { knowledge: { version: number } } = { knowledge: { version: 0 } };
    for (let i = 0; i < 100 && status.knowledge.version < 2; i++) { await sleep(30); status = await (await admin('/admin/status')).json() as typeof status; }
    assert.equal(status.knowledge.version, 2);
    const bad = await admin('/admin/rollback', { knowledge: 'one' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /knowledge/);
    // Admin input is checked by the event schemas (a version name with U+0000 used to reach
    // PostgreSQL and come back as a 500 quoting its error).
    const nul = await admin('/admin/rollback', { model: 'v\u0000x' });
    assert.equal(nul.status, 400);
    assert.match(((await nul.json()) as { error: string }).error, /^model: model versions use letters, digits/);
    const nulReason = await admin('/admin/rollback', { knowledge: 1, reason: 'a\u0000b' });
    assert.equal(nulReason.status, 400);
    assert.match(((await nulReason.json()) as { error: string }).error, /^reason: must not contain U\+0000/);
    const deep = await fetch(`${daemon.url}/admin/rollback`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: `{"model":${'['.repeat(10_000)}${']'.repeat(10_000)}}` });
    assert.equal(deep.status, 400);
    assert.match(((await deep.json()) as { error: string }).error, /more than 64 levels deep/);
    assert.equal((await admin('/admin/rollback', { knowledge: 7 })).status, 409);
    assert.equal((await admin('/admin/rollback', { model: 'v0' })).status, 409, 'already active');
    const ok = await admin('/admin/rollback', { knowledge: 1 });
    assert.equal(ok.status, 202);
    const replayed = await admin('/admin/replay', {});
    assert.equal(replayed.status, 200);
    const r = await replayed.json() as { swapped: boolean; hashes: Record<string, string> };
    assert.equal(r.swapped, true);
    assert.deepEqual(Object.keys(r.hashes).sort(), ['knowledge', 'models', 'rounds', 'trajectories']);
    for (let i = 0; i < 100 && status.knowledge.version < 3; i++) { await sleep(30); status = await (await admin('/admin/status')).json() as typeof status; }
    assert.equal(status.knowledge.version, 3);
    const round = await admin('/admin/rounds', {});
    assert.equal(round.status, 409);
    assert.match(((await round.json()) as { error: string }).error, /OELD_LEARNING=false/);
  });

  it('takes interactions over HTTP through the same decoder: poison lines are dead letters, a retry adds nothing', async () => {
    const poison = readFileSync(new URL('./fixtures/decoder/deep-array-in-messages.json', import.meta.url));
    const line = (i: number) => JSON.stringify({ interactionId: `h-${i}`, modelVersion: 'v0', taskId: 'chat', messages: [{ role: 'user', content: `hi ${i}` }], source: { kind: 'simulator', episodeSeed: i } });
    const body = Buffer.concat([Buffer.from(`${line(1)}\n${line(2)}\r\n`), poison, Buffer.from(`\n{"interactionId": \n\n${line(3)}`)]);
    const post = async () => {
      const r = await fetch(`${daemon.url}/admin/interactions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-ndjson' }, body });
      return { status: r.status, report: await r.json() as { lines: number; appended: number; duplicates: number; rejected: { line: number; reason: string }[]; deadLettered: number } };
    };
    const first = await post();
    assert.equal(first.status, 422);
    assert.deepEqual({ ...first.report, rejected: first.report.rejected.map((x) => x.line) }, { lines: 6, appended: 3, duplicates: 0, rejected: [3, 4], rejectedCount: 2, deadLettered: 2 });
    assert.match(first.report.rejected[0]!.reason, /more than 64 levels deep/);
    const { rows } = await db.sql.query<{ source: unknown; claimed: unknown }>(
      "SELECT data->'source' AS source, data->'claimedSource' AS claimed FROM events WHERE data->>'interactionId' = 'h-2'");
    assert.deepEqual(rows, [{ source: { kind: 'http' }, claimed: { kind: 'simulator', episodeSeed: 2 } }], 'the intake sets the source; the body\'s own is its claim');
    const again = await post();
    assert.deepEqual([again.report.appended, again.report.duplicates, again.report.deadLettered], [0, 3, 0]);
    const one = await fetch(`${daemon.url}/admin/interactions`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: line(4) });
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { appended: number }).appended, 1);
    assert.equal((await fetch(`${daemon.url}/admin/interactions`, { method: 'POST', body: line(5) })).status, 401);
  });

  it('has no admin API without a token', async () => {
    const other = await startDaemon(configFor(db), log);
    try {
      const r = await fetch(`${other.url}/admin/status`);
      assert.equal(r.status, 404);
      assert.match(((await r.json()) as { error: string }).error, /OELD_ADMIN_TOKEN/);
    } finally {
      await other.stop();
    }
  });
});

describe('projection definitions', () => {
  it('a projection whose table definition changed is rebuilt by replay when a daemon becomes leader', async () => {
    const db = await serverDatabase();
    try {
      const first = await startDaemon(configFor(db), log);
      await first.store.append([{ streamId: 'knowledge', events: [extraction(1, { budget: 100 })] }]);
      await first.stop();
      // As if an older oeld had created the knowledge tables with another definition.
      await db.sql.query(`UPDATE oeld_proj.projection_checkpoints SET definition_hash = 'older' WHERE name = 'knowledge'`);
      const second = await startDaemon(configFor(db), log);
      try {
        let text = '';
        for (let i = 0; i < 100 && !/^oeld_projection_rebuilds_total 1$/m.test(text); i++) { await sleep(50); text = await (await fetch(`${second.url}/metrics`)).text(); }
        assert.match(text, /^oeld_projection_rebuilds_total 1$/m);
        const { rows } = await db.sql.query<{ h: string }>(`SELECT definition_hash AS h FROM oeld_proj.projection_checkpoints WHERE name = 'knowledge'`);
        assert.notEqual(rows[0]!.h, 'older');
        for (let i = 0; i < 100 && !/^oeld_knowledge_version 1$/m.test(text); i++) { await sleep(50); text = await (await fetch(`${second.url}/metrics`)).text(); }
        assert.match(text, /^oeld_knowledge_version 1$/m, 'the rebuilt projection holds the log');
      } finally {
        await second.stop();
      }
    } finally {
      await db.drop();
    }
  });
});

describe('leader election', () => {
  it('one of two daemons on a database leads; the other takes over when it stops', async () => {
    const db = await serverDatabase();
    const a = await startDaemon(configFor(db), log);
    const b = await startDaemon(configFor(db), log);
    const leaderOf = async (d: Daemon) => /^oeld_leader 1$/m.test(await (await fetch(`${d.url}/metrics`)).text());
    try {
      let leaders: boolean[] = [];
      for (let i = 0; i < 100; i++) { leaders = [await leaderOf(a), await leaderOf(b)]; if (leaders.some(Boolean)) break; await sleep(50); }
      assert.equal(leaders.filter(Boolean).length, 1, 'exactly one leader');
      const [leader, follower] = leaders[0] ? [a, b] : [b, a];
      await leader.stop();
      let took = false;
      for (let i = 0; i < 100 && !took; i++) { await sleep(50); took = await leaderOf(follower); }
      assert.ok(took, 'the follower became leader');
      await follower.store.append([{ streamId: 'knowledge', events: [extraction(9, { budget: 100 })] }]);
      let v = '';
      for (let i = 0; i < 100 && !/oeld_knowledge_version 1/.test(v); i++) { await sleep(50); v = await (await fetch(`${follower.url}/metrics`)).text(); }
      assert.match(v, /^oeld_knowledge_version 1$/m, 'the new leader projects');
      await follower.stop();
    } finally {
      await a.stop(); await b.stop(); await db.drop();
    }
  });
});
