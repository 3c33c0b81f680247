import { loadConfig, type Config } from '../config.ts';
import { migrate } from '../db/migrate.ts';
import { openDatabase } from '../db/open-database.ts';
import type { Sql } from '../db/sql.ts';
import { createProjections } from '../projections/all-projections.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../projections/schema.ts';

/** Opens the configured database, migrated and with projection tables, for one CLI command. */
export async function withDatabase<T>(env: NodeJS.ProcessEnv, fn: (sql: Sql, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(env);
  const sql = await openDatabase(config);
  try {
    await migrate(sql);
    await createProjectionSchema(sql, LIVE_SCHEMA, createProjections());
    return await fn(sql, config);
  } finally {
    await sql.close();
  }
}
