import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { GENERIC_INSTRUCTION } from '../src/envs/environment.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { DEPLOYMENT_SEEDS } from '../src/envs/seed-ranges.ts';
import type { RecordedEvent } from '../src/events/envelope.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { KNOWLEDGE_HEADER } from '../src/extraction/teacher-prompt.ts';
import { countDeadLetters } from '../src/ingest/dead-letters.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { readKnowledgeVersion } from '../src/projections/knowledge/knowledge-queries.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { RoundFailedError, RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { countFreshInteractions, readLastRoundEnd } from '../src/projections/trajectories/trajectory-queries.ts';
import { Simulator } from '../src/simulator/simulator.ts';
import { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, tinyGameRound, TINY_ROUND } from './helpers/round-settings.ts';
import { makeTinyModel, modelSha256 } from './helpers/tiny-model.ts';

async function allEvents(store: EventStore): Promise<RecordedEvent[]> {
  return (await store.read({ after: START, limit: 100_000 })).events;
}

describe('learning round (tiny model, PostgreSQL server)', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  let modelDir: string;
  let artifactRoot: string;
  const catchUp = async () => { for (const p of createProjections()) await new Projector(db.sql, p).catchUp(); };

  before(async () => {
    db = await serverDatabase();
    await migrate(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    store = new EventStore(db.sql);
    engine = localEngine();
    modelDir = await makeTinyModel();
    artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-artifacts-'));
    await store.append([{ streamId: 'models', events: [
      { id: uuidFromKey('tiny-pub'), type: 'ModelVersionPublished', data: { version: 'tiny', path: modelDir, sha256: modelSha256(modelDir) } },
      { id: uuidFromKey('tiny-act'), type: 'ModelVersionActivated', data: { version: 'tiny', reason: 'initial' } },
    ] }]);
    await catchUp();
    await engine.load('tiny', modelDir);
  });
  after(async () => { await engine.close(); await db.drop(); });

  it('the simulator records episodes through the ingestion decoder, and a new simulator continues the seeds', async () => {
    const options = { game: frozenLakeSpec(), batchSize: 4, maxNewTokens: 6, maxEventBytes: 1 << 20 };
    const first = await new Simulator(store, engine, options).playBatch('tiny');
    assert.equal(first.episodes, 4);
    await new Simulator(store, engine, options).playBatch('tiny');
    const interactions = (await allEvents(store)).filter((e) => e.type === 'InteractionRecorded') as RecordedEvent<'InteractionRecorded'>[];
    assert.equal(interactions.length, 8);
    assert.deepEqual(interactions.map((e) => (e.data.source as { episodeSeed: number }).episodeSeed), Array.from({ length: 8 }, (_, i) => DEPLOYMENT_SEEDS.start + i));
    for (const e of interactions) {
      assert.equal(e.data.modelVersion, 'tiny');
      assert.equal(e.data.source.kind, 'simulator');
      assert.ok(e.data.turns!.length >= 1 && e.data.turns!.length <= 5);
      for (const t of e.data.turns!) {
        assert.ok(t.prompt.startsWith(GENERIC_INSTRUCTION), 'the deployed prompt is the bare situation');
        assert.ok(!t.prompt.includes(KNOWLEDGE_HEADER), 'knowledge never enters the deployed model\'s context');
      }
      assert.equal(typeof e.data.outcome!.success, 'boolean');
    }
  });

  it('an episode ingestion refuses becomes a dead letter, as a Kafka message would', async () => {
    const countBefore = (await allEvents(store)).length;
    const writesNul: ModelEngine = { ...engine, complete: async (_v, prompts) => prompts.map(() => ({ text: 'NUL \u0000 [right]', tokens: 3 })) };
    await new Simulator(store, writesNul, { game: frozenLakeSpec(), batchSize: 3, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch('tiny');
    assert.equal((await allEvents(store)).length, countBefore, 'nothing appended');
    assert.equal(await countDeadLetters(db.sql, 'simulator'), 3);
    const { rows } = await db.sql.query<{ reason: string }>(`SELECT reason FROM dead_letters WHERE source = 'simulator'`);
    assert.match(rows[0]!.reason, /U\+0000/);
  });

  it('runs a round: pool extracted by the same version, distilled, published with its sha256, evaluated, activated, all in one commit', async () => {
    const before = await readKnowledgeVersion(db.sql);
    const seen: string[] = [];
    const progress: string[] = [];
    const runner = new RoundRunner({ store, engine, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor(seen), onProgress: (p) => progress.push(p.stage) });
    await catchUp(); // the round finds its trajectories through the trajectories projection
    const outcome = await runner.run('manual').then(trained);
    await catchUp();

    assert.equal(seen.length, 2 * 3, 'two slots, three trajectories each');
    assert.ok(seen.every((p) => p.includes('Turn 1 input:') && p.includes('Final result:')));
    assert.ok(seen.some((p) => p.includes('1. G is the goal.')), 'later prompts carry the knowledge so far');
    for (const s of ['collect', 'extract', 'train', 'evaluate']) assert.ok(progress.includes(s), `progress reports ${s}`);

    const events = await allEvents(store);
    const roundEvents = events.filter((e) => e.streamId === `round-${outcome.roundId}`).map((e) => e.type);
    assert.deepEqual(roundEvents, ['RoundStarted', 'EvaluationRecorded', 'EvaluationRecorded', 'RoundCompleted']);
    const started = events.find((e) => e.type === 'RoundStarted')!;
    const completed = events.find((e) => e.type === 'RoundCompleted') as RecordedEvent<'RoundCompleted'>;
    const published = events.find((e) => e.type === 'ModelVersionPublished' && (e as RecordedEvent<'ModelVersionPublished'>).data.version === outcome.newVersion) as RecordedEvent<'ModelVersionPublished'>;
    const extracted = events.filter((e) => e.type === 'KnowledgeExtracted') as RecordedEvent<'KnowledgeExtracted'>[];
    // Everything the round produced is in the commit after RoundStarted's.
    const tx = new Set([completed, published, ...extracted].map((e) => e.transactionId));
    assert.equal(tx.size, 1);
    assert.notEqual(started.transactionId, completed.transactionId);

    assert.equal(extracted.length, 6);
    assert.ok(extracted.every((e) => e.data.extractingModelVersion === 'tiny'), 'the version that acted extracts');
    assert.deepEqual(extracted.map((e) => e.data.items.length).sort(), [1, 1, 1, 1, 2, 2], 'repeats of held items are not added again');
    assert.equal(completed.data.steps, 3);
    assert.equal(completed.data.curve!.length, 3);
    assert.deepEqual(Object.keys(completed.data.seconds!).sort(), ['backward', 'collect', 'evaluate', 'extract', 'sampling', 'teacher', 'train']);

    const file = join(published.data.path, 'model.safetensors');
    assert.equal(published.data.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(join(published.data.path, f)), f);
    assert.equal(published.data.baseVersion, 'tiny');
    assert.equal((await readActiveModel(db.sql))!.version, outcome.newVersion);
    assert.equal((await readKnowledgeVersion(db.sql))!.version, before!.version + 6);
    assert.ok(!existsSync(join(artifactRoot, 'rounds', outcome.roundId)), 'checkpoints are removed once the version is recorded');
    assert.ok(outcome.before !== null && outcome.after !== null);
    assert.equal(outcome.after!.episodes, 4);
  });

  it('counts only the interactions recorded after the last round as fresh experience for the next one', async () => {
    const active = (await readActiveModel(db.sql))!;
    await engine.load(active.version, active.path);
    await catchUp();
    const before = await countFreshInteractions(db.sql, 'frozenlake', active.version);
    await new Simulator(store, engine, { game: frozenLakeSpec(), batchSize: 3, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch(active.version);
    await catchUp();
    assert.equal(await countFreshInteractions(db.sql, 'frozenlake', active.version), before + 3);
    assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'a-version-never-seen'), 0);
  });

  it('a round that fails records RoundFailed with its stage, and publishes and extracts nothing', async () => {
    const active = await readActiveModel(db.sql);
    await engine.load(active!.version, active!.path);
    await new Simulator(store, engine, { game: frozenLakeSpec(), batchSize: 4, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch(active!.version);
    const before = await readKnowledgeVersion(db.sql);
    const countBefore = (await allEvents(store)).length;
    const runner = new RoundRunner({
      store, engine, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND,
      extractFnFor: async () => async (prompts) => prompts.map(() => ({ text: 'no marked line here', tokens: 4 })),
    });
    await assert.rejects(runner.run('manual'), (err: unknown) => err instanceof RoundFailedError && err.stage === 'extract' && /no experience items/.test(err.message));
    await catchUp();
    const added = (await allEvents(store)).slice(countBefore).map((e) => e.type);
    assert.deepEqual(added, ['RoundStarted', 'RoundFailed']);
    assert.equal((await readKnowledgeVersion(db.sql))!.version, before!.version);
    assert.equal((await readActiveModel(db.sql))!.version, active!.version);
    // The failed round used what came before it: nothing is fresh until new interactions arrive.
    const last = await readLastRoundEnd(db.sql, 'frozenlake');
    assert.equal(last?.roundId, ((await allEvents(store)).filter((e) => e.type === 'RoundFailed').at(-1)!.data as { roundId: string }).roundId);
    assert.equal(await countFreshInteractions(db.sql, 'frozenlake', active!.version), 0);
    await new Simulator(store, engine, { game: frozenLakeSpec(), batchSize: 2, maxNewTokens: 6, maxEventBytes: 1 << 20 }).playBatch(active!.version);
    await catchUp();
    assert.equal(await countFreshInteractions(db.sql, 'frozenlake', active!.version), 2);
  });

  it('refuses an active version whose weights changed on disk after publication, naming both hashes', async () => {
    const active = (await readActiveModel(db.sql))!;
    const file = join(active.path, 'model.safetensors');
    const original = readFileSync(file);
    const altered = Buffer.from(original);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 0xff; // one byte of the last weight
    writeFileSync(file, altered);
    try {
      const countBefore = (await allEvents(store)).length;
      const runner = new RoundRunner({ store, engine, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) });
      await assert.rejects(runner.run('manual'), (err: unknown) => err instanceof RoundFailedError
        && new RegExp(`has sha256 [0-9a-f]{64}, but was published with ${active.sha256}`).test(err.message));
      const after = (await allEvents(store)).slice(countBefore);
      assert.deepEqual(after.map((e) => e.type), ['RoundStarted', 'ModelVersionLoadRefused', 'RoundFailed'], 'the refusal recorded, nothing published');
      const refused = after[1]!.data as { version: string; expectedSha256: string; actualSha256: string; by: string };
      assert.deepEqual([refused.version, refused.expectedSha256, refused.by], [active.version, active.sha256, 'round']);
      assert.equal(refused.actualSha256, createHash('sha256').update(altered).digest('hex'));
      // Tried again in the same state: the round fails again, the refusal is not recorded twice.
      await assert.rejects(new RoundRunner({ store, engine, artifactRoot, ...tinyGameRound(engine), settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual'), RoundFailedError);
      assert.equal((await allEvents(store)).filter((e) => e.type === 'ModelVersionLoadRefused').length, 1);
    } finally {
      writeFileSync(file, original);
    }
  });
});
