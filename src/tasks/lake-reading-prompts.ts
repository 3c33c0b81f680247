/**
 * FrozenLake's reading prompts: what its rounds must leave as it was (round-plan.ts,
 * `readingShare`). A FrozenLake round teaches which of H and G is the goal; on a model that also
 * knows other worlds it may teach it so that those are forgotten (models/oeld-desk: the watched
 * world lake-XO fell from 87.5% to 46-84% after one round, docs/measured.md). These are boards of
 * the worlds the base model learned in pretraining, other than the one the gate watches
 * (games.ts: lake-XO stays untouched so that it keeps measuring retention), on FrozenLake's layouts
 * of the deployment range, with the player somewhere on a shortest path from the start. The
 * round-start version plays them without knowledge and the round holds the student to its answers.
 *
 * Pure: the same seed and count give the same prompts, so that a round re-derives
 * (operations/rederive.ts).
 */
import { FAMILIAR_WORLDS } from '../basemodel/corpus.ts';
import { DELTAS, renderPrompt } from '../envs/environment.ts';
import { gameByName, OOD_SYMBOLS } from '../envs/games.ts';
import { frozenLakeAsLake, LakeWorld, type LakeSymbols } from '../envs/lake-world.ts';
import { DEPLOYMENT_SEEDS } from '../envs/seed-ranges.ts';
import { userPrompt, type Prompt } from '../model/inference/chat-prompt.ts';
import { seededRandom } from '../model/network/rng.ts';

/** The familiar worlds a FrozenLake round keeps playing: all but the one its gate watches. */
export function retainedLakeWorlds(): LakeSymbols[] {
  return FAMILIAR_WORLDS.filter((w) => w.hole !== OOD_SYMBOLS.hole || w.goal !== OOD_SYMBOLS.goal);
}

/** `count` boards of the retained worlds, each a turn of an episode played by the shortest path so far. */
export function lakeReadingPrompts(seed: number, count: number): Prompt[] {
  const worlds = retainedLakeWorlds();
  const instruction = gameByName('frozenlake').hiddenRulesPrompt;
  const random = seededRandom((seed * 7919 + 0x1a4e) >>> 0);
  return Array.from({ length: count }, () => {
    const symbols = worlds[Math.floor(random() * worlds.length)]!;
    const layoutSeed = DEPLOYMENT_SEEDS.start + Math.floor(random() * DEPLOYMENT_SEEDS.count);
    const game = new LakeWorld(`lake-${symbols.hole}${symbols.goal}-${layoutSeed}`, frozenLakeAsLake(layoutSeed), symbols);
    // The turn: 0-3 moves along a shortest path, stopping one move before the goal at the latest.
    const history: string[] = [];
    const moves = Math.floor(random() * 4);
    for (let i = 0; i < moves; i++) {
      const move = game.bestMove();
      if (move === null) break;
      const [r, c] = game.player;
      if (game.cellKind(r + DELTAS[move][0], c + DELTAS[move][1]) === 'goal') break;
      game.step(`[${move}]`);
      history.push(move);
    }
    return userPrompt(renderPrompt(game, history, instruction));
  });
}
