import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { SERVER_URL, serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { spawnDaemon, type DaemonProcess } from './helpers/daemon-process.ts';
import { produce, testKafka } from './helpers/kafka-client.ts';
import { badMessages, goodMessage } from './helpers/interaction-messages.ts';
import { createOeldTopics, startMockKafka, type MockKafka } from './helpers/mock-kafka.ts';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';
import { makeTinyModel } from './helpers/tiny-model.ts';

const MAX = 4096;

/** GET /readyz, given one second to answer: status 0 when it did not. */
async function readyz(url: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.text();
    return { status: res.status, ms: performance.now() - t0 };
  } catch {
    return { status: 0, ms: performance.now() - t0 };
  }
}

/** Polls /readyz until it answers `status`; every answer must come within a second. Returns the ms it took. */
async function untilReady(url: string, status: number, timeoutMs = 30_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await readyz(url);
    assert.notEqual(r.status, 0, `/readyz gave no answer within 1 s (the request ended after ${Math.round(r.ms)} ms)`);
    if (r.status === status) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) assert.fail(`/readyz still ${r.status} after ${timeoutMs} ms (waiting for ${status})`);
    await sleep(100);
  }
}

/** Ends every server connection of the daemon, as a restart or an idle-timeout does from the server side. */
async function terminateDaemonConnections(database: string): Promise<number> {
  const c = new pg.Client({ connectionString: SERVER_URL });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'oeld'`, [database]);
    return rows[0]!.n;
  } finally {
    await c.end();
  }
}

describe('database faults are weather', () => {
  let kafka: MockKafka, db: TestDatabase, proxy: TcpProxy, daemon: DaemonProcess, url: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'oeld-faults-'));
  const bad = badMessages('f', MAX);
  let good = 0;
  const counts = async () => {
    const { rows: [e] } = await db.sql.query<{ n: number; d: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT data->>'interactionId')::int AS d FROM events WHERE type = 'InteractionRecorded' AND data->'source'->>'kind' = 'kafka'");
    const { rows: [l] } = await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM dead_letters WHERE source = 'kafka'");
    return { events: e!.n, distinct: e!.d, deadLetters: l!.n };
  };
  /** Produces `n` valid messages (and, every 500, the bad kinds) in chunks over about `seconds`. */
  const stream = async (n: number, seconds: number) => {
    const client = testKafka(kafka.brokers);
    const chunk = 100;
    for (let i = 0; i < n; i += chunk) {
      const messages = Array.from({ length: Math.min(chunk, n - i) }, (_, k) => ({ value: goodMessage(good + i + k) as string | Buffer | null }));
      await produce(client, 'oel.interactions', messages);
      await sleep((seconds * 1000 * chunk) / n);
    }
    good += n;
  };

  before(async () => {
    kafka = await startMockKafka(1);
    await createOeldTopics(kafka, 4);
    db = await serverDatabase();
    proxy = await startTcpProxy('127.0.0.1', Number(new URL(SERVER_URL).port || 5432));
    daemon = spawnDaemon({
      DATABASE_URL: proxy.url(db.url!), KAFKA_BROKERS: kafka.bootstrap, KAFKA_SESSION_TIMEOUT_MS: '6000', OELD_MAX_EVENT_BYTES: String(MAX),
      OELD_DB_CONNECT_TIMEOUT_MS: '1000', OELD_DB_STATEMENT_TIMEOUT_MS: '2500', OELD_DB_QUERY_TIMEOUT_MS: '3000', OELD_LEADER_RETRY_MS: '500',
      // The learning loop too, on a tiny model: the simulator plays on (no round: the threshold is
      // out of reach) and must keep playing after every outage.
      OELD_LEARNING: 'true', OELD_SIMULATOR: 'on', OELD_BASE_MODEL_DIR: await makeTinyModel(dataDir), OELD_DATA_DIR: dataDir,
      OELD_SIMULATOR_BATCH: '4', OELD_ROUND_MIN_INTERACTIONS: '100000000', OELD_EVAL_EPISODES: '0',
    });
    url = await daemon.url();
    await untilReady(url, 200);
    await produce(testKafka(kafka.brokers), 'oel.interactions', bad.map((b) => ({ value: b.value })));
  });
  after(async () => {
    await daemon?.kill('SIGTERM');
    await proxy?.close();
    await db?.drop();
    await kafka?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('restarts and server-side terminations during a stream: no exit, /readyz 503 within a second, exact counts after', async (t) => {
    const traffic = stream(3000, 20);
    const recoveries: number[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(2500);
      proxy.restart();
      await untilReady(url, 503);
      await sleep(2000);
      proxy.up();
      recoveries.push(await untilReady(url, 200));
      assert.ok(await terminateDaemonConnections(db.name) > 0, 'the daemon had connections to end');
    }
    await traffic;
    for (let i = 0; i < 600 && (await counts()).events < good; i++) await sleep(100);
    t.diagnostic(`/readyz 200 again ${recoveries.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')} after the database returned`);
    assert.deepEqual(await counts(), { events: good, distinct: good, deadLetters: bad.length });
    assert.equal(daemon.child.exitCode, null, `the daemon exited:\n${daemon.stderr().slice(-2000)}`);
    assert.doesNotMatch(daemon.stderr(), /Unhandled 'error' event|unhandledRejection/);
  });

  it('a network black hole, idle and under traffic: /readyz 503 within a second, recovery, exact counts', async (t) => {
    proxy.blackHole();
    await untilReady(url, 503);
    // /metrics still answers (with the gauges it last read from the database), and says the database is down.
    const scrape = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(8000) });
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /^oeld_database_up 0$/m);
    await sleep(4000); // past the query timeout: the daemon drops the silent connections
    proxy.up();
    const idle = await untilReady(url, 200);
    const traffic = stream(1000, 6);
    await sleep(2000);
    proxy.blackHole();
    await untilReady(url, 503);
    await sleep(4000);
    proxy.up();
    const busy = await untilReady(url, 200);
    await traffic;
    for (let i = 0; i < 600 && (await counts()).events < good; i++) await sleep(100);
    t.diagnostic(`/readyz 200 again ${(idle / 1000).toFixed(1)} s (idle) and ${(busy / 1000).toFixed(1)} s (under traffic) after the network returned`);
    assert.deepEqual(await counts(), { events: good, distinct: good, deadLetters: bad.length });
    assert.equal(daemon.child.exitCode, null, `the daemon exited:\n${daemon.stderr().slice(-2000)}`);
    // The leader stepped down while its session was silent, and a leader runs again.
    assert.match(daemon.stderr(), /leader session lost; stepping down/);
    // The learning loop waited out every outage: the simulator still records episodes.
    const simulated = async () => (await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE data->'source'->>'kind' = 'simulator'")).rows[0]!.n;
    const before = await simulated();
    for (let i = 0; i < 300 && (await simulated()) <= before; i++) await sleep(100);
    assert.ok((await simulated()) > before, 'the simulator plays on after the outages');
    assert.doesNotMatch(daemon.stderr(), /the learning loop stopped/);
    const status = await (await fetch(`${url}/readyz`)).json() as { leader: boolean };
    for (let i = 0; i < 100 && !status.leader; i++) { await sleep(100); Object.assign(status, await (await fetch(`${url}/readyz`)).json()); }
    assert.equal(status.leader, true);
  });
});
