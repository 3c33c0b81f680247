/**
 * What `oeld model generate` prints, so that anyone can compare oeld with another runtime on the
 * same folder: the prompt's token ids (through the chat template, or the raw text), the greedy
 * continuation, and the largest logits at the prompt's last position. Pure logic over a model.
 */
import type { Tokenizer } from '../formats/tokenizer.ts';
import type { Transformer } from '../network/transformer.ts';
import { promptIds, userPrompt } from './chat-prompt.ts';
import { generate } from './generate.ts';

export interface Inspection {
  promptIds: number[];
  tokens: number[];
  text: string;
  /** The largest logits at the last prompt position, largest first (ties: lower id first). */
  topLogits: { id: number; token: string; logit: number }[];
}

export function inspectGeneration(model: Transformer, tokenizer: Tokenizer, prompt: string, o: { newTokens: number; top: number; raw: boolean }): Inspection {
  const ids = o.raw ? tokenizer.encode(prompt) : promptIds(tokenizer, userPrompt(prompt));
  if (ids.length === 0) throw new Error('the prompt encodes to no tokens');
  const { logits } = model.forward([ids], { outputRows: [ids.length - 1] });
  const last = logits.dataSync() as Float32Array;
  logits.dispose();
  const order = Array.from(last.keys()).sort((a, b) => last[b]! - last[a]! || a - b).slice(0, o.top);
  const g = generate(model, [ids], { temperature: 0, topP: 1, topK: 0, maxNewTokens: o.newTokens, eosTokenIds: [...tokenizer.eosTokenIds], seed: 1 });
  return {
    promptIds: ids,
    tokens: g.tokens[0]!,
    text: tokenizer.decode(g.tokens[0]!, true),
    topLogits: order.map((id) => ({ id, token: tokenizer.decode([id], false), logit: last[id]! })),
  };
}
