import type { NewEvent } from '../events/envelope.ts';
import { STREAMS } from '../events/streams.ts';
import type { EventStore } from '../store/event-store.ts';
import { deadLetterKey, deadLetterPayload, recordDeadLetters, type DeadLetter } from './dead-letters.ts';
import { DEFAULT_MAX_JSON_DEPTH, decodeInteraction, oversizeReason, type InteractionSource } from './decode-interaction.ts';
import type { RawLine } from './read-lines.ts';

export interface ImportProgress { lines: number; appended: number; duplicates: number; rejected: number }

export interface ImportOptions {
  maxEventBytes: number;
  /** Deepest nesting of arrays and objects a line may have (default DEFAULT_MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
  batchSize?: number;
  onProgress?: (p: ImportProgress) => void;
  /** Called once per non-blank line with what became of it, when its batch is settled. */
  onLine?: (r: LineResult) => void;
}

/** What became of one line: appended, already stored (a duplicate: nothing appended twice), or rejected with the reason. */
export type LineResult =
  | { line: number; status: 'appended' | 'duplicate'; eventId: string; interactionId: string }
  | { line: number; status: 'rejected'; reason: string };

export interface ImportReport {
  /** Lines read, blank ones included (so the last line number). */
  lines: number;
  appended: number;
  /** Events already stored with the same content, wherever they were found (a re-import, a line repeated). */
  duplicates: number;
  /** The first 1000 rejected lines; rejectedCount has them all. */
  rejected: { line: number; reason: string }[];
  rejectedCount: number;
  /** Rejected lines newly recorded in dead_letters (a re-import finds its earlier ones recorded). */
  deadLettered: number;
}

/** Where the lines come from: what their events and dead letters say about it. */
export interface LineOrigin {
  /** dead_letters.source: `file`, `http`. */
  deadLetterSource: string;
  /** A line's origin in dead_letters (a file and line number). */
  origin(line: number): string;
  /** A line's `source` in its event, as the intake sets it. */
  source(line: RawLine): InteractionSource;
  /** A valid line's text for its dead letter when its id conflicts (rare: valid lines are not kept as text). */
  payload(line: RawLine): Promise<string | null>;
}

const MAX_LISTED = 1000;
const isBlank = (b: Buffer): boolean => b.every((c) => c === 0x20 || c === 0x09);

interface Pending { line: RawLine; event: NewEvent<'InteractionRecorded'> }
interface Rejected { line: number; reason: string; payload: string | null; key: string }

/**
 * Imports InteractionRecorded events, one per line. Valid lines are appended in batches; each
 * batch's rejected lines go to dead_letters in the same transaction, so a bad line never costs a
 * good one. Event ids and dead-letter keys are deterministic: a failed or repeated import can
 * just be run again.
 */
export async function importLines(store: EventStore, lines: AsyncIterable<RawLine> | Iterable<RawLine>, from: LineOrigin, options: ImportOptions): Promise<ImportReport> {
  const batchSize = Math.max(1, options.batchSize ?? 500);
  const report: ImportReport = { lines: 0, appended: 0, duplicates: 0, rejected: [], rejectedCount: 0, deadLettered: 0 };
  let events: Pending[] = [];
  let rejects: Rejected[] = [];
  const pendingIds = new Set<string>();
  const letter = (r: Rejected): DeadLetter => ({ source: from.deadLetterSource, origin: from.origin(r.line), reason: r.reason, payload: r.payload, key: r.key });
  const limits = { maxBytes: options.maxEventBytes, maxDepth: options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH };

  const flush = async (): Promise<void> => {
    if (events.length === 0 && rejects.length === 0) return;
    const batch = events, bad = rejects;
    events = []; rejects = []; pendingIds.clear();
    const byId = new Map(batch.map((p) => [p.event.id, p]));
    let conflicts: Rejected[] = [], recorded = 0;
    const result = await store.append(
      batch.map((p) => ({ streamId: STREAMS.interaction(p.event.data.interactionId), events: [p.event] })),
      {
        trusted: true,
        onConflict: 'report',
        alsoInTransaction: async (tx, r) => {
          conflicts = []; // reset: the store may retry the transaction
          for (const c of r.conflicts) {
            const p = byId.get(c.id)!;
            const payload = await from.payload(p.line);
            conflicts.push({ line: p.line.number, reason: `id ${c.id} is already stored: ${c.reason}`, payload, key: deadLetterKey(from.deadLetterSource, from.origin(p.line.number), payload) });
          }
          recorded = await recordDeadLetters(tx, [...bad, ...conflicts].map(letter));
        },
      },
    );
    report.appended += result.appended.length;
    report.duplicates += result.duplicates.length;
    if (options.onLine) {
      const appended = new Set(result.appended.map((a) => a.id));
      const duplicate = new Set(result.duplicates);
      const settled: LineResult[] = [...bad, ...conflicts].map((r) => ({ line: r.line, status: 'rejected' as const, reason: r.reason }));
      for (const p of batch) {
        const status = appended.has(p.event.id) ? 'appended' as const : duplicate.has(p.event.id) ? 'duplicate' as const : undefined;
        if (status) settled.push({ line: p.line.number, status, eventId: p.event.id, interactionId: p.event.data.interactionId });
      }
      for (const r of settled.sort((a, b) => a.line - b.line)) options.onLine(r);
    }
    for (const r of [...bad, ...conflicts].sort((a, b) => a.line - b.line)) {
      if (report.rejected.length < MAX_LISTED) report.rejected.push({ line: r.line, reason: r.reason });
    }
    report.rejectedCount += bad.length + conflicts.length;
    report.deadLettered += recorded;
    options.onProgress?.({ lines: report.lines, appended: report.appended, duplicates: report.duplicates, rejected: report.rejectedCount });
  };

  for await (const line of lines) {
    report.lines = line.number;
    if (isBlank(line.bytes)) continue;
    // A reader may keep only the start of a long line (its size says how long it was).
    const decoded = line.size > line.bytes.length
      ? { ok: false as const, kind: 'oversize' as const, reason: oversizeReason(line.size, options.maxEventBytes) }
      : decodeInteraction(line.bytes, from.source(line), limits, 'line');
    if (!decoded.ok) {
      rejects.push({ line: line.number, reason: decoded.reason, payload: deadLetterPayload(line.bytes), key: deadLetterKey(from.deadLetterSource, from.origin(line.number), line.bytes) });
    } else {
      // One append may not carry an id twice: flush first, the store then reports it as a duplicate or conflict.
      if (pendingIds.has(decoded.event.id)) await flush();
      pendingIds.add(decoded.event.id);
      events.push({ line, event: decoded.event });
    }
    if (events.length >= batchSize || rejects.length >= batchSize) await flush();
  }
  await flush();
  return report;
}
