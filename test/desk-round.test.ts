/**
 * The built-in support desk end to end with a tiny model on the PostgreSQL server: the desk
 * simulator records conversations through the ingestion decoder (a new simulator continues the
 * seeds; the policy drifts on schedule), and a support-desk round runs with the desk's gate, whose
 * validation conversations are recorded beside the chat gate's measurements.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { DEPLOYED_COMPANY_SEEDS } from '../src/envs/seed-ranges.ts';
import { FACTS, factById, statedValues } from '../src/envs/support-desk/facts.ts';
import { upcastEvaluation, type EventDataMap } from '../src/events/schemas.ts';
import { createGate } from '../src/evaluation/task-gate.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import type { ModelEngine, TrainRoundInput } from '../src/engine/model-engine.ts';
import { rederiveVersion } from '../src/operations/rederive.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { EXTRACTION_READING_PROMPTS, READING_PROMPTS } from '../src/tasks/reading-prompts.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import { tfjsTrainer } from '../src/trainer/tfjs-trainer.ts';
import { catchUpProjections } from '../src/operations/catch-up.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { companyAt, DeskSimulator } from '../src/simulator/desk-simulator.ts';
import { EventStore } from '../src/store/event-store.ts';
import { readEventsByIds, readEventsOfTypes } from '../src/store/log-queries.ts';
import { trainingPrompts } from '../src/tasks/training-prompts.ts';
import { DESK_TASK_NAME, loadTasks } from '../src/tasks/task-config.ts';
import type { ChatTask } from '../src/tasks/task.ts';
import { serverDatabase, type TestDatabase } from './helpers/databases.ts';
import { supportChats, TINY_ROUND } from './helpers/round-settings.ts';
import { STREAMS } from '../src/events/streams.ts';
import { makeTinyModel, modelSha256 } from './helpers/tiny-model.ts';

const COMPANY = DEPLOYED_COMPANY_SEEDS.start + 7;

describe('the support desk (tiny model, PostgreSQL server)', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  const task: ChatTask = {
    ...(loadTasks([DESK_TASK_NAME], undefined, { minInteractions: 1, maxRetentionKl: 50, anchorPromptsFile: 'config/anchor-prompts.jsonl' })[0] as ChatTask),
    responseTokens: 6, extractionTokens: 8, gatePrompts: 4,
  };
  task.world = { kind: 'support-desk', companySeed: COMPANY, drift: { afterConversations: 8, facts: 4 } };
  const sim = () => new DeskSimulator(store, engine, { taskId: task.id, companySeed: COMPANY, drift: task.world!.drift!, batchSize: 4, maxNewTokens: 6, maxEventBytes: 1 << 20 });

  before(async () => {
    db = await serverDatabase();
    await migrate(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    store = new EventStore(db.sql);
    engine = localEngine();
    const dir = await makeTinyModel();
    await engine.load('tiny', dir);
    await store.append([{ streamId: 'models', events: [
      { id: crypto.randomUUID(), type: 'ModelVersionPublished', data: { version: 'tiny', path: dir, sha256: modelSha256(dir) } },
      { id: crypto.randomUUID(), type: 'ModelVersionActivated', data: { version: 'tiny', reason: 'initial' } },
    ] }]);
  });
  after(async () => { await engine?.close(); await db?.drop(); });

  it('records conversations through the decoder, continues the seeds in a new simulator, and drifts on schedule', async () => {
    const first = await sim().playBatch('tiny');
    assert.equal(first.episodes, 4);
    assert.deepEqual(first.changedFacts, []);
    await sim().playBatch('tiny');
    const third = await sim().playBatch('tiny');
    assert.equal(third.changedFacts.length, 4, 'the policy changed after 8 conversations');
    const events = await readEventsOfTypes(db.sql, ['InteractionRecorded']);
    assert.equal(events.length, 12);
    assert.equal(new Set(events.map((e) => (e.data as { source: { episodeSeed: number } }).source.episodeSeed)).size, 12, 'no seed played twice');
    const before = companyAt(task.world!, 0).company;
    const afterDrift = companyAt(task.world!, 8).company;
    let withTruth = 0;
    for (const [i, e] of events.entries()) {
      const d = e.data as { taskId: string; source: { kind: string }; messages: { role: string; content: string }[]; modelVersion: string };
      assert.equal(d.taskId, DESK_TASK_NAME);
      assert.equal(d.source.kind, 'simulator');
      assert.equal(d.modelVersion, 'tiny');
      assert.equal(d.messages[0]!.role, 'system');
      assert.ok(d.messages[0]!.content.includes(before.name));
      // The tiny model answers nonsense; customers correct it with the company's values of the time.
      const company = i < 8 ? before : afterDrift;
      const said = d.messages.filter((m) => m.role === 'user').map((m) => m.content).join(' ');
      if (FACTS.some((f) => statedValues(f, said).includes(company.facts[f.id]!))) withTruth++;
      if (i >= 8) for (const id of third.changedFacts) assert.ok(!statedValues(factById(id), said).includes(before.facts[id]!), `after the change no customer states the old ${id}: ${said}`);
    }
    assert.ok(withTruth >= 8, `most customers correct with the company's value: ${withTruth} of 12`);
  });

  it('runs a support-desk round with the desk gate: validation fact accuracy recorded beside the chat measurements', async () => {
    await sim().playBatch('tiny');
    await sim().playBatch('tiny');
    await catchUpProjections(db.sql);
    const seen: string[] = [];
    const runner = new RoundRunner({
      store, engine, artifactRoot: mkdtempSync(join(tmpdir(), 'oeld-desk-')), task,
      settings: { ...TINY_ROUND, poolSlots: 1, poolTrajectories: 4, trajectoriesPerRound: 8 },
      gate: createGate(engine, store, task, { gameEpisodes: 16, gate: true, gameTolerance: 1, temperature: 0.7, topK: 256, seed: 1 }),
      extractFnFor: async () => async (prompts: string[]) => prompts.map((p) => { seen.push(p); return { text: '- EXPERIENCE ITEM: The refund window is 30 days.', tokens: 10 }; }),
    });
    const outcome = await runner.run('manual').then(trained);
    assert.ok(seen.length > 0 && seen.every((p) => p.includes('You are the support assistant of')), 'extraction read the desk conversations');
    assert.ok(outcome.gateReasons.some((r) => /^validation fact accuracy .* \(16 questions/.test(r)), outcome.gateReasons.join('; '));
    assert.ok(outcome.gateReasons.some((r) => /retention/.test(r)), 'the chat gate ran too');
    assert.ok(outcome.before && outcome.after);
    const evaluations = (await readEventsOfTypes(db.sql, ['EvaluationRecorded'])).map((e) => upcastEvaluation(e.schemaVersion, e.data));
    const world = evaluations.filter((e) => e.kind === 'game');
    assert.deepEqual(world.map((e) => [e.taskId, e.modelVersion]).sort(), [[DESK_TASK_NAME, 'tiny'], [DESK_TASK_NAME, outcome.newVersion]].sort());
    assert.ok(evaluations.some((e) => e.kind === 'retention'));
  });

  it('trains a share of reading prompts (other companies, their facts in context) and its failed conversations three times, and the round re-derives from what it recorded', async () => {
    await catchUpProjections(db.sql);
    const active = (await readActiveModel(db.sql))!.version;
    await sim().playBatch(active);
    await sim().playBatch(active);
    // The tiny model fails every conversation it plays: two logged ones that went well.
    const good = supportChats(active, 2, 'desk-good').map((e) => ({ ...e, data: { ...e.data, taskId: DESK_TASK_NAME, outcome: { success: true } } }));
    await store.append(good.map((e) => ({ streamId: STREAMS.interaction(e.data.interactionId), events: [e] })));
    await catchUpProjections(db.sql);
    const jobs: TrainRoundInput[] = [];
    const capturing: ModelEngine = { ...engine, trainRound: (v, input, onStep) => { jobs.push(input); return engine.trainRound(v, input, onStep); } };
    const reading: ChatTask = { ...task, training: { readingShare: 0.25, readingExtraction: true, failedRepeat: 3 } };
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-desk-reading-'));
    const outcome = await new RoundRunner({
      store, engine: capturing, artifactRoot, task: reading,
      settings: { ...TINY_ROUND, poolSlots: 1, poolTrajectories: 4, trajectoriesPerRound: 8, training: trainingFor(reading, { ...TINY_ROUND.training, batchSize: 4 }) },
      gate: null,
      extractFnFor: async () => async (prompts: string[]) => prompts.map(() => ({ text: '- EXPERIENCE ITEM: The refund window is 30 days.', tokens: 10 })),
    }).run('manual').then(trained);
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0]!.options.readingShare, 0.25);
    assert.equal(jobs[0]!.reading?.length, READING_PROMPTS + EXTRACTION_READING_PROMPTS);
    assert.ok(jobs[0]!.reading!.slice(0, READING_PROMPTS).every((p) => p[0]!.role === 'system' && p[0]!.content.includes('EXPERIENCE ITEM: ')));
    assert.ok(jobs[0]!.reading!.slice(READING_PROMPTS).every((p) => p.length === 1 && p[0]!.role === 'user'), 'then the extraction prompts');
    const completed = (await readEventsOfTypes(db.sql, ['RoundCompleted'])).map((e) => e.data as EventDataMap['RoundCompleted']).find((d) => d.newModelVersion === outcome.newVersion)!;
    const ids = completed.inputs!.trajectoryEventIds;
    const logged = new Map((await readEventsByIds(db.sql, ids)).map((e) => [e.id, e.data as EventDataMap['InteractionRecorded']]));
    const failed = [...logged.values()].filter((d) => d.outcome?.success === false).length;
    assert.ok(failed > 0 && failed < logged.size, `the tiny model fails some conversations and not all (${failed} of ${logged.size})`);
    assert.equal(ids.length, logged.size + 2 * failed, 'each failed conversation three times, the rest once');
    assert.equal(jobs[0]!.situations.length, ids.reduce((n, id) => n + trainingPrompts(logged.get(id)!).length, 0), 'the job trains on the repeated list\'s prompts');
    await catchUpProjections(db.sql);
    const r = await rederiveVersion({ store, engine, trainer: tfjsTrainer(engine), artifactRoot }, outcome.newVersion);
    assert.equal(r.matches, true, 'the reading prompts are rebuilt from the recorded round (task and seed)');
    // Without them in the job the same round would train otherwise: the re-derivation above depended on them.
    const without = await rederiveVersion({ store, engine, trainer: tfjsTrainer({ trainRound: (v, input, onStep) => engine.trainRound(v, { ...input, reading: [] }, onStep) }), artifactRoot }, outcome.newVersion);
    assert.equal(without.matches, false);
  });
});
