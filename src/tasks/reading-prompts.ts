/**
 * Reading prompts: what a task's rounds must leave as it was (round-plan.ts, `readingShare`). For
 * the support desk, another company's conversation opening with that company's facts in the
 * system message, as a teacher reads knowledge: the round-start version answers them from its
 * context, and the round holds the student to those answers. Measured without them, the desk's
 * rounds teach the deployed company's values so that the version gives them whatever its context
 * says (another company with its facts in context: 86-92% for the base, 48-57% after five rounds;
 * docs/measured.md), and the next round's teacher then no longer reads new values either.
 * Companies from the corpus range, never the deployed one. FrozenLake's are boards of the other
 * lake worlds the base model learned (lake-reading-prompts.ts).
 *
 * With `readingExtraction`, a third more: the extraction prompt a round writes over another
 * company's conversation in which the customer corrects the assistant. The rounds erode that
 * skill too: a version three rounds on wrote the customer's value for 61% of such corrections,
 * the base for 79% (bench/desk-extraction.ts), and a version that learned a value writes it
 * again when customers correct it after the policy changed, so the change is never learned.
 *
 * Pure: the same task, seed and options give the same prompts, so that a round re-derives
 * (operations/rederive.ts).
 */
import { CORPUS_COMPANY_SEEDS } from '../envs/seed-ranges.ts';
import { drawCompany } from '../envs/support-desk/company.ts';
import { conversationOutcome, deskSystemPrompt } from '../envs/support-desk/conversations.ts';
import { customerQuestion, customerReply, judgeAnswer } from '../envs/support-desk/customer.ts';
import { answerWith, FACTS, factValues } from '../envs/support-desk/facts.ts';
import { extractionPrompt, renderTrajectory } from '../extraction/extraction-prompt.ts';
import { teacherMessages } from '../extraction/teacher-prompt.ts';
import { lakeReadingPrompts } from './lake-reading-prompts.ts';
import { userPrompt, type Prompt, type PromptMessage } from '../model/inference/chat-prompt.ts';
import { seededRandom } from '../model/network/rng.ts';
import { renderItemTexts } from '../projections/knowledge/knowledge-base.ts';
import type { RoundTrainingOptions } from '../trainer/opcd-round.ts';

/** Reading prompts a round draws from (it cycles through them). */
export const READING_PROMPTS = 64;
/** Extraction prompts added to them with `readingExtraction`. */
export const EXTRACTION_READING_PROMPTS = 32;

/** The task's reading prompts for a round with this training seed: the support desk's, FrozenLake's (lake-reading-prompts.ts); none for a chat task of logs or another game. */
export function readingPromptsFor(task: object, seed: number, count = READING_PROMPTS): Prompt[] {
  const kind = readingKindOf(task);
  if (kind === 'lake') return lakeReadingPrompts(seed, count);
  if (kind !== 'desk') return [];
  const random = seededRandom((seed * 7919 + 0x5ead) >>> 0);
  return Array.from({ length: count }, () => {
    const company = drawCompany(CORPUS_COMPANY_SEEDS.start + Math.floor(random() * CORPUS_COMPANY_SEEDS.count));
    const fact = FACTS[Math.floor(random() * FACTS.length)]!;
    const facts = renderItemTexts(FACTS.map((f) => f.item(company.facts[f.id]!)));
    const opening: Prompt = [{ role: 'system', content: deskSystemPrompt(company) }, { role: 'user', content: customerQuestion(random, fact, 'deployment', true) }];
    return teacherMessages(facts, opening, 'system');
  });
}

/**
 * Another company's conversation of one question, answered with another of the fact's values and
 * corrected by the customer, as the extraction prompt a round writes over it (nothing known yet).
 */
export function extractionReadingPrompts(seed: number, count = EXTRACTION_READING_PROMPTS): Prompt[] {
  const random = seededRandom((seed * 7919 + 0xe7ac) >>> 0);
  return Array.from({ length: count }, () => {
    const company = drawCompany(CORPUS_COMPANY_SEEDS.start + Math.floor(random() * CORPUS_COMPANY_SEEDS.count));
    const fact = FACTS[Math.floor(random() * FACTS.length)]!;
    const truth = company.facts[fact.id]!;
    const others = factValues(fact).filter((v) => v !== truth);
    const answer = answerWith(fact, others[Math.floor(random() * others.length)]!);
    const question = customerQuestion(random, fact, 'deployment', true);
    const verdict = judgeAnswer(fact, truth, answer);
    const reply = customerReply(random, fact, truth, verdict, 1);
    const messages: PromptMessage[] = [
      { role: 'system', content: deskSystemPrompt(company) }, { role: 'user', content: question },
      { role: 'assistant', content: answer }, { role: 'user', content: reply.text },
    ];
    return userPrompt(extractionPrompt(renderTrajectory({ messages: messages.map((m) => ({ role: m.role, content: m.content })), outcome: conversationOutcome([verdict]) }), []));
  });
}

/**
 * Which reading prompts a task has: the support desk's, FrozenLake's, or none. The task may be a
 * Task or the task as RoundStarted records it (round-runner.ts: a game by its name), which `oeld
 * rederive` reads.
 */
function readingKindOf(task: object): 'desk' | 'lake' | undefined {
  const t = task as { game?: string | { id?: string }; world?: { kind?: string } };
  if (t.world?.kind === 'support-desk') return 'desk';
  return (typeof t.game === 'string' ? t.game : t.game?.id) === 'frozenlake' ? 'lake' : undefined;
}

/** What a round's training job carries (`reading`): the task's reading prompts where its training takes a share of them, else nothing. */
export function readingOf(task: object, training: Pick<RoundTrainingOptions, 'readingShare' | 'readingExtraction' | 'seed'>): { reading?: Prompt[] } {
  if (!((training.readingShare ?? 0) > 0)) return {};
  const reading = readingPromptsFor(task, training.seed);
  if (readingKindOf(task) === 'desk' && training.readingExtraction) reading.push(...extractionReadingPrompts(training.seed));
  return reading.length ? { reading } : {};
}
