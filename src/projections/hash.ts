import type { Queryable, Sql } from '../db/sql.ts';
import type { Projection } from './projection.ts';
import { schemaName } from './schema.ts';

/**
 * A content hash of a projection's tables: every row in key order, as PostgreSQL prints it, in
 * UTC. Two builds of the same log give the same hash; any difference in any row changes it.
 */
export async function projectionHash(sql: Sql, schema: string, p: Projection): Promise<string> {
  return sql.transaction(async (tx) => hashIn(tx, schema, p));
}

async function hashIn(tx: Queryable, schema: string, p: Projection): Promise<string> {
  await tx.query(`SELECT set_config('TimeZone', 'UTC', true)`);
  const parts: string[] = [];
  for (const t of p.tables) {
    const { rows } = await tx.query<{ h: string | null; n: number }>(
      `SELECT encode(sha256(convert_to(coalesce(string_agg(t::text, E'\\n' ORDER BY ${t.orderBy}), ''), 'UTF8')), 'hex') AS h,
              count(*)::int AS n
         FROM ${schemaName(schema)}.${t.name} t`);
    parts.push(`${t.name}:${rows[0]!.n}:${rows[0]!.h}`);
  }
  const { rows } = await tx.query<{ h: string }>(`SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS h`, [parts.join('\n')]);
  return rows[0]!.h;
}

export async function projectionHashes(sql: Sql, schema: string, projections: readonly Projection[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of projections) out[p.name] = await projectionHash(sql, schema, p);
  return out;
}
