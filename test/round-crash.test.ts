import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { readKnowledgeVersion } from '../src/projections/knowledge/knowledge-queries.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { recoverInterruptedRounds, RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { Simulator } from '../src/simulator/simulator.ts';
import { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, supportChats, tinyChatRound, tinyGameRound, TINY_ROUND } from './helpers/round-settings.ts';
import { makeTinyModel, modelSha256 } from './helpers/tiny-model.ts';

const ROOT = new URL('../', import.meta.url).pathname;

for (const kind of ['game', 'chat'] as const) describe(`a process killed in the middle of a ${kind} round`, () => {
  let db: TestDatabase;
  let store: EventStore;
  let artifactRoot: string;
  const catchUp = async () => { for (const p of createProjections()) await new Projector(db.sql, p).catchUp(); };
  const types = async () => (await store.read({ after: START, limit: 100_000 })).events.map((e) => e.type);

  before(async () => {
    db = await serverDatabase();
    await migrate(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    store = new EventStore(db.sql);
    const modelDir = await makeTinyModel();
    artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-crash-'));
    await store.append([{ streamId: 'models', events: [
      { id: uuidFromKey('crash-pub'), type: 'ModelVersionPublished', data: { version: 'tiny', path: modelDir, sha256: modelSha256(modelDir) } },
      { id: uuidFromKey('crash-act'), type: 'ModelVersionActivated', data: { version: 'tiny', reason: 'initial' } },
    ] }]);
    await catchUp();
    const engine = localEngine();
    await engine.load('tiny', modelDir);
    if (kind === 'game') await new Simulator(store, engine, { game: frozenLakeSpec(), batchSize: 8, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch('tiny');
    else await store.append([{ streamId: 'chats', events: supportChats('tiny', 24) }]);
    await catchUp(); // the rounds find these trajectories through the trajectories projection
    await engine.close();
  });
  after(async () => { await db.drop(); });

  it('publishes nothing, leaves the knowledge base untouched, and the round can be run again', async () => {
    const knowledgeBefore = (await readKnowledgeVersion(db.sql))!.version;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/round-child.ts'], {
      cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url!, OELD_ARTIFACT_ROOT: artifactRoot, OELD_TEST_ROUND_TASK: kind }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    // Kill it with SIGKILL once training is under way: after extraction, with checkpoints on disk.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the child never reached step 3; stderr:\n${err}`)), 120_000);
      child.stdout!.on('data', (d) => { out += d; if (/STEP 3\n/.test(out)) { clearTimeout(t); resolve(); } });
      child.on('exit', () => reject(new Error(`the child exited early; stdout:\n${out}\nstderr:\n${err}`)));
    });
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok(!out.includes('DONE'));

    await catchUp();
    assert.deepEqual((await types()).filter((t) => t !== 'InteractionRecorded'), ['ModelVersionPublished', 'ModelVersionActivated', 'RoundStarted']);
    assert.equal((await readKnowledgeVersion(db.sql))!.version, knowledgeBefore, 'no KnowledgeExtracted was recorded');
    assert.equal((await readActiveModel(db.sql))!.version, 'tiny');
    assert.ok(existsSync(join(artifactRoot, 'rounds')), 'the dead round left checkpoints behind');

    const recovered = await recoverInterruptedRounds(store, artifactRoot);
    assert.equal(recovered.length, 1);
    assert.deepEqual(readdirSync(join(artifactRoot, 'rounds')), [], 'its checkpoints are removed');
    assert.equal((await recoverInterruptedRounds(store, artifactRoot)).length, 0, 'recovery is idempotent');

    const engine = localEngine();
    try {
      const outcome = await new RoundRunner({ store, engine, artifactRoot, ...(kind === 'chat' ? tinyChatRound(engine, store) : tinyGameRound(engine)), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual').then(trained);
      await catchUp();
      assert.equal((await readActiveModel(db.sql))!.version, outcome.activated ? outcome.newVersion : 'tiny');
      assert.ok((await readKnowledgeVersion(db.sql))!.version > knowledgeBefore);
      const after = (await types()).filter((t) => t !== 'InteractionRecorded' && t !== 'KnowledgeExtracted' && t !== 'EvaluationRecorded');
      assert.deepEqual(after, ['ModelVersionPublished', 'ModelVersionActivated', 'RoundStarted', 'RoundFailed', 'RoundStarted', 'ModelVersionPublished', ...(outcome.activated ? ['ModelVersionActivated'] : []), 'RoundCompleted']);
    } finally {
      await engine.close();
    }
  });
});
