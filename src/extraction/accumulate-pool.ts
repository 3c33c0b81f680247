/**
 * The sequential accumulation of one pool slot (docs/oel-method.md, step 3) as a pure reducer:
 * the extractor walks N trajectories in order; after each, the new items are APPENDED and then the
 * OLDEST items are dropped until the slot fits its token budget (the cap keeps the newest items).
 * The cap is the knowledge projection's own rule (knowledge-base.ts `capOldestFirst`, imported),
 * so a slot recorded as one KnowledgeExtracted event per trajectory replays to exactly this state.
 */
import { canonicalJson } from '../events/canonical-json.ts';
import { uuidFromKey } from '../events/ids.ts';
import type { EventDataMap } from '../events/schemas.ts';
import { validateEventData } from '../events/validate.ts';
import { capOldestFirst, sha256 } from '../projections/knowledge/knowledge-base.ts';
import { approximateTokens } from '../projections/knowledge/tokens.ts';
import { cleanItemText, itemKey } from './parse-items.ts';

export type KnowledgeExtractedData = EventDataMap['KnowledgeExtracted'];

export interface SlotItem {
  id: string;
  text: string;
  tokens: number;
}

/** One slot's knowledge so far, oldest item first. Never mutated by the reducer. */
export interface SlotState {
  readonly items: readonly SlotItem[];
}

export interface AccumulateOptions {
  /** The slot's token budget (8192 in the paper; 2048 for the 1.7B model). */
  tokenBudget: number;
  /** Tokens of one item's text (the extracting model's tokenizer; counts below 1 count as 1). */
  countTokens: (text: string) => number;
  /**
   * The id of the index-th item appended by this call. Default: a hash of the item's text, which
   * is only unique within the slot; to record the items, pass `eventItemIdFor(...)` so the state
   * carries the same ids as the KnowledgeExtracted event.
   */
  idFor?: (text: string, index: number) => string;
}

export interface AccumulateResult {
  state: SlotState;
  /** The items appended, in order (including any the cap dropped again at once): an event's items. */
  added: SlotItem[];
  /** The items the cap dropped, oldest first (may include items appended by this very call). */
  dropped: SlotItem[];
}

export const emptySlot = (): SlotState => ({ items: [] });

export const slotTokens = (state: SlotState): number => state.items.reduce((n, i) => n + i.tokens, 0);

/** The slot's items as text, oldest first: the "knowledge so far" for the next extraction prompt. */
export const slotTexts = (state: SlotState): string[] => state.items.map((i) => i.text);

function checkBudget(tokenBudget: number): void {
  if (!Number.isInteger(tokenBudget) || tokenBudget < 1) throw new RangeError(`tokenBudget must be a positive integer, got ${tokenBudget}`);
}

/** Token count as recorded: an integer of at least 1 (the schema's minimum). */
export function itemTokens(text: string, countTokens: (text: string) => number): number {
  const n = countTokens(text);
  if (!Number.isFinite(n)) throw new RangeError(`countTokens returned ${n} for ${JSON.stringify(text.slice(0, 40))}`);
  return Math.max(1, Math.round(n));
}

/**
 * One step of the accumulation: append `newItems` (cleaned; empty ones, and exact repeats of an
 * item already held or given earlier in the same call, compared case- and space-insensitively,
 * are skipped), then drop the oldest items until the slot's tokens fit `tokenBudget`.
 */
export function accumulateSlot(state: SlotState, newItems: readonly string[], options: AccumulateOptions): AccumulateResult {
  checkBudget(options.tokenBudget);
  const idFor = options.idFor ?? ((text: string) => sha256(itemKey(text)));
  const held = new Set(state.items.map((i) => itemKey(i.text)));
  const added: SlotItem[] = [];
  for (const raw of newItems) {
    const text = cleanItemText(raw);
    if (text.length === 0) continue;
    const key = itemKey(text);
    if (held.has(key)) continue;
    held.add(key);
    added.push({ id: idFor(text, added.length), text, tokens: itemTokens(text, options.countTokens) });
  }
  const { kept, dropped } = capOldestFirst([...state.items, ...added], options.tokenBudget);
  return { state: { items: kept }, added, dropped };
}

/** What identifies the items of one extraction: who extracted them, for which slot, from what. */
export interface ExtractionContext {
  extractingModelVersion: string;
  /** The task the trajectories belong to (its own pools). */
  taskId?: string;
  poolSlot: number;
  seed?: number;
  sourceInteractionIds: readonly string[];
}

/**
 * The deterministic id of the index-th item extracted in `ctx`: a sha256 over the extracting model
 * version, the slot, the seed and the source interactions. Re-running the same extraction gives
 * the same ids (the projection ignores an item id it already holds); the same text extracted in
 * another slot or from another trajectory gets another id.
 */
export function experienceItemId(ctx: ExtractionContext, index: number): string {
  if (!Number.isInteger(index) || index < 0) throw new RangeError(`item index must be a non-negative integer, got ${index}`);
  return sha256(canonicalJson(['oeld/knowledge-item/1', ctx.extractingModelVersion, ctx.poolSlot, ctx.seed ?? null, [...ctx.sourceInteractionIds], index]));
}

/** An `idFor` for accumulateSlot giving the ids toKnowledgeExtractedEvent records for the same context. */
export const eventItemIdFor = (ctx: ExtractionContext) => (_text: string, index: number): string => experienceItemId(ctx, index);

export interface ExtractionEventInput extends ExtractionContext {
  tokenBudget: number;
  /** The items in order: texts, or {text, tokens} (e.g. accumulateSlot's `added`). */
  items: readonly (string | { text: string; tokens?: number })[];
  /** Counts tokens where an item carries no count; default: the projection's approximateTokens. */
  countTokens?: (text: string) => number;
}

/**
 * The data of a KnowledgeExtracted (schema version 1) event, validated. Item ids are derived by
 * experienceItemId from the context and each item's position (an id an item already carries is
 * not used: accumulate with `idFor: eventItemIdFor(ctx)` so the slot state agrees). Throws a
 * ValidationError if the data does not fit the schema, e.g. with no items: record an event only
 * when an extraction added something.
 */
export function toKnowledgeExtractedEvent(input: ExtractionEventInput): KnowledgeExtractedData {
  checkBudget(input.tokenBudget);
  const countTokens = input.countTokens ?? approximateTokens;
  const data: KnowledgeExtractedData = {
    extractingModelVersion: input.extractingModelVersion,
    ...(input.taskId === undefined ? {} : { taskId: input.taskId }),
    poolSlot: input.poolSlot,
    ...(input.seed === undefined ? {} : { seed: input.seed }),
    tokenBudget: input.tokenBudget,
    sourceInteractionIds: [...input.sourceInteractionIds],
    items: input.items.map((item, index) => {
      const text = typeof item === 'string' ? item : item.text;
      const given = typeof item === 'string' ? undefined : item.tokens;
      return { id: experienceItemId(input, index), text, tokens: given === undefined ? itemTokens(text, countTokens) : given };
    }),
  };
  return validateEventData('KnowledgeExtracted', 1, data);
}

/**
 * A deterministic event id for the extraction (a name-based UUID over its context and item ids),
 * so appending the same extraction twice is a no-op.
 */
export function knowledgeExtractedEventId(data: KnowledgeExtractedData): string {
  return uuidFromKey(canonicalJson(['KnowledgeExtracted', data.extractingModelVersion, data.poolSlot, data.seed ?? null,
    data.sourceInteractionIds, data.items.map((i) => i.id)]));
}
