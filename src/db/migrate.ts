import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from './sql.ts';

export const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url).pathname;

export interface MigrationFile { name: string; sql: string; checksum: string }

export function readMigrations(dir = MIGRATIONS_DIR): MigrationFile[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * Applies the migrations not yet recorded, each in its own transaction, under an advisory lock
 * so that two daemons starting together do not race. An applied migration whose file changed
 * afterwards is an error: history must not be rewritten under a running database.
 */
export async function migrate(sql: Sql, files = readMigrations()): Promise<string[]> {
  return sql.session(async (s) => {
    await s.query('SELECT pg_advisory_lock(hashtext($1))', ['oeld:migrate']);
    try {
      await s.exec(`CREATE TABLE IF NOT EXISTS public.oeld_migrations (
        name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await s.query<{ name: string; checksum: string }>('SELECT name, checksum FROM public.oeld_migrations');
      const applied = new Map(rows.map((r) => [r.name, r.checksum]));
      const done: string[] = [];
      for (const f of files) {
        const prior = applied.get(f.name);
        if (prior !== undefined) {
          if (prior !== f.checksum) throw new Error(`migration ${f.name} was changed after it was applied (checksum ${prior.slice(0, 12)} in the database, ${f.checksum.slice(0, 12)} on disk)`);
          continue;
        }
        // name and checksum are [a-z0-9_.] by construction, so they are safe as literals here.
        try {
          // The store's tables live in public whatever the connection's search path (which puts the
          // projection schema first); a table created there would be dropped by the next replay.
          // An index over a long log may take longer than the daemon's statement timeout.
          await s.exec(`BEGIN;\nSET LOCAL search_path TO public;\nSET LOCAL statement_timeout = 0;\n${f.sql}\n;INSERT INTO public.oeld_migrations (name, checksum) VALUES ('${f.name}', '${f.checksum}');\nCOMMIT;`);
        } catch (err) {
          await s.exec('ROLLBACK').catch(() => {});
          throw new Error(`migration ${f.name} failed: ${(err as Error).message}`);
        }
        done.push(f.name);
      }
      return done;
    } finally {
      await s.query('SELECT pg_advisory_unlock(hashtext($1))', ['oeld:migrate']);
    }
  });
}
