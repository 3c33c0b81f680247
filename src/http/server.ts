import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { isTransientDatabaseError } from '../db/transient-errors.ts';
import { jsonNestingDepth } from '../events/json-depth.ts';
import { ValidationError } from '../events/validate.ts';
import type { Logger } from '../log.ts';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  admin?: boolean;
  /** The handler gets the body's bytes as they came (a Buffer of at most maxBytes), not parsed JSON. */
  rawBody?: { maxBytes: number };
  handle: (body: unknown, req: IncomingMessage) => Promise<{ status: number; body: unknown; contentType?: string }>;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

const MAX_BODY = 1024 * 1024;
const MAX_BODY_DEPTH = 64;

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`);
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
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/**
 * One HTTP server for metrics, health and the admin API. Admin routes exist only when a token is
 * configured, and answer 401 without the right bearer token.
 */
export function createHttpServer(routes: Route[], adminToken: string | undefined, log: Logger): Server {
  return createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (status: number, body: unknown, contentType = 'application/json') => {
      res.writeHead(status, { 'content-type': contentType });
      res.end(typeof body === 'string' ? body : JSON.stringify(body, null, 2));
    };
    const candidates = routes.filter((r) => r.path === path);
    const route = candidates.find((r) => r.method === req.method);
    try {
      if (candidates.length && route?.admin && adminToken === undefined) throw new HttpError(404, 'the admin API is off: set OELD_ADMIN_TOKEN to enable it');
      if (!candidates.length) throw new HttpError(404, `no route ${path}`);
      if (!route) throw new HttpError(405, `${req.method} not allowed on ${path}`);
      if (route.admin && !authorised(req, adminToken!)) throw new HttpError(401, 'missing or wrong bearer token');
      const body = req.method !== 'POST' ? undefined : route.rawBody ? await readBody(req, route.rawBody.maxBytes) : await readJson(req);
      const r = await route.handle(body, req);
      send(r.status, r.body, r.contentType);
    } catch (err) {
      // Our own messages (HttpError, ValidationError) go to the client; anything else stays in the
      // log, under an id the client is given: internal errors can quote SQL, input and paths.
      if (err instanceof HttpError) { send(err.status, { error: err.message }); return; }
      if (err instanceof ValidationError) { send(400, { error: err.message }); return; }
      const requestId = randomUUID();
      if (isTransientDatabaseError(err)) {
        log.warn({ err, path, requestId }, 'request failed: the database is away');
        send(503, { error: `the database is not answering; try again shortly (request ${requestId})` });
        return;
      }
      log.error({ err, path, requestId }, 'request failed');
      send(500, { error: `internal error (request ${requestId}): the daemon's log has the details` });
    }
  });
}
