/**
 * The game gate without an unbounded ratchet: the candidate is held to the best of the recently
 * activated versions, so a run of drops each within the tolerance is refused once they add up; the
 * world rounds never train on is held to the lineage's base. The registry queries it uses, on the
 * embedded database; and the gate in a round on the tiny model, recording what it played.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VALIDATION_SEEDS } from '../src/envs/seed-ranges.ts';
import { untrainedWorldOf } from '../src/envs/games.ts';
import type { NewEvent } from '../src/events/envelope.ts';
import type { EventDataMap } from '../src/events/schemas.ts';
import { newEventId } from '../src/events/ids.ts';
import { decideGameGate, type PassRate } from '../src/evaluation/game-gate-decision.ts';
import { GameGate, ratesDiffer } from '../src/evaluation/game-gate.ts';
import type { GameSpec } from '../src/envs/environment.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { gateRegistry } from '../src/evaluation/task-gate.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { readLineageRoot, readRecentlyActive } from '../src/projections/models/model-projection.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { RoundRunner, trained } from '../src/rounds/round-runner.ts';
import { EventStore } from '../src/store/event-store.ts';
import { START } from '../src/store/read-events.ts';
import { embeddedDatabase, type TestDatabase } from './helpers/databases.ts';
import { scriptedExtractor, TINY_GAME_TASK, TINY_ROUND } from './helpers/round-settings.ts';
import { tinyRoundWorld, type TinyRoundWorld } from './helpers/tiny-round-world.ts';

const rate = (version: string, passRate: number): PassRate => ({ version, passRate, episodes: 128 });

describe('the game gate decision', () => {
  it('refuses a run of small drops once they add up, where comparing with the version before lets every one through', () => {
    // Each round loses 1 point: within a 2-point tolerance of the version before, every time.
    const rates = [1.0, 0.99, 0.98, 0.97, 0.96, 0.95];
    const run = (history: number) => {
      const active: PassRate[] = [rate('v0', rates[0]!)];
      const outcomes: boolean[] = [];
      for (let k = 1; k < rates.length; k++) {
        const candidate = rate(`v${k}`, rates[k]!);
        const ok = decideGameGate({ candidate, recent: active.slice(0, history) }, 0.02).ok;
        outcomes.push(ok);
        if (ok) active.unshift(candidate); // activated: the newest first
      }
      return outcomes;
    };
    assert.deepEqual(run(1), [true, true, true, true, true], 'against the version before only: the ratchet');
    // Against the best of the last 3: v3 (97%) is 3 points under v0 (100%); the next candidates are too.
    assert.deepEqual(run(3), [true, true, false, false, false]);
  });

  it('refuses a candidate that falls below the base on the world rounds never train on, with the figures', () => {
    const recent = [rate('v3', 0.95)];
    const pass = decideGameGate({ candidate: rate('v4', 0.97), recent, retention: { world: 'lake-XO', candidate: rate('v4', 0.99), root: rate('base', 1) } }, 0.02);
    assert.equal(pass.ok, true);
    const fail = decideGameGate({ candidate: rate('v4', 0.97), recent, retention: { world: 'lake-XO', candidate: rate('v4', 0.95), root: rate('base', 1) } }, 0.02);
    assert.equal(fail.ok, false);
    assert.match(fail.reasons[1]!, /lake-XO \(never trained on\) pass rate 95.0% against the base base's 100.0% \(128 episodes; at least 98.0% needed\)/);
    assert.match(fail.reasons[0]!, /validation pass rate 95.0% -> 97.0%/);
  });
});

describe('the registry queries the gate reads (embedded database)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await embeddedDatabase();
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    const store = new EventStore(db.sql);
    const pub = (v: string, base?: string): NewEvent => ({ id: newEventId(), type: 'ModelVersionPublished', data: { version: v, path: `/m/${v}`, sha256: '0'.repeat(64), ...(base ? { baseVersion: base } : {}) } });
    const act = (v: string, reason: 'initial' | 'promoted' | 'rollback'): NewEvent => ({ id: newEventId(), type: 'ModelVersionActivated', data: { version: v, reason } });
    await store.append([{ streamId: 'models', events: [pub('v0'), act('v0', 'initial'), pub('v1', 'v0'), act('v1', 'promoted'), pub('v2', 'v1'), act('v2', 'promoted'), act('v1', 'rollback'), pub('v3', 'v2')] }]);
    for (const p of createProjections()) await new Projector(db.sql, p).catchUp();
  });
  after(async () => { await db.drop(); });

  it('lists each recently active version once, newest activation first, and finds a lineage root', async () => {
    assert.deepEqual((await readRecentlyActive(db.sql, 5)).map((v) => v.version), ['v1', 'v2', 'v0']);
    assert.deepEqual((await readRecentlyActive(db.sql, 2)).map((v) => v.version), ['v1', 'v2']);
    assert.deepEqual(await readLineageRoot(db.sql, 'v3'), { version: 'v0', path: '/m/v0', pruned: false });
    assert.equal((await readLineageRoot(db.sql, 'v0'))!.version, 'v0');
    assert.equal(await readLineageRoot(db.sql, 'nope'), null);
  });
});

describe('the game gate when the world changes', () => {
  /** Which seeds a version wins in the world as it is now (the test changes it). */
  let rule = (version: string, seed: number) => (version === 'v0' ? seed % 10 < 9 : seed % 10 < 5);
  let playing = '';
  /** A one-move game whose outcome is the rule's, whatever the answer. */
  const game: GameSpec = {
    id: 'one-move', hiddenRulesPrompt: 'Play.', responseTokens: 4,
    create: (seed) => ({
      id: `one-move-${seed}`, calls: 0, observation: () => `seed ${seed}`,
      step: () => { const won = rule(playing, seed); return { action: 'right', valid: true, done: true, success: won, reward: won ? 1 : 0, feedback: '' }; },
    }),
  };
  const task = { ...TINY_GAME_TASK, game };
  /** A stand-in engine: every version answers [right]; the game reads which version played. */
  const engine = {
    complete: async (version: string, prompts: unknown[]) => { playing = version; return prompts.map(() => ({ text: '[right]', tokens: 1 })); },
    load: async () => ({ parameters: 0, backend: 'stand-in', runtime: 'stand-in' }), unload: async () => {},
  } as unknown as ModelEngine;
  const round = (gate: GameGate, n: number, candidate: string) => gate.evaluate({ roundId: `r${n}`, baseVersion: 'v0', candidateVersion: candidate, knowledgeTexts: [] });

  it('plays the round-start version again each round, and when its figure moved, measures every figure again and says why', async () => {
    const gate = new GameGate(engine, task, { seeds: { ...VALIDATION_SEEDS, count: 100 }, gate: true, tolerance: 0.02 });
    const first = await round(gate, 1, 'v1');
    assert.equal(first.passed, false, 'v1 (50%) is below v0 (90%)');
    const again = await round(gate, 2, 'v2');
    assert.ok(!again.reasons.some((r) => /changed/.test(r)), 'the same world: no change reported');
    assert.equal(again.before!.passRate, 0.9);
    // The world changes: v0's answers win no more; the new candidate wins 30%.
    rule = (version, seed) => (version === 'v0' ? false : seed % 10 < 3);
    const changed = await round(gate, 3, 'v3');
    assert.match(changed.reasons[0]!, /^one-move changed: v0 passes 0\.0% of the validation episodes now, 90\.0% when it was first played/);
    assert.equal(changed.before!.passRate, 0, 'held to the figure of the world as it is');
    assert.equal(changed.passed, true, `30% against 0% now: ${changed.reasons.join('; ')}`);
  });

  it('calls two figures different only beyond both 95% intervals', () => {
    assert.equal(ratesDiffer({ passRate: 0.9, episodes: 128 }, { passRate: 0.85, episodes: 128 }), false);
    assert.equal(ratesDiffer({ passRate: 0.9, episodes: 128 }, { passRate: 0.0, episodes: 128 }), true);
    assert.equal(ratesDiffer({ passRate: 0.25, episodes: 4 }, { passRate: 0.0, episodes: 4 }), false, 'too few episodes to tell');
  });
});

describe('the game gate in rounds on the tiny model', () => {
  let w: TinyRoundWorld;
  before(async () => { w = await tinyRoundWorld('gate'); });
  after(async () => { await w.close(); });

  it('plays the recently activated versions and the untrained world, each once but the round-start version, and gives a line for each check', async () => {
    const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-gate-'));
    const gate = new GameGate(w.engine, TINY_GAME_TASK, {
      seeds: { ...VALIDATION_SEEDS, count: 4 }, gate: false, tolerance: 0.02, history: 3, retentionGame: untrainedWorldOf(TINY_GAME_TASK.game)!, registry: gateRegistry(w.db.sql),
    });
    const round = async () => {
      const o = await new RoundRunner({ store: w.store, engine: w.engine, artifactRoot, task: TINY_GAME_TASK, gate, settings: TINY_ROUND, extractFnFor: scriptedExtractor([]) }).run('manual').then(trained);
      await w.catchUp();
      return o;
    };
    const first = await round();
    assert.equal(first.gateReasons.length, 3);
    assert.match(first.gateReasons[1]!, /^lake-XO \(never trained on\) pass rate .* against the base tiny's/);
    await w.play();
    const second = await round();
    assert.match(second.gateReasons[0]!, /best of the last 2 activated/);
    const evaluations = (await w.store.read({ after: START, limit: 100_000 })).events
      .filter((e) => e.type === 'EvaluationRecorded').map((e) => e.data as Extract<EventDataMap['EvaluationRecorded'], { kind: 'game' }>);
    const played = evaluations.map((e) => `${e.taskId}:${e.modelVersion}`);
    // Round 1: tiny and the candidate on validation, tiny and the candidate on lake-XO. Round 2: its
    // candidate on both, and its round-start version (round 1's candidate) on validation again, to
    // see whether the world changed (it did not: no line says so).
    assert.deepEqual(played.sort(), [`frozenlake:${first.newVersion}`, `frozenlake:${first.newVersion}`, `frozenlake:${second.newVersion}`, 'frozenlake:tiny', `lake-XO:${first.newVersion}`, `lake-XO:${second.newVersion}`, 'lake-XO:tiny'].sort());
    assert.ok(!second.gateReasons.some((r) => /changed/.test(r)), second.gateReasons.join('; '));
  });
});
