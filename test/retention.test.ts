/**
 * The retention policy for model versions (src/operations/retention-policy.ts, prune-versions.ts):
 * what it keeps, that pruning is recorded and removes only files in the artifact store, that a
 * rollback to a pruned version is refused, and that a rollback or a round landing while pruning is
 * decided makes it give up rather than remove what just became needed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NewEvent } from '../src/events/envelope.ts';
import { newEventId } from '../src/events/ids.ts';
import { pruneVersions } from '../src/operations/prune-versions.ts';
import { versionsToPrune, type RegistryLog } from '../src/operations/retention-policy.ts';
import { rollbackModel, RollbackError } from '../src/operations/rollback.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { readRetention } from '../src/projections/models/model-projection.ts';
import { ModelProjection } from '../src/projections/models/model-projection.ts';
import { Projector } from '../src/projections/projector.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { EventStore } from '../src/store/event-store.ts';
import { embeddedDatabase, type TestDatabase } from './helpers/databases.ts';

const HOUR = 3_600_000;
const t = (h: number) => new Date(Date.UTC(2026, 11, 1) + h * HOUR);

describe('which versions the retention policy keeps', () => {
  // base (a root), then v1..v8, each trained from the one before and activated an hour apart; at
  // hour 9 v6 was rolled back to (so v8 is not active), and "now" is hour 12.
  const names = ['base', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8'];
  const registry: RegistryLog = {
    versions: names.map((v, i) => ({ version: v, path: `/store/models/${v}`, sha256: '0'.repeat(64), baseVersion: i === 0 ? null : names[i - 1]!, adapterOf: null, publishedAt: t(i), pruned: false, roundId: i === 0 ? null : `round-${v}`, restoredAt: null })),
    activations: [...names.map((v, i) => ({ version: v, at: t(i) })), { version: 'v6', at: t(9) }],
    streamPosition: 20,
  };
  const prune = (keepVersions: number, windowHours: number, r = registry) =>
    versionsToPrune(r, { keepVersions, rollbackWindowMs: windowHours * HOUR }, t(12), (p) => p.startsWith('/store/models/')).map((d) => d.version);

  it('keeps the active version, its base, every root, the newest N and everything active within the window', () => {
    // Newest 2: v7, v8. Active: v6, its base v5. Root: base. Window 3 h (since hour 9): v6 (active since 9) and v8 (active until 9).
    assert.deepEqual(prune(2, 3), ['v1', 'v2', 'v3', 'v4']);
    // A window reaching hour 4 keeps v3 (active until hour 4) on.
    assert.deepEqual(prune(2, 8), ['v1', 'v2']);
    assert.deepEqual(prune(100, 0), [], 'the newest 100 are everything');
  });

  it('keeps the full-weight version an adapter version applies to while the adapter is kept', () => {
    // v2 is a full-weight version; v6 (active, hence kept) is an adapter on it.
    const r: RegistryLog = { ...registry, versions: registry.versions.map((v) => (v.version === 'v6' ? { ...v, adapterOf: 'v2' } : v)) };
    assert.deepEqual(prune(2, 3, r), ['v1', 'v3', 'v4']);
  });

  it('never touches a version outside the artifact store or one already pruned', () => {
    const r: RegistryLog = { ...registry, versions: registry.versions.map((v) => (v.version === 'v1' ? { ...v, path: '/elsewhere/v1' } : v.version === 'v2' ? { ...v, pruned: true } : v)) };
    assert.deepEqual(prune(2, 3, r), ['v3', 'v4']);
  });
});

describe('pruning model versions on the embedded database', () => {
  let db: TestDatabase;
  let store: EventStore;
  let root: string;
  const folder = (v: string) => join(root, 'models', v);
  const publish = (v: string, base?: string): NewEvent[] => {
    mkdirSync(folder(v), { recursive: true });
    writeFileSync(join(folder(v), 'model.safetensors'), Buffer.alloc(1000 + v.length));
    return [
      { id: newEventId(), type: 'ModelVersionPublished', data: { version: v, path: folder(v), sha256: '0'.repeat(64), ...(base ? { baseVersion: base } : {}) } },
      { id: newEventId(), type: 'ModelVersionActivated', data: { version: v, reason: base ? 'promoted' : 'initial' } },
    ];
  };
  const models = (events: NewEvent[]) => store.append([{ streamId: 'models', events }]);
  const policy = { keepVersions: 2, rollbackWindowMs: 0 };

  before(async () => {
    db = await embeddedDatabase();
    store = new EventStore(db.sql);
    await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
    root = mkdtempSync(join(tmpdir(), 'oeld-retention-'));
    await models(publish('base'));
    for (let i = 1; i <= 6; i++) await models(publish(`v${i}`, i === 1 ? 'base' : `v${i - 1}`));
  });
  after(async () => { await db.drop(); rmSync(root, { recursive: true, force: true }); });

  it('gives up when a rollback lands while it decides, and removes nothing', async () => {
    const r = await pruneVersions(store, root, policy, { beforeAppend: async () => { await rollbackModel(store, 'v2'); } });
    assert.deepEqual(r.pruned, []);
    assert.match(r.skipped!, /registry changed/);
    for (const v of ['v1', 'v2', 'v3', 'v4']) assert.ok(existsSync(folder(v)), `${v} is still there`);
  });

  it('gives up when a round publishes while it decides', async () => {
    const r = await pruneVersions(store, root, policy, { beforeAppend: async () => { await models(publish('v7', 'v2')); } });
    assert.deepEqual(r.pruned, []);
    assert.match(r.skipped!, /registry changed/);
  });

  it('records each pruned version, removes its files, keeps the rest, and refuses a rollback to it', async () => {
    // Active: v7 (trained from v2): kept with v2, the root base, and the newest two (v6, v7).
    const r = await pruneVersions(store, root, policy);
    assert.deepEqual(r.pruned.map((p) => p.version), ['v1', 'v3', 'v4', 'v5']);
    assert.ok(r.pruned.every((p) => p.bytes >= 1000));
    for (const v of ['v1', 'v3', 'v4', 'v5']) assert.ok(!existsSync(folder(v)), `${v} removed`);
    for (const v of ['base', 'v2', 'v6', 'v7']) assert.ok(existsSync(folder(v)), `${v} kept`);
    await new Projector(db.sql, new ModelProjection()).catchUp();
    assert.deepEqual(await readRetention(db.sql), { kept: 4, pruned: 4, prunedBytes: r.pruned.reduce((n, p) => n + p.bytes, 0) });
    await assert.rejects(rollbackModel(store, 'v3'), (e: unknown) => e instanceof RollbackError && /v3's files were pruned/.test(e.message));
    assert.equal((await rollbackModel(store, 'v6')).previousVersion, 'v7');
    // With v6 active again, v2 is no one's base in use: the next pass lets it go, and then nothing.
    assert.deepEqual((await pruneVersions(store, root, policy)).pruned.map((p) => p.version), ['v2']);
    assert.deepEqual((await pruneVersions(store, root, policy)).pruned, [], 'nothing more to prune');
  });
});
