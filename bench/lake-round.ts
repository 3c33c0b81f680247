/**
 * One FrozenLake round as the daemon runs it, for benchmarks that put FrozenLake beside another
 * task on one lineage (bench/desk-learning.ts): the simulator plays the active version until the
 * trigger's count, the round runs with the task's screen and gate, and the new version is tested.
 */
import { join } from 'node:path';
import type { Config } from '../src/config.ts';
import type { Sql } from '../src/db/sql.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import type { SeedRange } from '../src/envs/seed-ranges.ts';
import { evaluateVersion } from '../src/evaluation/evaluate.ts';
import { createGate } from '../src/evaluation/task-gate.ts';
import { screenFor } from '../src/evaluation/task-screen.ts';
import { catchUpProjections } from '../src/operations/catch-up.ts';
import { RoundRunner } from '../src/rounds/round-runner.ts';
import { Simulator } from '../src/simulator/simulator.ts';
import type { EventStore } from '../src/store/event-store.ts';
import { trainingFor } from '../src/tasks/task-training.ts';
import type { GameTask } from '../src/tasks/task.ts';
import { DEFAULT_ROUND_TRAINING } from '../src/trainer/opcd-round.ts';

/**
 * One FrozenLake round: its candidate (none when the round was skipped), whether the gate activated
 * it, the candidate's test pass rate, and `served`: the test pass rate of the version active after
 * the round (the candidate, or the version kept), what the daemon plays.
 */
export interface LakeRoundResult { version: string | null; activated: boolean; test: number | null; served: number; seconds: number; gate: string[] }

/** A FrozenLake round player for one lineage (one database): its gate remembers what it measured, as the daemon's does. */
export function lakeRounds(o: { config: Config; engine: ModelEngine; store: EventStore; sql: Sql; artifactRoot: string; seed: number; test: SeedRange; split: 'validation' | 'test'; task: GameTask }) {
  const { config, engine, task } = o;
  const training = trainingFor(task, { ...DEFAULT_ROUND_TRAINING, method: config.distillation, steps: config.roundSteps, batchSize: config.roundBatchSize, learningRate: config.roundLearningRate, seed: o.seed });
  const gate = createGate(engine, o.store, task, {
    gameEpisodes: config.evalEpisodes, gate: config.activationGate, gameTolerance: config.gateTolerance, gameHistory: config.gateHistory, watchUntrained: config.gateWatchUntrained,
    temperature: training.temperature, topK: training.topK, seed: training.seed,
  });
  const runner = new RoundRunner({
    store: o.store, engine, artifactRoot: o.artifactRoot, task, gate,
    settings: { trajectoriesPerRound: config.roundTrajectories, poolSlots: config.poolSlots, poolTrajectories: config.poolTrajectories, tokenBudget: config.knowledgeTokenBudget, teacherContext: config.teacherContext, training },
    ...(config.poolScreenEpisodes > 0 ? { screen: screenFor(engine, task, config.poolScreenEpisodes) } : {}),
  });
  const simulator = new Simulator(o.store, engine, { game: task.game, batchSize: config.simulatorBatch, maxNewTokens: task.responseTokens, maxEventBytes: config.maxEventBytes });
  const perRound = Math.max(task.minInteractions, config.roundTrajectories, config.poolTrajectories);
  const passRates = new Map<string, number>();
  const testOf = async (version: string): Promise<number> => {
    if (!passRates.has(version)) passRates.set(version, (await evaluateVersion(engine, version, { game: task.game, seeds: o.test, split: o.split, maxNewTokens: task.responseTokens })).stats.passRate);
    return passRates.get(version)!;
  };
  /** Plays `active` (loaded), runs the round. */
  return async (active: string): Promise<LakeRoundResult> => {
    const t0 = performance.now();
    for (let n = 0; n < perRound; n += config.simulatorBatch) await simulator.playBatch(active);
    await catchUpProjections(o.sql);
    const r = await runner.run('threshold');
    await catchUpProjections(o.sql);
    const seconds = (performance.now() - t0) / 1000;
    if ('skipped' in r) return { version: null, activated: false, test: null, served: await testOf(active), seconds, gate: [r.skipped] };
    await engine.load(r.newVersion, join(o.artifactRoot, 'models', r.newVersion));
    const test = await testOf(r.newVersion);
    return { version: r.newVersion, activated: r.activated, test, served: r.activated ? test : await testOf(active), seconds, gate: r.gateReasons };
  };
}
