/**
 * Rounds that cannot improve anything are skipped (#19; docs/retention.md): when the active
 * version's validation pass rate is at its ceiling and the round's extraction found no experience
 * item the active version was not already trained on, training would only publish a copy of what
 * is active (and spend the round's time on it). Pure: the runner reads the figures and records
 * RoundSkipped with the reason this returns.
 */
import { itemKey } from '../extraction/parse-items.ts';

export interface SkipFacts {
  /** The active version's validation as the round that activated it measured it; null: never measured (a base, a chat task). */
  validation: { passRate: number; episodes: number; roundId: string } | null;
  /** The items of the pool the active version was trained on; null: it was not trained by a round that recorded them. */
  trainedItems: readonly string[] | null;
  /** The items this round's extraction produced. */
  poolItems: readonly string[];
}

/** The reason to skip, or null to train. */
export function skipReason(f: SkipFacts): string | null {
  if (!f.validation || f.trainedItems === null) return null;
  if (f.validation.passRate < 1) return null;
  const trained = new Set(f.trainedItems.map(itemKey));
  const fresh = new Set(f.poolItems.map(itemKey).filter((k) => !trained.has(k)));
  if (fresh.size > 0) return null;
  return `nothing to improve: the active version passed all ${f.validation.episodes} validation episodes (round ${f.validation.roundId}), and the ${new Set(f.poolItems.map(itemKey)).size} distinct items extracted now were all in the pool it was trained on`;
}
