/** `bin/oeld` as an operator runs it: exit code, stdout and stderr (a failing exit is a result, not a throw). */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OELD = new URL('../../bin/oeld', import.meta.url).pathname;

export async function oeld(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(OELD, args, { env: { ...process.env, OELD_LOG_LEVEL: 'warn', ...env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
