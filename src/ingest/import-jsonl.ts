import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { NewEvent } from '../events/envelope.ts';
import { STREAMS } from '../events/streams.ts';
import type { EventStore } from '../store/event-store.ts';
import { deadLetterKey, deadLetterPayload, MAX_PAYLOAD_BYTES, recordDeadLetters, type DeadLetter } from './dead-letters.ts';
import { DEFAULT_MAX_JSON_DEPTH, decodeInteractionLine, oversizeReason } from './decode-interaction.ts';

export interface ImportProgress { lines: number; appended: number; duplicates: number; rejected: number }

export interface ImportOptions {
  maxEventBytes: number;
  /** Deepest nesting of arrays and objects a line may have (default DEFAULT_MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
  batchSize?: number;
  onProgress?: (p: ImportProgress) => void;
}

export interface ImportReport {
  /** Lines read, blank ones included (so the last line number). */
  lines: number;
  appended: number;
  /** Events already stored with the same content, where they were found aside (a re-import, a line repeated). */
  duplicates: number;
  /** The first 1000 rejected lines; rejectedCount has them all. */
  rejected: { line: number; reason: string }[];
  rejectedCount: number;
  /** Rejected lines newly recorded in dead_letters (a re-import finds its earlier ones recorded). */
  deadLettered: number;
}

export const DEAD_LETTER_SOURCE = 'file';
const MAX_LISTED = 1000;

/** One line without its terminator: bytes cut to keepBytes, size its full length, offset its start in the file. */
export interface RawLine { number: number; offset: number; size: number; bytes: Buffer }

/**
 * Splits a file on \n bytes without holding more than keepBytes of any line, so a multi-GB line
 * cannot exhaust memory. A trailing \r is dropped; a missing final newline is fine.
 */
export async function* readLines(path: string, keepBytes: number, chunkBytes = 1 << 20): AsyncGenerator<RawLine> {
  let parts: Buffer[] = [];
  let kept = 0, size = 0, lastByte = -1, number = 0, offset = 0, pos = 0;
  const take = (piece: Buffer): void => {
    if (piece.length === 0) return;
    size += piece.length;
    lastByte = piece[piece.length - 1]!;
    if (kept < keepBytes) {
      const p = piece.subarray(0, keepBytes - kept);
      parts.push(p);
      kept += p.length;
    }
  };
  const finish = (): RawLine => {
    let bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, kept);
    const full = lastByte === 0x0d ? size - 1 : size;
    if (bytes.length > full) bytes = bytes.subarray(0, full);
    const line = { number: ++number, offset, size: full, bytes };
    parts = []; kept = 0; size = 0; lastByte = -1;
    return line;
  };
  for await (const chunk of createReadStream(path, { highWaterMark: chunkBytes }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      take(chunk.subarray(start, nl));
      yield finish();
      start = nl + 1;
      offset = pos + start;
    }
    take(chunk.subarray(start));
    pos += chunk.length;
  }
  if (size > 0) yield finish();
}

const isBlank = (b: Buffer): boolean => b.every((c) => c === 0x20 || c === 0x09);

interface Pending { line: RawLine; event: NewEvent<'InteractionRecorded'> }
interface Rejected { line: number; reason: string; payload: string | null; key: string }

/**
 * Imports InteractionRecorded events from a JSONL file. Valid lines are appended in batches;
 * each batch's rejected lines go to dead_letters in the same transaction, so a bad line never
 * costs a good one. Event ids are deterministic: a failed or repeated import can just be re-run.
 */
export async function importJsonl(store: EventStore, path: string, options: ImportOptions): Promise<ImportReport> {
  const batchSize = Math.max(1, options.batchSize ?? 500);
  const file = resolve(path);
  const report: ImportReport = { lines: 0, appended: 0, duplicates: 0, rejected: [], rejectedCount: 0, deadLettered: 0 };
  let events: Pending[] = [];
  let rejects: Rejected[] = [];
  const pendingIds = new Set<string>();
  const origin = (line: number): string => `${file}:${line}`;
  const letter = (r: Rejected): DeadLetter => ({ source: DEAD_LETTER_SOURCE, origin: origin(r.line), reason: r.reason, payload: r.payload, key: r.key });
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
            const payload = await rawPayload(file, p.line);
            conflicts.push({ line: p.line.number, reason: `id ${c.id} is already stored: ${c.reason}`, payload, key: deadLetterKey(DEAD_LETTER_SOURCE, origin(p.line.number), payload) });
          }
          recorded = await recordDeadLetters(tx, [...bad, ...conflicts].map(letter));
        },
      },
    );
    report.appended += result.appended.length;
    report.duplicates += result.duplicates.length;
    for (const r of [...bad, ...conflicts].sort((a, b) => a.line - b.line)) {
      if (report.rejected.length < MAX_LISTED) report.rejected.push({ line: r.line, reason: r.reason });
    }
    report.rejectedCount += bad.length + conflicts.length;
    report.deadLettered += recorded;
    options.onProgress?.({ lines: report.lines, appended: report.appended, duplicates: report.duplicates, rejected: report.rejectedCount });
  };

  // Keep enough of an oversize line to decide it is oversize and to dead-letter its first 64 KiB.
  const keepBytes = Math.max(options.maxEventBytes + 1, MAX_PAYLOAD_BYTES + 4);
  for await (const line of readLines(file, keepBytes)) {
    report.lines = line.number;
    if (isBlank(line.bytes)) continue;
    const decoded = line.size > line.bytes.length
      ? { ok: false as const, kind: 'oversize' as const, reason: oversizeReason(line.size, options.maxEventBytes) }
      : decodeInteractionLine(line.bytes, { file, line: line.number }, limits);
    if (!decoded.ok) {
      rejects.push({ line: line.number, reason: decoded.reason, payload: deadLetterPayload(line.bytes), key: deadLetterKey(DEAD_LETTER_SOURCE, origin(line.number), line.bytes) });
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

/** Re-reads a valid line for its dead letter (conflicts are rare; valid lines are not kept as text). */
async function rawPayload(file: string, line: RawLine): Promise<string | null> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(line.size, MAX_PAYLOAD_BYTES + 4));
    const { bytesRead } = await fh.read(buf, 0, buf.length, line.offset);
    return deadLetterPayload(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
