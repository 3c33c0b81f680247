/**
 * A round's plan, decided before any arithmetic: for each optimiser step, which logged prompts it
 * trains on, which knowledge text each example's teacher reads (one drawn per example from the
 * pool), both prompts as token ids (fitted to the context beside the reply), and the seed its
 * replies are sampled with. Every trainer executes the same plan (opcd-round.ts in this process,
 * the PyTorch trainer in python/oeld_trainer), so that a round's data does not depend on which one
 * runs it. Pure: the same prompts, pool, options and tokenizer give the same plan.
 *
 * With reading prompts and `readingShare` > 0, that share of each step's examples (at least one
 * logged prompt stays) is a reading prompt whose teacher reads it as the student does, with no
 * pool knowledge: the frozen round-start version's answer to it, which the student is held to (a
 * prompt with another company's facts in its context, so that the round does not teach the model
 * to ignore its context, or the extraction prompt over another company's corrected conversation,
 * so that it goes on writing what customers say: tasks/reading-prompts.ts; for FrozenLake a board
 * of another lake world the model knows: tasks/lake-reading-prompts.ts). Without them the plan
 * draws exactly what it drew before.
 */
import type { Prompt } from '../model/inference/chat-prompt.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';
import { seededRandom } from '../model/network/rng.ts';
import { fitWithKnowledge, type FitOptions } from './fit-situations.ts';

export interface PlannedExample { studentIds: number[]; teacherIds: number[] }
export interface PlannedStep { step: number; sampleSeed: number; examples: PlannedExample[] }

export interface PlanOptions extends FitOptions { steps: number; batchSize: number; seed: number; readingShare?: number }

/**
 * Plans every step. Yields `onStep` after each (the caller may pause there: the daemon plans on its
 * own thread and must stay responsive).
 */
export function* planSteps(tokenizer: Tokenizer, contextTokens: number, prompts: readonly Prompt[], knowledgeTexts: readonly string[], o: PlanOptions, reading: readonly Prompt[] = []): Generator<PlannedStep> {
  if (prompts.length === 0) throw new Error('round training: no deployment prompts to train on');
  const random = seededRandom(o.seed);
  let order: number[] = [];
  const nextPrompt = (): Prompt => {
    if (order.length === 0) order = shuffled(prompts.length, random);
    return prompts[order.pop()!]!;
  };
  let readingOrder: number[] = [];
  const nextReading = (): Prompt => {
    if (readingOrder.length === 0) readingOrder = shuffled(reading.length, random);
    return reading[readingOrder.pop()!]!;
  };
  const readingPerStep = readingExamples(o.batchSize, o.readingShare ?? 0, reading.length);
  for (let step = 1; step <= o.steps; step++) {
    const batch = Array.from({ length: o.batchSize - readingPerStep }, nextPrompt);
    const knowledge = batch.map(() => (knowledgeTexts.length === 0 ? '' : knowledgeTexts[Math.floor(random() * knowledgeTexts.length)]!));
    // Reading prompts: the teacher reads what the student reads (no knowledge added).
    for (let i = 0; i < readingPerStep; i++) { batch.push(nextReading()); knowledge.push(''); }
    // Each prompt cut from the left where it and this example's knowledge would not fit the context.
    const examples = batch.map((s, i) => {
      const f = fitWithKnowledge(tokenizer, contextTokens, s, knowledge[i]!, o);
      return { studentIds: f.studentIds, teacherIds: f.teacherIds };
    });
    yield { step, sampleSeed: Math.floor(random() * 2 ** 31), examples };
  }
}

/** Reading examples per step: the share of the batch, rounded, leaving at least one logged prompt; none without reading prompts. */
export function readingExamples(batchSize: number, share: number, readingPrompts: number): number {
  if (readingPrompts === 0 || share <= 0) return 0;
  return Math.min(batchSize - 1, Math.round(batchSize * share));
}

/** The whole plan at once. */
export function planRound(tokenizer: Tokenizer, contextTokens: number, prompts: readonly Prompt[], knowledgeTexts: readonly string[], o: PlanOptions, reading: readonly Prompt[] = []): PlannedStep[] {
  return [...planSteps(tokenizer, contextTokens, prompts, knowledgeTexts, o, reading)];
}

function shuffled(n: number, random: () => number): number[] {
  const xs = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
