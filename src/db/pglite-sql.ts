import { mkdirSync } from 'node:fs';
import type { Queryable, Sql } from './sql.ts';

/**
 * Embedded PostgreSQL (PGlite). It has one session, so every statement and transaction goes
 * through one queue: a transaction in progress owns the session until it ends.
 */
export async function openPglite(dataDir: string | undefined): Promise<Sql> {
  const { PGlite } = await import('@electric-sql/pglite');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const db = new PGlite(dataDir);
  await db.waitReady;
  await db.exec('SET search_path TO oeld_proj, public');

  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => {});
    return run;
  };
  const raw: Queryable = {
    query: async (text, params) => {
      const r = await db.query(text, params as unknown[]);
      return { rows: r.rows as never[] };
    },
  };
  const runTransaction = async <T>(fn: (tx: Queryable) => Promise<T>): Promise<T> => {
    await db.exec('BEGIN');
    try {
      const result = await fn(raw);
      await db.exec('COMMIT');
      return result;
    } catch (err) {
      await db.exec('ROLLBACK').catch(() => {});
      throw err;
    }
  };
  const sql: Sql = {
    kind: 'pglite',
    query: (text, params) => serial(() => raw.query(text, params)) as never,
    transaction: (fn) => serial(() => runTransaction(fn)),
    // One session only: a "session" is the whole database, serialised like everything else.
    session: (fn) => fn(sql),
    exec: (script) => serial(async () => { await db.exec(script); }),
    close: () => serial(() => db.close()),
  };
  return sql;
}
