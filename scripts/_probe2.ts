import { initBackend } from '../src/model/backend.ts';
import { loadModel } from '../src/model/checkpoint.ts';
import { loadTokenizer } from '../src/model/tokenizer.ts';
import { chatComplete } from '../src/model/chat-policy.ts';
import { renderPrompt } from '../src/envs/environment.ts';
import { LakeWorld, frozenLakeLikeLayout } from '../src/envs/lake-world.ts';
import { balancedLakeLayout } from '../src/basemodel/corpus.ts';
import { seededRandom } from '../src/model/rng.ts';
await initBackend({ log: () => {} });
const dir = process.argv[2]!;
const { model } = loadModel(dir); const tok = await loadTokenizer(dir);
for (const [hole, goal] of [['H', 'G'], ['G', 'H'], ['K', 'B'], ['B', 'K'], ['Q', 'Z'], ['Z', 'Q']]) {
  for (const [name, gen] of [['corner', frozenLakeLikeLayout], ['balanced', balancedLakeLayout]] as const) {
    const random = seededRandom(3);
    const prompts: string[] = []; const truth: string[] = [];
    for (let i = 0; i < 64; i++) { const w = new LakeWorld('p', gen(random), { hole: hole!, goal: goal! }); prompts.push(renderPrompt(w, [])); }
    const out = chatComplete(model, tok, prompts, { temperature: 0, topP: 1, topK: 0, maxNewTokens: 24, seed: 1 });
    const saysGoal = out.filter((o) => o.text.startsWith(`Goal ${goal}`)).length;
    console.log(`hole ${hole} goal ${goal} ${name}: names the true goal ${saysGoal}/64`);
  }
}
