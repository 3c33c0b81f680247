import { writeSync } from 'node:fs';
import pino from 'pino';

export type Logger = pino.Logger;

export type LogFormat = 'json' | 'text';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: '', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/**
 * One line of pino's JSON as a person reads it: the time, the level unless info, the message, and
 * an error's message when there is one.
 */
export function textLine(json: string): string {
  let o: { time?: number; level?: number; msg?: string; err?: { message?: string } };
  try { o = JSON.parse(json) as typeof o; } catch { return json; }
  const time = new Date(o.time ?? Date.now()).toISOString().slice(11, 19);
  const level = LEVELS[o.level ?? 30] ?? '';
  return `${time} ${level ? `${level} ` : ''}${o.msg ?? ''}${o.err?.message && !(o.msg ?? '').includes(o.err.message) ? `: ${o.err.message}` : ''}\n`;
}

/**
 * The daemon's one log stream, on stderr (stdout stays free for --json output), written
 * synchronously: a kill -9 loses no line. JSON lines for machines; `text` for a terminal (what
 * `npm start` prints): the same lines, as sentences.
 */
export function createLogger(level: string, o: { format?: LogFormat; name?: string } = {}): Logger {
  const options = { name: o.name ?? 'oeld', level };
  if (o.format !== 'text') return pino(options, pino.destination({ dest: 2, sync: true }));
  return pino(options, { write: (line: string) => { writeSync(2, textLine(line)); } });
}
