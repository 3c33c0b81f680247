/**
 * The torch trainer at a URL (OELD_TORCH_URL; python -m oeld_trainer serve): a round trains through
 * it and publishes; a job that crashes, hangs past the stall timeout, or is stopped with the daemon
 * fails the round with its reason and publishes nothing, and the server kills the job it was
 * running; a wrong token or no server is named.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { RoundFailedError, RoundRunner, trained } from '../src/rounds/round-runner.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { TORCH_PACKAGE_ROOT, TorchTrainer } from '../src/trainer/torch-trainer.ts';
import type { TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, tinyGameRound, TINY_ROUND } from './helpers/round-settings.ts';
import { modelSha256 } from './helpers/tiny-model.ts';
import { tinyRoundWorld } from './helpers/tiny-round-world.ts';
import { torchPython } from './helpers/torch-python.ts';

/** `python -m oeld_trainer serve` on a free port, with extra environment for its jobs. */
async function startServer(env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess; stop: () => void }> {
  const child = spawn(torchPython(), ['-m', 'oeld_trainer', 'serve', '--port', '0'], {
    env: { ...process.env, PYTHONPATH: TORCH_PACKAGE_ROOT, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => { err += b; });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the trainer server did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      const m = String(b).match(/serving on (http:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]!); }
    });
  });
  return { url, child, stop: () => { child.kill('SIGKILL'); } };
}

/** The trainer jobs (children of the server) still running. */
const runningJobs = (server: ChildProcess): number => {
  try { return execFileSync('pgrep', ['-P', String(server.pid)]).toString().trim().split('\n').filter(Boolean).length; } catch { return 0; }
};

describe('the torch trainer at a URL', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  let catchUp: () => Promise<void>;
  let close: () => Promise<void>;
  const servers: { stop: () => void }[] = [];
  const events = async () => (await store.read({ after: START, limit: 100_000 })).events.filter((e) => e.type !== 'InteractionRecorded');
  const runner = (t: TorchTrainer, artifactRoot: string, steps = TINY_ROUND.training.steps) => new RoundRunner({
    store, engine, trainer: t, artifactRoot, ...tinyGameRound(engine), settings: { ...TINY_ROUND, training: { ...TINY_ROUND.training, steps } }, extractFnFor: scriptedExtractor([]),
  });
  const server = async (env: Record<string, string> = {}) => { const s = await startServer(env); servers.push(s); return s; };
  const remote = (url: string, more: Partial<ConstructorParameters<typeof TorchTrainer>[0]> = {}) =>
    new TorchTrainer({ python: '/nonexistent/python-not-used', device: 'cpu', stallSeconds: 120, remote: { url }, ...more });
  const assertFailedCleanly = async (run: () => Promise<unknown>, reason: RegExp, artifactRoot: string) => {
    const before = (await events()).length;
    await assert.rejects(run(), (err: Error) => err instanceof RoundFailedError && err.stage === 'train' && reason.test(err.message));
    await catchUp();
    assert.deepEqual((await events()).slice(before).map((e) => e.type), ['RoundStarted', 'RoundFailed']);
    assert.equal((await readActiveModel(db.sql))!.version, 'tiny');
    const models = join(artifactRoot, 'models');
    assert.deepEqual(existsSync(models) ? readdirSync(models) : [], [], 'no version folder, no partial weights');
  };

  before(async () => {
    const w = await tinyRoundWorld('torch-url');
    ({ db, store, engine, catchUp, close } = w);
  });
  after(async () => { for (const s of servers) s.stop(); await close(); });

  it('fails the round when the job crashes there, naming the host\'s reason', async () => {
    const s = await server({ OELD_TRAINER_TEST_FAULT: 'crash@1' });
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-url-crash-'));
    await assertFailedCleanly(() => runner(remote(s.url), artifactRoot).run('manual'), /torch trainer: the trainer process on \S+ killed \(signal 9\)/, artifactRoot);
  });

  it('stops a job that hangs past the stall timeout, and the server kills it', async () => {
    const s = await server({ OELD_TRAINER_TEST_FAULT: 'hang@1' });
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-url-hang-'));
    await assertFailedCleanly(() => runner(remote(s.url, { stallSeconds: 3 }), artifactRoot).run('manual'), /at http:\S+: no report for 3 s; stopped it \(OELD_TRAINER_TIMEOUT_S\)/, artifactRoot);
    for (let i = 0; i < 50 && runningJobs(s.child) > 0; i++) await sleep(200);
    assert.equal(runningJobs(s.child), 0, 'the server killed the job whose client went away');
  });

  it('fails the round when the trainer is closed mid-round (the daemon stopping)', async () => {
    const s = await server();
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-url-close-'));
    const t = remote(s.url, { onReport: (r) => { if (r.event === 'step' && r.step === 1) void t.close(); } });
    await assertFailedCleanly(() => runner(t, artifactRoot, 40).run('manual'), /stopped with the daemon before the round finished/, artifactRoot);
    for (let i = 0; i < 50 && runningJobs(s.child) > 0; i++) await sleep(200);
    assert.equal(runningJobs(s.child), 0);
  });

  it('names the URL when no trainer answers there, and a wrong token', async () => {
    await assert.rejects(remote('http://127.0.0.1:9').probe(), /OELD_TORCH_URL=http:\/\/127\.0\.0\.1:9: no trainer answered/);
    const s = await server({ OELD_TRAINER_TOKEN: 'sesame' });
    await assert.rejects(remote(s.url).probe(), /answered HTTP 401: .*bearer token/);
    const p = await remote(s.url, { remote: { url: s.url, token: 'sesame' } }).probe();
    assert.match(p.torch, /^\d+\.\d+/);
  });

  // Last: its round activates the new version, and the fault tests above train the base.
  it('completes a round through the server: steps as they happen, the runtime recorded, a version that loads', async () => {
    const s = await server();
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-url-round-'));
    const steps: number[] = [];
    const t = remote(s.url);
    try {
      const outcome = await new RoundRunner({
        store, engine, trainer: t, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]),
        onProgress: (p) => { if (p.stage === 'train' && p.step) steps.push(p.step.step); },
      }).run('manual').then(trained);
      assert.deepEqual(steps, [1, 2, 3]);
      assert.ok(outcome.after, 'the gate evaluated the new version');
      await catchUp();
      const all = await events();
      const completed = all.find((e) => e.type === 'RoundCompleted' && (e.data as { roundId: string }).roundId === outcome.roundId)!;
      assert.match((completed.data as { inputs: { runtime: string } }).inputs.runtime, new RegExp(`^torch \\S+ on cpu \\(float32\\) at ${s.url}`));
      const published = all.find((e) => e.type === 'ModelVersionPublished' && (e.data as { version: string }).version === outcome.newVersion)!;
      assert.equal((published.data as { sha256: string }).sha256, modelSha256((published.data as { path: string }).path));
    } finally {
      await t.close();
    }
  });
});
