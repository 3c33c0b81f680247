/** Settings and a scripted extraction endpoint for the tiny-model round tests (shared with the child process). */
import { frozenLakeSpec } from '../../src/envs/frozenlake.ts';
import { VALIDATION_SEEDS } from '../../src/envs/seed-ranges.ts';
import type { ExtractFn } from '../../src/extraction/extract-pool.ts';
import type { RoundSettings } from '../../src/rounds/round-runner.ts';
import { DEFAULT_ROUND_TRAINING } from '../../src/trainer/opcd-round.ts';

export const TINY_ROUND: RoundSettings = {
  trajectoriesPerRound: 8, poolSlots: 2, poolTrajectories: 3, tokenBudget: 64, extractionMaxTokens: 8, teacherContext: 'knowledge',
  training: { ...DEFAULT_ROUND_TRAINING, steps: 3, batchSize: 4, maxNewTokens: 6, learningRate: 1e-2 },
  evaluation: { game: frozenLakeSpec(), seeds: { ...VALIDATION_SEEDS, count: 4 }, maxNewTokens: 6, gate: false, tolerance: 0 },
};

/** An extraction endpoint that always answers with items (the tiny model writes none). */
export function scriptedExtractor(seen: string[]): () => Promise<ExtractFn> {
  let n = 0;
  return async () => async (prompts) => prompts.map((p) => {
    seen.push(p);
    n++;
    return { text: `Thinking.\n- EXPERIENCE ITEM: G is the goal.\n- EXPERIENCE ITEM: lesson ${n}\nnot an item`, tokens: 9 };
  });
}

