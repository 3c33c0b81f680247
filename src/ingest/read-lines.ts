import { createReadStream } from 'node:fs';

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

/** The lines of a buffer held in memory (an HTTP body), split as readLines splits a file. */
export function* bufferLines(body: Buffer): Generator<RawLine> {
  let start = 0, number = 0;
  while (start < body.length) {
    const nl = body.indexOf(0x0a, start);
    const end = nl === -1 ? body.length : nl;
    const stop = end > start && body[end - 1] === 0x0d ? end - 1 : end;
    yield { number: ++number, offset: start, size: stop - start, bytes: body.subarray(start, stop) };
    start = end + 1;
  }
}
