/**
 * A round's plan, decided before any arithmetic: for each optimiser step, which logged prompts it
 * trains on, which knowledge text each example's teacher reads (one drawn per example from the
 * pool), both prompts as token ids (fitted to the context beside the reply), and the seed its
 * replies are sampled with. Every trainer executes the same plan (opcd-round.ts in this process,
 * the PyTorch trainer in python/oeld_trainer), so that a round's data does not depend on which one
 * runs it. Pure: the same prompts, pool, options and tokenizer give the same plan.
 */
import type { Prompt } from '../model/inference/chat-prompt.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';
import { seededRandom } from '../model/network/rng.ts';
import { fitWithKnowledge, type FitOptions } from './fit-situations.ts';

export interface PlannedExample { studentIds: number[]; teacherIds: number[] }
export interface PlannedStep { step: number; sampleSeed: number; examples: PlannedExample[] }

export interface PlanOptions extends FitOptions { steps: number; batchSize: number; seed: number }

/**
 * Plans every step. Yields `onStep` after each (the caller may pause there: the daemon plans on its
 * own thread and must stay responsive).
 */
export function* planSteps(tokenizer: Tokenizer, contextTokens: number, prompts: readonly Prompt[], knowledgeTexts: readonly string[], o: PlanOptions): Generator<PlannedStep> {
  if (prompts.length === 0) throw new Error('round training: no deployment prompts to train on');
  const random = seededRandom(o.seed);
  let order: number[] = [];
  const nextPrompt = (): Prompt => {
    if (order.length === 0) order = shuffled(prompts.length, random);
    return prompts[order.pop()!]!;
  };
  for (let step = 1; step <= o.steps; step++) {
    const batch = Array.from({ length: o.batchSize }, nextPrompt);
    const knowledge = batch.map(() => (knowledgeTexts.length === 0 ? '' : knowledgeTexts[Math.floor(random() * knowledgeTexts.length)]!));
    // Each prompt cut from the left where it and this example's knowledge would not fit the context.
    const examples = batch.map((s, i) => {
      const f = fitWithKnowledge(tokenizer, contextTokens, s, knowledge[i]!, o);
      return { studentIds: f.studentIds, teacherIds: f.teacherIds };
    });
    yield { step, sampleSeed: Math.floor(random() * 2 ** 31), examples };
  }
}

/** The whole plan at once. */
export function planRound(tokenizer: Tokenizer, contextTokens: number, prompts: readonly Prompt[], knowledgeTexts: readonly string[], o: PlanOptions): PlannedStep[] {
  return [...planSteps(tokenizer, contextTokens, prompts, knowledgeTexts, o)];
}

function shuffled(n: number, random: () => number): number[] {
  const xs = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
