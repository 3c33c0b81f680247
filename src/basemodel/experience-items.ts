/**
 * The experience items the base model learns to write and to use: what a lake world can teach
 * (which letter is a hole, which is the goal, the edge of the board, the move budget). They are
 * ordinary one-line texts: the loop treats items it extracts as text and never parses them back.
 */
import { itemKey } from '../extraction/parse-items.ts';
import { renderItemTexts } from '../projections/knowledge/knowledge-base.ts';

export const holeItem = (s: string): string => `${s} is a hole: stepping on ${s} ends the game.`;
export const goalItem = (s: string): string => `${s} is the goal: reaching ${s} wins the game.`;
export const EDGE_ITEM = 'Moving off the edge of the board is an invalid move.';
export const BUDGET_ITEM = 'Only 5 moves are allowed, so take the shortest path.';

/** Items as the teacher's knowledge text: one marked line each (what renderPool writes). */
export const renderItems = renderItemTexts;

/** What an episode's end showed: the letter of the cell it ended on, or how it ended otherwise. */
export type EpisodeEnd =
  | { kind: 'hole'; letter: string; otherLetter: string | null }
  | { kind: 'goal'; letter: string; otherLetter: string | null }
  | { kind: 'edge' }
  | { kind: 'budget' };

/**
 * The items an episode teaches, most specific first: the letter it ended on (and, by
 * elimination, the other letter on the board), then the general rules. The extraction target of
 * the pretraining corpus is the first one or two of these that the knowledge so far lacks.
 */
export function itemsTaught(end: EpisodeEnd): string[] {
  switch (end.kind) {
    case 'hole': return [holeItem(end.letter), ...(end.otherLetter ? [goalItem(end.otherLetter)] : []), BUDGET_ITEM, EDGE_ITEM];
    case 'goal': return [goalItem(end.letter), ...(end.otherLetter ? [holeItem(end.otherLetter)] : []), BUDGET_ITEM, EDGE_ITEM];
    case 'edge': return [EDGE_ITEM, BUDGET_ITEM];
    case 'budget': return [BUDGET_ITEM, EDGE_ITEM];
  }
}

/** Up to `max` items of `candidates` that `knowledgeSoFar` does not hold (compared as itemKey does). */
export function newItems(candidates: readonly string[], knowledgeSoFar: readonly string[], max = 2): string[] {
  const known = new Set(knowledgeSoFar.map(itemKey));
  return candidates.filter((c) => !known.has(itemKey(c))).slice(0, max);
}
