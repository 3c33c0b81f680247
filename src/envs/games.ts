/**
 * The games oeld can play by name: the deployment world (FrozenLake) and the out-of-distribution
 * check (FrozenLake's layouts drawn with the letters of a world the base model learned in
 * pretraining, which the loop never trains on: retention shows there).
 */
import { FAMILIAR_WORLDS } from '../basemodel/corpus.ts';
import type { GameSpec } from './environment.ts';
import { frozenLakeSpec } from './frozenlake.ts';
import { lakeVariantSpec } from './lake-world.ts';
import { sokobanSpec } from './sokoban.ts';

export const OOD_GAME = 'lake-XO';
/** Its letters: the first familiar world. */
export const OOD_SYMBOLS = FAMILIAR_WORLDS[0]!;

export function gameByName(name: string): GameSpec {
  switch (name) {
    case 'frozenlake': return frozenLakeSpec();
    case OOD_GAME: return lakeVariantSpec(OOD_GAME, OOD_SYMBOLS);
    case 'sokoban': return sokobanSpec();
    default: throw new Error(`unknown game ${JSON.stringify(name)}: expected frozenlake, ${OOD_GAME} or sokoban`);
  }
}

/** The world a game's rounds never train on, watched by its gate (FrozenLake: the out-of-distribution world); none for the others. */
export function untrainedWorldOf(game: GameSpec): GameSpec | undefined {
  return game.id === 'frozenlake' ? gameByName(OOD_GAME) : undefined;
}
