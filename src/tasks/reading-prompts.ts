/**
 * Reading prompts: what a task's rounds must leave as it was (round-plan.ts, `readingShare`). For
 * the support desk, another company's conversation opening with that company's facts in the
 * system message, as a teacher reads knowledge: the round-start version answers them from its
 * context, and the round holds the student to those answers. Measured without them, the desk's
 * rounds teach the deployed company's values so that the version gives them whatever its context
 * says (another company with its facts in context: 86-92% for the base, 48-57% after five rounds;
 * docs/measured.md), and the next round's teacher then no longer reads new values either.
 * Companies from the corpus range, never the deployed one. Pure: the same task and seed give the
 * same prompts, so that a round re-derives (operations/rederive.ts).
 */
import { CORPUS_COMPANY_SEEDS } from '../envs/seed-ranges.ts';
import { drawCompany } from '../envs/support-desk/company.ts';
import { deskSystemPrompt } from '../envs/support-desk/conversations.ts';
import { customerQuestion } from '../envs/support-desk/customer.ts';
import { FACTS } from '../envs/support-desk/facts.ts';
import { teacherMessages } from '../extraction/teacher-prompt.ts';
import type { Prompt } from '../model/inference/chat-prompt.ts';
import { seededRandom } from '../model/network/rng.ts';
import { renderItemTexts } from '../projections/knowledge/knowledge-base.ts';
import type { RoundTrainingOptions } from '../trainer/opcd-round.ts';

/** Reading prompts a round draws from (it cycles through them). */
export const READING_PROMPTS = 64;

/** The task's reading prompts for a round with this training seed; none for a task without a world (a chat task of logs, a game). */
export function readingPromptsFor(task: object, seed: number, count = READING_PROMPTS): Prompt[] {
  if ((task as { world?: { kind?: string } }).world?.kind !== 'support-desk') return [];
  const random = seededRandom((seed * 7919 + 0x5ead) >>> 0);
  return Array.from({ length: count }, () => {
    const company = drawCompany(CORPUS_COMPANY_SEEDS.start + Math.floor(random() * CORPUS_COMPANY_SEEDS.count));
    const fact = FACTS[Math.floor(random() * FACTS.length)]!;
    const facts = renderItemTexts(FACTS.map((f) => f.item(company.facts[f.id]!)));
    const opening: Prompt = [{ role: 'system', content: deskSystemPrompt(company) }, { role: 'user', content: customerQuestion(random, fact, 'deployment', true) }];
    return teacherMessages(facts, opening, 'system');
  });
}

/** What a round's training job carries (`reading`): the task's reading prompts where its training takes a share of them, else nothing. */
export function readingOf(task: object, training: Pick<RoundTrainingOptions, 'readingShare' | 'seed'>): { reading?: Prompt[] } {
  if (!((training.readingShare ?? 0) > 0)) return {};
  const reading = readingPromptsFor(task, training.seed);
  return reading.length ? { reading } : {};
}
