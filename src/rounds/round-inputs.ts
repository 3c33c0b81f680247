/**
 * What determines a round's result, as RoundCompleted records it (docs/retention.md, "Re-deriving a
 * version"), and the pure rebuilding of the round's training inputs from the events it names.
 * Together with RoundStarted's settings (training options with the seed, pool size, trainer and its
 * settings) this is everything `oeld rederive` needs: the round-start weights (checked by sha256),
 * the trajectories whose prompts were trained on (by event id, in order), and the pool the teacher
 * read (the round's KnowledgeExtracted events, replayed per slot with the accumulation's own cap).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../events/canonical-json.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { capOldestFirst, renderItemTexts } from '../projections/knowledge/knowledge-base.ts';

export interface RoundInputs {
  /** The round-start version's sha256 (of its weights, or of its adapter). */
  baseSha256: string;
  /** The trajectories trained on, as InteractionRecorded event ids, in the order the round used them. */
  trajectoryEventIds: string[];
  /** The round's KnowledgeExtracted event ids, in the order the extraction produced them ([] when the teacher read raw trajectories). */
  knowledgeEventIds: string[];
  /** sha256 over the knowledge texts the teacher read (knowledgeDigest). */
  knowledgeSha256: string;
  /** sha256 over the training prompts (promptsDigest). */
  promptsSha256: string;
  /** The runtime that trained: the trainer, and for tfjs the backend and its kernels as the model worker chose them. */
  runtime: string;
}

const digest = (value: unknown): string => createHash('sha256').update(canonicalJson(value)).digest('hex');

export const knowledgeDigest = (texts: readonly string[]): string => digest(['oeld/round-knowledge/1', texts]);
export const promptsDigest = (prompts: readonly unknown[]): string => digest(['oeld/round-prompts/1', prompts]);

type Extracted = EventDataMap['KnowledgeExtracted'];

/**
 * The knowledge texts a round's teacher read, rebuilt from its extraction events: each slot
 * appends its events' items in order and drops its oldest past the token budget (as
 * accumulate-pool.ts did during the round); the non-empty slots' texts, in slot order.
 */
export function poolTextsFromEvents(events: readonly Extracted[], slots: number): string[] {
  const items: { text: string; tokens: number }[][] = Array.from({ length: slots }, () => []);
  for (const e of events) {
    if (e.poolSlot >= slots) throw new RangeError(`a KnowledgeExtracted event of pool slot ${e.poolSlot} in a round of ${slots} slots`);
    const added = e.items.map((i) => ({ text: i.text, tokens: i.tokens ?? 1 }));
    items[e.poolSlot] = capOldestFirst([...items[e.poolSlot]!, ...added], e.tokenBudget).kept;
  }
  return items.map((slot) => renderItemTexts(slot.map((i) => i.text))).filter((t) => t.trim().length > 0);
}
