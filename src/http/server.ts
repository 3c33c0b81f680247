import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { isTransientDatabaseError } from '../db/transient-errors.ts';
import { jsonNestingDepth } from '../events/json-depth.ts';
import { ValidationError } from '../events/validate.ts';
import type { Logger } from '../log.ts';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Behind the admin token (OELD_ADMIN_TOKEN); off without one. */
  admin?: boolean;
  /** The OpenAI-compatible API (/v1/*): behind OELD_API_TOKEN when set; without one, open on a loopback address and off elsewhere. */
  api?: boolean;
  /** The handler gets the body's bytes as they came (a Buffer of at most maxBytes), not parsed JSON. */
  rawBody?: { maxBytes: number };
  handle: (body: unknown, req: IncomingMessage, res: ServerResponse) => Promise<RouteResult>;
}

/** A handler's answer; `streamed`: the handler wrote the response itself (server-sent events). */
export type RouteResult = { status: number; body: unknown; contentType?: string; headers?: Record<string, string> } | { streamed: true };

/** Who may call which routes. */
export interface HttpAuth {
  adminToken?: string;
  apiToken?: string;
  /** The API without a token: true on a loopback bind (only this machine can call it). */
  apiOpenWithoutToken?: boolean;
}

/** Whether a host to bind is loopback only (127.0.0.0/8, ::1, localhost). */
export const isLoopbackHost = (host: string): boolean => /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/i.test(host);

export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) { super(message); }
}

const errorType = (status: number): string =>
  status === 401 ? 'authentication_error' : status === 404 ? 'not_found_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';

const MAX_BODY = 1024 * 1024;
const MAX_BODY_DEPTH = 64;

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    // The rest of the body is never read: the connection cannot carry another request, so it closes after the answer.
    if (size > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`, { connection: 'close' });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const bytes = await readBody(req, MAX_BODY);
  if (bytes.length === 0) return {};
  if (jsonNestingDepth(bytes, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) throw new HttpError(400, `body nests arrays and objects more than ${MAX_BODY_DEPTH} levels deep`);
  try { return JSON.parse(bytes.toString('utf8')); } catch (err) { throw new HttpError(400, `body is not JSON: ${(err as Error).message}`); }
}

function authorised(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  // Both tokens are checked in constant time; the scheme's case does not matter (RFC 7235).
  const given = Buffer.from(/^bearer /i.test(header) ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/**
 * One HTTP server for metrics, health, the admin API and the OpenAI-compatible API. Admin routes
 * exist only when a token is configured, and answer 401 without the right bearer token; API
 * routes as HttpAuth says. Errors are JSON; on API routes in OpenAI's shape
 * (`{"error": {"message", "type", "code"}}`) so that OpenAI clients show the message.
 */
export function createHttpServer(routes: Route[], auth: HttpAuth, log: Logger): Server {
  return createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const candidates = routes.filter((r) => r.path === path);
    const route = candidates.find((r) => r.method === req.method);
    const send = (status: number, body: unknown, contentType = 'application/json', headers: Record<string, string> = {}) => {
      if (res.headersSent) { res.end(); return; }
      if (headers.connection === 'close') res.once('finish', () => req.destroy());
      res.writeHead(status, { 'content-type': contentType, ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    };
    const fail = (status: number, message: string, headers: Record<string, string> = {}) =>
      send(status, candidates.some((r) => r.api) ? { error: { message, type: errorType(status), code: status } } : { error: message }, 'application/json', headers);
    try {
      if (candidates.length && route?.admin && auth.adminToken === undefined) throw new HttpError(404, 'the admin API is off: set OELD_ADMIN_TOKEN to enable it');
      if (candidates.length && route?.api && auth.apiToken === undefined && !auth.apiOpenWithoutToken) {
        throw new HttpError(404, 'the OpenAI-compatible API is off on a non-loopback address without a token: set OELD_API_TOKEN to enable it');
      }
      if (!candidates.length) throw new HttpError(404, `no route ${path}`);
      if (!route) throw new HttpError(405, `${req.method} not allowed on ${path}`);
      if (route.admin && !authorised(req, auth.adminToken!)) throw new HttpError(401, 'missing or wrong bearer token');
      if (route.api && auth.apiToken !== undefined && !authorised(req, auth.apiToken)) throw new HttpError(401, 'missing or wrong bearer token (OELD_API_TOKEN)');
      const body = req.method !== 'POST' ? undefined : route.rawBody ? await readBody(req, route.rawBody.maxBytes) : await readJson(req);
      const r = await route.handle(body, req, res);
      if ('streamed' in r) return;
      send(r.status, r.body, r.contentType, r.headers);
    } catch (err) {
      // Our own messages (HttpError, ValidationError) go to the client; anything else stays in the
      // log, under an id the client is given: internal errors can quote SQL, input and paths.
      if (err instanceof HttpError) { fail(err.status, err.message, err.headers); return; }
      if (err instanceof ValidationError) { fail(400, err.message); return; }
      const requestId = randomUUID();
      if (isTransientDatabaseError(err)) {
        log.warn({ err, path, requestId }, 'request failed: the database is away');
        fail(503, `the database is not answering; try again shortly (request ${requestId})`, { 'retry-after': '5' });
        return;
      }
      log.error({ err, path, requestId }, 'request failed');
      fail(500, `internal error (request ${requestId}): the daemon's log has the details`);
    }
  });
}
