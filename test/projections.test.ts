import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventStore } from '../src/store/event-store.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { CheckpointConflictError } from '../src/projections/checkpoints.ts';
import { projectionHashes } from '../src/projections/hash.ts';
import { readKnowledgeVersion } from '../src/projections/knowledge/knowledge-queries.ts';
import { readActiveModel } from '../src/projections/models/model-projection.ts';
import { readRecentRounds } from '../src/projections/rounds/round-projection.ts';
import { Projector } from '../src/projections/projector.ts';
import type { Projection } from '../src/projections/projection.ts';
import { replay } from '../src/projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { rollbackKnowledge, rollbackModel, RollbackError } from '../src/operations/rollback.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';
import { extraction, interaction } from './helpers/events.ts';

const sha = (c: string) => c.repeat(64);

for (const backend of BACKENDS) {
  describe(`projections on ${backend.name}`, () => {
    let db: TestDatabase;
    let store: EventStore;
    let projections: Projection[];
    const catchUp = async () => { for (const p of projections) await new Projector(db.sql, p).catchUp(); };

    before(async () => {
      db = await backend.open();
      store = new EventStore(db.sql);
      projections = createProjections();
      await createProjectionSchema(db.sql, LIVE_SCHEMA, projections);
    });
    after(async () => { await db.drop(); });

    it('folds knowledge, models and rounds; replay rebuilds the same hashes; rollback restores exact versions', async () => {
      const appendAll = async (events: Parameters<EventStore['append']>[0][number]['events'], stream: string) => {
        await store.append([{ streamId: stream, events }]);
      };
      for (let i = 0; i < 30; i++) {
        await appendAll([interaction(i)], `interaction-${i}`);
        await appendAll([extraction(i, { slot: i % 3, budget: 40, items: 2 })], 'knowledge');
      }
      await appendAll([
        { id: uuidFromKey('pub0'), type: 'ModelVersionPublished', data: { version: 'v0', path: '/m/v0', sha256: sha('a') } },
        { id: uuidFromKey('act0'), type: 'ModelVersionActivated', data: { version: 'v0', reason: 'initial' } },
      ], 'models');
      await appendAll([{ id: uuidFromKey('r1s'), type: 'RoundStarted', data: { roundId: 'r1', trigger: 'manual', baseModelVersion: 'v0', knowledgeVersion: 30, config: { steps: 2 } } }], 'round-r1');
      await catchUp();

      const v20 = await readKnowledgeVersion(db.sql, 20);
      assert.ok(v20);
      const live = await readKnowledgeVersion(db.sql);
      assert.equal(live!.version, 30);
      for (const pool of live!.pools) assert.ok(pool.tokens <= 40, `pool ${pool.modelVersion}#${pool.slot} within its budget`);
      assert.equal(live!.pools.length, 3);
      assert.match(live!.text, /^## pool v0#0\n- EXPERIENCE ITEM: /);

      await appendAll([
        { id: uuidFromKey('pub1'), type: 'ModelVersionPublished', data: { version: 'v1', path: '/m/v1', sha256: sha('b'), baseVersion: 'v0', roundId: 'r1' } },
        { id: uuidFromKey('act1'), type: 'ModelVersionActivated', data: { version: 'v1', reason: 'promoted', previousVersion: 'v0' } },
      ], 'models');
      await appendAll([{ id: uuidFromKey('r1c'), type: 'RoundCompleted', data: { roundId: 'r1', newModelVersion: 'v1', steps: 2 } }], 'round-r1');
      await appendAll([{ id: uuidFromKey('ret'), type: 'KnowledgeItemRetracted', data: { itemId: live!.pools[0]!.items[0]!.itemId, reason: 'wrong' } }], 'knowledge');

      // Rollbacks go through the operations an operator uses.
      await catchUp();
      const r = await rollbackKnowledge(store, 20);
      assert.equal(r.contentHash, v20!.contentHash);
      const m = await rollbackModel(store, 'v0');
      assert.equal(m.previousVersion, 'v1');
      await assert.rejects(rollbackKnowledge(store, 999), RollbackError);
      await assert.rejects(rollbackModel(store, 'v9'), /never published/);
      await catchUp();

      const now = await readKnowledgeVersion(db.sql);
      assert.equal(now!.version, 32);
      assert.equal(now!.contentHash, v20!.contentHash, 'rolled-back version has the recorded hash of version 20');
      assert.equal(now!.text, v20!.text);
      assert.equal((await readKnowledgeVersion(db.sql, 31))!.itemCount, live!.itemCount - 1, 'history is kept');
      const active = await readActiveModel(db.sql);
      assert.equal(active!.version, 'v0');
      assert.equal(active!.reason, 'rollback');
      assert.equal(active!.sha256, sha('a'));
      const rounds = await readRecentRounds(db.sql);
      assert.equal(rounds[0]!.status, 'completed');

      const liveHashes = await projectionHashes(db.sql, LIVE_SCHEMA, projections);
      const rebuilt = await replay(db.sql, createProjections);
      assert.equal(rebuilt.swapped, true);
      assert.deepEqual(rebuilt.hashes, liveHashes);
      assert.deepEqual(await projectionHashes(db.sql, LIVE_SCHEMA, projections), liveHashes, 'the swapped-in schema is the live one');
      assert.equal((await readKnowledgeVersion(db.sql))!.contentHash, v20!.contentHash);

      // A point-in-time replay is kept aside and matches the state of that time.
      const pointInTime = await replay(db.sql, createProjections, { untilPosition: 10 });
      assert.equal(pointInTime.swapped, false);
      const { rows } = await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${pointInTime.schema}.knowledge_versions`);
      assert.equal(rows[0]!.n, 5, 'positions 1..10 hold 5 extractions');

      // Point-in-time copies do not pile up: the newest three stay, and a crashed replay's build goes.
      await db.sql.exec('CREATE SCHEMA oeld_proj_build_20200101000000000');
      const later: string[] = [pointInTime.schema];
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 5));
        later.push((await replay(db.sql, createProjections, { untilPosition: 10 + i })).schema);
      }
      const { rows: schemas } = await db.sql.query<{ name: string }>(
        "SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, 'oeld_replay_') OR starts_with(nspname, 'oeld_proj_build_') ORDER BY 1");
      assert.deepEqual(schemas.map((r) => r.name), later.slice(1).sort());
    });

    it('a second projector on the same projection fails loudly and applies nothing twice', async () => {
      const [knowledge] = createProjections();
      const other = createProjections()[0]!;
      const a = new Projector(db.sql, knowledge!);
      const b = new Projector(db.sql, other);
      await a.load();
      await b.load();
      await store.append([{ streamId: 'knowledge', events: [extraction(100, { budget: 500 })] }]);
      await a.step();
      await assert.rejects(b.step(), CheckpointConflictError);
      const { rows } = await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${LIVE_SCHEMA}.knowledge_items WHERE item_id = 'item-100-0'`);
      assert.equal(rows[0]!.n, 1);
    });
  });
}
