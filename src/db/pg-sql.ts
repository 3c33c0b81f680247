import pg from 'pg';
import type { Queryable, Sql } from './sql.ts';
import { isTransientDatabaseError } from './transient-errors.ts';

// int8 (bigint) and xid8 come back as strings by default; positions fit in a JS number for
// any log this daemon will hold (2^53 events), so parse int8 as number. xid8 stays a string.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PostgresOptions {
  max?: number;
  applicationName?: string;
  /** Longest wait for a new connection (or for a free one in the pool), ms. */
  connectTimeoutMs?: number;
  /** Server-side limit on one statement, ms (0: none). */
  statementTimeoutMs?: number;
  /** Client-side limit on one query's answer, ms: past it the connection is taken as dead and dropped (0: none). */
  queryTimeoutMs?: number;
  /** Hears errors of connections lost between queries (a restart, a reset); they are replaced on next use. */
  onConnectionError?: (err: Error) => void;
}

/** Defaults for a daemon that must notice a silent network in seconds, not hours. */
export const POSTGRES_DEFAULTS = { connectTimeoutMs: 5000, statementTimeoutMs: 60_000, queryTimeoutMs: 65_000 } as const;

/** pg Pool adapter; the search path puts the projection schema first so readers see live projections. */
export function openPostgres(connectionString: string, options: PostgresOptions = {}): Sql {
  const statementTimeoutMs = options.statementTimeoutMs ?? POSTGRES_DEFAULTS.statementTimeoutMs;
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'oeld',
    options: '-c search_path=oeld_proj,public',
    connectionTimeoutMillis: options.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs,
    ...(statementTimeoutMs > 0 ? {
      statement_timeout: statementTimeoutMs,
      // A transaction left open by a client that vanished must not hold its row locks (a Kafka
      // partition's offset row, for one) until the server's TCP keepalive notices: hours.
      idle_in_transaction_session_timeout: statementTimeoutMs,
    } : {}),
    ...((options.queryTimeoutMs ?? POSTGRES_DEFAULTS.queryTimeoutMs) > 0 ? { query_timeout: options.queryTimeoutMs ?? POSTGRES_DEFAULTS.queryTimeoutMs } : {}),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  const onError = options.onConnectionError ?? (() => {});
  // The pool listens for errors only on idle clients; a client checked out (a transaction, the
  // leader's session) whose connection dies emits 'error' too, and with no listener that event
  // ends the process. Every client gets one for its whole life; its next query then fails.
  pool.on('connect', (client) => { client.on('error', onError); });
  pool.on('error', onError);
  return fromPool(pool);
}

/** Returns a client to the pool, or drops it when its connection may be broken or stuck. */
function release(client: pg.PoolClient, err: unknown): void {
  client.release(err !== undefined && isTransientDatabaseError(err) ? (err as Error) : undefined);
}

function fromPool(pool: pg.Pool): Sql {
  const sql: Sql = {
    kind: 'postgres',
    query: (text, params) => pool.query(text, params as unknown[]) as never,
    async transaction(fn) {
      const client = await pool.connect();
      let failure: unknown;
      try {
        await client.query('BEGIN');
        const result = await fn(client as unknown as Queryable);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        failure = err;
        await client.query('ROLLBACK').catch((rollbackErr) => { failure = rollbackErr; });
        throw err;
      } finally {
        release(client, failure);
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
