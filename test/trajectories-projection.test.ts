import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { uuidFromKey } from '../src/events/ids.ts';
import type { NewEvent } from '../src/events/envelope.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { projectionHashes } from '../src/projections/hash.ts';
import { Projector } from '../src/projections/projector.ts';
import { replay } from '../src/projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { TrajectoryProjection } from '../src/projections/trajectories/trajectory-projection.ts';
import { countFreshInteractions, heldOutEventIds, newestTrajectoryEventIds, readInteractionCounts, readLastRoundEnd, readUnresolvedCounts } from '../src/projections/trajectories/trajectory-queries.ts';
import { isHeldOut } from '../src/tasks/held-out.ts';
import { EventStore } from '../src/store/event-store.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { interaction } from './helpers/events.ts';

const chat = (i: number, model: string): NewEvent<'InteractionRecorded'> => {
  const { turns: _turns, ...data } = interaction(i, { model, prefix: 'chat' }).data;
  return { id: uuidFromKey(`chat:${i}`), type: 'InteractionRecorded', data: { ...data, source: { kind: 'http' }, taskId: 'support', messages: [{ role: 'user', content: 'hi' }] } };
};
const published = (version: string): NewEvent<'ModelVersionPublished'> =>
  ({ id: uuidFromKey(`publish:${version}`), type: 'ModelVersionPublished', data: { version, path: `/m/${version}`, sha256: '0'.repeat(64) } });
const activated = (version: string): NewEvent<'ModelVersionActivated'> =>
  ({ id: uuidFromKey(`activate:${version}:${Math.random()}`), type: 'ModelVersionActivated', data: { version, reason: 'promoted' } });
const aliased = (alias: string, to: { version: string } | { followsActive: true }): NewEvent<'ModelVersionAliased'> =>
  ({ id: uuidFromKey(`alias:${alias}:${Math.random()}`), type: 'ModelVersionAliased', data: { alias, ...to, setBy: 'operator' } });
/** A round's start and end; without a task it is a round from before tasks (it ends every task's). */
const roundEnd = (roundId: string, type: 'RoundCompleted' | 'RoundFailed', taskId?: string): NewEvent[] => [
  { id: uuidFromKey(`${roundId}:start`), type: 'RoundStarted', data: { roundId, trigger: 'threshold', ...(taskId ? { taskId } : {}), baseModelVersion: 'v0', knowledgeVersion: 0, config: {} } },
  type === 'RoundCompleted'
    ? { id: uuidFromKey(`${roundId}:end`), type, data: { roundId, steps: 1 } }
    : { id: uuidFromKey(`${roundId}:end`), type, data: { roundId, stage: 'extract', error: 'no items' } },
];

for (const backend of BACKENDS) {
  describe(`the trajectories projection on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    const ids: Record<string, string[]> = { v0: [], v1: [] };
    before(async () => {
      db = await backend.open();
      store = new EventStore(db.sql);
      await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
      const add = async (streamId: string, events: NewEvent[]) => { await store.append([{ streamId, events }]); };
      await add('models', [published('v0'), activated('v0'), published('v1')]);
      for (let i = 0; i < 3; i++) { const e = interaction(i, { model: 'v0' }); ids.v0!.push(e.id); await add(`i-${i}`, [e]); }
      await add('chat-1', [chat(1, 'v0')]);
      await add('round-a', roundEnd('a', 'RoundFailed'));
      for (let i = 3; i < 5; i++) { const e = interaction(i, { model: 'v0' }); ids.v0!.push(e.id); await add(`i-${i}`, [e]); }
      const v1 = interaction(5, { model: 'v1' });
      ids.v1!.push(v1.id);
      await add('i-5', [v1]);
      await add('chat-2', [chat(2, 'v0')]);
    });
    after(async () => { await db.drop(); });

    it('counts what came after the newest round end, per task and version, and finds the newest trajectories', async () => {
      // Batches of 2: the round's end falls inside a batch, and its snapshot must still sit at its place.
      await new Projector(db.sql, new TrajectoryProjection(), { batchSize: 2 }).catchUp();
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v0'), 2, 'two game trajectories after round a (from before tasks: it ended every task)');
      assert.equal(await countFreshInteractions(db.sql, 'support', 'v0'), 1, 'one chat after round a');
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v1'), 1);
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v2'), 0);
      assert.equal((await readLastRoundEnd(db.sql, 'frozenlake'))?.roundId, 'a');
      assert.equal((await readLastRoundEnd(db.sql, 'support'))?.roundId, 'a');
      assert.deepEqual(await newestTrajectoryEventIds(db.sql, 'frozenlake', 'v0', 10), ids.v0, 'all game trajectories, oldest first; chats are another task');
      assert.deepEqual(await newestTrajectoryEventIds(db.sql, 'frozenlake', 'v0', 2), ids.v0!.slice(-2));

      // A round of the chat task ends only that task's counts.
      await store.append([{ streamId: 'round-b', events: roundEnd('b', 'RoundCompleted', 'support') }]);
      await new Projector(db.sql, new TrajectoryProjection()).catchUp();
      assert.equal(await countFreshInteractions(db.sql, 'support', 'v0'), 0);
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v0'), 2, 'the game task still has its fresh trajectories');
      assert.equal((await readLastRoundEnd(db.sql, 'support'))?.roundId, 'b');
      assert.equal((await readLastRoundEnd(db.sql, 'frozenlake'))?.roundId, 'a');
      await store.append([{ streamId: 'round-c', events: roundEnd('c', 'RoundFailed', 'frozenlake') }]);
      await new Projector(db.sql, new TrajectoryProjection()).catchUp();
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v0'), 0);
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v1'), 0);
      assert.equal((await readLastRoundEnd(db.sql, 'frozenlake'))?.roundId, 'c');
    });

    it('keeps a held-out split by a hash of the interaction id: counted apart, never among the trajectories to learn from', async () => {
      const chats = Array.from({ length: 300 }, (_, i) => chat(100 + i, 'v0'));
      await store.append([{ streamId: 'chats-many', events: chats }]);
      await new Projector(db.sql, new TrajectoryProjection()).catchUp();
      const heldOut = chats.filter((e) => isHeldOut(e.data.interactionId, 10));
      assert.ok(heldOut.length > 10 && heldOut.length < 60, `about 10% of 300 held out, got ${heldOut.length}`);
      assert.equal(await countFreshInteractions(db.sql, 'support', 'v0', 10), 300 - heldOut.length);
      assert.equal(await countFreshInteractions(db.sql, 'support', 'v0', 0), 300);
      const mine = new Set(chats.map((e) => e.id));
      const learnable = new Set((await newestTrajectoryEventIds(db.sql, 'support', 'v0', 1000, 10)).filter((id) => mine.has(id)));
      assert.equal(learnable.size, 300 - heldOut.length);
      assert.ok(heldOut.every((e) => !learnable.has(e.id)), 'no held-out chat is among the trajectories a round reads');
      assert.deepEqual(new Set((await heldOutEventIds(db.sql, 'support', 10, 1000)).filter((id) => mine.has(id))), new Set(heldOut.map((e) => e.id)));
      const counts = await readInteractionCounts(db.sql, new Map([['support', 10]]));
      const support = counts.filter((c) => c.taskId === 'support');
      assert.deepEqual(support.map((c) => [c.heldOut, c.fresh]), [[false, 300 - heldOut.length], [true, heldOut.length]]);
    });

    it('resolves the names logs use: unknown ones counted apart until an alias claims them, a followed name by the version active then', async () => {
      const named = (i: number, model: string) => ({ ...chat(1000 + i, model), id: uuidFromKey(`named:${backend.name}:${i}`) });
      const fresh = (v: string) => countFreshInteractions(db.sql, 'support', v);
      const unknown = async () => Object.fromEntries((await readUnresolvedCounts(db.sql)).filter((u) => u.taskId === 'support').map((u) => [u.name, u.recorded]));
      const [before0, before1] = [await fresh('v0'), await fresh('v1')];
      await store.append([{ streamId: 'named-a', events: [named(1, 'Qwen/Qwen3-8B@rev3'), named(2, 'Qwen/Qwen3-8B@rev3'), named(3, 'support-bot')] }]);
      await new Projector(db.sql, new TrajectoryProjection()).catchUp();
      assert.deepEqual(await unknown(), { 'Qwen/Qwen3-8B@rev3': 2, 'support-bot': 1 });
      assert.equal(await fresh('v0'), before0, 'a name no version or alias has is never learned from');

      // An alias claims what was logged under the name before, and maps what comes after.
      await store.append([{ streamId: 'models', events: [aliased('Qwen/Qwen3-8B@rev3', { version: 'v0' })] }]);
      await store.append([{ streamId: 'named-b', events: [named(4, 'Qwen/Qwen3-8B@rev3')] }]);
      await new Projector(db.sql, new TrajectoryProjection(), { batchSize: 1 }).catchUp();
      assert.deepEqual(await unknown(), { 'support-bot': 1 });
      assert.equal(await fresh('v0'), before0 + 3);

      // A name that follows the active version: each interaction counts for the version active when it was logged.
      await store.append([{ streamId: 'models', events: [aliased('support-bot', { followsActive: true })] }]);
      await store.append([{ streamId: 'named-c', events: [named(5, 'support-bot')] }]);
      await store.append([{ streamId: 'models', events: [activated('v1')] }]);
      await store.append([{ streamId: 'named-d', events: [named(6, 'support-bot'), named(7, 'support-bot')] }]);
      await store.append([{ streamId: 'models', events: [activated('v0')] }]);
      await new Projector(db.sql, new TrajectoryProjection(), { batchSize: 3 }).catchUp();
      assert.deepEqual(await unknown(), {});
      assert.equal(await fresh('v0'), before0 + 3 + 2, 'the one logged before the alias (claimed while v0 was active) and the one after');
      assert.equal(await fresh('v1'), before1 + 2, 'the two logged while v1 was active stay v1\'s after v0 is active again');

      // Moving an alias changes what comes after, never what was resolved before.
      await store.append([{ streamId: 'models', events: [aliased('Qwen/Qwen3-8B@rev3', { version: 'v1' })] }]);
      await store.append([{ streamId: 'named-e', events: [named(8, 'Qwen/Qwen3-8B@rev3')] }]);
      await new Projector(db.sql, new TrajectoryProjection()).catchUp();
      assert.equal(await fresh('v0'), before0 + 5);
      assert.equal(await fresh('v1'), before1 + 3);
    });

    it('a replay rebuilds the same tables', async () => {
      const live = await projectionHashes(db.sql, LIVE_SCHEMA, createProjections());
      const rebuilt = await replay(db.sql, createProjections);
      assert.equal(rebuilt.hashes.trajectories, live.trajectories);
      assert.equal(await countFreshInteractions(db.sql, 'frozenlake', 'v0'), 0);
    });
  });
}
