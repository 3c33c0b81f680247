/**
 * The daemon through database restarts: BENCH_RESTARTS (10) restarts of PostgreSQL during a stream
 * of BENCH_RESTARTS_N (60,000) interactions produced to the mock Kafka cluster over about
 * BENCH_RESTARTS_SECONDS (60) seconds, consumed by a daemon process. Real restarts of the local
 * server (pg_ctlcluster restart -m fast) where this machine has one; BENCH_DB_FAULT=proxy cuts
 * the daemon's connections at a TCP proxy instead (for a server this process cannot restart).
 *
 * Figures: process exits (goal 0), whether the counts are exact, and for each restart how long
 * after the database accepted connections again the daemon's /readyz answered 200 and the next
 * interaction was stored (goal: within 5 s), and the longest pause between two stored
 * interactions. Baseline in the same run: the same stream with no fault (its longest pause, and
 * the time to store all of it; the stream is paced, so that ratio stays near 1 unless the
 * restarts cost more than their own outage).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { spawnDaemon } from '../test/helpers/daemon-process.ts';
import { goodMessage } from '../test/helpers/interaction-messages.ts';
import { produce, testKafka } from '../test/helpers/kafka-client.ts';
import { startMockKafka, type MockKafka } from '../test/helpers/mock-kafka.ts';
import { startTcpProxy, type TcpProxy } from '../test/helpers/tcp-proxy.ts';
import { benchDatabase, emit, envInt, fmt, log, round, SERVER_URL } from './lib.ts';

const N = envInt('BENCH_RESTARTS_N', 60_000);
const RESTARTS = envInt('BENCH_RESTARTS', 10);
const SECONDS = envInt('BENCH_RESTARTS_SECONDS', 60);
const PARTITIONS = 16;
const cluster = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql').sort().at(-1) : undefined;
const MODE = process.env.BENCH_DB_FAULT ?? (cluster && ['127.0.0.1', 'localhost'].includes(new URL(SERVER_URL).hostname) ? 'restart' : 'proxy');

/** A query that waits out the restarts this benchmark causes. */
async function count(url: string, text: string): Promise<number> {
  for (;;) {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    c.on('error', () => {});
    try {
      await c.connect();
      const { rows } = await c.query<{ n: number }>(text);
      return rows[0]!.n;
    } catch {
      await sleep(100);
    } finally {
      await c.end().catch(() => {});
    }
  }
}

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (!(await ok())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
  return performance.now() - t0;
}

const readyz = async (url: string): Promise<number> => {
  try { return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).status; } catch { return 0; }
};

async function run(kafka: MockKafka, topic: string, faults: number) {
  await kafka.createTopic(topic, PARTITIONS);
  const db = await benchDatabase();
  const proxy: TcpProxy | undefined = MODE === 'proxy' ? await startTcpProxy('127.0.0.1', Number(new URL(SERVER_URL).port || 5432)) : undefined;
  const countEvents = () => count(db.url, "SELECT count(*)::int AS n FROM events WHERE type = 'InteractionRecorded'");
  const daemon = spawnDaemon({
    DATABASE_URL: proxy ? proxy.url(db.url) : db.url, KAFKA_BROKERS: kafka.bootstrap, KAFKA_INTERACTIONS_TOPIC: topic, KAFKA_GROUP_ID: `g-${topic}`,
    // librdkafka's mock broker answers a fetch only when its wait is over (a real broker answers
    // as soon as a message arrives): with the default 5 s, ingestion moves in 5 s steps, with or
    // without faults, and that step, not the daemon, would set the recovery figure.
    KAFKA_FETCH_MAX_WAIT_MS: '200', KAFKA_SESSION_TIMEOUT_MS: '10000', OELD_LOG_LEVEL: process.env.BENCH_DAEMON_LOG_LEVEL ?? 'warn',
  });
  const url = await daemon.url();
  await waitUntil('daemon ready', async () => (await readyz(url)) === 200, 30_000);
  const recoveries: { readyMs: number; ingestMs: number }[] = [];
  const restartTimes: string[] = [];
  try {
    const client = testKafka(kafka.brokers);
    const t0 = performance.now();
    const chunk = 500;
    const producing = (async () => {
      for (let i = 0; i < N; i += chunk) {
        await produce(client, topic, Array.from({ length: Math.min(chunk, N - i) }, (_, k) => ({ value: goodMessage(i + k), partition: (i + k) % PARTITIONS })), chunk);
        const due = ((i + chunk) / N) * SECONDS * 1000 - (performance.now() - t0);
        if (due > 0) await sleep(due);
      }
    })();
    for (let f = 0; f < faults; f++) {
      // Restarts at even times within the stream, so that each one meets traffic.
      const at = ((f + 1) * SECONDS * 1000 * 0.9) / (faults + 1) - (performance.now() - t0);
      if (at > 0) await sleep(at);
      if (proxy) { proxy.restart(); await sleep(2000); proxy.up(); } else execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', cluster!, 'main', 'restart', '-m', 'fast'], { stdio: 'ignore' });
      const before = await countEvents(); // the database accepts connections again from here
      restartTimes.push(new Date().toISOString().slice(11, 23));
      const back = performance.now();
      const readyMs = await waitUntil('/readyz 200 after the restart', async () => (await readyz(url)) === 200, 60_000);
      // (Or everything stored already: the stream may end before the last restart's recovery.)
      await waitUntil('an interaction stored after the restart', async () => { const n = await countEvents(); return n > before || n >= N; }, 60_000);
      recoveries.push({ readyMs, ingestMs: performance.now() - back });
      log(`  restart ${f + 1}/${faults}: /readyz 200 after ${(readyMs / 1000).toFixed(2)} s, an interaction stored after ${((performance.now() - back) / 1000).toFixed(2)} s`);
    }
    await producing;
    await waitUntil('every interaction stored', async () => (await countEvents()) >= N, 300_000);
    const ms = performance.now() - t0;
    const stored = await countEvents();
    const distinct = await count(db.url, "SELECT count(DISTINCT data->>'interactionId')::int AS n FROM events WHERE type = 'InteractionRecorded'");
    const exited = daemon.child.exitCode !== null || daemon.child.signalCode !== null;
    const { rows: [longest] } = await db.sql.query<{ gap: number }>(
      'SELECT coalesce(max(gap), 0)::float8 AS gap FROM (SELECT extract(epoch FROM recorded_at - lag(recorded_at) OVER (ORDER BY recorded_at)) AS gap FROM events) g');
    const longestPause = longest!.gap;
    if (process.env.BENCH_DEBUG_GAPS) {
      const { rows } = await db.sql.query<{ at: string; gap: number }>(`SELECT to_char(recorded_at, 'HH24:MI:SS.MS') AS at, extract(epoch FROM recorded_at - lag(recorded_at) OVER (ORDER BY recorded_at))::float8 AS gap FROM events ORDER BY gap DESC NULLS LAST LIMIT 8`);
      log(`  largest gaps between stored events: ${rows.map((r) => `${r.gap.toFixed(2)} s before ${r.at}`).join(', ')}`);
      log(`  restarts returned at: ${restartTimes.join(', ')}`);
    }
    return { ms, stored, distinct, exited, recoveries, longestPause };
  } finally {
    if (process.env.BENCH_DAEMON_LOG) (await import('node:fs')).writeFileSync(`${process.env.BENCH_DAEMON_LOG}-${topic}.log`, daemon.stderr());
    await daemon.kill('SIGTERM');
    await proxy?.close();
    await db.drop();
  }
}

const kafka = await startMockKafka(1);
try {
  log(`${fmt(N)} interactions over ~${SECONDS} s, ${RESTARTS} database ${MODE === 'restart' ? `restarts (pg_ctlcluster ${cluster} main restart -m fast)` : 'outages at a TCP proxy (connections cut, 2 s refused)'}...`);
  const faulty = await run(kafka, 'restarts', RESTARTS);
  log('the same stream with no fault (baseline)...');
  const baseline = await run(kafka, 'baseline', 0);
  const worst = (k: 'readyMs' | 'ingestMs') => Math.max(...faulty.recoveries.map((r) => r[k]));
  log(`process exits: ${faulty.exited ? 1 : 0} (goal 0); stored ${fmt(faulty.stored)} events, ${fmt(faulty.distinct)} distinct, of ${fmt(N)} (${faulty.stored === N && faulty.distinct === N ? 'exact' : 'NOT exact'})`);
  log(`recovery after the database returned: /readyz 200 within ${(worst('readyMs') / 1000).toFixed(2)} s, ingestion within ${(worst('ingestMs') / 1000).toFixed(2)} s at worst (goal 5 s)`);
  log(`longest pause between two stored interactions: ${faulty.longestPause.toFixed(2)} s with the restarts (the outage itself), ${baseline.longestPause.toFixed(2)} s without`);
  log(`whole stream stored in ${(faulty.ms / 1000).toFixed(1)} s with the restarts, ${(baseline.ms / 1000).toFixed(1)} s without: ratio ${(faulty.ms / baseline.ms).toFixed(2)}`);
  emit({
    bench: 'database-restarts', mode: MODE, n: N, restarts: RESTARTS, exits: faulty.exited ? 1 : 0, exact: faulty.stored === N && faulty.distinct === N,
    worstReadySeconds: round(worst('readyMs') / 1000, 2), worstIngestSeconds: round(worst('ingestMs') / 1000, 2),
    longestPauseSeconds: round(faulty.longestPause, 2), baselineLongestPauseSeconds: round(baseline.longestPause, 2),
    seconds: round(faulty.ms / 1000, 1), baselineSeconds: round(baseline.ms / 1000, 1), ratio: round(faulty.ms / baseline.ms, 2),
  });
} finally {
  await kafka.stop();
}
