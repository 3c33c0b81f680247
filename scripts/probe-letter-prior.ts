/**
 * Which letter a base model calls the goal with no knowledge in context, per letter pair and board
 * kind: the prior the loop starts from (models/README.md, point 4). For each pair (hole, goal) it
 * renders 64 boards of each kind and counts the greedy answers that name the true goal.
 *
 *   node --import tsx scripts/probe-letter-prior.ts models/oeld-base
 */
import { balancedLakeLayout } from '../src/basemodel/corpus.ts';
import { renderPrompt } from '../src/envs/environment.ts';
import { frozenLakeLikeLayout, LakeWorld } from '../src/envs/lake-world.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { chatComplete } from '../src/model/inference/chat-policy.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import { seededRandom } from '../src/model/network/rng.ts';
import { loadTokenizer } from '../src/model/formats/tokenizer.ts';

const dir = process.argv[2] ?? 'models/oeld-base';
await initBackend({ log: () => {} });
const { model } = loadModel(dir);
const tokenizer = await loadTokenizer(dir);
const PAIRS: [string, string][] = [['H', 'G'], ['G', 'H'], ['K', 'B'], ['B', 'K'], ['Q', 'Z'], ['Z', 'Q']];
const BOARDS = [['corner start', frozenLakeLikeLayout], ['random', balancedLakeLayout]] as const;
for (const [hole, goal] of PAIRS) {
  for (const [name, layout] of BOARDS) {
    const random = seededRandom(3);
    const prompts = Array.from({ length: 64 }, () => renderPrompt(new LakeWorld('probe', layout(random), { hole, goal }), []));
    const answers = chatComplete(model, tokenizer, prompts, { temperature: 0, topP: 1, topK: 0, maxNewTokens: 24, seed: 1 });
    const named = answers.filter((a) => a.text.startsWith(`Goal ${goal}`)).length;
    console.log(`hole ${hole}, goal ${goal}, ${name} boards: ${named}/64 answers name the true goal`);
  }
}
