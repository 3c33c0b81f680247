import { readFileSync } from 'node:fs';
import type { Queryable } from '../../db/sql.ts';
import { isType, type RecordedEvent } from '../../events/envelope.ts';
import { eventRowsQuery } from '../../store/event-rows.ts';
import type { Checkpoint, EventRun } from '../../store/read-events.ts';
import { splitBucketSql } from '../../tasks/held-out.ts';
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
  /** Interactions are folded in the database (foldInteractions): it is handed where they are, not their content. */
  readonly foldedInDatabase = ['InteractionRecorded'] as const;
  /** Of the other events, the keys it keeps. */
  readonly dataFields = {
    RoundStarted: { keys: ['roundId', 'taskId'] },
    RoundCompleted: { keys: ['roundId'] },
    RoundSkipped: { keys: ['roundId'] },
    RoundFailed: { keys: ['roundId'] },
    ModelVersionPublished: { keys: ['version'] },
    ModelVersionActivated: { keys: ['version'] },
    ModelVersionAliased: { keys: ['alias', 'version', 'followsActive'] },
  } as const;
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

  async apply(tx: Queryable, events: (RecordedEvent | EventRun)[]): Promise<void> {
    // Interactions go in a run at a time (one statement), split where a round ends so that the
    // round's snapshot of the counts is taken exactly at its place in the log, and where a name
    // changes what it resolves to. (They come as runs; as events only where another reader in the
    // same replay reads them whole.)
    let run: EventRun | undefined;
    const flush = async () => {
      if (run) await foldInteractions(tx, run);
      run = undefined;
    };
    for (const e of events) {
      if ('kind' in e || isType(e, 'InteractionRecorded')) { run = extend(run, e); continue; }
      if (isType(e, 'ModelVersionPublished') || isType(e, 'ModelVersionAliased') || isType(e, 'ModelVersionActivated')) {
        // Names resolve as of their place in the log: the interactions before go in first.
        await flush();
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
      await flush();
      const { rows } = await tx.query<{ task_id: string }>('SELECT task_id FROM trajectory_rounds WHERE round_id = $1', [e.data.roundId]);
      const task = rows[0]?.task_id ?? ANY_TASK;
      await tx.query(`UPDATE trajectory_counts SET at_last_round_end = recorded WHERE at_last_round_end <> recorded AND ($1 = '${ANY_TASK}' OR task_id = $1)`, [task]);
      await tx.query(
        `INSERT INTO trajectory_last_round (task_id, round_id, ended_at) VALUES ($1, $2, $3)
         ON CONFLICT (task_id) DO UPDATE SET round_id = excluded.round_id, ended_at = excluded.ended_at`,
        [task, e.data.roundId, e.recordedAt.toISOString()]);
    }
    await flush();
  }
}

/** `run` with the interactions of `e` (a run, or one interaction) after it. */
function extend(run: EventRun | undefined, e: EventRun | RecordedEvent): EventRun {
  const at = 'kind' in e ? e : { from: position(e), through: position(e), count: 1 };
  if (!run) return { kind: 'run', type: 'InteractionRecorded', from: at.from, through: at.through, count: at.count };
  return { ...run, through: at.through, count: run.count + at.count };
}

const position = (e: RecordedEvent): Checkpoint => ({ transactionId: e.transactionId, globalPosition: e.globalPosition });

/** The version a logged name resolves to now (null: none), for a row `n` of trajectory_names. */
const RESOLVED = 'CASE WHEN n.follows_active THEN (SELECT version FROM trajectory_active) ELSE n.version END';

/** The version each logged name resolves to now (absent: none). */
async function resolveNames(tx: Queryable, names: string[]): Promise<Map<string, string>> {
  const { rows } = await tx.query<{ name: string; version: string | null }>(
    `SELECT n.name, ${RESOLVED} AS version FROM trajectory_names n WHERE n.name = ANY($1::text[])`, [names]);
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

/**
 * Folds a run of interactions (consecutive among the events this projection reads) in one
 * statement that reads them from the log in the database: each one's row with the version its
 * name resolves to now and its split bucket, and the counts it adds to. Their data never comes to
 * node, so a replay over millions of interactions costs PostgreSQL a scan, not a transfer.
 */
async function foldInteractions(tx: Queryable, run: EventRun): Promise<void> {
  const logged = eventRowsQuery({
    type: 'InteractionRecorded',
    from: run.from,
    through: run.through,
    columns: {
      global_position: 'globalPosition', event_id: 'eventId', recorded_at: 'recordedAt',
      interaction_id: { text: ['interactionId'] }, task_id: { text: ['taskId'] }, logged_version: { text: ['modelVersion'] },
      source_kind: { text: ['source', 'kind'] }, has_turns: { has: 'turns' },
    },
    limit: run.count + 1,
  });
  // The projector hands each event over exactly once (its checkpoint moves in this transaction), so
  // the counts are summed here, and a row that already exists is an error, not something to skip.
  const { rows } = await tx.query<{ n: number }>(
    `WITH logged AS (${logged.text}),
     folded AS (
       INSERT INTO trajectories (global_position, event_id, interaction_id, task_id, logged_version, model_version, shape, source_kind, split_bucket, recorded_at)
       SELECT l.global_position, l.event_id, l.interaction_id, l.task_id, l.logged_version, ${RESOLVED},
              CASE WHEN l.has_turns THEN 'turns' ELSE 'messages' END, l.source_kind, ${splitBucketSql('l.interaction_id')}, l.recorded_at
         FROM logged l LEFT JOIN trajectory_names n ON n.name = l.logged_version
       RETURNING task_id, logged_version, model_version, source_kind, split_bucket),
     counted AS (
       INSERT INTO trajectory_counts (model_version, task_id, source_kind, split_bucket, recorded)
       SELECT model_version, task_id, source_kind, least(split_bucket, ${SHARED_BUCKET})::smallint, count(*)
         FROM folded WHERE model_version IS NOT NULL GROUP BY 1, 2, 3, 4
       ON CONFLICT (task_id, model_version, source_kind, split_bucket) DO UPDATE SET recorded = trajectory_counts.recorded + excluded.recorded),
     unresolved AS (
       INSERT INTO unresolved_interactions (task_id, logged_version, recorded)
       SELECT task_id, logged_version, count(*) FROM folded WHERE model_version IS NULL GROUP BY 1, 2
       ON CONFLICT (task_id, logged_version) DO UPDATE SET recorded = unresolved_interactions.recorded + excluded.recorded)
     SELECT count(*)::int AS n FROM folded`,
    logged.params);
  const n = Number(rows[0]?.n ?? 0);
  // The run is what the log holds between its first and its last event (the reader saw only ended
  // transactions there): anything else means the log changed under the projection.
  if (n !== run.count) throw new Error(`trajectories: folded ${n} interactions from the log between positions ${run.from.globalPosition} and ${run.through.globalPosition}, expected ${run.count}`);
}
