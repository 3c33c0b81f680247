/**
 * How good a base model is, the same way for both ways of making it: held-out answer accuracy per
 * example kind (greedy), and pass rates on FrozenLake's 128 test seeds without knowledge, with the
 * two right items in context, and on the familiar-letter variant (the loop's out-of-distribution
 * check).
 */
import { FAMILIAR_WORLDS, type Example } from './corpus.ts';
import { goalItem, holeItem, renderItems } from './experience-items.ts';
import { heldOutAccuracy } from './pretrain.ts';
import { frozenLakeSpec } from '../envs/frozenlake.ts';
import { lakeVariantSpec } from '../envs/lake-world.ts';
import { seedsOf, TEST_SEEDS } from '../envs/seed-ranges.ts';
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
  };
}
