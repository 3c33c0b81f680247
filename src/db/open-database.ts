import { join } from 'node:path';
import type { Config } from '../config.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { openPglite } from './pglite-sql.ts';
import { openPostgres } from './pg-sql.ts';
import type { Sql } from './sql.ts';

/** The server when DATABASE_URL is set, else embedded PGlite under the data directory (locked to this process). */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'dbPoolMax' | 'dbConnectTimeoutMs' | 'dbStatementTimeoutMs' | 'dbQueryTimeoutMs'>,
  onConnectionError?: (err: Error) => void,
): Promise<Sql> {
  if (config.databaseUrl) {
    return openPostgres(config.databaseUrl, {
      max: config.dbPoolMax, connectTimeoutMs: config.dbConnectTimeoutMs, statementTimeoutMs: config.dbStatementTimeoutMs, queryTimeoutMs: config.dbQueryTimeoutMs,
      ...(onConnectionError ? { onConnectionError } : {}),
    });
  }
  const dir = join(config.dataDir, 'pglite');
  const unlock = lockDataDir(dir);
  try {
    const sql = await openPglite(dir);
    return { ...sql, close: async () => { try { await sql.close(); } finally { unlock(); } } };
  } catch (err) {
    unlock();
    throw err;
  }
}

export const describeDatabase = (config: Pick<Config, 'databaseUrl' | 'dataDir'>): string =>
  config.databaseUrl ? `PostgreSQL at ${redact(config.databaseUrl)}` : `embedded PostgreSQL (PGlite) in ${join(config.dataDir, 'pglite')}`;

/** A URL for logs: the password never leaves the process. */
export function redact(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return '(unparseable URL)'; }
}
