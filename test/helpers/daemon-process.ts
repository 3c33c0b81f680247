import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface DaemonProcess {
  child: ChildProcess;
  url: () => Promise<string>;
  /** Resolves when a log line matches. */
  waitForLog: (pattern: RegExp, timeoutMs?: number) => Promise<string>;
  stderr: () => string;
  stdout: () => string;
  kill: (signal: NodeJS.Signals) => Promise<number | null>;
}

/** `oeld start` as a child process, as an operator runs it. */
export function spawnDaemon(env: Record<string, string>): DaemonProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start'], {
    cwd: ROOT, env: { ...process.env, OELD_HTTP_PORT: '0', OELD_LOG_LEVEL: 'info', OELD_LEARNING: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const waiters: { pattern: RegExp; resolve: (l: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = (err + out).split('\n').find((l) => w.pattern.test(l));
      if (line !== undefined) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
    }
  };
  child.stderr!.on('data', (d) => { err += d; check(); });
  child.stdout!.on('data', (d) => { out += d; check(); });
  const waitForLog = (pattern: RegExp, timeoutMs = 60_000) => new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; stderr:\n${err.slice(-3000)}`)), timeoutMs);
    waiters.push({ pattern, resolve: (l) => { clearTimeout(t); resolve(l); } });
    check();
  });
  return {
    child,
    waitForLog,
    url: async () => (await waitForLog(/oeld listening on /)).match(/on (http:\/\/\S+)/)![1]!,
    stderr: () => err,
    stdout: () => out,
    kill: async (signal) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await once(child, 'exit');
      return code as number | null;
    },
  };
}
