import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPglite } from '../../src/db/pglite-sql.ts';
import { openPostgres } from '../../src/db/pg-sql.ts';
import { migrate } from '../../src/db/migrate.ts';
import type { Sql } from '../../src/db/sql.ts';

/** The server the suite runs against; scripts/test.sh makes sure it is up. */
export const SERVER_URL = process.env.OELD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase { name: string; url?: string; sql: Sql; drop(): Promise<void> }

/** A fresh, migrated PostgreSQL database on the server, dropped afterwards. */
export async function serverDatabase(): Promise<TestDatabase> {
  const name = `oeld_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const sql = openPostgres(url.toString(), { max: 12 });
  await migrate(sql);
  return {
    name, url: url.toString(), sql,
    async drop() {
      await sql.close().catch(() => {});
      const c = new pg.Client({ connectionString: SERVER_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh, migrated in-memory PGlite database. */
export async function embeddedDatabase(): Promise<TestDatabase> {
  const sql = await openPglite(undefined);
  await migrate(sql);
  return { name: 'pglite', sql, drop: () => sql.close() };
}

/** Both backends: the same suite runs against each. */
export const BACKENDS: { name: 'postgres' | 'pglite'; open: () => Promise<TestDatabase> }[] = [
  { name: 'postgres', open: serverDatabase },
  { name: 'pglite', open: embeddedDatabase },
];
