import type { Queryable } from '../db/sql.ts';
import { readKnowledgeVersion } from '../projections/knowledge/knowledge-queries.ts';
import { readActiveModel } from '../projections/models/model-projection.ts';
import { readRecentRounds, type RoundView } from '../projections/rounds/round-projection.ts';
import { LIVE_SCHEMA } from '../projections/schema.ts';

export interface Status {
  database: 'postgres' | 'pglite';
  headPosition: number;
  events: number;
  deadLetters: number;
  projections: { name: string; globalPosition: number; lagEvents: number }[];
  knowledge: { version: number; contentHash: string; items: number; tokens: number; pools: number };
  activeModel: { version: string; sha256: string; reason: string; path: string } | null;
  rounds: RoundView[];
}

/** Everything an operator asks first, read from the projections and the store. */
export async function readStatus(q: Queryable, database: Status['database']): Promise<Status> {
  const { rows: [head] } = await q.query<{ head: number | null; n: number; dl: number }>(
    `SELECT (SELECT max(global_position) FROM events) AS head,
            (SELECT count(*) FROM events)::bigint AS n,
            (SELECT count(*) FROM dead_letters)::bigint AS dl`);
  const headPosition = Number(head?.head ?? 0);
  const { rows: cps } = await q.query<{ name: string; global_position: number }>(
    `SELECT name, global_position FROM ${LIVE_SCHEMA}.projection_checkpoints ORDER BY name`);
  const k = await readKnowledgeVersion(q);
  const active = await readActiveModel(q);
  return {
    database,
    headPosition,
    events: Number(head?.n ?? 0),
    deadLetters: Number(head?.dl ?? 0),
    projections: cps.map((c) => ({ name: c.name, globalPosition: Number(c.global_position), lagEvents: Math.max(0, headPosition - Number(c.global_position)) })),
    knowledge: { version: k?.version ?? 0, contentHash: k?.contentHash ?? '', items: k?.itemCount ?? 0, tokens: k?.tokens ?? 0, pools: k?.pools.length ?? 0 },
    activeModel: active ? { version: active.version, sha256: active.sha256, reason: active.reason, path: active.path } : null,
    rounds: await readRecentRounds(q, 5),
  };
}
