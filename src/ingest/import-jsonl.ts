import { open } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { EventStore } from '../store/event-store.ts';
import { deadLetterPayload, MAX_PAYLOAD_BYTES } from './dead-letters.ts';
import { importLines, type ImportOptions, type ImportReport } from './import-lines.ts';
import { readLines, type RawLine } from './read-lines.ts';

export type { ImportOptions, ImportProgress, ImportReport } from './import-lines.ts';
export { readLines } from './read-lines.ts';

export const DEAD_LETTER_SOURCE = 'file';

/**
 * Imports InteractionRecorded events from a JSONL file (importLines): each event's source is the
 * file's name and the line number; a dead letter's origin is the file's full path and the line.
 */
export async function importJsonl(store: EventStore, path: string, options: ImportOptions): Promise<ImportReport> {
  const file = resolve(path);
  // Keep enough of an oversize line to decide it is oversize and to dead-letter its first 64 KiB.
  const keepBytes = Math.max(options.maxEventBytes + 1, MAX_PAYLOAD_BYTES + 4);
  return importLines(store, readLines(file, keepBytes), {
    deadLetterSource: DEAD_LETTER_SOURCE,
    origin: (line) => `${file}:${line}`,
    source: (line) => ({ kind: 'file', file: basename(file), line: line.number }),
    payload: (line) => rawPayload(file, line),
  }, options);
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
