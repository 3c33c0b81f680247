/**
 * The soak benchmark (#19): `oeld start` on embedded PGlite with learning on, at an accelerated
 * schedule, for BENCH_SOAK_ROUNDS (100) rounds. After every round it samples the daemon's RSS, the
 * artifact store and the database on disk, and the event count; at the end it stops the daemon,
 * reads each round's validation and out-of-distribution pass rates from the log, counts what the
 * database holds by kind, and re-derives every pruned version from the log (bit for bit).
 * Goals: RSS and artifacts flat after warm-up (within 10%), no pass-rate slide beyond the gate's
 * tolerance, every pruned version re-derivable. The database grows with the log: reported per round.
 *
 * `npm run bench -- soak` (not in the default list: about 30-60 minutes on 2 cores). Sizes:
 * BENCH_SOAK_ROUNDS (100), BENCH_SOAK_WARMUP (10 rounds), BENCH_SOAK_EPISODES (64 validation
 * episodes), BENCH_SOAK_STEPS (8), BENCH_SOAK_REDERIVE (0 = every pruned version, else that many,
 * spread over the run), BENCH_SOAK_SKIP (false: every round trains and publishes, the heaviest load
 * on retention; true: the daemon's default, where rounds at the ceiling with nothing new are skipped).
 * The baseline in the same run is the first ten samples after warm-up.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/open-database.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import { wilsonInterval } from '../src/evaluation/confidence.ts';
import { upcastEvaluation } from '../src/events/schemas.ts';
import { folderBytes } from '../src/operations/prune-versions.ts';
import { rederiveVersion } from '../src/operations/rederive.ts';
import { foldRegistry } from '../src/operations/retention-policy.ts';
import { readAllRounds } from '../src/projections/rounds/round-projection.ts';
import { STREAMS } from '../src/events/streams.ts';
import { EventStore } from '../src/store/event-store.ts';
import { readEventsOfTypes, readStream } from '../src/store/log-queries.ts';
import { tfjsTrainer } from '../src/trainer/tfjs-trainer.ts';
import { spawnDaemon } from '../test/helpers/daemon-process.ts';
import { emit, envInt, log, round, rssMb } from './lib.ts';

const ROUNDS = envInt('BENCH_SOAK_ROUNDS', 100);
const WARMUP = envInt('BENCH_SOAK_WARMUP', 10);
const EPISODES = envInt('BENCH_SOAK_EPISODES', 64);
const STEPS = envInt('BENCH_SOAK_STEPS', 8);
const REDERIVE = envInt('BENCH_SOAK_REDERIVE', 0, 0);
const SKIP = process.env.BENCH_SOAK_SKIP === 'true';

const dataDir = mkdtempSync(join(tmpdir(), 'oeld-soak-'));
const env: Record<string, string> = {
  OELD_DATA_DIR: dataDir, OELD_LEARNING: 'true', OELD_SIMULATOR: 'on', OELD_TASKS: 'frozenlake', OELD_LOG_FORMAT: 'json',
  OELD_ROUND_STEPS: String(STEPS), OELD_EVAL_EPISODES: String(EPISODES), OELD_ROUND_MIN_INTERACTIONS: '32', OELD_ROUND_TRAJECTORIES: '32',
  OELD_POOL_SLOTS: '4', OELD_POOL_TRAJECTORIES: '8', OELD_SKIP_UNCHANGED_ROUNDS: String(SKIP),
  // The default window (24 h) would keep every version of an accelerated run: three minutes here, so that pruning works.
  OELD_KEEP_VERSIONS: '5', OELD_ROLLBACK_WINDOW_HOURS: '0.05',
};
const mb = (bytes: number) => bytes / (1 << 20);
const metric = (text: string, name: string): number => text.split('\n').filter((l) => l.startsWith(name) && !l.startsWith('#'))
  .reduce((s, l) => s + Number(l.trim().split(/\s+/).pop()), 0);

interface Sample { rounds: number; seconds: number; rssMb: number; artifactsMb: number; databaseMb: number; events: number }
const samples: Sample[] = [];
log(`soak: ${ROUNDS} rounds (${STEPS} steps, ${EPISODES} validation episodes, skipping rounds that cannot improve: ${SKIP}), data in ${dataDir}`);
const daemon = spawnDaemon(env);
const t0 = performance.now();
try {
  const url = await daemon.url();
  let seen = 0;
  while (seen < ROUNDS) {
    await sleep(1000);
    if (daemon.child.exitCode !== null) throw new Error(`the daemon exited (${daemon.child.exitCode}):\n${daemon.stderr().slice(-3000)}`);
    const text = await (await fetch(`${url}/metrics`)).text().catch(() => '');
    const rounds = metric(text, 'oeld_rounds_total');
    if (rounds <= seen) continue;
    seen = rounds;
    const artifacts = folderBytes(join(dataDir, 'artifacts'));
    const s: Sample = {
      rounds, seconds: (performance.now() - t0) / 1000, rssMb: rssMb(daemon.child.pid!), artifactsMb: mb(artifacts),
      databaseMb: mb(folderBytes(join(dataDir, 'pglite'))), events: metric(text, 'oeld_event_store_head_position'),
    };
    samples.push(s);
    log(`round ${rounds} at ${s.seconds.toFixed(0)} s: RSS ${s.rssMb.toFixed(0)} MB, artifacts ${s.artifactsMb.toFixed(1)} MB, database ${s.databaseMb.toFixed(1)} MB, ${s.events} events`);
  }
} finally {
  await daemon.kill('SIGTERM');
}
const runSeconds = (performance.now() - t0) / 1000;

// What the log says about the rounds, and what the database holds.
const config = loadConfig(env);
const sql = await openDatabase(config);
const store = new EventStore(sql);
const rounds = await readAllRounds(sql);
const evaluations = (await readEventsOfTypes(sql, ['EvaluationRecorded'])).map((e) => upcastEvaluation(e.schemaVersion, e.data));
const ood = (roundId: string, version: string | null) => evaluations.find((e) => e.kind === 'game' && e.game === 'lake-XO' && e.roundId === roundId && e.modelVersion === version);
const byType = (await sql.query<{ type: string; n: string; bytes: string }>('SELECT type, count(*) AS n, sum(pg_column_size(data)) AS bytes FROM events GROUP BY type ORDER BY 3 DESC')).rows;
const other = (await sql.query<{ checkpoints: string; dead: string }>(`SELECT (SELECT count(*) FROM oeld_proj.projection_checkpoints) AS checkpoints, (SELECT count(*) FROM dead_letters) AS dead`)).rows[0]!;
log('');
log('round  status     validation (candidate)  out-of-distribution (candidate)  activated');
const slides: { round: number; validation: number; ood: number | null }[] = [];
rounds.forEach((r, i) => {
  const ev = r.evaluation as { after?: { passRate: number; episodes: number }; activated?: boolean } | null;
  const o = r.newModelVersion ? ood(r.roundId, r.newModelVersion) : undefined;
  const oodRate = o && o.kind === 'game' ? o.passRate : null;
  if (ev?.after) slides.push({ round: i + 1, validation: ev.after.passRate, ood: oodRate });
  log(`${String(i + 1).padStart(5)}  ${r.status.padEnd(9)}  ${ev?.after ? `${(100 * ev.after.passRate).toFixed(1)}%`.padStart(6) : '     -'}                  ${oodRate !== null ? `${(100 * oodRate).toFixed(1)}%`.padStart(6) : '     -'}                           ${ev?.activated === undefined ? '-' : ev.activated ? 'yes' : 'no'}`);
});
log('');
log('events by type: ' + byType.map((t) => `${t.type} ${t.n} (${(Number(t.bytes) / 1024).toFixed(0)} KiB)`).join(', '));
log(`projection checkpoints: ${other.checkpoints} rows; dead letters: ${other.dead}`);

// The active version's figures over the run: each activated version's validation as its gate measured it.
const activated = rounds.filter((r) => (r.evaluation as { activated?: boolean } | null)?.activated);
const firstActive = activated.find((_, i) => i >= Math.min(WARMUP, activated.length - 1)) ?? activated[0];
const lastActive = activated.at(-1);
const rate = (r: typeof rounds[number] | undefined) => (r?.evaluation as { after?: { passRate: number; episodes: number } } | null)?.after ?? null;
const ci = (x: { passRate: number; episodes: number } | null) => {
  if (!x) return '-';
  const k = Math.round(x.passRate * x.episodes);
  const { low, high } = wilsonInterval(k, x.episodes);
  return `${(100 * x.passRate).toFixed(1)}% [${(100 * low).toFixed(1)}, ${(100 * high).toFixed(1)}]`;
};
log(`active version's validation after warm-up: ${ci(rate(firstActive))}; at the end: ${ci(rate(lastActive))}`);
const oodOf = (r: typeof rounds[number] | undefined) => { const o = r && r.newModelVersion ? ood(r.roundId, r.newModelVersion) : undefined; return o && o.kind === 'game' ? { passRate: o.passRate, episodes: o.episodes } : null; };
log(`active version's out-of-distribution after warm-up: ${ci(oodOf(firstActive))}; at the end: ${ci(oodOf(lastActive))}`);

// Flat after warm-up: the mean of the first ten samples after warm-up against the last ten.
const after = samples.filter((s) => s.rounds > WARMUP);
const mean = (xs: Sample[], k: keyof Sample) => xs.reduce((s, x) => s + x[k], 0) / Math.max(1, xs.length);
const early = after.slice(0, 10);
const late = after.slice(-10);
const ratio = (k: keyof Sample) => mean(late, k) / Math.max(1e-9, mean(early, k));
const perRound = (k: keyof Sample) => after.length > 1 ? (after.at(-1)![k] - after[0]![k]) / Math.max(1, after.at(-1)!.rounds - after[0]!.rounds) : 0;
log(`RSS: ${mean(early, 'rssMb').toFixed(0)} MB after warm-up, ${mean(late, 'rssMb').toFixed(0)} MB at the end: ratio ${ratio('rssMb').toFixed(3)} (goal within 10%)`);
log(`artifacts: ${mean(early, 'artifactsMb').toFixed(1)} MB after warm-up, ${mean(late, 'artifactsMb').toFixed(1)} MB at the end: ratio ${ratio('artifactsMb').toFixed(3)} (goal within 10%)`);
log(`database: ${mean(early, 'databaseMb').toFixed(1)} MB after warm-up, ${mean(late, 'databaseMb').toFixed(1)} MB at the end: ${perRound('databaseMb').toFixed(2)} MB and ${perRound('events').toFixed(0)} events a round (the log grows with what it records)`);

// Every pruned version re-derived from the log, oldest first; each one's folder serves the next as its round-start version.
const registry = foldRegistry(await readStream(sql, STREAMS.models));
const pruned = registry.versions.filter((v) => v.pruned);
const chosen = REDERIVE === 0 || REDERIVE >= pruned.length ? pruned : pruned.filter((_, i) => i % Math.ceil(pruned.length / REDERIVE) === 0);
const engine = localEngine();
const scratch = join(dataDir, 'rederived');
mkdirSync(scratch, { recursive: true });
const known = new Map<string, string>();
let matched = 0;
const tR = performance.now();
try {
  for (const v of chosen) {
    const r = await rederiveVersion({ store, engine, trainer: tfjsTrainer(engine), artifactRoot: join(dataDir, 'artifacts') }, v.version, { outDir: join(scratch, v.version), known });
    if (r.matches) { matched++; known.set(v.version, r.folder); }
    log(`re-derived ${v.version}: ${r.matches ? 'same sha256' : `DIFFERENT (${r.derivedSha256} vs ${r.recordedSha256})`} in ${r.seconds.toFixed(1)} s${r.through.length ? ` (through ${r.through.length} pruned)` : ''}`);
  }
} finally {
  await engine.close();
  await sql.close();
}
log(`re-derived ${matched} of ${chosen.length} pruned versions to their recorded sha256 (${pruned.length} pruned in all) in ${((performance.now() - tR) / 1000).toFixed(0)} s`);
const completed = rounds.filter((r) => r.status === 'completed').length;
emit({
  name: 'soak', rounds: rounds.length, completed, skipped: rounds.filter((r) => r.status === 'skipped').length, failed: rounds.filter((r) => r.status === 'failed').length,
  runSeconds: round(runSeconds), rssRatio: round(ratio('rssMb'), 3), artifactsRatio: round(ratio('artifactsMb'), 3), databaseMbPerRound: round(perRound('databaseMb'), 2),
  eventsPerRound: round(perRound('events')), pruned: pruned.length, rederived: chosen.length, rederivedSame: matched,
  validationAfterWarmup: rate(firstActive)?.passRate ?? null, validationEnd: rate(lastActive)?.passRate ?? null,
  oodAfterWarmup: oodOf(firstActive)?.passRate ?? null, oodEnd: oodOf(lastActive)?.passRate ?? null,
});
if (process.env.BENCH_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
