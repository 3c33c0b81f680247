import { readFileSync } from 'node:fs';
import type { Queryable } from '../../db/sql.ts';
import { isType, type RecordedEvent } from '../../events/envelope.ts';
import type { Projection } from '../projection.ts';

const DDL = readFileSync(new URL('./tables.sql', import.meta.url), 'utf8');

/**
 * Folds InteractionRecorded into an index of trajectories and their counts, and each round's end
 * (RoundCompleted, RoundFailed) into a snapshot of those counts: what the round trigger and the
 * round read (trajectory-queries.ts) instead of scanning the log.
 */
export class TrajectoryProjection implements Projection {
  readonly name = 'trajectories';
  readonly types = ['InteractionRecorded', 'RoundCompleted', 'RoundFailed'] as const;
  readonly ddl = DDL;
  readonly tables = [
    { name: 'trajectories', orderBy: 'global_position' },
    { name: 'trajectory_counts', orderBy: 'model_version, task_id, source_kind' },
    { name: 'trajectory_last_round', orderBy: 'only_row' },
  ] as const;

  async load(): Promise<void> {}

  async apply(tx: Queryable, events: RecordedEvent[]): Promise<void> {
    // Interactions go in a run at a time (one statement), split where a round ends so that the
    // round's snapshot of the counts is taken exactly at its place in the log.
    let run: RecordedEvent<'InteractionRecorded'>[] = [];
    for (const e of events) {
      if (isType(e, 'InteractionRecorded')) { run.push(e); continue; }
      if (!isType(e, 'RoundCompleted') && !isType(e, 'RoundFailed')) continue;
      await insertInteractions(tx, run);
      run = [];
      await tx.query('UPDATE trajectory_counts SET at_last_round_end = recorded WHERE at_last_round_end <> recorded');
      await tx.query(
        `INSERT INTO trajectory_last_round (only_row, round_id, ended_at) VALUES (true, $1, $2)
         ON CONFLICT (only_row) DO UPDATE SET round_id = excluded.round_id, ended_at = excluded.ended_at`,
        [e.data.roundId, e.recordedAt.toISOString()]);
    }
    await insertInteractions(tx, run);
  }
}

async function insertInteractions(tx: Queryable, events: RecordedEvent<'InteractionRecorded'>[]): Promise<void> {
  if (events.length === 0) return;
  // The projector hands each event over exactly once (its checkpoint moves in this transaction), so
  // the counts are summed here, and a row that already exists is an error, not something to skip.
  await tx.query(
    `INSERT INTO trajectories (event_id, global_position, interaction_id, task_id, model_version, shape, source_kind, recorded_at)
     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])`,
    [events.map((e) => e.id), events.map((e) => e.globalPosition), events.map((e) => e.data.interactionId), events.map((e) => e.data.taskId),
      events.map((e) => e.data.modelVersion), events.map((e) => (e.data.turns ? 'turns' : 'messages')), events.map((e) => e.data.source.kind),
      events.map((e) => e.recordedAt.toISOString())]);
  const counts = new Map<string, { version: string; task: string; source: string; n: number }>();
  for (const e of events) {
    const key = JSON.stringify([e.data.modelVersion, e.data.taskId, e.data.source.kind]);
    const c = counts.get(key) ?? { version: e.data.modelVersion, task: e.data.taskId, source: e.data.source.kind, n: 0 };
    c.n++;
    counts.set(key, c);
  }
  const groups = [...counts.values()];
  await tx.query(
    `INSERT INTO trajectory_counts (model_version, task_id, source_kind, recorded)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
     ON CONFLICT (model_version, task_id, source_kind) DO UPDATE SET recorded = trajectory_counts.recorded + excluded.recorded`,
    [groups.map((g) => g.version), groups.map((g) => g.task), groups.map((g) => g.source), groups.map((g) => g.n)]);
}
