import type { Sql } from '../db/sql.ts';
import { LEADER_LOCK } from '../daemon/leader.ts';
import { createProjections } from '../projections/all-projections.ts';
import { KEPT_SNAPSHOTS, replay } from '../projections/replay.ts';
import { emit, UsageError, type Command } from './command.ts';
import { withDatabase } from './with-database.ts';

export function parseUntil(raw: string | undefined): { untilPosition?: number; untilTime?: Date } {
  if (raw === undefined) return {};
  if (/^\d+$/.test(raw)) return { untilPosition: Number(raw) };
  const t = new Date(raw);
  if (!/^\d{4}-\d\d-\d\d/.test(raw) || Number.isNaN(t.getTime())) throw new UsageError(`--until: expected a global position (integer) or an ISO time such as 2026-11-27T12:00:00Z, got ${JSON.stringify(raw)}`);
  return { untilTime: t };
}

/** Holds the leader lock for the replay so that no daemon folds events meanwhile. */
async function asLeader<T>(sql: Sql, fn: () => Promise<T>): Promise<T> {
  return sql.session(async (s) => {
    const { rows } = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [LEADER_LOCK]);
    if (!rows[0]?.ok) throw new Error('a running daemon is the leader of this database; replay through its admin API (POST /admin/replay) or stop it first');
    try { return await fn(); } finally { await s.query('SELECT pg_advisory_unlock(hashtext($1))', [LEADER_LOCK]); }
  });
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'rebuild every projection from the event log and swap it in',
  usage: 'oeld replay [--until <position|ISO time>] [--json]',
  help: [
    'Without --until: builds fresh projection tables from the whole log, then swaps them in atomically;',
    'prints each projection\'s content hash (equal to the live one when nothing was wrong).',
    'With --until: builds the state as of that position or time into a separate schema, kept for',
    'inspection (the live projections are left alone; use `oeld rollback` to go back).',
  ],
  options: { until: { type: 'string' } },
  async run(values, _p, ctx) {
    const until = parseUntil(values.until as string | undefined);
    const r = await withDatabase(ctx.env, (sql) => asLeader(sql, () => replay(sql, createProjections, {
      ...until,
      onProgress: (name, n) => { if (!ctx.json && n % 50_000 < 5000) process.stderr.write(`\r${name}: ${n} events folded`); },
    })));
    if (!ctx.json) process.stderr.write('\n');
    emit(ctx, r, [
      r.swapped ? 'rebuilt projections swapped in' : `point-in-time projections kept in schema ${r.schema}`,
      ...Object.entries(r.hashes).map(([name, h]) => `${name.padEnd(10)} ${String(r.events[name]).padStart(9)} events  hash ${h}`),
      ...(r.dropped.length ? [`dropped ${r.dropped.join(', ')} (older point-in-time copies beyond ${KEPT_SNAPSHOTS}, or a crashed replay's build)`] : []),
    ].join('\n'));
    return 0;
  },
};
