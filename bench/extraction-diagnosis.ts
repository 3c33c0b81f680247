/**
 * Why a fact's corrections are or are not written as items (bench/desk-extraction.ts prints these
 * beside the counts):
 *
 * - optionShare: for a choice fact, the model's probability of the item with the true value among
 *   the items with each of the fact's options (teacher-forced, the whole item's log-probability):
 *   chance is 1 / options; near 1 the model reads the customer's value, near chance it does not.
 * - spelledAlike: whether the tokens that cover the value in the item are the tokens that cover it
 *   in the customer's correction (a tokenizer whose merges span words can spell them otherwise).
 */
import { FACTS, type Fact } from '../src/envs/support-desk/facts.ts';
import { loadModel } from '../src/model/formats/checkpoint.ts';
import type { Tokenizer } from '../src/model/formats/tokenizer.ts';
import { promptIds } from '../src/model/inference/chat-prompt.ts';
import { scoreResponses } from '../src/model/inference/score.ts';
import { ITEM_MARKER } from '../src/projections/knowledge/knowledge-base.ts';

export interface CorrectionCase { factId: string; prompt: string; truth: string; reply: string }

const factOf = (id: string): Fact => FACTS.find((f) => f.id === id)!;

/** Mean share of the true option, per choice fact, for the model in `dir`. */
export function optionShares(dir: string, tokenizer: Tokenizer, cases: readonly CorrectionCase[]): Record<string, number> {
  const { model } = loadModel(dir);
  const sums: Record<string, { share: number; n: number }> = {};
  try {
    for (const c of cases) {
      const fact = factOf(c.factId);
      if (fact.values.kind !== 'choice') continue;
      const options = fact.values.options.includes(c.truth) ? fact.values.options : [...fact.values.options, c.truth];
      const prompt = promptIds(tokenizer, [{ role: 'user', content: c.prompt }]);
      const items = options.map((v) => tokenizer.encode(`${ITEM_MARKER}${fact.item(v)}`));
      const logp = scoreResponses(model, items.map(() => prompt), items).map((r) => r.reduce((a, b) => a + b, 0));
      const top = Math.max(...logp);
      const z = logp.reduce((a, x) => a + Math.exp(x - top), 0);
      const s = (sums[c.factId] ??= { share: 0, n: 0 });
      s.share += Math.exp(logp[options.indexOf(c.truth)]! - top) / z;
      s.n++;
    }
  } finally {
    model.dispose();
  }
  return Object.fromEntries(Object.entries(sums).map(([id, s]) => [id, s.share / s.n]));
}

/** The tokens of `text` that cover the last occurrence of `value` (partly covered ones included). */
function covering(tokenizer: Tokenizer, text: string, value: string): string[] {
  const at = text.lastIndexOf(value);
  if (at < 0) throw new Error(`"${value}" is not in "${text}"`);
  const out: string[] = [];
  let pos = 0;
  for (const id of tokenizer.encode(text)) {
    const piece = tokenizer.decode([id]);
    if (pos + piece.length > at && pos < at + value.length) out.push(piece);
    pos += piece.length;
  }
  return out;
}

/** Per fact, in how many cases the value is spelled by the same tokens in the item and in the correction. */
export function spelledAlike(tokenizer: Tokenizer, cases: readonly CorrectionCase[]): Record<string, { alike: number; of: number }> {
  const out: Record<string, { alike: number; of: number }> = {};
  for (const c of cases) {
    const item = covering(tokenizer, `${ITEM_MARKER}${factOf(c.factId).item(c.truth)}`, c.truth);
    const reply = covering(tokenizer, c.reply, c.truth);
    const f = (out[c.factId] ??= { alike: 0, of: 0 });
    f.of++;
    if (item.join('\u0000') === reply.join('\u0000')) f.alike++;
  }
  return out;
}
