/**
 * The OpenAI-compatible endpoint under load, on the shipped base model (models/oeld-base) in a
 * model worker thread, as the daemon wires it (src/serving/serving.ts, the HTTP server, a
 * PostgreSQL database for the recorded answers):
 *   - requests/s and p50/p99 latency at 1, 8 and 32 concurrent clients (each sends
 *     BENCH_SERVE_REQUESTS requests one after another: a short chat, max_tokens BENCH_SERVE_TOKENS
 *     (default 32), temperature 0.7),
 *   - the worker's own batched generation of the same requests, 32 at a time with no HTTP, queue
 *     or recording: the ceiling (goal: 32 recorded clients reach at least 0.8 of it),
 *   - BENCH_SERVE_PAIRS rounds (default 5) of: the ceiling, then 32 clients with recording on and
 *     off (OELD_SERVE_RECORD=false): the ratio to the ceiling and the cost of recording every answer
 *     (goal: under 5% of throughput), each the median over the rounds, and the CPU per request of
 *     this process and of PostgreSQL; answers are appended in batches as the daemon does
 *     (OELD_SERVE_RECORD_FLUSH_MS, its default unless set).
 * All in this run; the clients run in a process of their own (bench/serving-clients.ts, node:http with
 * kept-alive connections; it reports its own CPU a request, which the same two cores pay). Request
 * counts are per client (BENCH_SERVE_REQUESTS, default 16).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../src/config.ts';
import { fileSha256 } from '../src/engine/verify-version.ts';
import { workerEngine } from '../src/engine/worker-engine.ts';
import { createMetrics } from '../src/http/metrics.ts';
import { createHttpServer } from '../src/http/server.ts';
import { createLogger } from '../src/log.ts';
import { ModelProjection } from '../src/projections/models/model-projection.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { createServing } from '../src/serving/serving.ts';
import { EventStore } from '../src/store/event-store.ts';
import { benchDatabase, emit, envInt, fmt, log, postgresCpuSeconds, round, SERVING_QUESTIONS } from './lib.ts';

const MODEL = fileURLToPath(new URL('../models/oeld-base', import.meta.url));
const TOKENS = envInt('BENCH_SERVE_TOKENS', 32);
const PER_CLIENT = envInt('BENCH_SERVE_REQUESTS', 16);
const CLIENTS = [1, 8, 32];
const PAIRS = envInt('BENCH_SERVE_PAIRS', 5);
/** The daemon's batching of recorded answers (OELD_SERVE_RECORD_FLUSH_MS, its default unless set). */
const FLUSH_MS = envInt('OELD_SERVE_RECORD_FLUSH_MS', Number(SETTINGS.serveRecordFlushMs.default));
const CLIENTS_SCRIPT = fileURLToPath(new URL('./serving-clients.ts', import.meta.url));

const db = await benchDatabase();
const engine = workerEngine();
const logger = createLogger('warn');
const results: Record<string, unknown> = {};
try {
  await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
  const store = new EventStore(db.sql);
  await store.append([{ streamId: 'models', events: [
    { id: crypto.randomUUID(), type: 'ModelVersionPublished', data: { version: 'base', path: MODEL, sha256: await fileSha256(`${MODEL}/model.safetensors`) } },
    { id: crypto.randomUUID(), type: 'ModelVersionActivated', data: { version: 'base', reason: 'initial' } },
  ] }]);
  await new Projector(db.sql, new ModelProjection()).catchUp();

  /** One endpoint (recording on or off); `clients` loops of PER_CLIENT requests each. */
  async function load(record: boolean, clients: number): Promise<{ rps: number; tokensPerS: number; p50: number; p99: number; recorded: number; nodeCpuMs: number; pgCpuMs: number | null; clientCpuMs: number }> {
    const serving = createServing(db.sql, store, () => engine, { servedNames: ['oeld'], maxQueued: 1024, maxBatch: 32, defaultMaxTokens: TOKENS, record, recordFlushMs: FLUSH_MS }, createMetrics(), logger);
    const server = createHttpServer(serving.routes, { apiOpenWithoutToken: true }, logger);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/chat/completions`;
    const before = await interactions();
    const cpu0 = process.cpuUsage();
    const pg0 = postgresCpuSeconds();
    // The clients run in a process of their own: in this one they would take the server's thread.
    const child = spawn(process.execPath, ['--import', 'tsx', CLIENTS_SCRIPT, url, String(clients), String(PER_CLIENT), String(TOKENS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const [code] = await once(child, 'exit');
    if (code !== 0) throw new Error(`the clients exited ${code}`);
    const { seconds: clientSecs, latencies, tokens, cpuMsPerRequest: clientCpuMs } = JSON.parse(out.trim().split('\n').at(-1)!) as { seconds: number; latencies: number[]; tokens: number; cpuMsPerRequest: number };
    const secs = clientSecs;
    await serving.close();
    // CPU per request of this process (HTTP, queue, recorder and the model worker's thread) and of
    // PostgreSQL, to the last recorded answer: steadier on a shared machine than requests/s.
    const cpu = process.cpuUsage(cpu0);
    const pg1 = postgresCpuSeconds();
    const answered = clients * PER_CLIENT;
    const nodeCpuMs = (cpu.user + cpu.system) / 1000 / answered;
    const pgCpuMs = pg0 === null || pg1 === null ? null : ((pg1 - pg0) * 1000) / answered;
    await new Promise<void>((r) => server.close(() => r()));
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
    return { rps: latencies.length / secs, tokensPerS: tokens / secs, p50: pct(0.5), p99: pct(0.99), recorded: (await interactions()) - before, nodeCpuMs, pgCpuMs, clientCpuMs };
  }
  const interactions = async () => (await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE type = 'InteractionRecorded'")).rows[0]!.n;

  /** The ceiling: the same requests straight to the worker, 32 per batch. */
  async function ceiling(): Promise<{ rps: number; tokensPerS: number }> {
    const rows = Array.from({ length: 32 }, (_, i) => ({ messages: [{ role: 'user' as const, content: SERVING_QUESTIONS[i % SERVING_QUESTIONS.length]! }], sampling: { temperature: 0.7, topP: 1, topK: 0 }, maxNewTokens: TOKENS, stop: [] }));
    let n = 0;
    let tokens = 0;
    const t0 = performance.now();
    for (let b = 0; b < PER_CLIENT; b++) {
      const r = await engine.serve('base', MODEL, rows, b + 1, () => {});
      n += r.rows.length;
      tokens += r.rows.reduce((s, x) => s + x.completionTokens, 0);
    }
    const secs = (performance.now() - t0) / 1000;
    return { rps: n / secs, tokensPerS: tokens / secs };
  }

  await engine.serve('base', MODEL, [{ messages: [{ role: 'user', content: 'warm up' }], sampling: { temperature: 0.7, topP: 1, topK: 0 }, maxNewTokens: 4, stop: [] }], 0, () => {});
  const top = await ceiling();
  log(`the worker's own batched generation (32 requests a batch, no HTTP): ${top.rps.toFixed(1)} requests/s, ${fmt(top.tokensPerS)} new tokens/s`);
  results.ceiling = { rps: round(top.rps, 1), tokensPerS: round(top.tokensPerS) };
  for (const clients of CLIENTS) {
    const r = await load(true, clients);
    if (r.recorded !== clients * PER_CLIENT) throw new Error(`${r.recorded} of ${clients * PER_CLIENT} answers were recorded`);
    log(`${clients} clients: ${r.rps.toFixed(1)} requests/s (${fmt(r.tokensPerS)} new tokens/s), p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms; every answer recorded`
      + `; the clients' process ${r.clientCpuMs.toFixed(2)} ms CPU a request`);
    results[`clients_${clients}`] = { rps: round(r.rps, 1), tokensPerS: round(r.tokensPerS), p50Ms: round(r.p50), p99Ms: round(r.p99) };
  }
  // Rounds of three: the worker's own, then 32 clients recorded and not recorded (the order swapped
  // every round), so that this machine's drift in speed (1.3x between minutes here) falls on the
  // ceiling and both loads alike. Each ratio is to the ceiling of its own round; medians over rounds.
  const rounds: { top: number; on: Awaited<ReturnType<typeof load>>; off: Awaited<ReturnType<typeof load>> }[] = [];
  const runOn = async () => {
    const on = await load(true, 32);
    if (on.recorded !== 32 * PER_CLIENT) throw new Error(`${on.recorded} of ${32 * PER_CLIENT} answers were recorded`);
    return on;
  };
  const runOff = async () => {
    const off = await load(false, 32);
    if (off.recorded !== 0) throw new Error(`${off.recorded} answers were recorded with recording off`);
    return off;
  };
  for (let i = 0; i < PAIRS; i++) {
    const t = (await ceiling()).rps;
    let on: Awaited<ReturnType<typeof load>>, off: Awaited<ReturnType<typeof load>>;
    if (i % 2 === 0) { on = await runOn(); off = await runOff(); } else { off = await runOff(); on = await runOn(); }
    rounds.push({ top: t, on, off });
    log(`  round ${i + 1}: the worker's own ${t.toFixed(1)} requests/s; 32 clients recorded ${on.rps.toFixed(1)} (${(on.rps / t).toFixed(2)} of it, p99 ${on.p99.toFixed(0)} ms), `
      + `not recorded ${off.rps.toFixed(1)}: recording's cost ${(100 * (1 - on.rps / off.rps)).toFixed(1)}%; `
      + `CPU per request: this process ${on.nodeCpuMs.toFixed(2)} vs ${off.nodeCpuMs.toFixed(2)} ms, PostgreSQL ${on.pgCpuMs?.toFixed(2) ?? 'n/a'} vs ${off.pgCpuMs?.toFixed(2) ?? 'n/a'} ms`);
  }
  const median = (xs: number[]) => { const v = [...xs].sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2; };
  const ratios = rounds.map((r) => r.on.rps / r.top);
  const ratio = median(ratios);
  log(`32 clients, recorded: ${median(rounds.map((r) => r.on.rps)).toFixed(1)} requests/s, ${ratio.toFixed(2)} of the worker's own (median of ${PAIRS} rounds, `
    + `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}; goal >= 0.8); p99 ${median(rounds.map((r) => r.on.p99)).toFixed(0)} ms`);
  const cost = median(rounds.map((r) => 1 - r.on.rps / r.off.rps));
  const offRps = median(rounds.map((r) => r.off.rps));
  const cpuOn = median(rounds.map((r) => r.on.nodeCpuMs + (r.on.pgCpuMs ?? 0)));
  const cpuOff = median(rounds.map((r) => r.off.nodeCpuMs + (r.off.pgCpuMs ?? 0)));
  log(`32 clients without recording: ${offRps.toFixed(1)} requests/s (median of ${PAIRS}); recording costs ${(100 * cost).toFixed(1)}% of throughput `
    + `(median of the rounds; goal < 5%; negative: within this machine's noise); CPU per request ${cpuOn.toFixed(2)} ms recorded vs ${cpuOff.toFixed(2)} ms `
    + `(${cpuOn >= cpuOff ? '+' : ''}${(100 * (cpuOn / cpuOff - 1)).toFixed(1)}%), of which PostgreSQL ${median(rounds.map((r) => r.on.pgCpuMs ?? 0)).toFixed(2)} ms`);
  results.ratioToCeiling = round(ratio, 2);
  results.ratiosToCeiling = ratios.map((x) => round(x, 2));
  results.clients_32_recorded = { rps: round(median(rounds.map((r) => r.on.rps)), 1), p50Ms: round(median(rounds.map((r) => r.on.p50))), p99Ms: round(median(rounds.map((r) => r.on.p99))) };
  results.clients_32_unrecorded = { rps: round(offRps, 1), p50Ms: round(median(rounds.map((r) => r.off.p50))), p99Ms: round(median(rounds.map((r) => r.off.p99))) };
  results.recordingCost = round(cost, 3);
  results.recordingCpuCost = round(cpuOn / cpuOff - 1, 3);
  results.recordingRounds = rounds.map((r) => round(1 - r.on.rps / r.off.rps, 3));
} finally {
  await engine.close();
  await db.drop();
}
emit({ name: 'serving', model: 'oeld-base', tokens: TOKENS, perClient: PER_CLIENT, recordFlushMs: FLUSH_MS, ...results });
