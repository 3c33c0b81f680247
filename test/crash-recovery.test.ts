import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { openPglite } from '../src/db/pglite-sql.ts';
import type { Sql } from '../src/db/sql.ts';
import type { NewEvent } from '../src/events/envelope.ts';
import { uuidFromKey } from '../src/events/ids.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { projectionHashes } from '../src/projections/hash.ts';
import { replay } from '../src/projections/replay.ts';
import { LIVE_SCHEMA } from '../src/projections/schema.ts';
import { EventStore } from '../src/store/event-store.ts';
import { serverDatabase } from './helpers/databases.ts';
import { spawnDaemon } from './helpers/daemon-process.ts';
import { extraction, interaction } from './helpers/events.ts';

const KILLS = 5;

/** A log with every kind of knowledge change, model activity and rounds, interleaved with interactions. */
async function fillLog(sql: Sql, n: number): Promise<number> {
  const store = new EventStore(sql);
  for (let i = 0; i < n; i++) {
    const knowledge: NewEvent[] = [extraction(i, { slot: i % 4, budget: 30, items: 1 + (i % 2) })];
    if (i % 37 === 36) knowledge.push({ id: uuidFromKey(`ret${i}`), type: 'KnowledgeItemRetracted', data: { itemId: `item-${i - 3}-0`, reason: 'test' } });
    if (i % 101 === 100) knowledge.push({ id: uuidFromKey(`rb${i}`), type: 'KnowledgeBaseRolledBack', data: { toVersion: Math.floor(i / 3) } });
    await store.append([{ streamId: 'knowledge', events: knowledge }, { streamId: `interaction-${i}`, events: [interaction(i)] }]);
    if (i % 50 === 0) {
      const v = `v${i / 50}`;
      await store.append([{ streamId: 'models', events: [
        { id: uuidFromKey(`pub${v}`), type: 'ModelVersionPublished', data: { version: v, path: `/m/${v}`, sha256: 'c'.repeat(64) } },
        { id: uuidFromKey(`act${v}`), type: 'ModelVersionActivated', data: { version: v, reason: 'promoted' } },
      ] }, { streamId: `round-${v}`, events: [
        { id: uuidFromKey(`rs${v}`), type: 'RoundStarted', data: { roundId: v, trigger: 'threshold', baseModelVersion: 'v0', knowledgeVersion: i, config: {} } },
        { id: uuidFromKey(`rc${v}`), type: 'RoundCompleted', data: { roundId: v, steps: 1 } },
      ] }]);
    }
  }
  return store.head();
}

async function checkpoints(sql: Sql): Promise<number[]> {
  const { rows } = await sql.query<{ p: number }>(`SELECT global_position AS p FROM ${LIVE_SCHEMA}.projection_checkpoints ORDER BY name`);
  return rows.map((r) => Number(r.p));
}

/**
 * Kill -9 the daemon at random points while it projects, restart it, repeat; at the end the live
 * projections must equal a from-scratch replay (nothing lost, nothing applied twice).
 */
async function killAndCompare(env: Record<string, string>, open: () => Promise<Sql>, events: number, maxDelayMs: number) {
  let sql = await open();
  const head = await fillLog(sql, events);
  const isEmbedded = sql.kind === 'pglite';
  if (isEmbedded) await sql.close();
  const midway: number[][] = [];
  for (let k = 0; k < KILLS; k++) {
    const d = spawnDaemon({ ...env, OELD_PROJECTION_BATCH: '1', OELD_PROJECTION_POLL_MS: '20' });
    await d.waitForLog(/elected leader/);
    await sleep(20 + Math.random() * maxDelayMs);
    assert.equal(await d.kill('SIGKILL'), null, 'killed by the signal, not exited');
    if (isEmbedded) { sql = await open(); }
    midway.push(await checkpoints(sql));
    if (isEmbedded) await sql.close();
  }
  const d = spawnDaemon({ ...env, OELD_PROJECTION_POLL_MS: '20' });
  await d.waitForLog(/elected leader/);
  if (!isEmbedded) {
    for (let i = 0; i < 600 && (await checkpoints(sql)).some((p) => p < head); i++) await sleep(100);
  } else {
    await sleep(3000);
  }
  assert.equal(await d.kill('SIGTERM'), 0, 'graceful stop exits 0');
  if (isEmbedded) sql = await open();
  try {
    assert.deepEqual(await checkpoints(sql), createProjections().map(() => head), 'every projection caught up after the restarts');
    const interrupted = midway.filter((cps) => cps.some((p) => p > 0 && p < head)).length;
    assert.ok(interrupted >= 2, `at least two kills landed mid-projection (checkpoints after each kill: ${JSON.stringify(midway)})`);
    const live = await projectionHashes(sql, LIVE_SCHEMA, createProjections());
    const fresh = await replay(sql, createProjections, { untilPosition: head });
    assert.deepEqual(fresh.hashes, live, 'the projections after crashes equal a from-scratch replay');
  } finally {
    await sql.close();
  }
}

describe('crash recovery (kill -9 during projection)', () => {
  it('on the PostgreSQL server', async () => {
    const db = await serverDatabase();
    try {
      await killAndCompare({ DATABASE_URL: db.url! }, async () => db.sql, 1500, 600);
    } finally {
      await db.drop();
    }
  });

  it('on embedded PGlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oeld-crash-'));
    try {
      const open = async () => { const s = await openPglite(join(dir, 'pglite')); await migrate(s); return s; };
      await killAndCompare({ OELD_DATA_DIR: dir }, open, 3000, 300);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
