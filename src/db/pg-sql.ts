import pg from 'pg';
import type { Queryable, Sql } from './sql.ts';

// int8 (bigint) and xid8 come back as strings by default; positions fit in a JS number for
// any log this daemon will hold (2^53 events), so parse int8 as number. xid8 stays a string.
pg.types.setTypeParser(20, (v) => Number(v));

/** pg Pool adapter; the search path puts the projection schema first so readers see live projections. */
export function openPostgres(connectionString: string, options: { max?: number; applicationName?: string } = {}): Sql {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'oeld',
    options: '-c search_path=oeld_proj,public',
  });
  // An idle client losing its connection must not crash the daemon; the next query reconnects.
  pool.on('error', () => {});
  return fromPool(pool);
}

function fromPool(pool: pg.Pool): Sql {
  const sql: Sql = {
    kind: 'postgres',
    query: (text, params) => pool.query(text, params as unknown[]) as never,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(client as unknown as Queryable);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async session(fn) {
      const client = await pool.connect();
      const s: Sql = {
        kind: 'postgres',
        query: (text, params) => client.query(text, params as unknown[]) as never,
        async transaction(inner) {
          await client.query('BEGIN');
          try {
            const r = await inner(client as unknown as Queryable);
            await client.query('COMMIT');
            return r;
          } catch (err) {
            await client.query('ROLLBACK').catch(() => {});
            throw err;
          }
        },
        session: (inner) => inner(s),
        exec: async (script) => { await client.query(script); },
        close: async () => {},
      };
      try {
        return await fn(s);
      } finally {
        // A session may hold advisory locks; destroying the connection releases them for sure.
        client.release(true);
      }
    },
    exec: async (script) => { await pool.query(script); },
    close: () => pool.end(),
  };
  return sql;
}
