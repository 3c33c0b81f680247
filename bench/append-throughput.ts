/**
 * Append throughput of EventStore.append on the PostgreSQL server.
 *
 * N InteractionRecorded events of about 1 KB (one request per event, one stream per interaction)
 * are appended in batches, once validated (the default) and once trusted. Baseline in the same
 * run: COPY ... FROM STDIN of the same rows, batch by batch (one transaction per batch, like the
 * appends), into a table made LIKE events INCLUDING ALL; a single COPY of all rows is shown too.
 *
 *   BENCH_APPEND_N      events per measured run      (default 200000)
 *   BENCH_APPEND_BATCH  events per append / COPY     (default 1000)
 *   BENCH_APPEND_BYTES  approximate event size       (default 1000)
 *
 * Per-statement times come from wrapping the Sql adapter handed to EventStore (src/ unchanged);
 * CPU figures from process.cpuUsage() and /proc for the PostgreSQL processes.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { STREAMS } from '../src/events/streams.ts';
import { CURRENT_SCHEMA_VERSION } from '../src/events/schemas.ts';
import { validateEventData } from '../src/events/validate.ts';
import type { NewEvent } from '../src/events/envelope.ts';
import { EventStore } from '../src/store/event-store.ts';
import type { AppendRequest } from '../src/store/append-events.ts';
import { interaction } from '../test/helpers/events.ts';
import {
  benchDatabase, copyField, describeCpu, emit, envInt, fmt, log, measure, perSecond, round, seconds,
  StatementTimings, timedSql, type Measured,
} from './lib.ts';

const N = envInt('BENCH_APPEND_N', 200_000);
const BATCH = envInt('BENCH_APPEND_BATCH', 1000);
const BYTES = envInt('BENCH_APPEND_BYTES', 1000);
const WARMUP = Math.min(N, 5 * BATCH);
const GOAL_RATE = 50_000;
const GOAL_RATIO = 0.5;

const COLUMNS = 'event_id, stream_id, stream_position, type, schema_version, data, causation_id, correlation_id, occurred_at';

const label = (text: string): string => {
  const t = text.trimStart();
  if (t.startsWith('SELECT event_id')) return 'select existing ids';
  if (t.startsWith('INSERT INTO streams')) return 'upsert streams';
  if (t.startsWith('INSERT INTO events')) return 'insert events';
  if (t.startsWith('WITH existing')) return 'append statement';
  return t.slice(0, 30).replace(/\s+/g, ' ');
};

function makeEvents(prefix: string, n: number): NewEvent[] {
  return Array.from({ length: n }, (_, i) => interaction(i, { bytes: BYTES, prefix }) as NewEvent);
}

const requestsOf = (events: NewEvent[]): AppendRequest[] =>
  events.map((e) => ({ streamId: STREAMS.interaction((e as NewEvent<'InteractionRecorded'>).data.interactionId), events: [e] }));

function batches<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** The COPY text of a batch: the same columns appendEvents writes, stream_position 1 (a new stream each). */
function copyText(events: NewEvent[]): string {
  let s = '';
  for (const e of events) {
    const streamId = STREAMS.interaction((e as NewEvent<'InteractionRecorded'>).data.interactionId);
    s += `${copyField(e.id)}\t${copyField(streamId)}\t1\t${e.type}\t${e.schemaVersion ?? CURRENT_SCHEMA_VERSION[e.type]}\t`
      + `${copyField(JSON.stringify(e.data))}\t\\N\t\\N\t${(e.occurredAt ?? new Date()).toISOString()}\n`;
  }
  return s;
}

async function main(): Promise<void> {
  const db = await benchDatabase({ max: 4 });
  const { sql } = db;
  try {
    log(`append-throughput: N=${fmt(N)} events of ~${BYTES} B, batches of ${fmt(BATCH)} (one request and one stream per event), database ${db.name}`);
    await sql.exec(`CREATE TABLE events_copy (LIKE events INCLUDING ALL)`);

    const events = makeEvents('bench', N);
    const avgBytes = events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e.data)), 0) / events.length;
    log(`event data: ${avgBytes.toFixed(0)} B of JSON on average`);
    const requestBatches = batches(requestsOf(events), BATCH);
    const eventBatches = batches(events, BATCH);

    const reset = async () => {
      await sql.exec('TRUNCATE events, streams, events_copy RESTART IDENTITY');
      await sql.exec('CHECKPOINT');
    };

    // Warm-up: JIT, connections, catalog caches; not measured.
    {
      const warm = new EventStore(sql);
      for (const b of batches(requestsOf(makeEvents('warmup', WARMUP)), BATCH)) await warm.append(b);
      for (const b of batches(makeEvents('warmup-trusted', WARMUP), BATCH)) await warm.append(requestsOf(b), { trusted: true });
      for (const b of batches(makeEvents('warmup-copy', WARMUP), BATCH)) await copyBatch(sql, b);
    }

    const runAppend = async (trusted: boolean, writers = 1) => {
      await reset();
      const timings = new StatementTimings();
      const store = new EventStore(timedSql(sql, timings, label));
      let appended = 0;
      // Several writers (e.g. Kafka partitions or daemons) append interleaved batches concurrently.
      const m = await measure(async () => {
        await Promise.all(Array.from({ length: writers }, async (_, w) => {
          for (let i = w; i < requestBatches.length; i += writers) {
            const r = await store.append(requestBatches[i]!, { trusted });
            appended += r.appended.length; // after the await: `x += await` would read x too early
          }
        }));
      });
      if (appended !== N) throw new Error(`appended ${appended} of ${N}`);
      const { rows } = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
      if (rows[0]!.n !== N) throw new Error(`events table holds ${rows[0]!.n}, expected ${N}`);
      return { m, timings };
    };

    const validated = await runAppend(false);
    report('EventStore.append (validated)', validated.m);
    breakdown(validated.m, validated.timings);

    const trusted = await runAppend(true);
    report('EventStore.append (trusted)', trusted.m);
    breakdown(trusted.m, trusted.timings);

    const twoWriters = await runAppend(false, 2);
    report('EventStore.append (validated, 2 concurrent writers)', twoWriters.m);

    // Validation alone (zod + storability scan), in this process, for the breakdown.
    const v = await measure(async () => {
      for (const e of events) validateEventData(e.type, CURRENT_SCHEMA_VERSION[e.type], e.data);
    });
    log(`  validateEventData alone: ${seconds(v.ms)} for ${fmt(N)} events = ${fmt(perSecond(N, v.ms))} events/s `
      + `(${((v.ms / validated.m.ms) * 100).toFixed(0)}% of the validated run's wall time)`);

    await reset();
    const copy = await measure(async () => { for (const b of eventBatches) await copyBatch(sql, b); });
    await expectCount(sql, 'events_copy', N);
    report(`COPY FROM STDIN, one COPY + transaction per ${fmt(BATCH)} rows (baseline)`, copy);

    await reset();
    const copyAll = await measure(() => copyBatch(sql, events));
    await expectCount(sql, 'events_copy', N);
    report('COPY FROM STDIN, all rows in one COPY (for reference)', copyAll);

    const rate = perSecond(N, validated.m.ms);
    const rateTrusted = perSecond(N, trusted.m.ms);
    const rateTwo = perSecond(N, twoWriters.m.ms);
    const rateCopy = perSecond(N, copy.ms);
    const ratio = rate / rateCopy;
    const ratioTrusted = rateTrusted / rateCopy;
    log();
    log(`ratio append/COPY: validated ${ratio.toFixed(2)}, trusted ${ratioTrusted.toFixed(2)}, validated with 2 writers ${(rateTwo / rateCopy).toFixed(2)} (${fmt(rateTwo)} events/s)`);
    log(`goal: >= ${fmt(GOAL_RATE)} events/s and >= ${GOAL_RATIO} of COPY -> `
      + `validated ${rate >= GOAL_RATE && ratio >= GOAL_RATIO ? 'MET' : 'NOT MET'}, `
      + `trusted ${rateTrusted >= GOAL_RATE && ratioTrusted >= GOAL_RATIO ? 'MET' : 'NOT MET'}`);

    emit({
      name: 'append-throughput',
      n: N, batch: BATCH, event_bytes: round(avgBytes),
      events_per_s: round(rate), events_per_s_trusted: round(rateTrusted), events_per_s_two_writers: round(rateTwo),
      seconds: round(validated.m.ms / 1000, 3), seconds_trusted: round(trusted.m.ms / 1000, 3),
      validate_only_events_per_s: round(perSecond(N, v.ms)),
      baseline: 'copy_from_stdin_per_batch',
      baseline_events_per_s: round(rateCopy), baseline_seconds: round(copy.ms / 1000, 3),
      copy_single_events_per_s: round(perSecond(N, copyAll.ms)),
      ratio: round(ratio, 3), ratio_trusted: round(ratioTrusted, 3),
      goal_events_per_s: GOAL_RATE, goal_ratio: GOAL_RATIO,
    });
  } finally {
    await db.drop();
  }
}

/** One COPY of these events into events_copy, in its own transaction. */
async function copyBatch(sql: import('../src/db/sql.ts').Sql, events: NewEvent[]): Promise<void> {
  await sql.transaction(async (tx) => {
    const client = tx as unknown as pg.PoolClient;
    const stream = client.query(copyFrom(`COPY events_copy (${COLUMNS}) FROM STDIN`));
    await pipeline(Readable.from([copyText(events)]), stream);
  });
}

async function expectCount(sql: import('../src/db/sql.ts').Sql, table: string, n: number): Promise<void> {
  const { rows } = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  if (rows[0]!.n !== n) throw new Error(`${table} holds ${rows[0]!.n}, expected ${n}`);
}

function report(what: string, m: Measured): void {
  log();
  log(`${what}: ${fmt(perSecond(N, m.ms))} events/s (${fmt(N)} in ${seconds(m.ms)})`);
  log(`  ${describeCpu(m)}`);
}

function breakdown(m: Measured, t: StatementTimings): void {
  const parts = [...t.ms.entries()].sort((a, b) => b[1] - a[1]);
  for (const [name, ms] of parts) {
    log(`  ${name.padEnd(20)} ${seconds(ms).padStart(9)}  ${((ms / m.ms) * 100).toFixed(0).padStart(3)}%  `
      + `(${((ms * 1000) / (t.calls.get(name) ?? 1)).toFixed(0)} us per call)`);
  }
  const rest = m.ms - t.total();
  log(`  ${'rest'.padEnd(20)} ${seconds(rest).padStart(9)}  ${((rest / m.ms) * 100).toFixed(0).padStart(3)}%  (checks, validation, JSON.stringify, BEGIN/COMMIT)`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
