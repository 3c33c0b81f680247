import type { EventStore } from '../store/event-store.ts';
import { deadLetterPayload } from '../ingest/dead-letters.ts';
import { importLines, type ImportReport } from '../ingest/import-lines.ts';
import { bufferLines } from '../ingest/read-lines.ts';
import type { Route } from './server.ts';

export const HTTP_DEAD_LETTER_SOURCE = 'http';
export const INTAKE_PATH = '/admin/interactions';

/**
 * POST /admin/interactions: interactions over HTTP, one JSON object per line (a single object is
 * one line), through the same decoder, dead letters and idempotence as Kafka and files. The
 * intake sets `source` to http. 200 when every line landed, 422 when some were rejected (the
 * report says which and why); a retried request appends nothing twice and records no dead letter
 * twice (a dead letter's origin is its line number, its key the line's bytes).
 */
export function intakeRoute(store: EventStore, o: { maxEventBytes: number; maxJsonDepth: number }): Route {
  return {
    method: 'POST', path: INTAKE_PATH, admin: true,
    rawBody: { maxBytes: Math.max(16 * 1024 * 1024, o.maxEventBytes + 1) },
    handle: async (body) => {
      const report: ImportReport = await importLines(store, bufferLines(body as Buffer), {
        deadLetterSource: HTTP_DEAD_LETTER_SOURCE,
        origin: (line) => `${INTAKE_PATH} line ${line}`,
        source: () => ({ kind: 'http' }),
        payload: async (line) => deadLetterPayload(line.bytes),
      }, { maxEventBytes: o.maxEventBytes, maxJsonDepth: o.maxJsonDepth });
      return { status: report.rejectedCount > 0 ? 422 : 200, body: report };
    },
  };
}
