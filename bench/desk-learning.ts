/**
 * The support-desk learning benchmark (part of `npm run bench:learning`): the OEL loop on the
 * built-in support desk with the model made for both tasks (models/oeld-desk) and the default configuration, through the
 * parts the daemon wires (desk simulator through the ingestion decoder, round runner, the task's
 * gate), in this process and against fresh PostgreSQL databases, on several independent seeds
 * (each: another deployed company, other deployment conversations, other extraction and training
 * seeds).
 *
 * Per seed, on the TEST conversations (phrasings never used in deployment, every fact asked
 * equally often, no knowledge in context unless named), fact accuracy with its 95% interval:
 *   - the base model; the base model with the company's true facts in context; with its own
 *     round-0 knowledge in context;
 *   - after each round, the version active after it (the round's candidate when the gate
 *     activated it; otherwise the version kept, measured again, the refused candidate's figures
 *     logged beside); then the company changes some facts (policy drift) and, after each of the
 *     following rounds, accuracy on the changed facts and the share of answers still giving an
 *     old value;
 *   - FrozenLake's test pass rate of every version (the same model serves both tasks), with
 *     FrozenLake's rounds also the world its gate watches (lake-XO, its validation episodes), and how
 *     well each version still answers another company from that company's facts in its context
 *     (what the gate's retention check on anchor prompts stands for);
 *   - response tokens, and each round's seconds (simulation included).
 *
 *   - FrozenLake on the same daemon: a FrozenLake round after each desk round on the same lineage
 *     (its simulator, screen and gate as the daemon's), against the same FrozenLake rounds alone
 *     on a fresh lineage (the baseline, measured in the same run); the goals compare what the
 *     daemon plays after each round (the version active then), and the candidates' own pass
 *     rates, refused or not, are shown beside.
 *
 * Env: BENCH_DESK_SEEDS (5), BENCH_DESK_FIRST_SEED (0), BENCH_DESK_ROUNDS (3), BENCH_DESK_DRIFT_ROUNDS
 * (2), BENCH_DESK_DRIFT_FACTS (4), BENCH_DESK_TEST (128 conversations), BENCH_DESK_SPLIT (test; validation
 * for tuning, deployment phrasings on the validation seeds), BENCH_DESK_FROZENLAKE (64
 * episodes; 0: not measured), BENCH_DESK_LAKE=0 (no FrozenLake rounds),
 * BENCH_DESK_SHOW_KNOWLEDGE=1 (print the true facts and one slot of round 0's knowledge), BENCH_DESK_FORCE=1 (rounds even for a base model that cannot use the
 * facts in its context), OELD_BASE_MODEL_DIR (default here: models/oeld-desk, the model made for both
 * tasks), OELD_DISTILLATION and the daemon's other settings, OELD_TASKS_FILE with entries
 * "support-desk" and "frozenlake" only (their roundSteps, distillation, readingShare, ...).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { gameByName, OOD_GAME } from '../src/envs/games.ts';
import { DEPLOYED_COMPANY_SEEDS, TEST_SEEDS, VALIDATION_SEEDS } from '../src/envs/seed-ranges.ts';
import { FACTS, factById } from '../src/envs/support-desk/facts.ts';
import { localEngine } from '../src/engine/local-engine.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { rateWithInterval } from '../src/evaluation/confidence.ts';
import { evaluateDesk } from '../src/evaluation/desk-evaluation.ts';
import { evaluateVersion } from '../src/evaluation/evaluate.ts';
import { createGate } from '../src/evaluation/task-gate.ts';
import { catchUpProjections } from '../src/operations/catch-up.ts';
import { readKnowledgeVersion } from '../src/projections/knowledge/knowledge-queries.ts';
import { renderItemTexts } from '../src/projections/knowledge/knowledge-base.ts';
import { RoundRunner, type RoundSettings } from '../src/rounds/round-runner.ts';
import { companyAt, companyNow, DeskSimulator } from '../src/simulator/desk-simulator.ts';
import { screenFor } from '../src/evaluation/task-screen.ts';
import { DESK_TASK_NAME, loadTasks } from '../src/tasks/task-config.ts';
import type { ChatTask, DeskWorld, GameTask } from '../src/tasks/task.ts';
import { DEFAULT_ROUND_TRAINING } from '../src/trainer/opcd-round.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import { freshWorld } from './learning-world.ts';
import { lakeRounds, type LakeRoundResult } from './lake-round.ts';
import { emit, envInt, log } from './lib.ts';

const SEEDS = envInt('BENCH_DESK_SEEDS', 5);
const FIRST_SEED = envInt('BENCH_DESK_FIRST_SEED', 0, 0);
const ROUNDS = envInt('BENCH_DESK_ROUNDS', 3, 0);
const DRIFT_ROUNDS = envInt('BENCH_DESK_DRIFT_ROUNDS', 2, 0);
const DRIFT_FACTS = envInt('BENCH_DESK_DRIFT_FACTS', 4, 0);
const TEST = envInt('BENCH_DESK_TEST', 128);
const FROZENLAKE = envInt('BENCH_DESK_FROZENLAKE', 64, 0);
/** FrozenLake on the same daemon: a FrozenLake round after each desk round, on the same lineage; and FrozenLake alone on a fresh one. */
const LAKE = process.env.BENCH_DESK_LAKE !== '0' && FROZENLAKE > 0;
/** validation: tune on the validation seeds (deployment phrasings), so that the test figures stay unseen. */
const SPLIT_NAME = process.env.BENCH_DESK_SPLIT ?? 'test';
if (SPLIT_NAME !== 'test' && SPLIT_NAME !== 'validation') throw new Error(`BENCH_DESK_SPLIT=${JSON.stringify(SPLIT_NAME)}: expected test or validation`);
const SPLIT: 'test' | 'validation' = SPLIT_NAME;
const EVAL_SEEDS = SPLIT === 'test' ? TEST_SEEDS : VALIDATION_SEEDS;
/** Rounds run even when the base model cannot use the true facts in its context (below half right). */
const FORCE = process.env.BENCH_DESK_FORCE === '1';
// The desk's model by default (models/README.md): the shipped lake model cannot read facts from its context.
const config = loadConfig({ OELD_BASE_MODEL_DIR: 'models/oeld-desk', ...process.env });
const artifactRoot = mkdtempSync(join(tmpdir(), 'oeld-bench-desk-'));
const lake = frozenLakeSpec();
const watched = gameByName(OOD_GAME);

interface Figure { right: number; of: number; accuracy: number; oldValues?: number; responseTokens: number; byFact: string }
const figure = (r: Awaited<ReturnType<typeof evaluateDesk>>): Figure => ({
  right: r.accuracy.right, of: r.accuracy.questions, accuracy: r.accuracy.accuracy, oldValues: r.accuracy.oldValueAnswers, responseTokens: r.accuracy.meanResponseTokens,
  byFact: byFact(r.conversations.flatMap((c) => c.questions)),
});
/** Per fact asked: answers right of asked, and the value most often given where wrong. */
function byFact(qs: readonly { factId: string; right: boolean; stated: string[] }[]): string {
  const ids = [...new Set(qs.map((q) => q.factId))];
  return ids.map((id) => {
    const mine = qs.filter((q) => q.factId === id);
    const wrong = new Map<string, number>();
    for (const q of mine.filter((x) => !x.right)) { const v = q.stated.join(' / ') || '(no value)'; wrong.set(v, (wrong.get(v) ?? 0) + 1); }
    const top = [...wrong].sort((a, b) => b[1] - a[1])[0];
    return `${id} ${mine.filter((q) => q.right).length}/${mine.length}${top ? ` (wrong mostly "${top[0]}")` : ''}`;
  }).join(', ');
}
const show = (f: Figure) => `${rateWithInterval(f.right, f.of)}, ${f.responseTokens.toFixed(1)} response tokens`;

async function deskTest(engine: ModelEngine, version: string, task: ChatTask, world: DeskWorld, recorded: number, o: { knowledge?: string; factIds?: string[]; oldValues?: Record<string, string> } = {}): Promise<Figure> {
  const { company } = companyAt(world, recorded);
  return figure(await evaluateDesk(engine, version, {
    taskId: task.id, company, seeds: { ...EVAL_SEEDS, count: TEST }, split: SPLIT, maxNewTokens: task.responseTokens,
    ...(o.knowledge ? { knowledge: { text: o.knowledge, modelVersion: version, slot: -1 } } : {}),
    ...(o.factIds ? { factIds: o.factIds } : {}), ...(o.oldValues ? { oldValues: o.oldValues } : {}),
  }));
}

async function lakeTest(engine: ModelEngine, version: string): Promise<number | null> {
  if (FROZENLAKE === 0) return null;
  const r = await evaluateVersion(engine, version, { game: lake, seeds: { ...EVAL_SEEDS, count: FROZENLAKE }, split: SPLIT, maxNewTokens: lake.responseTokens });
  return r.stats.passRate;
}

/** The world FrozenLake's gate watches (lake-XO), as the gate plays it: its validation episodes. Where a desk round leaves it decides whether FrozenLake's next round may activate. */
async function lakeWatch(engine: ModelEngine, version: string): Promise<number | null> {
  if (!LAKE) return null;
  const r = await evaluateVersion(engine, version, { game: watched, seeds: { ...VALIDATION_SEEDS, count: config.evalEpisodes }, split: 'validation', maxNewTokens: watched.responseTokens });
  return r.stats.passRate;
}

/** After a change: per changed fact, how many of the round's pool slots (extracted by `version`) state its new value and its old one. */
async function changedInPool(q: Parameters<typeof readKnowledgeVersion>[0], taskId: string, version: string, changed: readonly string[], oldValues: Record<string, string>, now: Record<string, string>): Promise<string> {
  const slots = ((await readKnowledgeVersion(q))?.pools ?? []).filter((p) => p.taskId === taskId && p.modelVersion === version);
  const per = changed.map((id) => {
    const fact = factById(id);
    const count = (v: string) => slots.filter((p) => p.text.includes(fact.item(v))).length;
    return `${id} new ${count(now[id]!)} / old ${count(oldValues[id]!)}`;
  });
  return `the pool's ${slots.length} slots (extracted by ${version}) state the changed facts: ${per.join(', ')}`;
}

interface SeedResult {
  seed: number; companySeed: number;
  base: Figure; baseWithTruth: Figure; baseWithOwnKnowledge: Figure | null;
  rounds: {
    round: number; version: string; activated: boolean; skipped?: true; test: Figure; changed?: Figure; seconds: number; gate: string[]; frozenLake: number | null; lakeWatch: number | null; otherCompany: Figure;
    /** A candidate the gate refused: its own figures (the round's figures are the active version's). */
    candidate?: { version: string; test: Figure; changed?: Figure; frozenLake: number | null; lakeWatch: number | null; otherCompany: Figure };
  }[];
  changedFacts: string[]; baseFrozenLake: number | null;
  /** The base answering another company with that company's facts in context (what each round's version is compared with). */
  otherCompanyBase: Figure;
  /** FrozenLake's rounds between the desk's (same daemon), and the same rounds with FrozenLake alone. */
  lake: { together: LakeRoundResult[]; alone: LakeRoundResult[] };
}
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
/** A FrozenLake round as shown: what the daemon plays after it, and a candidate it did not activate. */
const lakeShow = (r: LakeRoundResult) => (r.activated ? pct(r.served) : `${pct(r.served)} (${r.test === null ? 'skipped' : `candidate ${pct(r.test)} refused`})`);
const lakeLine = (r: LakeRoundResult) => `${r.version === null ? `skipped (${r.gate.join('; ')})` : `${r.version} ${r.activated ? 'activated' : 'NOT activated'} (${r.gate.join('; ')})`}; test ${lakeShow(r)}; ${r.seconds.toFixed(0)} s`;

const engine = localEngine();
await engine.load('base', config.baseModelDir);
const results: SeedResult[] = [];
log(`support desk: base model ${config.baseModelDir}; seeds ${FIRST_SEED}..${FIRST_SEED + SEEDS - 1}; ${ROUNDS} rounds, then ${DRIFT_FACTS} facts change and ${DRIFT_ROUNDS} more; ${TEST} ${SPLIT} conversations per evaluation`);
const baseFrozenLake = await lakeTest(engine, 'base');
for (let s = FIRST_SEED; s < FIRST_SEED + SEEDS; s++) {
  // A gate that measured the lineage's base unloads it after (the worker holds the versions in use): load it again (a no-op when held).
  await engine.load('base', config.baseModelDir);
  const companySeed = DEPLOYED_COMPANY_SEEDS.start + s;
  const [task, lakeTask] = loadTasks([DESK_TASK_NAME, 'frozenlake'], config.tasksFile, { minInteractions: config.roundMinInteractions, maxRetentionKl: config.retentionMaxKl, anchorPromptsFile: config.anchorPromptsFile }) as [ChatTask, GameTask];
  const world: DeskWorld = { kind: 'support-desk', companySeed };
  task.world = world;
  const settings: RoundSettings = {
    trajectoriesPerRound: config.roundTrajectories, poolSlots: config.poolSlots, poolTrajectories: config.poolTrajectories,
    tokenBudget: config.knowledgeTokenBudget, teacherContext: config.teacherContext,
    training: trainingFor(task, { ...DEFAULT_ROUND_TRAINING, method: config.distillation, steps: config.roundSteps, batchSize: config.roundBatchSize, learningRate: config.roundLearningRate, seed: DEFAULT_ROUND_TRAINING.seed + 1000 * s }),
  };
  const truth = renderItemTexts(FACTS.map((f) => f.item(companyAt(world, 0).company.facts[f.id]!)));
  // Another deployed company (never trained on in this run), with its true facts in context.
  const otherWorld: DeskWorld = { kind: 'support-desk', companySeed: DEPLOYED_COMPANY_SEEDS.start + 500_000 + s };
  const other = { world: otherWorld, truth: renderItemTexts(FACTS.map((f) => f.item(companyAt(otherWorld, 0).company.facts[f.id]!))) };
  const result: SeedResult = {
    seed: s, companySeed, base: await deskTest(engine, 'base', task, world, 0), baseWithTruth: await deskTest(engine, 'base', task, world, 0, { knowledge: truth }),
    baseWithOwnKnowledge: null, rounds: [], changedFacts: [], baseFrozenLake, lake: { together: [], alone: [] },
    otherCompanyBase: await deskTest(engine, 'base', task, otherWorld, 0, { knowledge: other.truth }),
  };
  log(`seed ${s} (company ${companyAt(world, 0).company.name}): base ${show(result.base)}; base with the true facts in context ${show(result.baseWithTruth)}`);
  if (result.baseWithTruth.accuracy < 0.5 && !FORCE) {
    // A model that cannot answer from the facts in its context has nothing to distil from them:
    // its rounds would take minutes and measure nothing.
    log(`seed ${s}: no rounds: the base model answers ${(100 * result.baseWithTruth.accuracy).toFixed(1)}% right with the true facts in its context (BENCH_DESK_FORCE=1 runs them anyway)`);
    results.push(result);
    continue;
  }
  const w = await freshWorld(config.baseModelDir);
  const lakeOptions = { config, engine, artifactRoot, seed: settings.training.seed, test: { ...EVAL_SEEDS, count: FROZENLAKE }, split: SPLIT, task: lakeTask };
  const lakeRound = LAKE ? lakeRounds({ ...lakeOptions, store: w.store, sql: w.db.sql }) : null;
  try {
    const gate = createGate(engine, w.store, task, {
      gameEpisodes: config.evalEpisodes, gate: config.activationGate, gameTolerance: config.gateTolerance,
      temperature: settings.training.temperature, topK: settings.training.topK, seed: settings.training.seed,
    });
    let active = 'base';
    let recorded = 0;
    let oldValues: Record<string, string> = {};
    /** FrozenLake's round after the desk's (the daemon with both tasks), on the same lineage. */
    const lakeStep = async (k: number) => {
      if (!lakeRound) return;
      const r = await lakeRound(active);
      result.lake.together.push(r);
      log(`seed ${s} round ${k}, FrozenLake on the same daemon: ${lakeLine(r)}`);
      if (r.activated) active = r.version!;
    };
    const perRound = Math.max(task.minInteractions, config.roundTrajectories, config.poolTrajectories);
    for (let k = 1; k <= ROUNDS + DRIFT_ROUNDS; k++) {
      if (k === ROUNDS + 1 && DRIFT_FACTS > 0) {
        world.drift = { afterConversations: recorded, facts: DRIFT_FACTS };
        const before = companyAt(world, recorded - 1).company;
        result.changedFacts = companyAt(world, recorded).changed;
        oldValues = Object.fromEntries(result.changedFacts.map((id) => [id, before.facts[id]!]));
        log(`seed ${s}: the company changes ${result.changedFacts.map((id) => `${id} ${before.facts[id]} -> ${companyAt(world, recorded).company.facts[id]}`).join(', ')}`);
      }
      const t0 = performance.now();
      const sim = new DeskSimulator(w.store, engine, {
        taskId: task.id, companySeed, ...(world.drift ? { drift: world.drift } : {}), firstSeedIndex: 1_000_000 * s,
        batchSize: config.simulatorBatch, maxNewTokens: task.responseTokens, maxEventBytes: config.maxEventBytes,
      });
      let deployed = 0;
      let deployedRight = 0;
      for (let n = 0; n < perRound; n += config.simulatorBatch) {
        const b = await sim.playBatch(active);
        deployed += b.episodes * b.meanTurns;
        deployedRight += b.factAccuracy * b.episodes * b.meanTurns;
      }
      recorded += Math.ceil(perRound / config.simulatorBatch) * config.simulatorBatch;
      await catchUpProjections(w.db.sql);
      const screen = screenFor(engine, task, config.poolScreenEpisodes, () => companyNow(w.store.sql, task.id, world));
      const runner = new RoundRunner({ store: w.store, engine, artifactRoot, settings, task, gate, ...(screen ? { screen } : {}),
        onProgress: (p) => { if (p.message?.startsWith('kept ')) log(`seed ${s} round ${k}: ${p.message}`); } });
      const ran = await runner.run('threshold');
      await catchUpProjections(w.db.sql);
      const seconds = (performance.now() - t0) / 1000;
      /** A version's figures after round k: the test, the changed facts, FrozenLake, another company from its context. */
      const measure = async (version: string) => {
        const test = await deskTest(engine, version, task, world, recorded);
        const changed = result.changedFacts.length ? await deskTest(engine, version, task, world, recorded, { factIds: result.changedFacts, oldValues }) : undefined;
        const frozenLake = await lakeTest(engine, version);
        const watch = await lakeWatch(engine, version);
        // What the retention check stands for: does the version still answer another company from the facts in its context?
        const otherCompany = await deskTest(engine, version, task, other.world, 0, { knowledge: other.truth });
        const text = `test ${show(test)}${changed ? `; changed facts ${show(changed)}, old values ${rateWithInterval(changed.oldValues ?? 0, changed.of)} (${changed.byFact})` : ''}`
          + `${frozenLake === null ? '' : `; FrozenLake ${(100 * frozenLake).toFixed(1)}%`}${watch === null ? '' : `, lake-XO (validation) ${(100 * watch).toFixed(1)}%`}; another company with its facts in context ${(100 * otherCompany.accuracy).toFixed(1)}% (base ${(100 * result.otherCompanyBase.accuracy).toFixed(1)}%)`;
        return { figures: { test, ...(changed ? { changed } : {}), frozenLake, lakeWatch: watch, otherCompany }, text };
      };
      if ('skipped' in ran) {
        // As in the daemon: nothing trained; the next round learns from the conversations that follow.
        // After it users still have the active version: its figures now (after a change of policy they differ).
        const { figures, text } = await measure(active);
        result.rounds.push({ round: k, version: active, activated: false, skipped: true, ...figures, seconds, gate: [ran.skipped] });
        log(`seed ${s} round ${k}: skipped (${ran.skipped}); ${active} stays active: ${text}; ${seconds.toFixed(0)} s`);
        await lakeStep(k);
        continue;
      }
      const outcome = ran;
      if (k === 1) {
        const kb = await readKnowledgeVersion(w.db.sql);
        const pool = kb?.pools.find((p) => p.taskId === task.id && p.modelVersion === 'base');
        if (pool) {
          result.baseWithOwnKnowledge = await deskTest(engine, 'base', task, world, recorded, { knowledge: pool.text });
          log(`seed ${s}: base with its own round-0 knowledge (${pool.items.length} items) in context: ${show(result.baseWithOwnKnowledge)}`);
          if (process.env.BENCH_DESK_SHOW_KNOWLEDGE === '1') log(`seed ${s}: the true facts:\n${truth}\nits round-0 knowledge (one slot):\n${pool.text}`);
        }
      }
      if (result.changedFacts.length) log(`seed ${s} round ${k}: ${await changedInPool(w.db.sql, task.id, active, result.changedFacts, oldValues, companyAt(world, recorded).company.facts)}`);
      await engine.load(outcome.newVersion, join(artifactRoot, 'models', outcome.newVersion));
      const { figures, text } = await measure(outcome.newVersion);
      log(`seed ${s} round ${k}: deployment accuracy ${(100 * deployedRight / Math.max(1, deployed)).toFixed(1)}% with ${active}; ${outcome.newVersion} ${outcome.activated ? 'activated' : 'NOT activated'} (${outcome.gateReasons.join('; ')}); `
        + `${outcome.knowledgeItems} items; ${text}; ${seconds.toFixed(0)} s`);
      if (outcome.activated) {
        result.rounds.push({ round: k, version: outcome.newVersion, activated: true, ...figures, seconds, gate: outcome.gateReasons });
      } else {
        // Refused: users keep the active version, and its figures are the round's (the candidate's are logged above and kept apart).
        const kept = await measure(active);
        result.rounds.push({ round: k, version: active, activated: false, ...kept.figures, candidate: { version: outcome.newVersion, ...figures }, seconds, gate: outcome.gateReasons });
        log(`seed ${s} round ${k}: ${active} stays active: ${kept.text}`);
      }
      if (outcome.activated) active = outcome.newVersion;
      await lakeStep(k);
    }
  } finally {
    await w.db.drop();
  }
  if (LAKE) {
    // The baseline: the same FrozenLake rounds (seed, count) with FrozenLake alone.
    const alone = await freshWorld(config.baseModelDir);
    await engine.load('base', config.baseModelDir);
    try {
      const lakeRound = lakeRounds({ ...lakeOptions, store: alone.store, sql: alone.db.sql });
      let active = 'base';
      for (let k = 1; k <= ROUNDS + DRIFT_ROUNDS; k++) {
        const r = await lakeRound(active);
        result.lake.alone.push(r);
        log(`seed ${s} round ${k}, FrozenLake alone: ${lakeLine(r)}`);
        if (r.activated) active = r.version!;
      }
    } finally {
      await alone.db.drop();
    }
  }
  results.push(result);
}
await engine.close();

// Pooled over seeds: every seed's test conversations are independent questions.
const pooled = (pick: (r: SeedResult) => Figure | undefined | null) => {
  const fs = results.map(pick).filter((f): f is Figure => !!f);
  const right = fs.reduce((n, f) => n + f.right, 0);
  const of = fs.reduce((n, f) => n + f.of, 0);
  return { right, of, text: of ? rateWithInterval(right, of) : '-', perSeed: fs.map((f) => `${(100 * f.accuracy).toFixed(0)}%`).join(' ') };
};
const atRound = (k: number) => (r: SeedResult) => r.rounds.find((x) => x.round === k)?.test;
const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
const base = pooled((r) => r.base);
const truth = pooled((r) => r.baseWithTruth);
const own = pooled((r) => r.baseWithOwnKnowledge);
log('');
log(`support desk, pooled over ${results.length} seeds (per seed in brackets after):`);
log(`  base: ${base.text} (${base.perSeed}); goal at most 15%: ${goal(base.right / Math.max(1, base.of) <= 0.15)}`);
log(`  base with the true facts in context: ${truth.text} (${truth.perSeed}); goal at least 85%: ${goal(truth.right / Math.max(1, truth.of) >= 0.85)}`);
log(`  base with its own round-0 knowledge in context: ${own.text} (${own.perSeed})`);
for (let k = 1; k <= ROUNDS + DRIFT_ROUNDS; k++) {
  const f = pooled(atRound(k));
  log(`  after round ${k}: ${f.text} (${f.perSeed})`);
}
const r1 = results.map((r) => ({ seed: r.seed, gain: (atRound(1)(r)?.accuracy ?? 0) - r.base.accuracy }));
log(`  goal round 1 >= base + 40 points on every seed: ${r1.map((x) => `${(100 * x.gain).toFixed(0)}`).join(', ')} points (${goal(r1.every((x) => x.gain >= 0.4))})`);
const r3 = results.map((r) => ({ acc: atRound(ROUNDS)(r)?.accuracy ?? 0, own: r.baseWithOwnKnowledge?.accuracy ?? 1 }));
log(`  goal round ${ROUNDS} >= 80% and >= base with own round-0 knowledge on every seed: ${goal(r3.every((x) => x.acc >= 0.8 && x.acc >= x.own))}`);
if (DRIFT_FACTS > 0 && DRIFT_ROUNDS > 0) {
  const last = ROUNDS + DRIFT_ROUNDS;
  const changed = results.map((r) => r.rounds.find((x) => x.round === last)?.changed).filter((f): f is Figure => !!f);
  const right = changed.reduce((n, f) => n + f.right, 0);
  const old = changed.reduce((n, f) => n + (f.oldValues ?? 0), 0);
  const of = changed.reduce((n, f) => n + f.of, 0);
  log(`  drift, ${DRIFT_ROUNDS} rounds after ${DRIFT_FACTS} facts changed: changed facts right ${rateWithInterval(right, of)}, old values ${rateWithInterval(old, of)}; goal >= 80% and old < 10%: ${goal(of > 0 && right / of >= 0.8 && old / of < 0.1)}`);
}
const tokens = results.map((r) => ({ base: r.base.responseTokens, last: r.rounds.at(-1)?.test.responseTokens ?? r.base.responseTokens }));
log(`  goal response tokens not up from base: ${tokens.map((t) => `${t.base.toFixed(1)} -> ${t.last.toFixed(1)}`).join(', ')} (${goal(tokens.every((t) => t.last <= t.base + 0.5))})`);
const seconds = results.flatMap((r) => r.rounds.map((x) => x.seconds));
log(`  goal one round <= 300 s: ${seconds.map((x) => x.toFixed(0)).join(', ')} s (${goal(seconds.every((x) => x <= 300))})`);
if (baseFrozenLake !== null) {
  const lakes = results.flatMap((r) => r.rounds.map((x) => x.frozenLake ?? 0));
  log(`  FrozenLake test pass rate of the desk's versions (base ${(100 * baseFrozenLake).toFixed(1)}%, ${FROZENLAKE} episodes): ${lakes.map((x) => (100 * x).toFixed(0)).join(', ')}%`);
  const watches = results.flatMap((r) => r.rounds.map((x) => x.lakeWatch)).filter((x): x is number => x !== null);
  if (watches.length) log(`  lake-XO (the world FrozenLake's gate watches, ${config.evalEpisodes} validation episodes) of the desk's versions: ${watches.map((x) => (100 * x).toFixed(0)).join(', ')}%`);
}
if (LAKE) {
  log(`  FrozenLake (${FROZENLAKE} ${SPLIT} episodes; base ${(100 * (baseFrozenLake ?? 0)).toFixed(1)}%), after each of its rounds, on the same daemon as the desk | alone:`);
  for (const r of results) log(`    seed ${r.seed}: ${r.lake.together.map(lakeShow).join(', ')} | ${r.lake.alone.map(lakeShow).join(', ')}`);
  const lakeBase = baseFrozenLake ?? 0;
  const points = (xs: number[]) => xs.map((g) => `${g >= 0 ? '+' : ''}${(100 * g).toFixed(1)}`).join(', ');
  // What the daemon plays: the version active after the last round, on the same daemon and alone.
  const gaps = results.map((r) => (r.lake.together.at(-1)?.served ?? lakeBase) - (r.lake.alone.at(-1)?.served ?? lakeBase));
  log(`  goal FrozenLake on the same daemon within 3 points of alone (the active version after the last round): ${points(gaps)} points (${goal(gaps.every((g) => g >= -0.03))})`);
  const lakeR1 = results.map((r) => (r.lake.together[0]?.served ?? lakeBase) - lakeBase);
  log(`  goal FrozenLake round 1 >= base + 40 points on every seed (same daemon, the active version): ${points(lakeR1)} points (${goal(lakeR1.every((g) => g >= 0.4))})`);
  // What the rounds taught, activated or not (a candidate the gate refused still shows whether the round learned the game).
  const candidateR1 = results.map((r) => (r.lake.together[0]?.test ?? lakeBase) - lakeBase);
  const lastCandidate = (xs: LakeRoundResult[]) => xs.filter((x) => x.test !== null).at(-1)?.test ?? lakeBase;
  log(`  FrozenLake candidates, activated or not: round 1 ${points(candidateR1)} points from base; last candidate on the same daemon against alone ${points(results.map((r) => lastCandidate(r.lake.together) - lastCandidate(r.lake.alone)))} points`);
}
emit({ bench: 'desk-learning', seeds: results, pooled: { base, truth, own } });
