/**
 * Replay throughput: replay(sql, createProjections) over a log of N events on the PostgreSQL server.
 *
 * The log is written in SQL (INSERT ... SELECT FROM generate_series, in chunks, one transaction
 * each) with a realistic mix whose data matches src/events/schemas.ts, since projections read it:
 *   - every 50th event: KnowledgeExtracted, 2 items, pool slot (i/50) mod 10, token budget 64
 *     (2%; all on the `knowledge` stream, which is why stream_position = i/50 there),
 *   - every 10,000th (offset 5,000) instead: KnowledgeItemRetracted of an item extracted 50 events
 *     earlier (still in its pool: that slot gets its next extraction 500 events later),
 *   - every 100,000th (offset 50,000) instead: KnowledgeBaseRolledBack to version i/50 - 500,
 *   - all others: InteractionRecorded of about 1 KB, like test/helpers/events.ts interaction(i, {bytes: 1000}).
 * Then VACUUM ANALYZE, so that neither measured reader pays for hint bits.
 *
 * Baseline in the same run: a plain sequential read of the whole table, SELECT * FROM events
 * through a server-side cursor fetched 5,000 rows at a time by pg (rows parsed: jsonb to objects).
 * The trajectories projection writes one row per interaction; it folds them in the database
 * (store/event-rows.ts), so the replay brings to node only where each interaction is (runs) and the
 * whole of the other 2%. Before it the ratio was 2.7-3.8 (no projection read interactions); with it
 * reading interactions' fields in node, 0.45-0.53.
 *
 *   BENCH_REPLAY_N        events in the log               (default 1000000)
 *   BENCH_REPLAY_CHUNK    events per filling INSERT       (default 100000)
 *   BENCH_REPLAY_FETCH    rows per FETCH of the baseline  (default 5000)
 *   BENCH_REPLAY_BATCH    events per replay batch         (default 5000, as the CLI)
 */
import pg from 'pg';
import { replay } from '../src/projections/replay.ts';
import { createProjections } from '../src/projections/all-projections.ts';
import type { Projection } from '../src/projections/projection.ts';
import type { KnowledgeProjection } from '../src/projections/knowledge/knowledge-projection.ts';
import {
  benchDatabase, describeCpu, emit, envInt, fmt, log, measure, perSecond, round, seconds, StatementTimings, timedSql,
} from './lib.ts';

const N = envInt('BENCH_REPLAY_N', 1_000_000);
const CHUNK = envInt('BENCH_REPLAY_CHUNK', 100_000);
const FETCH = envInt('BENCH_REPLAY_FETCH', 5000);
const BATCH = envInt('BENCH_REPLAY_BATCH', 5000);
const GOAL_RATE = 50_000;

/** One chunk of the log, positions $1..$2 (i is the 1-based position in the log). */
const FILL = `
INSERT INTO events (event_id, stream_id, stream_position, type, schema_version, data, occurred_at)
SELECT gen_random_uuid(),
       CASE WHEN i % 50 = 0 THEN 'knowledge' ELSE 'interaction-bench-' || i END,
       CASE WHEN i % 50 = 0 THEN i / 50 ELSE 1 END,
       CASE WHEN i % 100000 = 50000 THEN 'KnowledgeBaseRolledBack'
            WHEN i % 10000 = 5000 THEN 'KnowledgeItemRetracted'
            WHEN i % 50 = 0 THEN 'KnowledgeExtracted'
            ELSE 'InteractionRecorded' END,
       1,
       CASE WHEN i % 100000 = 50000 THEN
              jsonb_build_object('toVersion', i / 50 - 500, 'reason', 'bench: roll back 500 versions')
            WHEN i % 10000 = 5000 THEN
              jsonb_build_object('itemId', 'item-' || (i - 50) || '-0', 'reason', 'bench: retracted')
            WHEN i % 50 = 0 THEN
              jsonb_build_object(
                'extractingModelVersion', 'v0',
                'poolSlot', (i / 50) % 10,
                'tokenBudget', 64,
                'sourceInteractionIds', jsonb_build_array('bench-' || (i - 1), 'bench-' || (i - 2)),
                'items', jsonb_build_array(
                  jsonb_build_object('id', 'item-' || i || '-0', 'text', 'Avoid cell H near step ' || i || ': move right first.'),
                  jsonb_build_object('id', 'item-' || i || '-1', 'text', 'When the goal is below, go down along the left edge ' || i || '.')))
            ELSE
              jsonb_build_object(
                'interactionId', 'bench-' || i,
                'source', jsonb_build_object('kind', 'simulator', 'episodeSeed', i),
                'modelVersion', 'v0',
                'taskId', 'frozenlake',
                'turns', jsonb_build_array(jsonb_build_object(
                  'prompt', 'board ' || i || ' ' || repeat('x', 750), 'response', 'I move [right]', 'action', 'right')),
                'outcome', jsonb_build_object(
                  'success', i % 3 = 0, 'reward', CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END,
                  'feedback', CASE WHEN i % 3 = 0 THEN 'reached the goal' ELSE 'fell into a hole' END))
       END,
       now() - make_interval(secs => ($2::bigint - i) / 100.0)
  FROM generate_series($1::bigint, $2::bigint) AS i`;

const label = (text: string): string => {
  const t = text.trimStart();
  if (t.startsWith('WITH horizon')) return 'read batch';
  if (t.startsWith('WITH logged')) return 'fold interactions';
  if (/^(INSERT INTO|UPDATE) knowledge_/.test(t)) return 'knowledge writes';
  if (/knowledge_(items|versions)/.test(t)) return 'knowledge reads';
  if (/projection_checkpoints/.test(t)) return 'checkpoints';
  if (t.startsWith('SELECT set_config')) return 'set_config';
  if (/sha256/.test(t)) return 'projection hashes';
  return 'other';
};

async function main(): Promise<void> {
  const db = await benchDatabase({ max: 4 });
  const { sql } = db;
  try {
    log(`replay-throughput: N=${fmt(N)} events, database ${db.name}`);

    const fill = await measure(async () => {
      for (let lo = 1; lo <= N; lo += CHUNK) await sql.query(FILL, [lo, Math.min(N, lo + CHUNK - 1)]);
    });
    const vacuum = await measure(() => sql.exec('VACUUM (ANALYZE) events'));
    const { rows: mix } = await sql.query<{ type: string; n: number }>('SELECT type, count(*)::int AS n FROM events GROUP BY type ORDER BY n DESC');
    const { rows: [size] } = await sql.query<{ table: string; data: number }>(
      `SELECT pg_size_pretty(pg_total_relation_size('events')) AS table, avg(pg_column_size(data))::int AS data FROM events`);
    log(`log written in ${seconds(fill.ms)} (${fmt(perSecond(N, fill.ms))} events/s in SQL), VACUUM ANALYZE ${seconds(vacuum.ms)}; `
      + `events table ${size!.table}, data ${size!.data} B per event stored`);
    log(`mix: ${mix.map((r) => `${r.type} ${fmt(r.n)}`).join(', ')}`);
    const knowledgeEvents = mix.filter((r) => r.type.startsWith('Knowledge')).reduce((n, r) => n + r.n, 0);
    const total = mix.reduce((n, r) => n + r.n, 0);
    if (total !== N) throw new Error(`the log holds ${total} events, expected ${N}`);

    // Baseline: every row, in one pass, through a server-side cursor.
    let read = 0;
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const baseline = await measure(async () => {
      await client.query('BEGIN');
      await client.query('DECLARE all_events NO SCROLL CURSOR FOR SELECT * FROM events');
      for (;;) {
        const { rows } = await client.query(`FETCH ${FETCH} FROM all_events`);
        if (rows.length === 0) break;
        read += rows.length;
      }
      await client.query('COMMIT');
    });
    await client.end();
    if (read !== N) throw new Error(`the baseline read ${read} rows, expected ${N}`);
    const baselineRate = perSecond(N, baseline.ms);
    log();
    log(`baseline: SELECT * FROM events, cursor, FETCH ${fmt(FETCH)}: ${fmt(baselineRate)} events/s (${seconds(baseline.ms)})`);
    log(`  ${describeCpu(baseline)}`);

    // The replay itself: all projections rebuilt from the log into a fresh schema, then swapped in.
    const timings = new StatementTimings();
    let projections: Projection[] = [];
    let result: Awaited<ReturnType<typeof replay>> | undefined;
    const r = await measure(async () => {
      result = await replay(timedSql(sql, timings, label), () => (projections = createProjections()), { batchSize: BATCH });
    });
    const rate = perSecond(N, r.ms);
    const ratio = rate / baselineRate;
    log();
    log(`replay(sql, createProjections): ${fmt(rate)} events/s over all ${fmt(N)} events (${seconds(r.ms)})`);
    log(`  ${describeCpu(r)}`);
    log(`  events applied: ${Object.entries(result!.events).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
    for (const [name, ms] of [...timings.ms.entries()].sort((a, b) => b[1] - a[1])) {
      log(`  ${name.padEnd(18)} ${seconds(ms).padStart(9)}  ${((ms / r.ms) * 100).toFixed(0).padStart(3)}%  (${fmt(timings.calls.get(name)!)} statements)`);
    }
    const rest = r.ms - timings.total();
    log(`  ${'rest'.padEnd(18)} ${seconds(rest).padStart(9)}  ${((rest / r.ms) * 100).toFixed(0).padStart(3)}%  (folding in JS, DDL, BEGIN/COMMIT, schema swap)`);

    // Sanity: the knowledge projection saw every knowledge event and every rollback was real.
    const knowledge = projections.find((p) => p.name === 'knowledge') as KnowledgeProjection | undefined;
    if (result!.events.knowledge !== knowledgeEvents) throw new Error(`knowledge applied ${result!.events.knowledge}, expected ${knowledgeEvents}`);
    const { rows: [kv] } = await sql.query<{ versions: number; items: number; open: number }>(
      `SELECT (SELECT count(*)::int FROM oeld_proj.knowledge_versions) AS versions,
              (SELECT count(*)::int FROM oeld_proj.knowledge_items) AS items,
              (SELECT count(*)::int FROM oeld_proj.knowledge_items WHERE valid_to IS NULL) AS open`);
    log(`  knowledge: ${fmt(kv!.versions)} versions, ${fmt(kv!.items)} item rows (${kv!.open} in the current version), `
      + `${knowledge?.skipped.length ?? 0} rollbacks skipped; hash ${result!.hashes.knowledge?.slice(0, 16)}`);

    log();
    log(`ratio replay/baseline: ${ratio.toFixed(2)} (above 1 when projections read few of the events: each reads only its own`
      + ` types, filtered in PostgreSQL, while the baseline brings every row to node and parses its JSON)`);
    log(`goal: >= ${fmt(GOAL_RATE)} events/s -> ${rate >= GOAL_RATE ? 'MET' : 'NOT MET'}`);
    emit({
      name: 'replay-throughput',
      n: N, knowledge_events: knowledgeEvents,
      events_per_s: round(rate), seconds: round(r.ms / 1000, 3),
      node_cpu_s: round(r.nodeCpuS, 2), postgres_cpu_s: r.pgCpuS === null ? null : round(r.pgCpuS, 2),
      fill_seconds: round(fill.ms / 1000, 1),
      baseline: 'select_all_cursor_fetch', baseline_fetch: FETCH,
      baseline_events_per_s: round(baselineRate), baseline_seconds: round(baseline.ms / 1000, 3),
      ratio: round(ratio, 3),
      goal_events_per_s: GOAL_RATE,
    });
  } finally {
    await db.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
