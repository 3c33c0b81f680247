/**
 * Rounds that cannot improve anything are skipped with a recorded reason (#19): the rule (pure),
 * and a round on the tiny model whose active version is at its validation ceiling and whose
 * extraction found nothing new: RoundSkipped, nothing published, its trajectories used.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import type { EventDataMap } from '../src/events/schemas.ts';
import type { GateResult } from '../src/evaluation/gate.ts';
import type { ExtractFn } from '../src/extraction/extract-pool.ts';
import { countRefusedSince, readRecentRounds } from '../src/projections/rounds/round-projection.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { countFreshInteractions, readLastRoundEnd } from '../src/projections/trajectories/trajectory-queries.ts';
import { RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { keepSlots, type PoolScreen } from '../src/evaluation/pool-screen.ts';
import { rederiveVersion } from '../src/operations/rederive.ts';
import { tfjsTrainer } from '../src/trainer/tfjs-trainer.ts';
import { skipReason } from '../src/rounds/round-skip.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import type { TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, TINY_GAME_TASK, TINY_ROUND } from './helpers/round-settings.ts';
import { tinyRoundWorld } from './helpers/tiny-round-world.ts';

describe('which rounds cannot improve anything', () => {
  const validation = { passRate: 1, episodes: 64, roundId: 'r1' };
  it('skips only at the validation ceiling with no item the active version was not trained on (compared as the pool compares them)', () => {
    assert.match(skipReason({ validation, trainedItems: ['G is the goal.', 'Avoid H.'], poolItems: ['g  is the GOAL.', 'Avoid H.'] })!, /passed all 64 validation episodes \(round r1\), and the 2 distinct items extracted now were all in the pool/);
    assert.equal(skipReason({ validation: { ...validation, passRate: 63 / 64 }, trainedItems: ['G is the goal.'], poolItems: ['G is the goal.'] }), null, 'below the ceiling');
    assert.equal(skipReason({ validation, trainedItems: ['G is the goal.'], poolItems: ['G is the goal.', 'Walls stop you.'] }), null, 'one new item');
    assert.equal(skipReason({ validation: null, trainedItems: ['G is the goal.'], poolItems: ['G is the goal.'] }), null, 'never measured');
    assert.equal(skipReason({ validation, trainedItems: null, poolItems: [] }), null, 'not trained by a round that recorded its pool');
  });
});

describe('a round at the ceiling with nothing new (tiny model)', () => {
  let db: TestDatabase;
  let store: EventStore;
  let engine: ModelEngine;
  let artifactRoot: string;
  let catchUp: () => Promise<void>;
  let play: () => Promise<void>;
  let close: () => Promise<void>;
  // The gate's validation figures are set by the test: the tiny model plays at random.
  let validationPassRate = 1;
  const stats = () => ({ episodes: 4, passRate: validationPassRate, meanResponseTokens: 3, meanTurns: 2 });
  const gate = { evaluate: async (): Promise<GateResult> => ({ passed: true, reasons: ['stand-in gate'], evaluations: [], before: stats(), after: stats(), chat: null }) };
  const extractor = (items: string[]) => async (): Promise<ExtractFn> => async (prompts) => prompts.map(() => ({ text: items.map((i) => `- EXPERIENCE ITEM: ${i}`).join('\n'), tokens: 9 }));
  const round = (items: string[], skipUnchanged?: boolean) => new RoundRunner({
    store, engine, artifactRoot, task: TINY_GAME_TASK, gate, settings: TINY_ROUND, extractFnFor: extractor(items), ...(skipUnchanged === undefined ? {} : { skipUnchanged }),
  }).run('manual');
  const eventsOf = async <T extends keyof EventDataMap>(type: T) => (await store.read({ after: START, limit: 100_000 })).events.filter((e) => e.type === type).map((e) => e.data as EventDataMap[T]);

  before(async () => {
    ({ db, store, engine, catchUp, play, close } = await tinyRoundWorld('skip'));
    artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-skip-'));
  });
  after(async () => { await close(); rmSync(artifactRoot, { recursive: true, force: true }); });

  it('trains from the base (never skipped: nothing was trained yet), then skips a round that found nothing new, recording why', async () => {
    const first = await round(['G is the goal.', 'Avoid the holes.']);
    assert.ok(!('skipped' in first));
    await catchUp();
    await play();
    const published = (await eventsOf('ModelVersionPublished')).length;
    const extracted = (await eventsOf('KnowledgeExtracted')).length;
    const folders = readdirSync(join(artifactRoot, 'models')).length;

    const second = await round(['g is the goal.', 'Avoid the holes.']);
    // (OELD_SKIP_UNCHANGED_ROUNDS=false would have trained: checked below on the same facts.)
    assert.ok('skipped' in second, 'skipped');
    assert.match(second.skipped, /nothing to improve: the active version passed all 4 validation episodes/);
    assert.equal(second.baseVersion, first.newVersion);
    const skips = await eventsOf('RoundSkipped');
    assert.equal(skips.length, 1);
    assert.equal(skips[0]!.reason, second.skipped);
    assert.equal(skips[0]!.knowledgeItems, 2 * TINY_ROUND.poolSlots);
    assert.equal((await eventsOf('ModelVersionPublished')).length, published, 'nothing published');
    assert.equal((await eventsOf('KnowledgeExtracted')).length, extracted, 'no knowledge recorded');
    assert.equal(readdirSync(join(artifactRoot, 'models')).length, folders, 'no folder written');
    await catchUp();
    const [shown] = await readRecentRounds(db.sql, 1);
    assert.equal(shown!.status, 'skipped');
    assert.equal(shown!.skipReason, second.skipped);
    assert.equal((await readLastRoundEnd(db.sql, TINY_GAME_TASK.id))!.roundId, second.roundId, 'a skipped round ends the trigger\'s count like any round');
    assert.equal(await countFreshInteractions(db.sql, TINY_GAME_TASK.id, first.newVersion, 0), 0);
    await play();
    const trainedAnyway = await round(['g is the goal.', 'Avoid the holes.'], false);
    assert.ok(!('skipped' in trainedAnyway), 'OELD_SKIP_UNCHANGED_ROUNDS=false: trained');
    await catchUp();
  });

  it('trains when the extraction finds one new item, or when validation is below the ceiling', async () => {
    await play();
    // This round's candidate measures 75% on validation: the next round may improve it.
    validationPassRate = 0.75;
    const withNew = await round(['G is the goal.', 'Walls stop you.']);
    assert.ok(!('skipped' in withNew), 'a new item');
    await catchUp();
    await play();
    const belowCeiling = await round(['G is the goal.', 'Walls stop you.']);
    assert.ok(!('skipped' in belowCeiling), 'the same items, but the active version is below the ceiling');
  });
});

describe('screening the pool in context before training', () => {
  it('keeps slots that play at least as well as no knowledge (one episode\'s grain) and within 10 points of the best', () => {
    const kept = (without: number, rates: number[], episodes = 32) => keepSlots(without, rates.map((passRate, slot) => ({ slot, passRate })), episodes).filter((s) => s.kept).map((s) => s.slot);
    // One seed's pool: three slots with the right goal, five with "H is the goal".
    assert.deepEqual(kept(11 / 32, [30 / 32, 0, 29 / 32, 0, 0, 1 / 32, 31 / 32, 0]), [0, 2, 6]);
    assert.deepEqual(kept(1, [1, 31 / 32, 30 / 32]), [0, 1], 'at the ceiling one episode short is noise; two is not');
    assert.deepEqual(kept(0.5, [0.2, 0.1]), [], 'every slot worse than no knowledge: none');
    assert.deepEqual(kept(0.2, [0.9, 0.75, 0.85]), [0, 2], 'more than 10 points below the best: dropped');
  });
});

describe('a round with a pool screen (tiny model, stand-in screen)', () => {
  let w: Awaited<ReturnType<typeof tinyRoundWorld>>;
  let artifactRoot: string;
  const gate = { evaluate: async (): Promise<GateResult> => ({ passed: true, reasons: ['stand-in gate'], evaluations: [], before: null, after: null, chat: null }) };
  /** A screen that keeps the given slots (and says what it saw). */
  const screenKeeping = (keep: number[], seen: number[][]): PoolScreen => async (_version, texts) => {
    seen.push(texts.map((t) => t.slot));
    return { episodes: 8, withoutKnowledge: 0.5, slots: texts.map((t) => ({ slot: t.slot, passRate: keep.includes(t.slot) ? 0.75 : 0, kept: keep.includes(t.slot) })) };
  };
  before(async () => {
    w = await tinyRoundWorld('screen');
    artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-screen-'));
  });
  after(async () => { await w.close(); rmSync(artifactRoot, { recursive: true, force: true }); });

  it('trains on the kept slots only, records only their extraction and the screening, and the version re-derives', async () => {
    const seen: number[][] = [];
    const jobs: { knowledgeTexts: string[] }[] = [];
    const engine: ModelEngine = { ...w.engine, trainRound: (v, input, onStep) => { jobs.push(input); return w.engine.trainRound(v, input, onStep); } };
    const outcome = await new RoundRunner({ store: w.store, engine, artifactRoot, task: TINY_GAME_TASK, gate, settings: TINY_ROUND, extractFnFor: scriptedExtractor([]), screen: screenKeeping([1], seen) }).run('manual').then(trained);
    assert.deepEqual(seen, [[0, 1]], 'both slots screened');
    assert.equal(jobs[0]!.knowledgeTexts.length, 1, 'one slot trained on');
    const events = (await w.store.read({ after: START, limit: 100_000 })).events;
    const extracted = events.filter((e) => e.type === 'KnowledgeExtracted').map((e) => e.data as EventDataMap['KnowledgeExtracted']);
    assert.ok(extracted.length > 0 && extracted.every((e) => e.poolSlot === 1), 'only the kept slot\'s extraction is recorded');
    const completed = events.find((e) => e.type === 'RoundCompleted')!.data as EventDataMap['RoundCompleted'];
    assert.deepEqual(completed.screening!.slots.map((s) => [s.slot, s.kept]), [[0, false], [1, true]]);
    await w.catchUp();
    const r = await rederiveVersion({ store: w.store, engine: w.engine, trainer: tfjsTrainer(w.engine), artifactRoot }, outcome.newVersion);
    assert.equal(r.matches, true, 'the screened round re-derives from what it recorded');
  });

  it('counts the refused rounds in a row from the active version (what the trigger backs off on)', async () => {
    const refusing = { evaluate: async (): Promise<GateResult> => ({ passed: false, reasons: ['stand-in refusal'], evaluations: [], before: null, after: null, chat: null }) };
    const refused = async () => { await w.catchUp(); const a = (await readActiveModel(w.db.sql))!; return countRefusedSince(w.db.sql, a.version, a.activatedAt); };
    const round = (g: typeof gate) => new RoundRunner({ store: w.store, engine: w.engine, artifactRoot, task: TINY_GAME_TASK, gate: g, settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual');
    assert.equal(await refused(), 0);
    for (const n of [1, 2]) {
      await w.play();
      await round(refusing);
      assert.equal(await refused(), n);
    }
    await w.play();
    await round(gate);
    assert.equal(await refused(), 0, 'an activated round made another version active');
  });

  it('skips the round when no slot is kept', async () => {
    await w.play();
    const r = await new RoundRunner({ store: w.store, engine: w.engine, artifactRoot, task: TINY_GAME_TASK, gate, settings: TINY_ROUND, extractFnFor: scriptedExtractor([]), screen: screenKeeping([], []) }).run('manual');
    assert.ok('skipped' in r);
    assert.match(r.skipped, /no slot's knowledge helped in context: 8 episodes without knowledge 50%; slots #0 0% \(dropped\), #1 0% \(dropped\)/);
  });
});
