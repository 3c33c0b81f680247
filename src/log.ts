import pino from 'pino';

export type Logger = pino.Logger;

/** JSON lines on stderr (stdout stays free for --json output), written synchronously: a kill -9 loses no line. */
export const createLogger = (level: string, name = 'oeld'): Logger => pino({ name, level }, pino.destination({ dest: 2, sync: true }));
