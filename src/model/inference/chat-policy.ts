/**
 * A chat model as a text policy: each prompt (a string is one user message) is written with the
 * model's chat template, the answer is sampled (batched, KV cache) and decoded without special tokens.
 */
import { fitPrompt, promptIds, userPrompt, type Prompt, type TemplateVariables } from './chat-prompt.ts';
import { generate } from './generate.ts';
import type { SamplingOptions } from './sampling.ts';
import type { Tokenizer } from '../formats/tokenizer.ts';
import type { Transformer } from '../network/transformer.ts';

export interface ChatCompletion { text: string; tokens: number; ids: number[]; promptIds: number[] }

/** The prompt's ids: one user message and the assistant's opening, as the chat template writes them. */
export function chatPromptIds(tokenizer: Tokenizer, prompt: string): number[] {
  return promptIds(tokenizer, userPrompt(prompt));
}

export function chatComplete(
  model: Transformer,
  tokenizer: Tokenizer,
  prompts: (string | Prompt)[],
  o: SamplingOptions & { maxNewTokens: number; seed: number },
  templateVariables?: TemplateVariables,
): ChatCompletion[] {
  if (prompts.length === 0) return [];
  // A prompt longer than the context beside the answer is cut from the left (fitPrompt), keeping its system message.
  const room = model.config.maxPositions - o.maxNewTokens;
  const ids = prompts.map((p) => {
    const prompt = typeof p === 'string' ? userPrompt(p) : p;
    const full = promptIds(tokenizer, prompt, templateVariables);
    return full.length <= room ? full : promptIds(tokenizer, fitPrompt(tokenizer, prompt, room, templateVariables).prompt, templateVariables);
  });
  const g = generate(model, ids, { ...o, eosTokenIds: [...tokenizer.eosTokenIds], padTokenId: tokenizer.padTokenId ?? 0 });
  return g.tokens.map((out, i) => ({ text: tokenizer.decode(out, true), tokens: out.length, ids: out, promptIds: ids[i]! }));
}
