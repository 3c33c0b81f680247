import { readFileSync } from 'node:fs';
import type { Queryable } from '../../db/sql.ts';
import { isType, type RecordedEvent } from '../../events/envelope.ts';
import { splitBucket } from '../../tasks/held-out.ts';
import type { Projection } from '../projection.ts';

const DDL = readFileSync(new URL('./tables.sql', import.meta.url), 'utf8');

/** Split buckets from this one up share a count row (a task holds out at most 50%). */
export const SHARED_BUCKET = 50;
/** The task a round from before tasks ran for: all of them. */
export const ANY_TASK = '*';

/**
 * Folds InteractionRecorded into an index of trajectories and their counts, and each round's end
 * (RoundCompleted, RoundSkipped, RoundFailed) into a snapshot of its task's counts: what the round trigger and
 * the round read (trajectory-queries.ts) instead of scanning the log.
 *
 * An interaction's model name resolves, when it is folded, to a published version of that name,
 * or through an alias (ModelVersionAliased) to its version or to the version active then
 * (ModelVersionActivated). A name nothing resolves is counted apart (unresolved_interactions);
 * when a version is published under it or an alias first maps it, its interactions are claimed.
 */
export class TrajectoryProjection implements Projection {
  readonly name = 'trajectories';
  readonly types = ['InteractionRecorded', 'RoundStarted', 'RoundCompleted', 'RoundSkipped', 'RoundFailed', 'ModelVersionPublished', 'ModelVersionActivated', 'ModelVersionAliased'] as const;
  /** What it keeps of an interaction, a round's and a version's events; of `turns` only whether it is there (a game trajectory, not a chat). */
  readonly dataFields = { keys: ['interactionId', 'taskId', 'modelVersion', 'source', 'roundId', 'version', 'alias', 'followsActive'], present: ['turns'] } as const;
  readonly ddl = DDL;
  readonly tables = [
    { name: 'trajectories', orderBy: 'global_position' },
    { name: 'trajectory_counts', orderBy: 'task_id, model_version, source_kind, split_bucket' },
    { name: 'trajectory_rounds', orderBy: 'round_id' },
    { name: 'trajectory_last_round', orderBy: 'task_id' },
    { name: 'trajectory_names', orderBy: 'name' },
    { name: 'trajectory_active', orderBy: 'only_row' },
    { name: 'unresolved_interactions', orderBy: 'task_id, logged_version' },
  ] as const;

  async load(): Promise<void> {}

  async apply(tx: Queryable, events: RecordedEvent[]): Promise<void> {
    // Interactions go in a run at a time (one statement), split where a round ends so that the
    // round's snapshot of the counts is taken exactly at its place in the log.
    let run: RecordedEvent<'InteractionRecorded'>[] = [];
    for (const e of events) {
      if (isType(e, 'InteractionRecorded')) { run.push(e); continue; }
      if (isType(e, 'ModelVersionPublished') || isType(e, 'ModelVersionAliased') || isType(e, 'ModelVersionActivated')) {
        // Names resolve as of their place in the log: the interactions before go in first.
        await insertInteractions(tx, run);
        run = [];
        if (isType(e, 'ModelVersionActivated')) {
          await tx.query('INSERT INTO trajectory_active (only_row, version) VALUES (true, $1) ON CONFLICT (only_row) DO UPDATE SET version = excluded.version', [e.data.version]);
          continue;
        }
        const [name, version, follows] = isType(e, 'ModelVersionPublished') ? [e.data.version, e.data.version, false]
          : [e.data.alias, e.data.version ?? null, e.data.followsActive === true];
        // A published version's own name is never remapped (versions are immutable).
        await tx.query(
          `INSERT INTO trajectory_names (name, version, follows_active) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET version = excluded.version, follows_active = excluded.follows_active
           WHERE trajectory_names.version IS DISTINCT FROM trajectory_names.name`, [name, version, follows]);
        await claimUnresolved(tx, name);
        continue;
      }
      if (isType(e, 'RoundStarted')) {
        await tx.query('INSERT INTO trajectory_rounds (round_id, task_id) VALUES ($1, $2) ON CONFLICT (round_id) DO NOTHING', [e.data.roundId, e.data.taskId ?? ANY_TASK]);
        continue;
      }
      if (!isType(e, 'RoundCompleted') && !isType(e, 'RoundSkipped') && !isType(e, 'RoundFailed')) continue;
      await insertInteractions(tx, run);
      run = [];
      const { rows } = await tx.query<{ task_id: string }>('SELECT task_id FROM trajectory_rounds WHERE round_id = $1', [e.data.roundId]);
      const task = rows[0]?.task_id ?? ANY_TASK;
      await tx.query(`UPDATE trajectory_counts SET at_last_round_end = recorded WHERE at_last_round_end <> recorded AND ($1 = '${ANY_TASK}' OR task_id = $1)`, [task]);
      await tx.query(
        `INSERT INTO trajectory_last_round (task_id, round_id, ended_at) VALUES ($1, $2, $3)
         ON CONFLICT (task_id) DO UPDATE SET round_id = excluded.round_id, ended_at = excluded.ended_at`,
        [task, e.data.roundId, e.recordedAt.toISOString()]);
    }
    await insertInteractions(tx, run);
  }
}

/** The version each logged name resolves to now (absent: none). */
async function resolveNames(tx: Queryable, names: string[]): Promise<Map<string, string>> {
  const { rows } = await tx.query<{ name: string; version: string | null }>(
    `SELECT n.name, CASE WHEN n.follows_active THEN a.version ELSE n.version END AS version
       FROM trajectory_names n LEFT JOIN trajectory_active a ON true WHERE n.name = ANY($1::text[])`, [names]);
  return new Map(rows.filter((r) => r.version !== null).map((r) => [r.name, r.version!]));
}

/** Gives the interactions logged under `name` that resolved to nothing the version it resolves to now, and counts them there. */
async function claimUnresolved(tx: Queryable, name: string): Promise<void> {
  const version = (await resolveNames(tx, [name])).get(name);
  if (version === undefined) return;
  await tx.query(
    `WITH claimed AS (
       UPDATE trajectories SET model_version = $2 WHERE model_version IS NULL AND logged_version = $1
       RETURNING task_id, source_kind, least(split_bucket, ${SHARED_BUCKET})::smallint AS bucket)
     INSERT INTO trajectory_counts (model_version, task_id, source_kind, split_bucket, recorded)
     SELECT $2, task_id, source_kind, bucket, count(*) FROM claimed GROUP BY task_id, source_kind, bucket
     ON CONFLICT (task_id, model_version, source_kind, split_bucket) DO UPDATE SET recorded = trajectory_counts.recorded + excluded.recorded`,
    [name, version]);
  await tx.query('DELETE FROM unresolved_interactions WHERE logged_version = $1', [name]);
}

async function insertInteractions(tx: Queryable, events: RecordedEvent<'InteractionRecorded'>[]): Promise<void> {
  if (events.length === 0) return;
  const resolved = await resolveNames(tx, [...new Set(events.map((e) => e.data.modelVersion))]);
  const versions = events.map((e) => resolved.get(e.data.modelVersion) ?? null);
  const buckets = events.map((e) => splitBucket(e.data.interactionId));
  // The projector hands each event over exactly once (its checkpoint moves in this transaction), so
  // the counts are summed here, and a row that already exists is an error, not something to skip.
  await tx.query(
    `INSERT INTO trajectories (event_id, global_position, interaction_id, task_id, logged_version, model_version, shape, source_kind, split_bucket, recorded_at)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::smallint[], $10::timestamptz[])`,
    [events.map((e) => e.id), events.map((e) => e.globalPosition), events.map((e) => e.data.interactionId), events.map((e) => e.data.taskId),
      events.map((e) => e.data.modelVersion), versions, events.map((e) => (e.data.turns ? 'turns' : 'messages')), events.map((e) => e.data.source.kind),
      buckets, events.map((e) => e.recordedAt.toISOString())]);
  const counts = new Map<string, { version: string; task: string; source: string; bucket: number; n: number }>();
  const unresolved = new Map<string, { task: string; name: string; n: number }>();
  events.forEach((e, i) => {
    const version = versions[i] ?? null;
    if (version === null) {
      const key = JSON.stringify([e.data.taskId, e.data.modelVersion]);
      const u = unresolved.get(key) ?? { task: e.data.taskId, name: e.data.modelVersion, n: 0 };
      u.n++;
      unresolved.set(key, u);
      return;
    }
    const bucket = Math.min(buckets[i]!, SHARED_BUCKET);
    const key = JSON.stringify([version, e.data.taskId, e.data.source.kind, bucket]);
    const c = counts.get(key) ?? { version, task: e.data.taskId, source: e.data.source.kind, bucket, n: 0 };
    c.n++;
    counts.set(key, c);
  });
  if (unresolved.size > 0) {
    const us = [...unresolved.values()];
    await tx.query(
      `INSERT INTO unresolved_interactions (task_id, logged_version, recorded) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
       ON CONFLICT (task_id, logged_version) DO UPDATE SET recorded = unresolved_interactions.recorded + excluded.recorded`,
      [us.map((u) => u.task), us.map((u) => u.name), us.map((u) => u.n)]);
  }
  if (counts.size === 0) return;
  const groups = [...counts.values()];
  await tx.query(
    `INSERT INTO trajectory_counts (model_version, task_id, source_kind, split_bucket, recorded)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::bigint[])
     ON CONFLICT (task_id, model_version, source_kind, split_bucket) DO UPDATE SET recorded = trajectory_counts.recorded + excluded.recorded`,
    [groups.map((g) => g.version), groups.map((g) => g.task), groups.map((g) => g.source), groups.map((g) => g.bucket), groups.map((g) => g.n)]);
}
