/**
 * A chat model as a text policy: each prompt becomes one user message in the model's chat
 * template, the answer is sampled (batched, KV cache) and decoded without special tokens.
 */
import { generate } from './generate.ts';
import type { SamplingOptions } from './sampling.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { Transformer } from './transformer.ts';

export interface ChatCompletion { text: string; tokens: number; ids: number[]; promptIds: number[] }

/** The prompt's ids: one user message and the assistant's opening, as the chat template writes them. */
export function chatPromptIds(tokenizer: Tokenizer, prompt: string): number[] {
  return tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }));
}

export function chatComplete(
  model: Transformer,
  tokenizer: Tokenizer,
  prompts: string[],
  o: SamplingOptions & { maxNewTokens: number; seed: number },
): ChatCompletion[] {
  if (prompts.length === 0) return [];
  const promptIds = prompts.map((p) => chatPromptIds(tokenizer, p));
  const g = generate(model, promptIds, { ...o, eosTokenIds: [...tokenizer.eosTokenIds], padTokenId: tokenizer.padTokenId ?? 0 });
  return g.tokens.map((ids, i) => ({ text: tokenizer.decode(ids, true), tokens: ids.length, ids, promptIds: promptIds[i]! }));
}
