import { createHash } from 'node:crypto';
import type { Queryable, Sql } from '../db/sql.ts';
import type { Projection } from './projection.ts';

export const LIVE_SCHEMA = 'oeld_proj';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
export function schemaName(name: string): string {
  if (!IDENT.test(name)) throw new Error(`invalid schema name ${JSON.stringify(name)}`);
  return name;
}

/** Points unqualified names at a projection schema for the rest of the transaction. */
export async function useSchema(tx: Queryable, schema: string): Promise<void> {
  await tx.query(`SELECT set_config('search_path', $1, true)`, [`${schemaName(schema)}, public`]);
}

const CHECKPOINTS_DDL = `CREATE TABLE IF NOT EXISTS projection_checkpoints (
  name            text PRIMARY KEY,
  transaction_id  xid8   NOT NULL,
  global_position bigint NOT NULL,
  definition_hash text   NOT NULL
);`;

/** Identifies a projection's table definitions: a change means the tables must be rebuilt by replay. */
export const definitionHash = (p: Projection): string => createHash('sha256').update(p.ddl).digest('hex').slice(0, 16);

/**
 * Creates the schema, the projections' tables and their checkpoints (idempotent). With
 * deferIndexes the secondary indexes (CREATE INDEX statements) are not created but returned: a
 * replay builds them once after its inserts (createIndexes), which costs less than maintaining
 * them row by row.
 */
export async function createProjectionSchema(
  sql: Sql, schema: string, projections: readonly Projection[], o: { deferIndexes?: boolean } = {},
): Promise<string[]> {
  const statements = [CHECKPOINTS_DDL, ...projections.map((p) => p.ddl)].flatMap(splitStatements);
  const deferred = o.deferIndexes ? statements.filter(isIndex) : [];
  await sql.transaction(async (tx) => {
    // Daemons starting together would race on CREATE ... IF NOT EXISTS (it is not atomic in PostgreSQL).
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['oeld:migrate']);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${schemaName(schema)}`);
    await useSchema(tx, schema);
    for (const stmt of statements) if (!deferred.includes(stmt)) await tx.query(stmt);
    for (const p of projections) {
      await tx.query(
        `INSERT INTO projection_checkpoints (name, transaction_id, global_position, definition_hash)
         VALUES ($1, '0', 0, $2) ON CONFLICT (name) DO NOTHING`, [p.name, definitionHash(p)]);
    }
  });
  return deferred;
}

/** Creates the indexes createProjectionSchema deferred. */
export async function createIndexes(sql: Sql, schema: string, statements: readonly string[]): Promise<void> {
  if (statements.length === 0) return;
  await sql.transaction(async (tx) => {
    await useSchema(tx, schema);
    for (const stmt of statements) await tx.query(stmt);
  });
}

const isIndex = (stmt: string): boolean => /^(?:--[^\n]*\n\s*)*CREATE\s+(?:UNIQUE\s+)?INDEX\b/i.test(stmt);

/** Projections whose stored table definition differs from the code's: they need a replay. */
export async function staleProjections(q: Queryable, projections: readonly Projection[]): Promise<string[]> {
  const { rows } = await q.query<{ name: string; definition_hash: string }>(
    `SELECT name, definition_hash FROM ${LIVE_SCHEMA}.projection_checkpoints`);
  const stored = new Map(rows.map((r) => [r.name, r.definition_hash]));
  return projections.filter((p) => stored.get(p.name) !== definitionHash(p)).map((p) => p.name);
}

function splitStatements(ddl: string): string[] {
  return ddl.split(/;\s*(?:\n|$)/).map((s) => s.trim()).filter(Boolean);
}
