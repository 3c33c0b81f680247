/**
 * The one database interface the rest of oeld sees. Two adapters implement it: a pg Pool
 * (PostgreSQL server) and PGlite (embedded). Everything above this line is backend-agnostic.
 */
export interface Queryable {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

export interface Sql extends Queryable {
  /** Runs fn in one transaction on one connection; commits when fn resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs fn on one dedicated session (for session-level advisory locks); the session is released after. */
  session<T>(fn: (s: Sql) => Promise<T>): Promise<T>;
  /** Runs a script of several statements without parameters (migrations, DDL). */
  exec(script: string): Promise<void>;
  readonly kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}
