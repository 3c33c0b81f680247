/**
 * A round's extraction (docs/oel-method.md, steps 2-3): P pool slots, each a sequential
 * accumulation over N of the round's trajectories in its own seeded order. At every position the
 * policy reads one trajectory and the slot's knowledge so far and proposes items; only marked
 * lines are kept; the slot appends them and drops its oldest items past the token budget. The
 * slots advance together, so each position is one batched call to the model.
 *
 * The result is the KnowledgeExtracted events of the round (one per slot and trajectory that
 * added something), not yet appended: the round records them together with its outcome.
 */
import { extractionPrompt, renderTrajectory, type TrajectorySource } from './extraction-prompt.ts';
import { accumulateSlot, emptySlot, eventItemIdFor, slotTexts, toKnowledgeExtractedEvent, type KnowledgeExtractedData, type SlotState } from './accumulate-pool.ts';
import { parseExperienceItems } from './parse-items.ts';
import { renderItemTexts } from '../projections/knowledge/knowledge-base.ts';
import { seededRandom } from '../model/network/rng.ts';
import type { Completion } from '../engine/model-engine.ts';

export interface Trajectory { id: string; data: TrajectorySource }

export interface ExtractPoolOptions {
  /** The model version that extracts: the version that produced the trajectories (on-policy). */
  extractingModelVersion: string;
  /** The task the trajectories belong to: its pools receive the items. */
  taskId?: string;
  /** Pool slots P (about 10 in the paper). */
  slots: number;
  /** Trajectories per slot N (15 to 50 in the paper); fewer if fewer exist. */
  trajectoriesPerSlot: number;
  tokenBudget: number;
  countTokens: (text: string) => number;
  seed: number;
  /** Items kept per answer (the prompt asks for one or two). */
  maxItemsPerAnswer?: number;
  onProgress?: (p: { position: number; of: number; items: number }) => void;
}

export interface ExtractedPool {
  events: KnowledgeExtractedData[];
  /** Each slot's final knowledge text (marked lines): the teacher's pool for this round. */
  texts: string[];
  /** Items per slot at the end. */
  itemCounts: number[];
  /** Extraction calls whose answer had no marked line. */
  emptyAnswers: number;
}

/** Calls the extracting model: prompts in, answers out (the evaluation/extraction sampling preset). */
export type ExtractFn = (prompts: string[], seed: number) => Promise<Completion[]>;

export async function extractPool(trajectories: readonly Trajectory[], extract: ExtractFn, o: ExtractPoolOptions): Promise<ExtractedPool> {
  if (!Number.isInteger(o.slots) || o.slots < 1) throw new RangeError(`extraction: slots must be a positive integer, got ${o.slots}`);
  if (!Number.isInteger(o.trajectoriesPerSlot) || o.trajectoriesPerSlot < 1) throw new RangeError(`extraction: trajectoriesPerSlot must be a positive integer, got ${o.trajectoriesPerSlot}`);
  const n = Math.min(o.trajectoriesPerSlot, trajectories.length);
  const orders = Array.from({ length: o.slots }, (_, slot) => seededOrder(trajectories.length, o.seed * 1009 + slot).slice(0, n));
  const states: SlotState[] = Array.from({ length: o.slots }, emptySlot);
  const rendered = new Map<string, string>();
  const render = (t: Trajectory) => {
    let r = rendered.get(t.id);
    if (r === undefined) rendered.set(t.id, (r = renderTrajectory(t.data)));
    return r;
  };
  const events: KnowledgeExtractedData[] = [];
  let emptyAnswers = 0;
  for (let position = 0; position < n; position++) {
    const chosen = orders.map((order) => trajectories[order[position]!]!);
    const prompts = chosen.map((t, slot) => extractionPrompt(render(t), slotTexts(states[slot]!)));
    const answers = await extract(prompts, (o.seed * 7919 + position) >>> 0);
    answers.forEach((answer, slot) => {
      const items = parseExperienceItems(answer.text, { maxItems: o.maxItemsPerAnswer ?? 2 });
      if (items.length === 0) { emptyAnswers++; return; }
      const ctx = { extractingModelVersion: o.extractingModelVersion, ...(o.taskId === undefined ? {} : { taskId: o.taskId }), poolSlot: slot, seed: o.seed, sourceInteractionIds: [chosen[slot]!.id] };
      const r = accumulateSlot(states[slot]!, items, { tokenBudget: o.tokenBudget, countTokens: o.countTokens, idFor: eventItemIdFor(ctx) });
      states[slot] = r.state;
      if (r.added.length > 0) events.push(toKnowledgeExtractedEvent({ ...ctx, tokenBudget: o.tokenBudget, items: r.added }));
    });
    o.onProgress?.({ position: position + 1, of: n, items: states.reduce((s, st) => s + st.items.length, 0) });
  }
  return {
    events,
    texts: states.map((s) => renderItemTexts(slotTexts(s))),
    itemCounts: states.map((s) => s.items.length),
    emptyAnswers,
  };
}

function seededOrder(n: number, seed: number): number[] {
  const random = seededRandom(seed >>> 0);
  const xs = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
