/**
 * Reading prompts: what a task's rounds must leave as it was (round-plan.ts, `readingShare`): the
 * round-start version answers them as they are, and the round holds the student to those answers.
 *
 * - The support desk: another company's conversation opening with that company's facts in the
 *   system message, as a teacher reads knowledge. Measured without them, the desk's rounds teach
 *   the deployed company's values so that the version gives them whatever its context says
 *   (another company with its facts in context: 86-92% for the base, 48-57% after five rounds;
 *   docs/measured.md), and the next round's teacher then no longer reads new values either.
 *   Companies from the corpus range, never the deployed one.
 * - FrozenLake: a first turn in one of the lake worlds the base model learned by heart in
 *   pretraining (its letters and their roles), never the one the gate watches (lake-XO, which the
 *   rounds must never train on). A FrozenLake round teaches which of H and G is the goal, and
 *   measured without these it also unlearns the familiar worlds (docs/measured.md).
 *
 * None for a chat task of logs or another game. Pure: the same task and seed give the same
 * prompts, so that a round re-derives (operations/rederive.ts).
 */
import { FAMILIAR_WORLDS } from '../basemodel/corpus.ts';
import { renderPrompt } from '../envs/environment.ts';
import { OOD_GAME } from '../envs/games.ts';
import { lakeVariantSpec } from '../envs/lake-world.ts';
import { CORPUS_COMPANY_SEEDS, DEPLOYMENT_SEEDS } from '../envs/seed-ranges.ts';
import { drawCompany } from '../envs/support-desk/company.ts';
import { deskSystemPrompt } from '../envs/support-desk/conversations.ts';
import { customerQuestion } from '../envs/support-desk/customer.ts';
import { FACTS } from '../envs/support-desk/facts.ts';
import { teacherMessages } from '../extraction/teacher-prompt.ts';
import { userPrompt, type Prompt } from '../model/inference/chat-prompt.ts';
import { seededRandom } from '../model/network/rng.ts';
import { renderItemTexts } from '../projections/knowledge/knowledge-base.ts';
import type { RoundTrainingOptions } from '../trainer/opcd-round.ts';

/** Reading prompts a round draws from (it cycles through them). */
export const READING_PROMPTS = 64;

/** The lake worlds FrozenLake's reading prompts come from: the familiar ones but the watched one. */
export const LAKE_READING_WORLDS = FAMILIAR_WORLDS.map((symbols) => lakeVariantSpec(`lake-${symbols.hole}${symbols.goal}`, symbols)).filter((w) => w.id !== OOD_GAME);

/**
 * The task's reading prompts for a round with this training seed; none for a task without them.
 * `task` is a live task or the summary a round recorded (its game by id).
 */
export function readingPromptsFor(task: object, seed: number, count = READING_PROMPTS): Prompt[] {
  const random = seededRandom((seed * 7919 + 0x5ead) >>> 0);
  if (hasReadingPrompts(task) === 'desk') {
    return Array.from({ length: count }, () => {
      const company = drawCompany(CORPUS_COMPANY_SEEDS.start + Math.floor(random() * CORPUS_COMPANY_SEEDS.count));
      const fact = FACTS[Math.floor(random() * FACTS.length)]!;
      const facts = renderItemTexts(FACTS.map((f) => f.item(company.facts[f.id]!)));
      const opening: Prompt = [{ role: 'system', content: deskSystemPrompt(company) }, { role: 'user', content: customerQuestion(random, fact, 'deployment', true) }];
      return teacherMessages(facts, opening, 'system');
    });
  }
  if (hasReadingPrompts(task) === 'lake') {
    return Array.from({ length: count }, (_, i) => {
      const world = LAKE_READING_WORLDS[i % LAKE_READING_WORLDS.length]!;
      const game = world.create(DEPLOYMENT_SEEDS.start + Math.floor(random() * DEPLOYMENT_SEEDS.count));
      return userPrompt(renderPrompt(game, [], world.hiddenRulesPrompt));
    });
  }
  return [];
}

/** Which reading prompts a task has: the support desk's, FrozenLake's, or none. */
export function hasReadingPrompts(task: object): 'desk' | 'lake' | null {
  const t = task as { world?: { kind?: string }; game?: string | { id?: string } };
  if (t.world?.kind === 'support-desk') return 'desk';
  return (typeof t.game === 'string' ? t.game : t.game?.id) === 'frozenlake' ? 'lake' : null;
}

/** What a round's training job carries (`reading`): the task's reading prompts where its training takes a share of them, else nothing. */
export function readingOf(task: object, training: Pick<RoundTrainingOptions, 'readingShare' | 'seed'>): { reading?: Prompt[] } {
  if (!((training.readingShare ?? 0) > 0)) return {};
  const reading = readingPromptsFor(task, training.seed);
  return reading.length ? { reading } : {};
}
