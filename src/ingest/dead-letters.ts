import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Queryable } from '../db/sql.ts';

export interface DeadLetter {
  source: string;
  origin: string;
  reason: string;
  payload: string | null;
  /** The same input from the same place has the same key and is recorded once (deadLetterKey). */
  key: string;
  /** Why the copy to the dead-letter topic failed, when it did. */
  copyError?: string;
}

export const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_TEXT_CHARS = 4096;

/**
 * The raw input as it can be kept in a text column: null when it is not valid UTF-8 or holds a
 * NUL (PostgreSQL text cannot), else its text cut to 64 KiB at a character boundary.
 */
export function deadLetterPayload(bytes: Buffer): string | null {
  let end = bytes.length;
  if (end > MAX_PAYLOAD_BYTES) {
    end = MAX_PAYLOAD_BYTES;
    while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back off to the start of a character
  }
  const kept = bytes.subarray(0, end);
  if (!isUtf8(kept) || kept.includes(0)) return null;
  return kept.toString('utf8');
}

/** A dead letter's identity: where it came from and the bytes that came (not the reason, which may change with settings). */
export function deadLetterKey(source: string, origin: string, bytes: Buffer | string | null): string {
  const h = createHash('sha256').update(source).update('\n').update(origin).update('\n');
  if (bytes !== null) h.update(bytes);
  return h.digest('hex');
}

// Reasons can quote input (JSON.parse messages show a snippet): keep them storable and bounded.
const storable = (s: string): string => s.replaceAll('\u0000', '\\u0000').toWellFormed().slice(0, MAX_TEXT_CHARS);

/**
 * Writes dead letters in one statement (inside the caller's transaction when given one); a letter
 * whose key is already recorded is skipped. Returns how many were new.
 */
export async function recordDeadLetters(q: Queryable, letters: DeadLetter[]): Promise<number> {
  if (letters.length === 0) return 0;
  const { rows } = await q.query<{ n: number }>(
    `WITH ins AS (
       INSERT INTO dead_letters (source, origin, reason, payload, dedupe_key, copy_error)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (dedupe_key) DO NOTHING
       RETURNING 1)
     SELECT count(*)::int AS n FROM ins`,
    [letters.map((l) => storable(l.source)), letters.map((l) => storable(l.origin)), letters.map((l) => storable(l.reason)),
      letters.map((l) => (l.payload === null || l.payload.includes('\u0000') ? null : l.payload.toWellFormed())),
      letters.map((l) => l.key), letters.map((l) => (l.copyError === undefined ? null : storable(l.copyError)))],
  );
  return rows[0]!.n;
}

export async function countDeadLetters(q: Queryable, source?: string): Promise<number> {
  const { rows } = source === undefined
    ? await q.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters')
    : await q.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters WHERE source = $1', [source]);
  return rows[0]!.n;
}
