/**
 * Idle resident memory of the daemon: on the PostgreSQL server (goal < 200 MB) and on embedded
 * PGlite. Baseline in the same run: a bare Node.js process with the same TypeScript loader, the
 * floor any oeld process pays. Sizes: BENCH_IDLE_SECONDS (10) of idling before the reading.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnDaemon } from '../test/helpers/daemon-process.ts';
import { benchDatabase, emit, envInt, log, round, rssMb } from './lib.ts';

const idleMs = envInt('BENCH_IDLE_SECONDS', 10) * 1000;

async function daemonRss(env: Record<string, string>): Promise<number> {
  const d = spawnDaemon({ ...env, OELD_LOG_LEVEL: 'warn' });
  try {
    await d.url();
    await sleep(idleMs);
    return rssMb(d.child.pid!);
  } finally {
    await d.kill('SIGTERM');
  }
}

async function baselineRss(): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await sleep(Math.min(idleMs, 3000));
  const mb = rssMb(child.pid!);
  child.kill('SIGKILL');
  return mb;
}

const db = await benchDatabase();
const dir = mkdtempSync(join(tmpdir(), 'oeld-rss-'));
try {
  const baseline = await baselineRss();
  log(`bare node + tsx loader:         ${baseline.toFixed(1)} MB RSS`);
  const server = await daemonRss({ DATABASE_URL: db.url });
  log(`daemon on the PostgreSQL server: ${server.toFixed(1)} MB RSS after ${idleMs / 1000} s idle (goal < 200 MB), ${(server / baseline).toFixed(2)}x the bare process`);
  const embedded = await daemonRss({ OELD_DATA_DIR: dir });
  log(`daemon on embedded PGlite:      ${embedded.toFixed(1)} MB RSS after ${idleMs / 1000} s idle, ${(embedded / baseline).toFixed(2)}x the bare process`);
  emit({ name: 'idle-rss', serverMb: round(server, 1), embeddedMb: round(embedded, 1), baselineMb: round(baseline, 1), ratio: round(server / baseline, 2), goalMb: 200 });
} finally {
  rmSync(dir, { recursive: true, force: true });
  await db.drop();
}
