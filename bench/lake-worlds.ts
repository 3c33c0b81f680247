/**
 * What a version plays across the lake worlds (a diagnosis, not part of `npm run bench`): pass rate
 * on FrozenLake, on the out-of-distribution world lake-XO, and on two pairs of the corpus's random
 * letters (neither H nor G) in both role orders, on the validation seeds, greedy, no knowledge, so
 * that the model can only play those pairs by the convention it has for pairs it does not know. A base model
 * that plays unknown pairs by its convention passes them 0% on FrozenLake's layouts; a round that
 * changes that convention shows there even where FrozenLake and lake-XO do not tell why they moved.
 *
 *   node --import tsx bench/lake-worlds.ts <model folder>...   (BENCH_LAKE_EPISODES, default 64)
 */
import { localEngine } from '../src/engine/local-engine.ts';
import { evaluateVersion } from '../src/evaluation/evaluate.ts';
import { gameByName, OOD_GAME } from '../src/envs/games.ts';
import { lakeVariantSpec } from '../src/envs/lake-world.ts';
import { VALIDATION_SEEDS } from '../src/envs/seed-ranges.ts';
import { envInt, log } from './lib.ts';

const EPISODES = envInt('BENCH_LAKE_EPISODES', 64);
const folders = process.argv.slice(2);
if (folders.length === 0) throw new Error('usage: node --import tsx bench/lake-worlds.ts <model folder>...');
const worlds = [gameByName('frozenlake'), gameByName(OOD_GAME),
  ...[['K', 'N'], ['N', 'K'], ['B', 'U'], ['U', 'B']].map(([hole, goal]) => lakeVariantSpec(`lake-${hole}${goal}`, { hole: hole!, goal: goal! }))];
const engine = localEngine();
log(`pass rate, ${EPISODES} validation episodes a world: ${worlds.map((w) => w.id).join(', ')}`);
for (const [i, dir] of folders.entries()) {
  const version = `version-${i}`;
  await engine.load(version, dir);
  const rates: string[] = [];
  for (const game of worlds) {
    const r = await evaluateVersion(engine, version, { game, seeds: { ...VALIDATION_SEEDS, count: EPISODES }, split: 'validation', maxNewTokens: game.responseTokens });
    rates.push(`${(100 * r.stats.passRate).toFixed(1)}%`);
  }
  log(`${dir}: ${rates.join(', ')}`);
  await engine.unload(version);
}
process.exit(0);
