import { initBackend } from '../src/model/backend.ts';
import { loadModel } from '../src/model/checkpoint.ts';
import { loadTokenizer } from '../src/model/tokenizer.ts';
import { chatComplete } from '../src/model/chat-policy.ts';
import { EVALUATION_SAMPLING } from '../src/model/sampling.ts';
import { frozenLakeSpec } from '../src/envs/frozenlake.ts';
import { seedsOf, TEST_SEEDS } from '../src/envs/seed-ranges.ts';
import { playEpisodes } from '../src/simulator/play-episodes.ts';
await initBackend({ log: () => {} });
const dir = process.argv[2]!;
const { model } = loadModel(dir); const tok = await loadTokenizer(dir);
const eps = await playEpisodes(frozenLakeSpec(), seedsOf(TEST_SEEDS).slice(0, 64), async (p, s) => chatComplete(model, tok, p, { ...EVALUATION_SAMPLING, maxNewTokens: 24, seed: s }));
const tally: Record<string, number> = {};
for (const e of eps as any[]) for (const t of e.turns ?? []) { const m = String(t.response ?? t.output).match(/Goal (\w)/); tally[m?.[1] ?? '?'] = (tally[m?.[1] ?? '?'] ?? 0) + 1; }
console.log(tally);
const e0 = eps[0] as any; console.log(JSON.stringify(e0).slice(0, 3000));
