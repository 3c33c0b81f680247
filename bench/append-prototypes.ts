/**
 * Prototypes of alternative append statements, measured against the real EventStore.append on the
 * same rows (trusted, one request and stream per event). Not part of `npm run bench`: run it by
 * hand when working on the append path:
 *
 *   node --import tsx bench/append-prototypes.ts
 *   BENCH_PROTO_N=100000 BENCH_PROTO_VARIANTS=store,jsonb_recordset node --import tsx bench/append-prototypes.ts
 *
 * Every variant keeps appendEvents' semantics for fresh events: the existing-id check, the streams
 * upsert that claims positions, then the insert returning global positions; only the statement
 * that inserts the events (and how its data travels) differs:
 *
 *   store            EventStore.append itself (since the one-statement rewrite: existing-id check, streams
 *                    upsert and insert in one statement, data as one jsonb array taken by ordinality)
 *   unnest_text      the same statements through this harness (checks the harness adds no cost)
 *   jsonb_recordset  one parameter: a JSON array of rows, jsonb_to_recordset($1::jsonb)
 *   json_recordset   one parameter: a JSON array of rows, json_to_recordset($1::json)
 *   copy             COPY events FROM STDIN, then SELECT the global positions by event id
 *   one_statement    existing-id check, streams upsert and insert in one statement (one round trip)
 *   raw_copy         no append at all: COPY of the rows into events, as the baseline of append-throughput
 *
 * A variant may carry @K (store@2): K appends in flight at once, each in its own transaction and
 * connection; raw_copy@2 is then the fair baseline.
 *
 * Also measured: the client-side cost of encoding the parameters of the current insert (pg's
 * array literal escaping) and, for one batch, each insert variant alone: client wall time and the
 * backend's CPU time from /proc (parameter parsing included, which EXPLAIN ANALYZE leaves out).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { NewEvent } from '../src/events/envelope.ts';
import { CURRENT_SCHEMA_VERSION } from '../src/events/schemas.ts';
import { STREAMS } from '../src/events/streams.ts';
import type { Queryable, Sql } from '../src/db/sql.ts';
import { EventStore } from '../src/store/event-store.ts';
import type { AppendRequest } from '../src/store/append-events.ts';
import { interaction } from '../test/helpers/events.ts';
import {
  benchDatabase, copyField, describeCpu, emit, envInt, fmt, log, measure, perSecond, round, seconds,
  StatementTimings, timedSql,
} from './lib.ts';

const N = envInt('BENCH_PROTO_N', 100_000);
const BATCH = envInt('BENCH_PROTO_BATCH', 1000);
const BYTES = envInt('BENCH_APPEND_BYTES', 1000);
const REPS = envInt('BENCH_PROTO_REPS', 20);
const ALL = ['store', 'unnest_text', 'jsonb_recordset', 'json_recordset', 'copy', 'one_statement', 'raw_copy'] as const;
type Variant = (typeof ALL)[number];
/** A variant name, optionally with @K: K appends in flight at once (each in its own transaction). */
const VARIANTS = process.env.BENCH_PROTO_VARIANTS?.split(',').map((s) => s.trim()) ?? [...ALL, 'store@2', 'one_statement@2', 'raw_copy@2'];
const parseVariant = (spec: string): { v: Variant; k: number } => {
  const [v, k] = spec.split('@') as [Variant, string | undefined];
  if (!ALL.includes(v)) throw new Error(`unknown variant ${v}; known: ${ALL.join(', ')} (with @K for K concurrent appends)`);
  return { v, k: k === undefined ? 1 : Number(k) };
};
VARIANTS.forEach(parseVariant);

const COLUMNS = 'event_id, stream_id, stream_position, type, schema_version, data, causation_id, correlation_id, occurred_at';

interface Row {
  id: string; streamId: string; type: string; schemaVersion: number; data: unknown; dataText: string;
  causationId: string | null; correlationId: string | null; occurredAt: string;
}
type Appended = { id: string; globalPosition: number }[];
/** Where the COPY variant records its COPY time (the timing wrapper only times SQL text). */
let current: StatementTimings | undefined;
type Inserter = (tx: Queryable, rows: Row[], positions: number[]) => Promise<Appended>;

const label = (text: string): string => {
  const t = text.trimStart();
  if (t.startsWith('SELECT event_id, type')) return 'select existing ids';
  if (t.startsWith('INSERT INTO streams')) return 'upsert streams';
  if (t.startsWith('WITH')) return 'one statement';
  if (t.startsWith('SELECT event_id, global_position')) return 'select positions';
  return 'insert events';
};

function rowsOf(requests: AppendRequest[]): Row[] {
  const rows: Row[] = [];
  for (const req of requests) {
    for (const e of req.events) {
      rows.push({
        id: e.id.toLowerCase(), streamId: req.streamId, type: e.type, schemaVersion: e.schemaVersion ?? CURRENT_SCHEMA_VERSION[e.type],
        data: e.data, dataText: '', causationId: e.causationId ?? null, correlationId: e.correlationId ?? null,
        occurredAt: (e.occurredAt ?? new Date()).toISOString(),
      });
    }
  }
  return rows;
}

/** appendEvents for fresh events, trusted, with a pluggable insert: same checks and statements otherwise. */
async function harnessAppend(tx: Queryable, requests: AppendRequest[], insert: Inserter, stringify: boolean): Promise<Appended> {
  const rows = rowsOf(requests);
  if (stringify) for (const r of rows) r.dataText = JSON.stringify(r.data);
  const existing = await tx.query<{ event_id: string }>(
    'SELECT event_id, type, schema_version, data FROM events WHERE event_id = ANY($1::uuid[])', [rows.map((r) => r.id)]);
  if (existing.rows.length) throw new Error('the prototypes only handle fresh events');
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.streamId, (counts.get(r.streamId) ?? 0) + 1);
  const streamIds = [...counts.keys()].sort();
  const versions = await tx.query<{ stream_id: string; version: number }>(
    `INSERT INTO streams AS s (stream_id, version)
       SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (stream_id) DO UPDATE SET version = s.version + excluded.version
     RETURNING stream_id, version`,
    [streamIds, streamIds.map((s) => counts.get(s)!)]);
  const next = new Map<string, number>();
  for (const v of versions.rows) next.set(v.stream_id, Number(v.version) - counts.get(v.stream_id)!);
  const positions = rows.map((r) => {
    const p = next.get(r.streamId)! + 1;
    next.set(r.streamId, p);
    return p;
  });
  return insert(tx, rows, positions);
}

const unnestInsert: Inserter = async (tx, fresh, positions) => {
  const inserted = await tx.query<{ event_id: string; global_position: number }>(
    `INSERT INTO events (${COLUMNS})
     SELECT e, s, p, t, v, d::jsonb, c, k, o
       FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::uuid[], $8::uuid[], $9::timestamptz[])
         AS x(e, s, p, t, v, d, c, k, o)
     RETURNING event_id, global_position`,
    [fresh.map((r) => r.id), fresh.map((r) => r.streamId), positions, fresh.map((r) => r.type), fresh.map((r) => r.schemaVersion),
      fresh.map((r) => r.dataText), fresh.map((r) => r.causationId), fresh.map((r) => r.correlationId), fresh.map((r) => r.occurredAt)]);
  return inserted.rows.map((r) => ({ id: r.event_id, globalPosition: Number(r.global_position) }));
};

const jsonRows = (fresh: Row[], positions: number[]): string => JSON.stringify(fresh.map((r, i) => ({
  e: r.id, s: r.streamId, p: positions[i], t: r.type, v: r.schemaVersion, d: r.data, c: r.causationId, k: r.correlationId, o: r.occurredAt,
})));

const recordsetInsert = (fn: 'jsonb_to_recordset' | 'json_to_recordset', cast: 'jsonb' | 'json'): Inserter => async (tx, fresh, positions) => {
  const inserted = await tx.query<{ event_id: string; global_position: number }>(
    `INSERT INTO events (${COLUMNS})
     SELECT e, s, p, t, v, d, c, k, o
       FROM ${fn}($1::${cast}) AS x(e uuid, s text, p bigint, t text, v int, d jsonb, c uuid, k uuid, o timestamptz)
     RETURNING event_id, global_position`,
    [jsonRows(fresh, positions)]);
  return inserted.rows.map((r) => ({ id: r.event_id, globalPosition: Number(r.global_position) }));
};

function copyLines(fresh: Row[], positions: number[]): string {
  let s = '';
  for (let i = 0; i < fresh.length; i++) {
    const r = fresh[i]!;
    s += `${r.id}\t${copyField(r.streamId)}\t${positions[i]}\t${r.type}\t${r.schemaVersion}\t${copyField(JSON.stringify(r.data))}\t`
      + `${copyField(r.causationId)}\t${copyField(r.correlationId)}\t${r.occurredAt}\n`;
  }
  return s;
}

async function copyInsertOnly(tx: Queryable, fresh: Row[], positions: number[]): Promise<void> {
  // The harness runs on the pg adapter: tx is the PoolClient (or the timing wrapper, which passes streams through).
  const client = tx as unknown as pg.PoolClient;
  const t0 = performance.now();
  await pipeline(Readable.from([copyLines(fresh, positions)]), client.query(copyFrom(`COPY events (${COLUMNS}) FROM STDIN`)));
  current?.add('COPY events', performance.now() - t0);
}

const copyInsert: Inserter = async (tx, fresh, positions) => {
  await copyInsertOnly(tx, fresh, positions);
  const { rows } = await tx.query<{ event_id: string; global_position: number }>(
    'SELECT event_id, global_position FROM events WHERE event_id = ANY($1::uuid[]) ORDER BY global_position', [fresh.map((r) => r.id)]);
  return rows.map((r) => ({ id: r.event_id, globalPosition: Number(r.global_position) }));
};

/**
 * One round trip for all three steps: the existing-id check (by = ANY($2::uuid[]), an index probe
 * per id; a join against the JSON rows makes the planner scan the whole events table) (rows returned as 'e' for the same
 * duplicate / conflict comparison appendEvents does in JS), the streams upsert (each stream's
 * version before the append returned as 'v', for the expected-version check, which throws and
 * so rolls the transaction back as it does now), and the insert numbering each event after its
 * stream's previous version ('i' rows: the global positions). Data travels as one JSON array.
 */
async function oneStatement(tx: Queryable, requests: AppendRequest[]): Promise<Appended> {
  const rows = rowsOf(requests);
  const { rows: out } = await tx.query<{ kind: 'i' | 'e' | 'v'; event_id: string | null; global_position: number | null; stream_id: string | null; before: number | null }>(
    `WITH x AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(e uuid, s text, t text, v int, d jsonb, c uuid, k uuid, o timestamptz, n bigint)
     ), existing AS (
       SELECT ev.event_id, ev.type, ev.schema_version, ev.data FROM events ev WHERE ev.event_id = ANY($2::uuid[])
     ), fresh AS (
       SELECT x.* FROM x WHERE NOT EXISTS (SELECT 1 FROM existing WHERE existing.event_id = x.e)
     ), counts AS (
       SELECT s, count(*) AS m FROM fresh GROUP BY s
     ), claimed AS (
       INSERT INTO streams AS st (stream_id, version) SELECT s, m FROM counts ORDER BY s
       ON CONFLICT (stream_id) DO UPDATE SET version = st.version + excluded.version
       RETURNING stream_id, version
     ), ins AS (
       INSERT INTO events (${COLUMNS})
       SELECT f.e, f.s, claimed.version - counts.m + row_number() OVER (PARTITION BY f.s ORDER BY f.n), f.t, f.v, f.d, f.c, f.k, f.o
         FROM fresh f JOIN counts USING (s) JOIN claimed ON claimed.stream_id = f.s
        ORDER BY f.n
       RETURNING event_id, global_position
     )
     SELECT 'i' AS kind, event_id, global_position, NULL::text AS stream_id, NULL::bigint AS before, NULL::text AS type, NULL::int AS schema_version, NULL::jsonb AS data FROM ins
     UNION ALL SELECT 'e', event_id, NULL, NULL, NULL, type, schema_version, data FROM existing
     UNION ALL SELECT 'v', NULL, NULL, c.stream_id, c.version - counts.m, NULL, NULL, NULL FROM claimed c JOIN counts ON counts.s = c.stream_id`,
    [JSON.stringify(rows.map((r, n) => ({ n, e: r.id, s: r.streamId, t: r.type, v: r.schemaVersion, d: r.data, c: r.causationId, k: r.correlationId, o: r.occurredAt }))), rows.map((r) => r.id)]);
  const appended: Appended = [];
  let versions = 0;
  for (const r of out) {
    if (r.kind === 'e') throw new Error('the prototypes only handle fresh events');
    if (r.kind === 'v') versions++; // here: expected-version checks, as appendEvents does
    else appended.push({ id: r.event_id!, globalPosition: Number(r.global_position) });
  }
  if (versions !== rows.length) throw new Error(`expected ${rows.length} stream versions, got ${versions}`);
  return appended.sort((a, b) => a.globalPosition - b.globalPosition);
}

/** CPU time of one PostgreSQL backend process so far, in ms (1/100 s resolution), or null without /proc. */
function backendCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch { return null; }
}

async function main(): Promise<void> {
  const db = await benchDatabase({ max: 4 });
  const { sql } = db;
  const figures: Record<string, number> = {};
  try {
    log(`append-prototypes: N=${fmt(N)} events of ~${BYTES} B, batches of ${fmt(BATCH)}, trusted, variants ${VARIANTS.join(', ')}`);
    const make = (prefix: string, n: number): AppendRequest[] => Array.from({ length: n }, (_, i) => {
      const e = interaction(i, { bytes: BYTES, prefix }) as NewEvent<'InteractionRecorded'>;
      return { streamId: STREAMS.interaction(e.data.interactionId), events: [e as NewEvent] };
    });
    const chunk = (xs: AppendRequest[]) => Array.from({ length: Math.ceil(xs.length / BATCH) }, (_, i) => xs.slice(i * BATCH, (i + 1) * BATCH));
    const requests = chunk(make('proto', N));
    const reset = async () => { await sql.exec('TRUNCATE events, streams RESTART IDENTITY'); await sql.exec('CHECKPOINT'); };

    const runner = (v: Variant, s: Sql): ((b: AppendRequest[]) => Promise<Appended>) => {
      if (v === 'store') { const store = new EventStore(s); return async (b) => (await store.append(b, { trusted: true })).appended; }
      if (v === 'one_statement') return (b) => s.transaction((tx) => oneStatement(tx, b));
      if (v === 'raw_copy') {
        return (b) => s.transaction(async (tx) => {
          const rows = rowsOf(b);
          await copyInsertOnly(tx, rows, rows.map(() => 1));
          return rows.map((r) => ({ id: r.id, globalPosition: 0 }));
        });
      }
      const [insert, stringify]: [Inserter, boolean] = v === 'unnest_text' ? [unnestInsert, true]
        : v === 'jsonb_recordset' ? [recordsetInsert('jsonb_to_recordset', 'jsonb'), false]
          : v === 'json_recordset' ? [recordsetInsert('json_to_recordset', 'json'), false]
            : [copyInsert, false];
      return (b) => s.transaction((tx) => harnessAppend(tx, b, insert, stringify));
    };

    for (const spec of VARIANTS) {
      const { v, k } = parseVariant(spec);
      // Warm-up on other ids, then a clean table.
      const warm = runner(v, sql);
      for (const b of chunk(make(`warm-${v}`, 3 * BATCH))) await warm(b);
      await reset();
      const timings = new StatementTimings();
      current = timings;
      const run = runner(v, timedSql(sql, timings, label));
      let appended = 0;
      let lastPositions: Appended = [];
      const m = await measure(async () => {
        let nextBatch = 0;
        let maxPosition = 0;
        await Promise.all(Array.from({ length: k }, async () => {
          while (nextBatch < requests.length) {
            const r = await run(requests[nextBatch++]!);
            appended += r.length;
            maxPosition = Math.max(maxPosition, ...r.map((x) => x.globalPosition));
          }
        }));
        lastPositions = [{ id: '', globalPosition: maxPosition }];
      });
      if (appended !== N) throw new Error(`${spec}: appended ${appended} of ${N}`);
      const check = await sql.query<{ n: number; bad: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE stream_position <> 1)::int AS bad FROM events`);
      if (check.rows[0]!.n !== N || check.rows[0]!.bad !== 0) throw new Error(`${v}: table check failed ${JSON.stringify(check.rows[0])}`);
      if (v !== 'raw_copy' && lastPositions.at(-1)!.globalPosition !== N) throw new Error(`${v}: last position ${lastPositions.at(-1)!.globalPosition}`);
      const rate = perSecond(N, m.ms);
      figures[spec] = round(rate);
      log();
      log(`${spec}: ${fmt(rate)} events/s (${seconds(m.ms)}); ${describeCpu(m)}`);
      for (const [name, ms] of [...timings.ms.entries()].sort((a, b) => b[1] - a[1])) {
        log(`  ${name.padEnd(20)} ${seconds(ms).padStart(9)}  ${k === 1 ? `${((ms / m.ms) * 100).toFixed(0).padStart(3)}%` : 'overlapping'}  (${((ms * 1000) / timings.calls.get(name)!).toFixed(0)} us per call)`);
      }
      const rest = m.ms - timings.total();
      if (k === 1) log(`  ${'rest'.padEnd(20)} ${seconds(rest).padStart(9)}  ${((rest / m.ms) * 100).toFixed(0).padStart(3)}%  (BEGIN/COMMIT, JS)`);
    }

    // Client-side encoding of the current insert's parameters (what pg does before sending).
    const sample = rowsOf(requests[0]!);
    for (const r of sample) r.dataText = JSON.stringify(r.data);
    const positions = sample.map(() => 1);
    const prepare = (pg as unknown as { utils: { prepareValue(v: unknown): unknown } }).utils.prepareValue;
    const reps = Math.max(1, Math.floor(N / BATCH));
    const enc = await measure(async () => {
      for (let i = 0; i < reps; i++) {
        for (const a of [sample.map((r) => r.id), sample.map((r) => r.streamId), positions, sample.map((r) => r.type), sample.map((r) => r.schemaVersion),
          sample.map((r) => JSON.stringify(r.data)), sample.map((r) => r.causationId), sample.map((r) => r.correlationId), sample.map((r) => r.occurredAt)]) prepare(a);
      }
    });
    const encJson = await measure(async () => { for (let i = 0; i < reps; i++) jsonRows(sample, positions); });
    const encCopy = await measure(async () => { for (let i = 0; i < reps; i++) copyLines(sample, positions); });
    log();
    log(`client-side encoding per ${fmt(BATCH)}-event batch: JSON.stringify per row + pg array literals ${(enc.ms / reps).toFixed(2)} ms, `
      + `one JSON array ${(encJson.ms / reps).toFixed(2)} ms, COPY text ${(encCopy.ms / reps).toFixed(2)} ms`);

    // Server-side time of each insert statement alone, on one batch, rolled back.
    await reset();
    log(`one ${fmt(BATCH)}-event insert alone, BEGIN; statement; ROLLBACK, ${REPS} times: client wall (median) and backend CPU (/proc) per statement:`);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const server: Record<string, { wall_ms: number; backend_cpu_ms: number | null }> = {};
    try {
      const { rows: [me] } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // Fresh ids and streams for every statement (a reused id would meet its rolled-back index entries).
      const fresh = (): Row[] => sample.map((r) => ({ ...r, id: randomUUID(), streamId: `one-${randomUUID()}` }));
      const arrays = (rows: Row[]) => [rows.map((r) => r.id), rows.map((r) => r.streamId), positions, rows.map((r) => r.type), rows.map((r) => r.schemaVersion),
        rows.map((r) => JSON.stringify(r.data)), rows.map((r) => r.causationId), rows.map((r) => r.correlationId), rows.map((r) => r.occurredAt)];
      const unnest = 'unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[], $7::uuid[], $8::uuid[], $9::timestamptz[]) AS x(e, s, p, t, v, d, c, k, o)';
      const recordset = 'AS x(e uuid, s text, p bigint, t text, v int, d jsonb, c uuid, k uuid, o timestamptz)';
      // Each case prepares its input outside the timing (JS-side encoding is measured above); pg's
      // own parameter encoding and the transfer stay inside, as they do in an append.
      const cases: [string, (rows: Row[]) => () => Promise<unknown>][] = [
        ['insert: unnest text[], d::jsonb (current)', (rows) => { const a = arrays(rows); return () => client.query(`INSERT INTO events (${COLUMNS}) SELECT e, s, p, t, v, d::jsonb, c, k, o FROM ${unnest} RETURNING event_id, global_position`, a); }],
        ['insert: jsonb_to_recordset($1::jsonb)', (rows) => { const j = jsonRows(rows, positions); return () => client.query(`INSERT INTO events (${COLUMNS}) SELECT e, s, p, t, v, d, c, k, o FROM jsonb_to_recordset($1::jsonb) ${recordset} RETURNING event_id, global_position`, [j]); }],
        ['insert: json_to_recordset($1::json)', (rows) => { const j = jsonRows(rows, positions); return () => client.query(`INSERT INTO events (${COLUMNS}) SELECT e, s, p, t, v, d, c, k, o FROM json_to_recordset($1::json) ${recordset} RETURNING event_id, global_position`, [j]); }],
        ['insert: COPY FROM STDIN', (rows) => { const c = copyLines(rows, positions); return () => pipeline(Readable.from([c]), client.query(copyFrom(`COPY events (${COLUMNS}) FROM STDIN`))); }],
        ['no insert: unnest text[] only (array parse)', (rows) => { const a = arrays(rows); return () => client.query(`SELECT count(*) FROM ${unnest}`, a); }],
        ['no insert: unnest text[] + d::jsonb', (rows) => { const a = arrays(rows); return () => client.query(`SELECT count(d::jsonb) FROM ${unnest}`, a); }],
        ['no insert: $1::jsonb array only', (rows) => { const j = jsonRows(rows, positions); return () => client.query('SELECT jsonb_array_length($1::jsonb)', [j]); }],
      ];
      for (const [name, run] of cases) {
        const walls: number[] = [];
        const cpu0 = backendCpuMs(me!.pid);
        for (let i = 0; i < REPS; i++) {
          const go = run(fresh());
          await client.query('BEGIN');
          const t0 = performance.now();
          await go();
          walls.push(performance.now() - t0);
          await client.query('ROLLBACK');
        }
        const cpu1 = backendCpuMs(me!.pid);
        walls.sort((a, b) => a - b);
        const cpu = cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / REPS;
        server[name] = { wall_ms: round(walls[walls.length >> 1]!, 1), backend_cpu_ms: cpu === null ? null : round(cpu, 1) };
        log(`  ${name.padEnd(44)} wall ${walls[walls.length >> 1]!.toFixed(1).padStart(5)} ms, backend CPU ${cpu === null ? 'n/a' : cpu.toFixed(1).padStart(5)} ms`);
      }
    } finally {
      await client.end();
    }
    emit({
      name: 'append-prototypes', n: N, batch: BATCH, events_per_s: figures, baseline: 'store',
      ratio: Object.fromEntries(VARIANTS.map((v) => [v, round((figures[v] ?? 0) / (figures.store ?? 1), 3)])),
      ratio_to_raw_copy: Object.fromEntries(VARIANTS.map((v) => [v, figures.raw_copy ? round((figures[v] ?? 0) / figures.raw_copy, 3) : null])),
      concurrency_note: 'name@K: K appends in flight',
      encode_ms_per_batch: { arrays: round(enc.ms / reps, 2), json: round(encJson.ms / reps, 2), copy: round(encCopy.ms / reps, 2) },
      one_batch: server,
    });
  } finally {
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
