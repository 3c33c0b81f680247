import pino from 'pino';

export type Logger = pino.Logger;

/** JSON lines on stderr (stdout stays free for command output such as --json). */
export const createLogger = (level: string, name = 'oeld'): Logger => pino({ name, level }, pino.destination(2));
