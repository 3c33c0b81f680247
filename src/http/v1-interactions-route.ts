import type { IncomingMessage } from 'node:http';
import { deadLetterPayload } from '../ingest/dead-letters.ts';
import { importLines, type LineResult } from '../ingest/import-lines.ts';
import { bufferLines, type RawLine } from '../ingest/read-lines.ts';
import { jsonNestingDepth } from '../events/json-depth.ts';
import type { EventStore } from '../store/event-store.ts';
import { HTTP_DEAD_LETTER_SOURCE } from './intake-route.ts';
import { HttpError, type Route } from './server.ts';

export const V1_INTERACTIONS_PATH = '/v1/interactions';

/** How a body holds its records, by its content type (and, for JSON, its first character). */
function recordsOf(body: Buffer, req: IncomingMessage, maxDepth: number): RawLine[] {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (['application/x-ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/jsonlines'].includes(type)) return [...bufferLines(body)];
  if (type !== 'application/json' && type !== '') {
    throw new HttpError(415, `content-type ${JSON.stringify(type)} is not one oeld reads: send application/json (one record or an array of them) or application/x-ndjson (a record per line)`);
  }
  const first = body.findIndex((c) => c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d);
  if (first === -1) throw new HttpError(400, 'the body is empty: send a record, an array of records or JSON lines');
  if (body[first] !== 0x5b) return [{ number: 1, offset: 0, size: body.length, bytes: body }];
  // An array: each element is one record, as its own JSON text (so its id, when derived, is a hash of that text).
  if (jsonNestingDepth(body, maxDepth + 1) > maxDepth + 1) throw new HttpError(400, `the body nests arrays and objects more than ${maxDepth} levels deep inside its array (OELD_MAX_JSON_DEPTH)`);
  let items: unknown;
  try { items = JSON.parse(body.toString('utf8')); } catch (err) { throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`); }
  if (!Array.isArray(items)) throw new HttpError(400, 'the body starts with [ but is not an array');
  return items.map((item, i) => {
    const bytes = Buffer.from(JSON.stringify(item));
    return { number: i + 1, offset: 0, size: bytes.length, bytes };
  });
}

/**
 * POST /v1/interactions: logs sent by a service while the daemon runs (the way in for embedded
 * deployments and services without Kafka). The body is one record, an array of records
 * (application/json) or a record per line (application/x-ndjson); each record goes through the
 * same decoder, dead letters and idempotence as Kafka and files, and the answer has a result per
 * record: appended, duplicate (already stored: a retried request appends nothing twice) or
 * rejected with its reason. 200 when none was rejected, 207 when some were.
 */
export function v1InteractionsRoute(store: EventStore, o: { maxEventBytes: number; maxJsonDepth: number; maxBodyBytes?: number }): Route {
  return {
    method: 'POST', path: V1_INTERACTIONS_PATH, api: true,
    rawBody: { maxBytes: o.maxBodyBytes ?? Math.max(16 * 1024 * 1024, o.maxEventBytes + 1) },
    handle: async (body, req) => {
      const records = recordsOf(body as Buffer, req, o.maxJsonDepth);
      const results: LineResult[] = [];
      const report = await importLines(store, records, {
        deadLetterSource: HTTP_DEAD_LETTER_SOURCE,
        origin: (n) => `${V1_INTERACTIONS_PATH} record ${n}`,
        source: () => ({ kind: 'http' }),
        payload: async (line) => deadLetterPayload(line.bytes),
      }, { maxEventBytes: o.maxEventBytes, maxJsonDepth: o.maxJsonDepth, onLine: (r) => results.push(r) });
      const out = results.map(({ line, ...r }) => ({ index: line - 1, ...r }));
      return {
        status: report.rejectedCount > 0 ? 207 : 200,
        body: { records: out.length, appended: report.appended, duplicates: report.duplicates, rejected: report.rejectedCount, results: out },
      };
    },
  };
}
