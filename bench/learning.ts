/**
 * The learning benchmark (`npm run bench:learning`): the OEL loop with the shipped base model and
 * the DEFAULT configuration (the settings table's defaults), on FrozenLake, through the same
 * parts the daemon wires (simulator through the ingestion decoder, round runner, model engine),
 * in this process and against a fresh PostgreSQL database.
 *
 * It reports, on the 128 held-out TEST seeds with no knowledge in context (unless named):
 *   - pass rate and mean response tokens of the base model (round 0) and after each round;
 *   - the base model WITH round-0 knowledge in context (the in-context baseline);
 *   - the out-of-distribution pass rate (a world the loop never trains on) per version;
 *   - two ablations of round 1: raw trajectories instead of extracted knowledge as the teacher's
 *     context, and knowledge extracted by a different model version than the policy;
 *   - the time of each round by stage.
 * The baseline of every ratio is the base model's figure measured in this run.
 *
 * Env: BENCH_ROUNDS (3), BENCH_TEST_EPISODES (128), BENCH_ABLATIONS (1), BENCH_SEED (the rounds' seed:
 * extraction order and sampling; default the daemon's), OELD_BASE_MODEL_DIR, BENCH_DRIFT_AFTER (0:
 * none; N: after round N FrozenLake's letters trade roles, G a hole and H the goal, for the
 * simulator, the pool screen, the gate and the test episodes alike, so that the rounds after it
 * must unlearn what the rounds before taught; the task stays frozenlake, so its trajectories and
 * pool go on, and the gate finds out by itself, as the daemon's would: src/evaluation/game-gate.ts),
 * BENCH_SPLIT (test; validation for tuning, so that the test figures stay unseen), OELD_TASKS_FILE
 * (its "frozenlake" entry: roundSteps, distillation, readingShare, failedRepeat, as the daemon).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { gameByName, OOD_GAME } from '../src/envs/games.ts';
import { TEST_SEEDS, VALIDATION_SEEDS } from '../src/envs/seed-ranges.ts';
import { evaluateVersion } from '../src/evaluation/evaluate.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { EVALUATION_SAMPLING } from '../src/model/inference/sampling.ts';
import { catchUpProjections } from '../src/operations/catch-up.ts';
import { readKnowledgeVersion } from '../src/projections/knowledge/knowledge-queries.ts';
import { readTrajectories } from '../src/rounds/round-queries.ts';
import { renderTrajectory } from '../src/extraction/extraction-prompt.ts';
import { RoundRunner, type RoundOutcome, type RoundSettings, trained } from '../src/rounds/round-runner.ts';
import type { Episode, EpisodeStats } from '../src/simulator/play-episodes.ts';
import { FROZENLAKE_SYMBOLS, frozenLakeAsLake, LakeWorld } from '../src/envs/lake-world.ts';
import type { GameSpec } from '../src/envs/environment.ts';
import { Simulator } from '../src/simulator/simulator.ts';
import { EventStore } from '../src/store/event-store.ts';
import { GameGate } from '../src/evaluation/game-gate.ts';
import { loadTasks } from '../src/tasks/task-config.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import type { GameTask } from '../src/tasks/task.ts';
import { DEFAULT_ROUND_TRAINING } from '../src/trainer/opcd-round.ts';
import { TorchTrainer } from '../src/trainer/torch-trainer.ts';
import { screenFor } from '../src/evaluation/task-screen.ts';
import { untrainedWorldOf } from '../src/envs/games.ts';
import { gateRegistry } from '../src/evaluation/task-gate.ts';
import { wilsonInterval } from '../src/evaluation/confidence.ts';
import { randomUUID } from 'node:crypto';
import { emit, envInt, log } from './lib.ts';
import { freshWorld } from './learning-world.ts';
import { readReportData } from '../src/report/report-data.ts';
import { renderReport } from '../src/report/render-report.ts';

const ROUNDS = envInt('BENCH_ROUNDS', 3);
const TEST_EPISODES = envInt('BENCH_TEST_EPISODES', 128);
const SPLIT_NAME = process.env.BENCH_SPLIT ?? 'test';
if (SPLIT_NAME !== 'test' && SPLIT_NAME !== 'validation') throw new Error(`BENCH_SPLIT=${JSON.stringify(SPLIT_NAME)}: expected test or validation`);
const SPLIT: 'test' | 'validation' = SPLIT_NAME;
const EVAL_SEEDS = SPLIT === 'test' ? TEST_SEEDS : VALIDATION_SEEDS;
const ABLATIONS = process.env.BENCH_ABLATIONS !== '0';
// The defaults, unless OELD_* variables say otherwise (the daemon reads the same ones).
const config = loadConfig(process.env);
const DRIFT_AFTER = envInt('BENCH_DRIFT_AFTER', 0, 0);
/** FrozenLake's layouts with the letters' roles traded (the task stays frozenlake: its pool and rounds go on). */
const swappedFrozenLake: GameSpec = {
  ...frozenLakeSpec(),
  create: (seed) => new LakeWorld(`frozenlake-swapped-${seed}`, frozenLakeAsLake(seed), { hole: FROZENLAKE_SYMBOLS.goal, goal: FROZENLAKE_SYMBOLS.hole }),
};
const ood = gameByName(OOD_GAME);
const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-bench-learning-'));

/** The game task as the daemon builds it (with its entry in OELD_TASKS_FILE), and its gate's settings. */
const task = loadTasks(['frozenlake'], config.tasksFile, { minInteractions: config.roundMinInteractions, maxRetentionKl: config.retentionMaxKl, anchorPromptsFile: config.anchorPromptsFile })[0] as GameTask;
/** The daemon's round settings from the configuration defaults (see createLearning in src/daemon.ts). */
const settings: RoundSettings = {
  trajectoriesPerRound: config.roundTrajectories, poolSlots: config.poolSlots, poolTrajectories: config.poolTrajectories,
  tokenBudget: config.knowledgeTokenBudget, teacherContext: config.teacherContext,
  training: trainingFor(task, { ...DEFAULT_ROUND_TRAINING, method: config.distillation, steps: config.roundSteps, batchSize: config.roundBatchSize, learningRate: config.roundLearningRate, seed: envInt('BENCH_SEED', DEFAULT_ROUND_TRAINING.seed, 0) }),
};
const gateSettings = { seeds: { ...VALIDATION_SEEDS, count: config.evalEpisodes }, gate: config.activationGate, tolerance: config.gateTolerance, history: config.gateHistory, watchUntrained: config.gateWatchUntrained };

const pct = (s: EpisodeStats) => `${(100 * s.passRate).toFixed(1)}%`;
const interval = (s: EpisodeStats) => { const w = wilsonInterval(Math.round(s.passRate * s.episodes), s.episodes); return `[${(100 * w.low).toFixed(1)}, ${(100 * w.high).toFixed(1)}]`; };
const fmtStats = (s: EpisodeStats) => `pass ${pct(s)} ${interval(s)}, ${s.meanResponseTokens.toFixed(2)} response tokens, ${s.meanTurns.toFixed(2)} turns`;

/**
 * Which letter the answers call the goal ("Goal G is ..."): the share naming FrozenLake's goal G
 * and its hole H. It shows what a round consolidated even where the pass rate does not move.
 */
function statedGoal(episodes: readonly Episode[]): { goal: number; hole: number } {
  const said = episodes.flatMap((e) => e.turns.map((t) => /Goal ([A-Z])\b/.exec(t.response)?.[1]));
  const share = (letter: string) => said.filter((x) => x === letter).length / Math.max(1, said.length);
  return { goal: share(FROZENLAKE_SYMBOLS.goal), hole: share(FROZENLAKE_SYMBOLS.hole) };
}
const statedGoalByVersion: Record<string, { goal: number; hole: number }> = {};

async function testEval(engine: ModelEngine, version: string, o: { knowledge?: { text: string; modelVersion: string; slot: number }; ood?: boolean; label?: string } = {}) {
  const r = await evaluateVersion(engine, version, {
    game: o.ood ? ood : task.game, seeds: { ...EVAL_SEEDS, count: TEST_EPISODES }, split: SPLIT, maxNewTokens: (o.ood ? ood : task.game).responseTokens,
    ...(o.knowledge ? { knowledge: o.knowledge } : {}),
  });
  if (!o.ood && task.game.id === 'frozenlake') {
    const label = o.label ?? (o.knowledge ? `${version} with knowledge` : version);
    statedGoalByVersion[label] = statedGoal(r.episodes);
    log(`  ${label}: answers calling G the goal ${(100 * statedGoalByVersion[label]!.goal).toFixed(0)}%, calling H the goal ${(100 * statedGoalByVersion[label]!.hole).toFixed(0)}%`);
  }
  return r.stats;
}

/** A fresh database with the base model published and active. */
const world = () => freshWorld(config.baseModelDir);

async function simulate(store: EventStore, engine: ModelEngine, version: string): Promise<{ stats: EpisodeStats; seconds: number }> {
  const sim = new Simulator(store, engine, { game: task.game, batchSize: config.simulatorBatch, maxNewTokens: 24, maxEventBytes: config.maxEventBytes });
  const t0 = performance.now();
  const stats: EpisodeStats[] = [];
  for (let n = 0; n < config.roundMinInteractions; n += config.simulatorBatch) stats.push(await sim.playBatch(version));
  const episodes = stats.reduce((s, x) => s + x.episodes, 0);
  return {
    stats: { episodes, passRate: stats.reduce((s, x) => s + x.passRate * x.episodes, 0) / episodes, meanResponseTokens: stats.reduce((s, x) => s + x.meanResponseTokens * x.episodes, 0) / episodes, meanTurns: stats.reduce((s, x) => s + x.meanTurns * x.episodes, 0) / episodes },
    seconds: (performance.now() - t0) / 1000,
  };
}

const engine = localEngine();
await engine.load('base', config.baseModelDir);
// OELD_TRAINER=torch: rounds train in the torch trainer's process (the daemon's setting); else the tfjs trainer on `engine`.
const trainer = config.trainer === 'torch'
  ? new TorchTrainer({ python: config.torchPython, device: config.torchDevice, stallSeconds: config.trainerTimeoutS, processes: config.torchProcesses })
  : undefined;
if (trainer) log(`trainer: torch (${config.torchPython}, torch ${(await trainer.probe()).torch}, device ${config.torchDevice})`);
log(`base model ${config.baseModelDir}; ${ROUNDS} rounds; ${TEST_EPISODES} ${SPLIT} episodes per evaluation; defaults: ${JSON.stringify({ ...settings, gate: gateSettings, task: task.id })}`);

const results: Record<string, unknown> = { settings: { ...settings, gate: gateSettings, task: task.id } };
const perVersion: { round: number; version: string; test: EpisodeStats; ood: EpisodeStats }[] = [];
const base = { test: await testEval(engine, 'base'), ood: await testEval(engine, 'base', { ood: true }) };
perVersion.push({ round: 0, version: 'base', ...base });
log(`round 0 (base): test ${fmtStats(base.test)}; out-of-distribution ${fmtStats(base.ood)}`);

const main = await world();
// One gate for the whole run, as in the daemon: a version's validation statistics are played once.
const untrained = config.gateWatchUntrained ? untrainedWorldOf(task.game) : undefined;
const gate = new GameGate(engine, task, { ...gateSettings, ...(untrained ? { retentionGame: untrained } : {}), registry: gateRegistry(main.db.sql) });
const rounds: (RoundOutcome & { simulateSeconds: number; deploymentPassRate: number })[] = [];
let withKnowledge: EpisodeStats | null = null;
let withRawTrajectory: EpisodeStats | null = null;
try {
  let active = 'base';
  for (let k = 1; k <= ROUNDS; k++) {
    if (DRIFT_AFTER > 0 && k === DRIFT_AFTER + 1) {
      task.game = swappedFrozenLake; // the simulator, the screen, the gate and the test episodes all read the task's game when they play
      const atChange = await testEval(engine, active, { label: `${active} on the swapped world` });
      results.drift = { after: DRIFT_AFTER, activeAtChange: active, testAtChange: atChange };
      log(`drift: after round ${DRIFT_AFTER} G is a hole and H the goal; ${active} on the swapped world: test ${fmtStats(atChange)}`);
    }
    const sim = await simulate(main.store, engine, active);
    log(`round ${k}: simulator played ${sim.stats.episodes} deployment episodes with ${active} (${fmtStats(sim.stats)}) in ${sim.seconds.toFixed(0)} s`);
    const runner = new RoundRunner({
      store: main.store, engine, ...(trainer ? { trainer } : {}), artifactRoot, settings, task, gate,
      screen: screenFor(engine, task, config.poolScreenEpisodes),
      onProgress: (p) => {
        if (p.step && (p.step.step === 1 || p.step.step === p.step.of)) log(`  train step ${p.step.step}/${p.step.of}: loss ${p.step.loss.toFixed(4)}`);
        if (p.message?.startsWith('kept ')) log(`  screening: ${p.message}`);
      },
    });
    await catchUpProjections(main.db.sql); // the round finds its trajectories through the trajectories projection
    const result = await runner.run('threshold');
    await catchUpProjections(main.db.sql);
    if ('skipped' in result) { log(`round ${k}: skipped: ${result.skipped}`); continue; }
    const outcome = result;
    rounds.push({ ...outcome, simulateSeconds: sim.seconds, deploymentPassRate: sim.stats.passRate });
    const seconds = { simulate: sim.seconds, ...outcome.seconds };
    for (const reason of outcome.gateReasons) log(`  gate: ${reason}`);
    log(`round ${k}: ${outcome.baseVersion} -> ${outcome.newVersion} ${outcome.activated ? 'activated' : 'NOT activated'}; validation ${outcome.before ? pct(outcome.before) : '-'} -> ${outcome.after ? pct(outcome.after) : '-'}; loss ${outcome.loss.first.toFixed(4)} -> ${outcome.loss.last.toFixed(4)}; ${outcome.knowledgeItems} items; seconds ${JSON.stringify(Object.fromEntries(Object.entries(seconds).map(([a, b]) => [a, +b.toFixed(1)])))}`);
    if (k === 1) {
      const kb = await readKnowledgeVersion(main.db.sql);
      const pool = kb!.pools.find((p) => p.modelVersion === 'base' && p.slot === 0) ?? kb!.pools.find((p) => p.modelVersion === 'base');
      if (pool) {
        withKnowledge = await testEval(engine, 'base', { knowledge: { text: pool.text, modelVersion: 'base', slot: pool.slot } });
        log(`base WITH round-0 knowledge (pool base#${pool.slot}, ${pool.items.length} items) in context: test ${fmtStats(withKnowledge)}`);
        writeFileSync(join(artifactRoot, 'round0-knowledge.txt'), kb!.text);
      }
      // What the raw-trajectory ablation's teacher sees: one of round 0's trajectories in context.
      const [trajectory] = await readTrajectories(main.db.sql, task.id, 'base', 1);
      if (trajectory) {
        withRawTrajectory = await testEval(engine, 'base', { knowledge: { text: renderTrajectory(trajectory.data), modelVersion: 'base', slot: -1 }, label: 'base with a raw trajectory' });
        log(`base WITH one raw round-0 trajectory in context: test ${fmtStats(withRawTrajectory)}`);
      }
    }
    const version = outcome.newVersion;
    await engine.load(version, join(artifactRoot, 'models', version));
    const test = await testEval(engine, version);
    const oodStats = await testEval(engine, version, { ood: true });
    perVersion.push({ round: k, version, test, ood: oodStats });
    log(`round ${k} (${version}): test ${fmtStats(test)}; out-of-distribution ${fmtStats(oodStats)}`);
    if (outcome.activated) active = version;
  }
  await catchUpProjections(main.db.sql);
  const reportFile = process.env.BENCH_REPORT ?? join(artifactRoot, 'learning-report.html');
  // The test evaluations above were not recorded as events; record them so the report shows them.
  await main.store.append(perVersion.map((v) => ({
    streamId: `evaluation-${v.version}`, expectedVersion: 'any' as const,
    events: [{ stat: v.test, g: task.game.id }, { stat: v.ood, g: ood.id }].map(({ stat, g }) => ({ id: randomUUID(), type: 'EvaluationRecorded' as const, data: {
      kind: 'game' as const, taskId: g, evaluationId: randomUUID(), modelVersion: v.version, game: g, split: SPLIT, seeds: { start: EVAL_SEEDS.start, count: TEST_EPISODES },
      episodes: stat.episodes, passRate: stat.passRate, meanResponseTokens: stat.meanResponseTokens, meanTurns: stat.meanTurns,
    } })),
  })));
  writeFileSync(reportFile, renderReport(await readReportData(main.db.sql, 'oeld bench:learning report')));
  log(`report: ${reportFile}`);
} finally {
  await main.db.drop();
}

const ablations: Record<string, EpisodeStats> = {};
if (ABLATIONS && perVersion.length > 1) {
  const variants: [string, Partial<RoundSettings>, string | null][] = [
    ['raw trajectories as the teacher context', { teacherContext: 'raw' }, null],
    [`knowledge extracted by another version (${perVersion[perVersion.length - 1]!.version})`, {}, perVersion[perVersion.length - 1]!.version],
  ];
  for (const [name, change, extractor] of variants) {
    const w = await world();
    try {
      await simulate(w.store, engine, 'base');
      await catchUpProjections(w.db.sql);
      const runner = new RoundRunner({
        store: w.store, engine, ...(trainer ? { trainer } : {}), artifactRoot, settings: { ...settings, ...change }, task, gate: null,
        ...(extractor ? { extractFnFor: async () => (prompts: string[], seed: number) => engine.complete(extractor, prompts, EVALUATION_SAMPLING, task.extractionTokens, seed) } : {}),
      });
      const outcome = await runner.run('manual').then(trained);
      await engine.load(outcome.newVersion, join(artifactRoot, 'models', outcome.newVersion));
      ablations[name] = await testEval(engine, outcome.newVersion, { label: `round 1 with ${name}` });
      log(`ablation, round 1 with ${name}: test ${fmtStats(ablations[name]!)} (self-extracted knowledge: ${perVersion[1] ? fmtStats(perVersion[1].test) : '-'})`);
    } finally {
      await w.db.drop();
    }
  }
}
await engine.close();
await trainer?.close();

const r1 = perVersion[1]?.test;
const last = perVersion[perVersion.length - 1]!.test;
const totalSeconds = rounds.map((r) => r.simulateSeconds + r.totalSeconds);
log('');
log(`pass rate by round (test, no knowledge, 95% interval): ${perVersion.map((v) => `${v.round}: ${pct(v.test)} ${interval(v.test)}`).join(', ')}`);
log(`response tokens by round: ${perVersion.map((v) => `${v.round}: ${v.test.meanResponseTokens.toFixed(2)}`).join(', ')}`);
log(`out-of-distribution pass rate by round: ${perVersion.map((v) => `${v.round}: ${pct(v.ood)}`).join(', ')}`);
if (r1) log(`goal round 1 >= base + 20 points: ${(100 * (r1.passRate - base.test.passRate)).toFixed(1)} points (${r1.passRate - base.test.passRate >= 0.2 ? 'met' : 'NOT met'}); ratio to base ${(r1.passRate / Math.max(base.test.passRate, 1e-9)).toFixed(2)}`);
if (withKnowledge) log(`goal round ${ROUNDS} >= base with round-0 knowledge in context (${pct(withKnowledge)}): ${pct(last)} (${last.passRate >= withKnowledge.passRate ? 'met' : 'NOT met'})`);
log(`goal response tokens do not grow: ${base.test.meanResponseTokens.toFixed(2)} -> ${last.meanResponseTokens.toFixed(2)} (${last.meanResponseTokens <= base.test.meanResponseTokens + 1e-9 ? 'met' : 'NOT met'})`);
log(`goal out-of-distribution within 3 points of base (${pct(base.ood)}): ${perVersion.map((v) => pct(v.ood)).join(', ')} (${perVersion.every((v) => Math.abs(v.ood.passRate - base.ood.passRate) <= 0.03) ? 'met' : 'NOT met'})`);
log(`goal one round <= 300 s: ${totalSeconds.map((s) => `${s.toFixed(0)} s`).join(', ')} (${totalSeconds.every((s) => s <= 300) ? 'met' : 'NOT met'})`);
results.rounds = rounds.map((r, i) => ({ round: i + 1, version: r.newVersion, activated: r.activated, loss: r.loss, knowledgeItems: r.knowledgeItems, seconds: { simulate: r.simulateSeconds, ...r.seconds }, totalSeconds: totalSeconds[i] }));
results.perVersion = perVersion;
results.baseWithRound0Knowledge = withKnowledge;
results.baseWithRawTrajectory = withRawTrajectory;
results.ablations = ablations;
results.statedGoal = statedGoalByVersion;
results.ratios = { round1PassToBase: r1 ? r1.passRate / Math.max(base.test.passRate, 1e-9) : null, lastTokensToBase: last.meanResponseTokens / base.test.meanResponseTokens };
emit({ bench: 'learning', ...results });
