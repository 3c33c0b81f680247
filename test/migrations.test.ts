import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrate, readMigrations } from '../src/db/migrate.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { replay } from '../src/projections/replay.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { BACKENDS, type TestDatabase } from './helpers/databases.ts';

for (const backend of BACKENDS) {
  describe(`migrations on ${backend.name}`, () => {
    let db: TestDatabase;
    before(async () => { db = await backend.open(); });
    after(async () => { await db.drop(); });

    it('puts the store tables in public, where a replay (which drops the projection schema) cannot reach them', async () => {
      await createProjectionSchema(db.sql, LIVE_SCHEMA, createProjections());
      await replay(db.sql, createProjections);
      const { rows } = await db.sql.query<{ table_schema: string; table_name: string }>(
        `SELECT table_schema, table_name FROM information_schema.tables
          WHERE table_name IN ('events', 'streams', 'dead_letters', 'kafka_consumer_offsets', 'outbox_relay_checkpoints', 'oeld_migrations')
          ORDER BY table_name`);
      assert.deepEqual(rows.map((r) => `${r.table_schema}.${r.table_name}`), [
        'public.dead_letters', 'public.events', 'public.kafka_consumer_offsets', 'public.oeld_migrations', 'public.outbox_relay_checkpoints', 'public.streams']);
    });

    it('is idempotent and refuses a migration changed after it was applied', async () => {
      assert.deepEqual(await migrate(db.sql), []);
      const files = readMigrations();
      files[0] = { ...files[0]!, sql: `${files[0]!.sql}\n-- edited`, checksum: 'f'.repeat(64) };
      await assert.rejects(migrate(db.sql, files), /migration 001_event_store\.sql was changed after it was applied/);
    });
  });
}
