/**
 * The round trigger's check (every few seconds on the leader) against a short and a long log:
 * BENCH_TRIGGER_SMALL (1,000) and BENCH_TRIGGER_N (10,000,000) interactions, 10% of them from a
 * second model version, with a round end at 90%. Figure: the check as the trigger makes it now,
 * from the trajectories projection (fresh interactions of the active version and the newest round
 * end). Baseline in the same run: the same answers asked of the log, as the trigger did before
 * (a count of the version's interactions since the round end, and the newest round end).
 *
 * The rows are written with SQL (generate_series), the projection's tables from the events with
 * the statements' equivalent in SQL: the benchmark measures reading, not folding (replay-throughput
 * measures folding).
 */
import { countFreshInteractions, readLastRoundEnd } from '../src/projections/trajectories/trajectory-queries.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import { createProjectionSchema, LIVE_SCHEMA } from '../src/projections/schema.ts';
import { countInteractions, lastRecordedAt } from '../src/store/log-queries.ts';
import type { Sql } from '../src/db/sql.ts';
import { benchDatabase, emit, envInt, fmt, log, round } from './lib.ts';

const SMALL = envInt('BENCH_TRIGGER_SMALL', 1000);
const N = envInt('BENCH_TRIGGER_N', 10_000_000);
const RUNS = 20;
/** The log's answer takes seconds on a long log: fewer runs of it. */
const LOG_RUNS = 5;
const TASK = 'frozenlake';

async function populate(sql: Sql, n: number): Promise<void> {
  const roundAt = Math.floor(n * 0.9);
  const chunk = 1_000_000;
  const t0 = performance.now();
  const write = async (first: number, last: number) => {
    for (let from = first; from <= last; from += chunk) {
      const to = Math.min(last, from + chunk - 1);
      await sql.query(
        `INSERT INTO events (event_id, stream_id, stream_position, type, schema_version, data, occurred_at)
         SELECT md5('bench-i-' || i)::uuid, 'interaction-b' || i, 1, 'InteractionRecorded', 1,
                jsonb_build_object('interactionId', 'b' || i, 'modelVersion', CASE WHEN i % 10 = 0 THEN 'v1' ELSE 'v0' END, 'taskId', 'frozenlake',
                  'source', jsonb_build_object('kind', 'simulator', 'episodeSeed', i), 'turns', jsonb_build_array(jsonb_build_object('prompt', 'board ' || i, 'response', 'I move [down]'))),
                now()
           FROM generate_series($1::bigint, $2::bigint) AS i`, [from, to]);
      if (n >= chunk) log(`  ${fmt(to)} of ${fmt(n)} interactions written (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  };
  await write(1, roundAt);
  await sql.query(`INSERT INTO events (event_id, stream_id, stream_position, type, schema_version, data, occurred_at)
    VALUES (md5('bench-round')::uuid, 'round-bench', 1, 'RoundCompleted', 1, '{"roundId": "bench", "steps": 1}', now())`);
  await write(roundAt + 1, n);
  await createProjectionSchema(sql, LIVE_SCHEMA, createProjections());
  // What the projection would hold, written in SQL (folding 10 million events would take the bench an hour);
  // the split bucket here is a stand-in hash, which is all the check's query cost depends on.
  await sql.query(`INSERT INTO ${LIVE_SCHEMA}.trajectories (event_id, global_position, interaction_id, task_id, logged_version, model_version, shape, source_kind, split_bucket, recorded_at)
    SELECT event_id, global_position, data->>'interactionId', data->>'taskId', data->>'modelVersion', data->>'modelVersion', 'turns', data->'source'->>'kind', global_position % 100, recorded_at
      FROM events WHERE type = 'InteractionRecorded'`);
  // The baseline asks the log as the trigger did, with the index it had then (migrations/003,
  // dropped by 005 once nothing read interactions by version): without it, a scan of the log.
  await sql.query(`CREATE INDEX events_interactions_by_model_version ON events ((data->>'modelVersion'), global_position) WHERE type = 'InteractionRecorded'`);
  await sql.query(`INSERT INTO ${LIVE_SCHEMA}.trajectory_counts
    SELECT t.model_version, t.task_id, t.source_kind, least(t.split_bucket, 50), count(*), count(*) FILTER (WHERE t.global_position < r.global_position)
      FROM ${LIVE_SCHEMA}.trajectories t, (SELECT global_position FROM events WHERE event_id = md5('bench-round')::uuid) r GROUP BY 1, 2, 3, 4`);
  await sql.query(`INSERT INTO ${LIVE_SCHEMA}.trajectory_last_round SELECT '*', 'bench', recorded_at FROM events WHERE event_id = md5('bench-round')::uuid`);
  await sql.query('ANALYZE');
}

async function median(fn: () => Promise<unknown>, runs: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) { const t0 = performance.now(); await fn(); times.push(performance.now() - t0); }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

async function measure(n: number) {
  const db = await benchDatabase({ untimed: true });
  try {
    log(`${fmt(n)} interactions...`);
    await populate(db.sql, n);
    const fresh = await countFreshInteractions(db.sql, TASK, 'v0');
    const end = await lastRecordedAt(db.sql, ['RoundCompleted', 'RoundFailed']);
    const fromLog = await countInteractions(db.sql, { modelVersion: 'v0', since: end });
    if (fresh !== fromLog) throw new Error(`the projection says ${fresh} fresh interactions, the log ${fromLog}`);
    const projectionMs = await median(async () => { await readLastRoundEnd(db.sql, TASK); await countFreshInteractions(db.sql, TASK, 'v0', 10); }, RUNS);
    const logMs = await median(async () => { const e = await lastRecordedAt(db.sql, ['RoundCompleted', 'RoundFailed']); await countInteractions(db.sql, { modelVersion: 'v0', since: e }); }, LOG_RUNS);
    log(`  the check from the projection ${projectionMs.toFixed(2)} ms; from the log ${logMs.toFixed(1)} ms (both answer ${fmt(fresh)} fresh interactions)`);
    return { projectionMs, logMs };
  } finally {
    await db.drop();
  }
}

const small = await measure(SMALL);
const large = await measure(N);
log(`the trigger's check: ${small.projectionMs.toFixed(2)} ms at ${fmt(SMALL)} interactions, ${large.projectionMs.toFixed(2)} ms at ${fmt(N)}: ratio ${(large.projectionMs / small.projectionMs).toFixed(2)}`);
log(`asked of the log (as before): ${small.logMs.toFixed(1)} ms and ${large.logMs.toFixed(1)} ms: ratio ${(large.logMs / small.logMs).toFixed(0)}; at ${fmt(N)}, projection vs log: ${(large.logMs / large.projectionMs).toFixed(0)}x faster`);
emit({
  bench: 'trigger-check', small: SMALL, n: N,
  projectionMsSmall: round(small.projectionMs, 3), projectionMsLarge: round(large.projectionMs, 3), ratio: round(large.projectionMs / small.projectionMs, 2),
  logMsSmall: round(small.logMs, 2), logMsLarge: round(large.logMs, 1), logRatio: round(large.logMs / small.logMs, 1),
});
