/**
 * Rounds on the torch trainer (python/oeld_trainer in a child process), through the same round
 * runner as the daemon's: a round completes and publishes a version the TypeScript runtime loads
 * and evaluates; a trainer that is killed, hangs, raises, or is stopped mid-round fails the round
 * with its reason and publishes nothing, leaving no file behind; a missing interpreter is named.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { loadSafetensorsFile } from '../src/model/formats/safetensors.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { RoundFailedError, RoundRunner, trained } from '../src/rounds/round-runner.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { summariseSteps } from '../src/trainer/opcd-round.ts';
import { buildTorchJob } from '../src/trainer/torch-job.ts';
import { TORCH_PACKAGE_ROOT, TorchTrainer, type TorchTrainerSettings } from '../src/trainer/torch-trainer.ts';
import { userPrompt } from '../src/model/inference/chat-prompt.ts';
import type { Trainer } from '../src/trainer/trainer-port.ts';
import type { TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, tinyGameRound, TINY_ROUND } from './helpers/round-settings.ts';
import { modelSha256 } from './helpers/tiny-model.ts';
import { tinyRoundWorld } from './helpers/tiny-round-world.ts';
import { torchPython } from './helpers/torch-python.ts';

describe('rounds on the torch trainer', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  let modelDir: string;
  let catchUp: () => Promise<void>;
  let close: () => Promise<void>;
  const events = async () => (await store.read({ after: START, limit: 100_000 })).events.filter((e) => e.type !== 'InteractionRecorded');
  const trainer = (s: Partial<TorchTrainerSettings> = {}) => new TorchTrainer({ python: torchPython(), device: 'cpu', stallSeconds: 120, ...s });
  const runner = (t: TorchTrainer, artifactRoot: string, steps = TINY_ROUND.training.steps) => new RoundRunner({
    store, engine, trainer: t, artifactRoot, ...tinyGameRound(engine), settings: { ...TINY_ROUND, training: { ...TINY_ROUND.training, steps } }, extractFnFor: scriptedExtractor([]),
  });
  /** The round failed at training with a reason matching `reason`, recorded, with nothing published and no file left. */
  const assertFailedCleanly = async (run: () => Promise<unknown>, reason: RegExp, artifactRoot: string) => {
    const before = (await events()).length;
    await assert.rejects(run(), (err: Error) => err instanceof RoundFailedError && err.stage === 'train' && reason.test(err.message));
    await catchUp();
    const added = (await events()).slice(before);
    assert.deepEqual(added.map((e) => e.type), ['RoundStarted', 'RoundFailed']);
    assert.match(String((added[1]!.data as { error: string }).error), reason);
    assert.equal((await readActiveModel(db.sql))!.version, 'tiny');
    const models = join(artifactRoot, 'models');
    assert.deepEqual(existsSync(models) ? readdirSync(models) : [], [], 'no version folder, no partial weights');
    assert.deepEqual(existsSync(join(artifactRoot, 'rounds')) ? readdirSync(join(artifactRoot, 'rounds')) : [], [], 'no checkpoints');
  };

  before(async () => {
    const w = await tinyRoundWorld('torch');
    ({ db, store, engine, modelDir } = w);
    catchUp = w.catchUp;
    close = w.close;
  });
  after(async () => { await close(); });

  for (const [fault, reason] of [
    ['crash@1', /torch trainer was killed \(SIGKILL\)/],
    ['error@2', /torch trainer: RuntimeError: injected fault after step 2/],
  ] as const) {
    it(`fails the round and publishes nothing when the trainer suffers ${fault}`, async () => {
      const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-torch-fault-'));
      const t = trainer({ env: { OELD_TRAINER_TEST_FAULT: fault } });
      try { await assertFailedCleanly(() => runner(t, artifactRoot).run('manual'), reason, artifactRoot); } finally { await t.close(); }
    });
  }

  it('fails the round when a trainer writes a version that would not load (here: no tokenizer), and publishes nothing', async () => {
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-bad-folder-'));
    const broken: Trainer = {
      kind: 'torch',
      settings: {},
      train: async (job) => {
        cpSync(job.dir, job.outDir, { recursive: true });
        rmSync(join(job.outDir, 'tokenizer.json'));
        const step = { step: 1, of: 1, loss: 0.1, gradNorm: 1, responseTokens: 3, trainedTokens: 10, timings: { samplingMs: 1, teacherMs: 1, backwardMs: 1 } };
        return { sha256: modelSha256(job.outDir), report: summariseSteps([step]) };
      },
      close: async () => {},
    };
    await assertFailedCleanly(() => new RoundRunner({ store, engine, trainer: broken, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual'),
      /the torch trainer wrote a version that would not load: .*tokenizer\.json/, artifactRoot);
  });

  it('stops a trainer that sends no report within the timeout, and fails the round', async () => {
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-torch-hang-'));
    const t = trainer({ env: { OELD_TRAINER_TEST_FAULT: 'hang@1' }, stallSeconds: 3 });
    const t0 = performance.now();
    try { await assertFailedCleanly(() => runner(t, artifactRoot).run('manual'), /no report for 3 s; stopped it \(OELD_TRAINER_TIMEOUT_S\)/, artifactRoot); } finally { await t.close(); }
    assert.ok(performance.now() - t0 < 60_000);
  });

  it('fails the round when the trainer is closed mid-round (the daemon stopping)', async () => {
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-torch-close-'));
    const t = trainer({ onReport: (r) => { if (r.event === 'step' && r.step === 1) void t.close(); } });
    await assertFailedCleanly(() => runner(t, artifactRoot, 40).run('manual'), /stopped with the daemon before the round finished/, artifactRoot);
  });

  it('exits by itself when the daemon goes (its stdin pipe closes), even while hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-orphan-'));
    const { torchJob } = await buildTorchJob({
      version: 'tiny', dir: modelDir, situations: [userPrompt('Which way?')], knowledgeTexts: ['- EXPERIENCE ITEM: G is the goal.'],
      options: { ...TINY_ROUND.training, steps: 3 }, outDir: join(dir, 'out'), checkpointDir: join(dir, 'ckpt'),
    }, join(dir, 'weights.safetensors'), { device: 'cpu' });
    writeFileSync(join(dir, 'job.json'), JSON.stringify(torchJob));
    const child = spawn(torchPython(), ['-m', 'oeld_trainer', join(dir, 'job.json')], {
      env: { ...process.env, PYTHONPATH: TORCH_PACKAGE_ROOT, OELD_TRAINER_TEST_FAULT: 'hang@1' }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no step report: ${out}`)), 60_000);
      child.stdout!.on('data', (b: Buffer) => { out += b; if (out.includes('"event": "step"')) { clearTimeout(t); resolve(); } });
    });
    const t0 = performance.now();
    child.stdin!.end(); // what the daemon's death does to the pipe
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      once(child, 'exit').then(([c]) => c as number | null),
      new Promise<'still running'>((r) => { timer = setTimeout(() => { child.kill('SIGKILL'); r('still running'); }, 15_000); }),
    ]);
    clearTimeout(timer);
    assert.equal(code, 3, 'the watchdog ended it');
    assert.ok(performance.now() - t0 < 15_000);
  });

  it('names OELD_TORCH_PYTHON when the interpreter cannot run the trainer', async () => {
    await assert.rejects(trainer({ python: '/nonexistent/python3' }).probe(), /OELD_TORCH_PYTHON=\/nonexistent\/python3: cannot run the torch trainer/);
    const p = await trainer().probe();
    assert.match(p.torch, /^\d+\.\d+/);
  });

  // Last: its round activates the new version, and the fault tests above train the base.
  it('completes a round: steps reported as they happen, a version the TypeScript runtime loads and evaluates', async () => {
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-torch-round-'));
    const t = trainer();
    const steps: number[] = [];
    try {
      const r = new RoundRunner({
        store, engine, trainer: t, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]),
        onProgress: (p) => { if (p.stage === 'train' && p.step) steps.push(p.step.step); },
      });
      const outcome = await r.run('manual').then(trained);
      assert.deepEqual(steps, [1, 2, 3]);
      assert.ok(outcome.after, 'the gate evaluated the new version with the TypeScript runtime');
      await catchUp();
      const all = await events();
      const started = all.find((e) => e.type === 'RoundStarted' && (e.data as { roundId: string }).roundId === outcome.roundId)!;
      assert.equal((started.data as unknown as { config: { trainer: string } }).config.trainer, 'torch');
      const published = all.find((e) => e.type === 'ModelVersionPublished' && (e.data as { version: string }).version === outcome.newVersion)!;
      const dir = (published.data as { path: string; sha256: string }).path;
      assert.equal((published.data as { sha256: string }).sha256, modelSha256(dir));
      assert.deepEqual(readdirSync(dir).sort(), readdirSync(modelDir).filter((f) => f !== 'training-log.jsonl').sort(), 'the same files as the base');
      const a = loadSafetensorsFile(join(dir, 'model.safetensors')).tensors;
      const b = loadSafetensorsFile(join(modelDir, 'model.safetensors')).tensors;
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      assert.ok([...a].some(([k, v]) => v.data.some((x, i) => x !== b.get(k)!.data[i])), 'the weights moved');
      assert.deepEqual(readdirSync(join(artifactRoot, 'models')), [outcome.newVersion], 'nothing else left in models/');
    } finally {
      await t.close();
    }
  });
});

describe('the GPU check script', () => {
  it('runs end to end on the CPU with a tiny shape (--smoke), so that it is ready when a GPU is lent', async () => {
    const { spawnSync } = await import('node:child_process');
    const { readFileSync: read } = await import('node:fs');
    const out = mkdtempSync(join(tmpdir(), 'oeld-gpu-smoke-'));
    const r = spawnSync(torchPython(), [join(import.meta.dirname, '..', 'bench', 'gpu', 'gpu-check.py'), '--out', out, '--smoke', '--skip-part1'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(read(join(out, 'gpu-check.json'), 'utf8'));
    for (const label of ['full-weight', 'lora-r16']) {
      assert.ok(result.qwen3Step[label].studentTokensPerSecond > 0, label);
      assert.ok(result.qwen3Step[label].trainedParameters > 0, label);
    }
    assert.ok(result.qwen3Step['lora-r16'].trainedParameters < result.qwen3Step['full-weight'].trainedParameters / 2, 'LoRA trains only its factors');
  });
});
