/**
 * Screening a game round's knowledge pool before training (docs/oel-method.md's premise: knowledge
 * is worth consolidating when, given in context, it helps the policy). Extraction samples, and a
 * slot can settle on a wrong fact ("H is the goal"): distilled, it teaches the wrong game (measured:
 * with one seed, 5 of 8 slots held it and the round's version passed 0% of test episodes). The
 * round-start version plays the same episodes without knowledge and with each slot's knowledge in
 * its prompt; a slot is kept when it does not play worse than without knowledge, nor clearly worse
 * than the best slot. Kept slots are what the round records and trains on; none kept: the round is
 * skipped. Game tasks, and the support desk (desk-pool-screen.ts); a chat task of logs only has
 * nothing to play.
 */
import type { GameSpec } from '../envs/environment.ts';
import { EXTRACTION_SEEDS } from '../envs/seed-ranges.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { evaluateVersion } from './evaluate.ts';

export interface SlotScreen { slot: number; passRate: number; kept: boolean }
export interface PoolScreening { episodes: number; withoutKnowledge: number; slots: SlotScreen[] }
/** What a round asks: the round-start version, the non-empty slots' texts; the screening with each slot kept or not. */
export type PoolScreen = (version: string, texts: readonly { slot: number; text: string }[], onProgress?: (done: number, of: number) => void) => Promise<PoolScreening>;

/** How far below the best slot a slot may play and still be kept (in pass rate). */
export const BEST_SLOT_MARGIN = 0.1;

/**
 * Pure: which slots to keep. A slot must reach the pass rate without knowledge (less one episode, the
 * measurement's grain) and be within BEST_SLOT_MARGIN of the best slot.
 */
export function keepSlots(withoutKnowledge: number, slots: readonly { slot: number; passRate: number }[], episodes: number): SlotScreen[] {
  const best = Math.max(...slots.map((s) => s.passRate));
  const grain = 1 / episodes;
  return slots.map((s) => ({ ...s, kept: s.passRate >= withoutKnowledge - grain - 1e-12 && s.passRate >= best - BEST_SLOT_MARGIN - 1e-12 }));
}

/** Plays the screening episodes (the first `episodes` extraction seeds) without knowledge and with each slot's text. */
export async function screenPool(engine: ModelEngine, version: string, game: GameSpec, texts: readonly { slot: number; text: string }[], episodes: number,
  onProgress?: (done: number, of: number) => void): Promise<PoolScreening> {
  const seeds = { ...EXTRACTION_SEEDS, count: episodes };
  const play = (knowledge?: { text: string; slot: number }) => evaluateVersion(engine, version, {
    game, seeds, split: 'validation', maxNewTokens: game.responseTokens, ...(knowledge ? { knowledge: { ...knowledge, modelVersion: version } } : {}),
  });
  const without = (await play()).stats.passRate;
  onProgress?.(1, texts.length + 1);
  const slots: { slot: number; passRate: number }[] = [];
  for (const t of texts) {
    slots.push({ slot: t.slot, passRate: (await play(t)).stats.passRate });
    onProgress?.(slots.length + 1, texts.length + 1);
  }
  return { episodes, withoutKnowledge: without, slots: keepSlots(without, slots, episodes) };
}
