/**
 * Shared helpers for the benchmarks: a fresh database per run, env-configurable sizes, CPU
 * accounting for the node process and the PostgreSQL server, and the final `BENCH {json}` line.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { migrate } from '../src/db/migrate.ts';
import { openPostgres } from '../src/db/pg-sql.ts';
import type { Queryable, Sql } from '../src/db/sql.ts';

/** The server the benchmarks run against (its `postgres` database is used to create and drop). */
export const SERVER_URL = process.env.OELD_BENCH_DATABASE_URL ?? process.env.OELD_TEST_DATABASE_URL
  ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase { name: string; url: string; sql: Sql; drop(): Promise<void> }

/**
 * CREATE DATABASE oeld_bench_<random>, migrated; drop() closes the pool and drops it. The pool has
 * the daemon's statement and query time limits, unless `untimed` (a benchmark that builds a long
 * log in a few statements).
 */
export async function benchDatabase(options: { max?: number; untimed?: boolean } = {}): Promise<BenchDatabase> {
  const name = `oeld_bench_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const sql = openPostgres(url.toString(), { max: options.max ?? 4, applicationName: 'oeld-bench', ...(options.untimed ? { statementTimeoutMs: 0, queryTimeoutMs: 0 } : {}) });
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    // After a failure a client may still be checked out (a COPY cut off midway), and pool.end()
    // waits for it forever; give it a few seconds, then drop anyway: FORCE ends its connections.
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      sql.close().then(() => true, () => true),
      new Promise<false>((r) => { timer = setTimeout(() => r(false), 5000); }),
    ]);
    clearTimeout(timer);
    if (!closed) {
      // The stuck client will emit "terminating connection due to administrator command" (57P01)
      // and "Connection terminated unexpectedly": expected here, and not worth a crash that would
      // hide the error that got us here.
      process.on('uncaughtException', (err) => {
        if ((err as { code?: string }).code !== '57P01' && !/Connection terminated/.test(err.message)) throw err;
      });
    }
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  // A benchmark interrupted with ^C still removes its database.
  const onSignal = () => { void drop().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await migrate(sql);
  } catch (err) {
    await drop();
    throw err;
  }
  return { name, url: url.toString(), sql, drop };
}

async function admin(statement: string): Promise<void> {
  const c = new pg.Client({ connectionString: SERVER_URL });
  await c.connect();
  try { await c.query(statement); } finally { await c.end(); }
}

/** An integer of at least `min` (default 1) from the environment (underscores allowed: 1_000_000), or the default. */
export function envInt(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer of at least ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export const round = (x: number, digits = 0): number => Number(x.toFixed(digits));
export const perSecond = (n: number, ms: number): number => (ms > 0 ? (n * 1000) / ms : 0);
export const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

export function log(line = ''): void { console.log(line); }

/** A process's resident memory in MB, from /proc. */
export const rssMb = (pid: number): number => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)![1]) / 1024;

/** The machine-readable result: the last line of the output. */
export function emit(result: Record<string, unknown>): void {
  console.log(`BENCH ${JSON.stringify(result)}`);
}

const TICKS = 100; // USER_HZ: /proc reports CPU times in 1/100 s on Linux

/**
 * CPU seconds used so far by every process named `postgres` on this machine (backends, WAL writer,
 * checkpointer, ...), including the backends that already exited (the postmaster's children time).
 * null where /proc is not readable (another OS, or a remote server): the figures are then omitted.
 */
export function postgresCpuSeconds(): number | null {
  try {
    let ticks = 0;
    let found = false;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (comm !== 'postgres') continue;
      const f = stat.slice(close + 2).split(' '); // f[0] is field 3 (state)
      const ppidComm = commOf(f[1]!);
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
      if (ppidComm !== 'postgres') ticks += Number(f[13]) + Number(f[14]); // the postmaster: cutime, cstime
      found = true;
    }
    return found ? ticks / TICKS : null;
  } catch {
    return null;
  }
}

function commOf(pid: string): string | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
  } catch { return undefined; }
}

/** Wall time and CPU (this process, the PostgreSQL server) of one measured phase. */
export interface Measured { ms: number; nodeCpuS: number; pgCpuS: number | null }

export async function measure(fn: () => Promise<void>): Promise<Measured> {
  const pg0 = postgresCpuSeconds();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const pg1 = postgresCpuSeconds();
  return { ms, nodeCpuS: (cpu.user + cpu.system) / 1e6, pgCpuS: pg0 === null || pg1 === null ? null : pg1 - pg0 };
}

export function describeCpu(m: Measured): string {
  const wall = m.ms / 1000;
  const pgPart = m.pgCpuS === null ? 'postgres CPU n/a' : `postgres CPU ${m.pgCpuS.toFixed(2)} s (${((m.pgCpuS / wall) * 100).toFixed(0)}% of wall)`;
  return `node CPU ${m.nodeCpuS.toFixed(2)} s (${((m.nodeCpuS / wall) * 100).toFixed(0)}% of wall), ${pgPart}`;
}

/** Per-statement timings of what runs inside a transaction, keyed by a label derived from the SQL. */
export class StatementTimings {
  readonly ms = new Map<string, number>();
  readonly calls = new Map<string, number>();
  add(label: string, ms: number): void {
    this.ms.set(label, (this.ms.get(label) ?? 0) + ms);
    this.calls.set(label, (this.calls.get(label) ?? 0) + 1);
  }
  total(): number { let t = 0; for (const v of this.ms.values()) t += v; return t; }
}

/**
 * Wraps an Sql so that every statement is timed, inside transaction() or not (client-side:
 * parameter encoding, round trip, server execution and result parsing). The code under test is
 * unchanged; only the adapter it is given reports what each statement cost.
 */
export function timedSql(sql: Sql, timings: StatementTimings, label: (text: string) => string): Sql {
  const wrap = (q: Queryable): Queryable => ({
    query<R>(text: string, params?: unknown[]) {
      // Anything but SQL text (a pg-copy-streams stream) goes straight through, untimed here.
      if (typeof text !== 'string') return q.query<R>(text, params);
      const t0 = performance.now();
      return q.query<R>(text, params).finally(() => timings.add(label(text), performance.now() - t0));
    },
  });
  const top = wrap(sql);
  return {
    kind: sql.kind,
    query: (text, params) => top.query(text, params),
    transaction: (fn) => sql.transaction((tx) => fn(wrap(tx))),
    session: (fn) => sql.session(fn),
    exec: (script) => sql.exec(script),
    close: () => sql.close(),
  };
}

/** Escapes a value for COPY ... FROM STDIN in text format; null is \N. */
export function copyField(v: string | number | null): string {
  if (v === null) return '\\N';
  const s = String(v);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

/** What the serving benchmark's clients ask (bench/serving.ts, bench/serving-clients.ts). */
export const SERVING_QUESTIONS = ['How long is the warranty?', 'Where is my order?', 'Can I return opened items?', 'Do you ship to Norway?', 'What does express delivery cost?'];
