import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PromResponse<T = unknown> { status: 'success' | 'error'; data?: T; errorType?: string; error?: string; warnings?: string[] }
export interface VectorSample { metric: Record<string, string>; value: [number, string] }

export interface Prometheus {
  url: string;
  configPath: string;
  /** An instant query at the current time (`/api/v1/query`); parse errors come back as status 'error'. */
  query(expr: string): Promise<PromResponse<{ resultType: string; result: VectorSample[] }>>;
  get<T>(path: string): Promise<PromResponse<T>>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Prometheus (scripts/ensure-prometheus.sh installs it) as a child process on a free localhost
 * port, with a generated config and its own storage in a temporary folder: it never touches a
 * system Prometheus or port 9090.
 */
export async function startPrometheus(opts: { job: string; targets: string[]; ruleFiles?: string[]; intervalSeconds?: number }): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'oeld-prometheus-'));
  const interval = `${opts.intervalSeconds ?? 1}s`;
  const configPath = join(dir, 'prometheus.yml');
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  scrape_timeout: ${interval}`,
    `  evaluation_interval: ${interval}`,
    ...(opts.ruleFiles?.length ? ['rule_files:', ...opts.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
    'scrape_configs:',
    `  - job_name: ${JSON.stringify(opts.job)}`,
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: [${opts.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(configPath, config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn('prometheus', [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d) => { log += d; });
  child.stderr!.on('data', (d) => { log += d; });
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`prometheus could not start (run scripts/ensure-prometheus.sh): ${err.message}`))));
  spawnError.catch(() => {});

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await once(child, 'exit').catch(() => {});
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const get = async <T>(path: string): Promise<PromResponse<T>> => (await (await fetch(`${url}${path}`)).json()) as PromResponse<T>;

  const end = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) { await stop(); throw new Error(`prometheus exited with ${child.exitCode}:\n${log.slice(-3000)}`); }
    const ok = await Promise.race([fetch(`${url}/-/ready`).then((r) => r.ok, () => false), spawnError]);
    if (ok) break;
    if (Date.now() > end) { await stop(); throw new Error(`prometheus not ready after 20 s:\n${log.slice(-3000)}`); }
    await sleep(100);
  }
  return {
    url, configPath, get,
    query: (expr) => get(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    log: () => log,
    stop,
  };
}

/** Runs promtool; resolves with its output, rejects (with the output) when it fails. */
export async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)('promtool', args);
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}
