/**
 * Versions re-derivable from the log (#19): a round records what determined its version, `oeld
 * rederive` re-runs it into a fresh folder and compares sha256 with the one recorded at publication
 * (bit for bit on the tfjs trainer), a pruned version is brought back through its pruned
 * round-start version, and a round re-run differently is caught.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileSha256, weightsFileOf } from '../src/engine/verify-version.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import type { EventDataMap } from '../src/events/schemas.ts';
import { pruneVersions } from '../src/operations/prune-versions.ts';
import { RederiveError, rederiveVersion } from '../src/operations/rederive.ts';
import { rollbackModel } from '../src/operations/rollback.ts';
import { readRetention } from '../src/projections/models/model-projection.ts';
import { RoundRunner, trained } from '../src/rounds/round-runner.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { tfjsTrainer } from '../src/trainer/tfjs-trainer.ts';
import { TorchTrainer } from '../src/trainer/torch-trainer.ts';
import type { Trainer } from '../src/trainer/trainer-port.ts';
import type { TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, tinyGameRound, TINY_GAME_TASK, TINY_ROUND } from './helpers/round-settings.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import { oeld } from './helpers/oeld-cli.ts';
import { tinyRoundWorld } from './helpers/tiny-round-world.ts';
import { torchPython } from './helpers/torch-python.ts';

describe('re-deriving versions from the log (tiny model, tfjs trainer)', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  let dataDir: string;
  let artifactRoot: string;
  let catchUp: () => Promise<void>;
  let play: () => Promise<void>;
  let close: () => Promise<void>;
  const versions: string[] = [];
  const published = async (version: string) => (await store.read({ after: START, limit: 100_000 })).events
    .find((e) => e.type === 'ModelVersionPublished' && (e.data as { version: string }).version === version)!.data as EventDataMap['ModelVersionPublished'];
  const deps = (trainer: Trainer = tfjsTrainer(engine)) => ({ store, engine, trainer, artifactRoot });

  before(async () => {
    ({ db, store, engine, catchUp, play, close } = await tinyRoundWorld('rederive'));
    dataDir = mkdtempSync(join(tmpdir(), 'oeld-rederive-'));
    artifactRoot = join(dataDir, 'artifacts');
    // Three rounds in a line: tiny -> r1 -> r2 -> r3, each from the trajectories of the one before.
    for (let i = 0; i < 3; i++) {
      const outcome = await new RoundRunner({ store, engine, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual').then(trained);
      assert.equal(outcome.activated, true);
      versions.push(outcome.newVersion);
      await catchUp();
      await play();
    }
  });
  after(async () => { await close(); rmSync(dataDir, { recursive: true, force: true }); });

  it('records what determined each version in its round, and re-runs a kept version to the same sha256', async () => {
    const completed = (await store.read({ after: START, limit: 100_000 })).events.filter((e) => e.type === 'RoundCompleted').map((e) => e.data as EventDataMap['RoundCompleted']);
    assert.equal(completed.length, 3);
    for (const c of completed) {
      assert.ok(c.inputs, 'RoundCompleted.inputs');
      assert.equal(c.inputs.trajectoryEventIds.length, 8);
      assert.ok(c.inputs.knowledgeEventIds.length > 0);
      assert.match(c.inputs.runtime, /^tfjs trainer on /);
    }
    const r = await rederiveVersion(deps(), versions[1]!);
    assert.equal(r.matches, true, `derived ${r.derivedSha256}, recorded ${r.recordedSha256}`);
    assert.equal(r.derivedSha256, (await published(versions[1]!)).sha256);
    assert.equal(await fileSha256(weightsFileOf(r.folder)), r.recordedSha256, 'the folder holds what the sha256 says');
    assert.notEqual(r.folder, (await published(versions[1]!)).path, 'a fresh folder');
    assert.deepEqual(r.through, []);
    assert.equal(r.restored, false);
  });

  it('catches a round re-run with anything changed (here the sampling seed): no match, nothing restored', async () => {
    const inner = tfjsTrainer(engine);
    const reseeded: Trainer = { ...inner, train: (job, onStep) => inner.train({ ...job, options: { ...job.options, seed: job.options.seed + 1 } }, onStep) };
    const r = await rederiveVersion(deps(reseeded), versions[0]!);
    assert.equal(r.matches, false);
    assert.notEqual(r.derivedSha256, r.recordedSha256);
    // The version's files are there: how far apart the weights are, and a tolerance that accepts or not.
    assert.ok(r.difference && r.difference.maxAbs > 0 && r.difference.elements > 1000, JSON.stringify(r.difference));
    assert.equal(r.accepted, false);
    assert.equal((await rederiveVersion(deps(reseeded), versions[0]!, { tolerance: r.difference.maxAbs })).accepted, true);
    assert.equal((await rederiveVersion(deps(reseeded), versions[0]!, { tolerance: r.difference.maxAbs / 2 })).accepted, false);
  });

  it('refuses another trainer, or the same trainer with other settings, naming the setting', async () => {
    const torchLike: Trainer = { kind: 'torch', settings: {}, train: async () => { throw new Error('not called'); }, close: async () => {} };
    await assert.rejects(rederiveVersion(deps(torchLike), versions[0]!), (e: Error) => e instanceof RederiveError && /trained by the tfjs trainer; set OELD_TRAINER=tfjs/.test(e.message));
    const otherSettings: Trainer = { ...tfjsTrainer(engine), settings: { device: 'cuda' } };
    await assert.rejects(rederiveVersion(deps(otherSettings), versions[0]!), /trainer setting device=null, the configured trainer has "cuda"/);
    await assert.rejects(rederiveVersion(deps(), 'tiny'), /not made by a round/);
    await assert.rejects(rederiveVersion(deps(), 'nope'), /was never published/);
  });

  it('brings a pruned version back through its pruned round-start version, records it, and it can be rolled back to', async () => {
    // Active: the root; keep the newest one: r1 and r2 are pruned.
    await rollbackModel(store, 'tiny');
    const pruned = await pruneVersions(store, artifactRoot, { keepVersions: 1, rollbackWindowMs: 0 });
    assert.deepEqual(pruned.pruned.map((p) => p.version), [versions[0], versions[1]]);
    await catchUp();
    const { path, sha256 } = await published(versions[1]!);
    assert.equal(existsSync(path), false);
    await assert.rejects(rollbackModel(store, versions[1]!), /pruned .*oeld rederive/);

    const scratchBefore = readdirSync(join(artifactRoot, 'rederived')).sort();
    const r = await rederiveVersion(deps(), versions[1]!, { restore: true });
    assert.deepEqual(r.through, [versions[0]], 'r1 was re-derived first, as r2 starts from it');
    assert.equal(r.matches, true);
    assert.equal(r.restored, true);
    assert.equal(r.folder, path);
    assert.equal(await fileSha256(weightsFileOf(path)), sha256);
    assert.deepEqual(readdirSync(join(artifactRoot, 'rederived')).sort(), scratchBefore, 'the re-derived r1 was scratch: removed');
    await catchUp();
    assert.equal((await readRetention(db.sql)).pruned, 1, 'r2 counts as kept again; r1 stays pruned');
    const restored = (await store.read({ after: START, limit: 100_000 })).events.filter((e) => e.type === 'ModelVersionRestored');
    assert.equal(restored.length, 1);
    assert.equal((restored[0]!.data as EventDataMap['ModelVersionRestored']).version, versions[1]);
    // Restored within the rollback window: the next pruning keeps it.
    assert.deepEqual((await pruneVersions(store, artifactRoot, { keepVersions: 1, rollbackWindowMs: 3_600_000 })).pruned, []);
    await rollbackModel(store, versions[1]!);
  });

  it('oeld rederive does it in another process (the model worker) and says so; exit 1 with the reason when it cannot', async () => {
    const env = { DATABASE_URL: db.url!, OELD_DATA_DIR: dataDir };
    const r = await oeld(['rederive', versions[2]!, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { matches: boolean; derivedSha256: string; recordedSha256: string; runtime: { recorded: string; now: string } };
    assert.equal(out.matches, true);
    assert.equal(out.derivedSha256, (await published(versions[2]!)).sha256);
    assert.equal(out.runtime.now, out.runtime.recorded);
    const text = await oeld(['rederive', versions[2]!], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /result +the same weights, bit for bit/);
    const bad = await oeld(['rederive', 'tiny'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /version tiny was not made by a round/);
    assert.equal((await oeld(['rederive'], env)).code, 2);
  });

  it('re-runs a FrozenLake round that trained on reading prompts (the other lake worlds, FrozenLake\'s default) to the same sha256', async () => {
    const training = trainingFor(TINY_GAME_TASK, TINY_ROUND.training);
    assert.equal(training.readingShare, 0.25, 'the task\'s default, as the daemon applies it');
    const outcome = await new RoundRunner({ store, engine, artifactRoot, ...tinyGameRound(engine), settings: { ...TINY_ROUND, training }, extractFnFor: scriptedExtractor([]) }).run('manual').then(trained);
    await catchUp();
    const r = await rederiveVersion(deps(), outcome.newVersion);
    assert.equal(r.matches, true, `derived ${r.derivedSha256}, recorded ${r.recordedSha256}`);
    // Without the reading prompts the same round gives other weights: they were part of what the round trained.
    const inner = tfjsTrainer(engine);
    const without: Trainer = { ...inner, train: (job, onStep) => inner.train({ ...job, reading: [] }, onStep) };
    assert.equal((await rederiveVersion(deps(without), outcome.newVersion)).matches, false);
  });
});

describe('re-deriving versions trained by the torch trainer (CPU)', () => {
  let w: Awaited<ReturnType<typeof tinyRoundWorld>>;
  let artifactRoot: string;
  const ALL = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
  const torch = (lora = false) => new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 120, ...(lora ? { lora: { rank: 4, alpha: 8, targets: [...ALL] } } : {}) });
  before(async () => {
    w = await tinyRoundWorld('rederive-torch');
    artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-rederive-torch-'));
  });
  after(async () => { await w.close(); rmSync(artifactRoot, { recursive: true, force: true }); });

  for (const lora of [false, true]) {
    it(`gives the same sha256 on the same CPU (${lora ? 'a LoRA adapter version' : 'full weights'}), and names the trainer settings when they differ`, async () => {
      const t = torch(lora);
      try {
        const outcome = await new RoundRunner({ store: w.store, engine: w.engine, trainer: t, artifactRoot, ...tinyGameRound(w.engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual').then(trained);
        await w.catchUp();
        const r = await rederiveVersion({ store: w.store, engine: w.engine, trainer: t, artifactRoot }, outcome.newVersion);
        assert.equal(r.matches, true, `derived ${r.derivedSha256}, recorded ${r.recordedSha256}`);
        assert.match(r.runtime.now, /^torch \S+ on cpu \(float32\)/);
        await assert.rejects(rederiveVersion({ store: w.store, engine: w.engine, trainer: torch(!lora), artifactRoot }, outcome.newVersion), /trainer setting lora=/);
        await w.play();
      } finally {
        await t.close();
      }
    });
  }
});
