/**
 * How good a base model is, the same way for both ways of making it: held-out answer accuracy per
 * example kind (greedy), and pass rates on FrozenLake's 128 test seeds without knowledge, with the
 * two right items in context, and on the familiar-letter variant (the loop's out-of-distribution
 * check); the support desk's fact accuracy without knowledge and with the true facts in context.
 */
import { FAMILIAR_WORLDS, type Example } from './corpus.ts';
import { goalItem, holeItem, renderItems } from './experience-items.ts';
import { heldOutAccuracy } from './pretrain.ts';
import { frozenLakeSpec } from '../envs/frozenlake.ts';
import { lakeVariantSpec } from '../envs/lake-world.ts';
import { DEPLOYED_COMPANY_SEEDS, seedsOf, TEST_SEEDS } from '../envs/seed-ranges.ts';
import { drawCompany } from '../envs/support-desk/company.ts';
import { factAccuracy, playConversations } from '../envs/support-desk/conversations.ts';
import { FACTS } from '../envs/support-desk/facts.ts';
import { teacherMessages } from '../extraction/teacher-prompt.ts';
import { renderItemTexts } from '../projections/knowledge/knowledge-base.ts';
import { chatComplete } from '../model/inference/chat-policy.ts';
import { EVALUATION_SAMPLING } from '../model/inference/sampling.ts';
import type { Tokenizer } from '../model/formats/tokenizer.ts';
import type { Transformer } from '../model/network/transformer.ts';
import { episodeStats, playEpisodes, type PolicyFn } from '../simulator/play-episodes.ts';

export async function evaluateBaseModel(model: Transformer, tokenizer: Tokenizer, o: { heldOut: readonly Example[] }) {
  // The lake games share one answer length (GRID_GAME_RESPONSE_TOKENS), so one policy plays them all.
  const policy: PolicyFn = async (prompts, s) => chatComplete(model, tokenizer, prompts, { ...EVALUATION_SAMPLING, maxNewTokens: frozenLakeSpec().responseTokens, seed: s });
  const seeds = seedsOf(TEST_SEEDS);
  const knowledge = renderItems([holeItem('H'), goalItem('G')]);
  return {
    heldOutAccuracy: heldOutAccuracy(model, tokenizer, o.heldOut),
    frozenlake: episodeStats(await playEpisodes(frozenLakeSpec(), seeds, policy)),
    frozenlakeWithKnowledge: episodeStats(await playEpisodes(frozenLakeSpec(), seeds, policy, { knowledgeText: knowledge })),
    familiarWorld: episodeStats(await playEpisodes(lakeVariantSpec('lake-XO', FAMILIAR_WORLDS[0]!), seeds, policy)),
    supportDesk: await deskFigures(model, tokenizer),
  };
}

/**
 * Support desk: fact accuracy on two deployed companies' test conversations (64 each, every fact
 * asked four times), without knowledge and with the company's true facts in the system message.
 */
async function deskFigures(model: Transformer, tokenizer: Tokenizer) {
  const out: { company: string; withoutKnowledge: number; withTrueFacts: number; sample: string }[] = [];
  for (const companySeed of [DEPLOYED_COMPANY_SEEDS.start, DEPLOYED_COMPANY_SEEDS.start + 1]) {
    const company = drawCompany(companySeed);
    const truth = renderItemTexts(FACTS.map((f) => f.item(company.facts[f.id]!)));
    const play = (knowledge: string) => playConversations(company, seedsOf({ ...TEST_SEEDS, count: 64 }),
      async (prompts, s) => chatComplete(model, tokenizer, prompts.map((p) => teacherMessages(knowledge, p, 'system')), { ...EVALUATION_SAMPLING, maxNewTokens: 32, seed: s }),
      { phrasings: 'test', questions: 1, balanced: true });
    const bare = await play('');
    const informed = await play(truth);
    out.push({ company: company.name, withoutKnowledge: factAccuracy(bare).accuracy, withTrueFacts: factAccuracy(informed).accuracy, sample: informed[0]!.questions[0]!.answer });
  }
  return out;
}
