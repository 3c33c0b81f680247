/**
 * Errors that say the database is away for now (a restart, a failover, a reset or silent network,
 * a server refusing connections), as opposed to errors in what was asked of it. Work that fails
 * with one of these is retried once the database answers again; anything else is a real failure.
 */

// SQLSTATE classes and codes: connection exceptions, shutdowns, resource limits, and cancellations
// by statement_timeout (57014) or lock_timeout (55P03), which a stalled server causes too.
const TRANSIENT_CODES = new Set(['57P01', '57P02', '57P03', '53300', '53400', '57014', '55P03', '40001', '40P01']);
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
// node-postgres reports a dropped or silent connection with these messages and no code.
const TRANSIENT_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Query read timeout/i,
  /is not queryable/i,
  /the database is not answering/i,
  /Client has encountered a connection error/i,
];

export function isTransientDatabaseError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && e !== undefined && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (code.startsWith('08') || TRANSIENT_CODES.has(code) || TRANSIENT_NODE_CODES.has(code))) return true;
    if (typeof message === 'string' && TRANSIENT_MESSAGES.some((m) => m.test(message))) return true;
  }
  return false;
}

/** Thrown when a query gets no answer in time: the database or the network to it is silent. */
export class DatabaseTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: the database is not answering (no reply within ${ms} ms)`);
    this.name = 'DatabaseTimeoutError';
  }
}

/**
 * `promise`, or a DatabaseTimeoutError after `ms`. The promise keeps running; its eventual failure
 * is swallowed here so that it cannot become an unhandled rejection.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  promise.catch(() => {});
  let timer!: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new DatabaseTimeoutError(what, ms)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
