/** Settings and a scripted extraction endpoint for the tiny-model round tests (shared with the child process). */
import { VALIDATION_SEEDS } from '../../src/envs/seed-ranges.ts';
import { GameGate } from '../../src/evaluation/game-gate.ts';
import type { ExtractFn } from '../../src/extraction/extract-pool.ts';
import type { ModelEngine } from '../../src/model/model-engine.ts';
import type { RoundRunnerDeps, RoundSettings } from '../../src/rounds/round-runner.ts';
import { loadTasks } from '../../src/tasks/task-config.ts';
import type { GameTask } from '../../src/tasks/task.ts';
import { DEFAULT_ROUND_TRAINING } from '../../src/trainer/opcd-round.ts';

export const TINY_ROUND: RoundSettings = {
  trajectoriesPerRound: 8, poolSlots: 2, poolTrajectories: 3, tokenBudget: 64, teacherContext: 'knowledge',
  training: { ...DEFAULT_ROUND_TRAINING, steps: 3, batchSize: 4, learningRate: 1e-2 },
};

/** FrozenLake with the tiny model's short answers and extractions. */
export const TINY_GAME_TASK: GameTask = {
  ...(loadTasks(['frozenlake'], undefined, { minInteractions: 1, maxRetentionKl: 1, anchorPromptsFile: 'unused' })[0] as GameTask),
  responseTokens: 6, extractionTokens: 8,
};

/** The game task and its gate (4 validation episodes, activate whatever they show). */
export function tinyGameRound(engine: ModelEngine): Pick<RoundRunnerDeps, 'task' | 'gate'> {
  return { task: TINY_GAME_TASK, gate: new GameGate(engine, TINY_GAME_TASK, { seeds: { ...VALIDATION_SEEDS, count: 4 }, gate: false, tolerance: 0 }) };
}

/** An extraction endpoint that always answers with items (the tiny model writes none). */
export function scriptedExtractor(seen: string[]): () => Promise<ExtractFn> {
  let n = 0;
  return async () => async (prompts) => prompts.map((p) => {
    seen.push(p);
    n++;
    return { text: `Thinking.\n- EXPERIENCE ITEM: G is the goal.\n- EXPERIENCE ITEM: lesson ${n}\nnot an item`, tokens: 9 };
  });
}
