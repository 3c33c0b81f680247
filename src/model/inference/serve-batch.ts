/**
 * A batch of chat requests answered together, each with its own sampling settings, length and
 * stop sequences, its text streamed out as it is written (streamed-rows.ts holds back what is not
 * final yet). Pure logic over a model and its tokenizer.
 */
import { fitPrompt, promptIds, type Prompt, type TemplateVariables } from './chat-prompt.ts';
import { generate } from './generate.ts';
import type { SamplingOptions } from './sampling.ts';
import { StreamedRows, type TextDelta } from './streamed-rows.ts';
import type { Tokenizer } from '../formats/tokenizer.ts';
import type { Transformer } from '../network/transformer.ts';

export { heldBackLength, type TextDelta } from './streamed-rows.ts';
export interface ServeRow {
  messages: Prompt; sampling: SamplingOptions; maxNewTokens: number; stop: string[];
  /** false: only the whole answer is wanted, no text as it is written (default: streamed). */
  stream?: boolean;
}
export interface ServedRow { text: string; promptTokens: number; completionTokens: number; finishReason: 'stop' | 'length' }

/** A request's prompt as token ids, its oldest turns left out where it would leave no room for its answer. */
export function servedPromptIds(model: Transformer, tokenizer: Tokenizer, r: ServeRow, templateVariables?: TemplateVariables): number[] {
  const room = Math.max(1, model.config.maxPositions - r.maxNewTokens);
  const full = promptIds(tokenizer, r.messages, templateVariables);
  return full.length <= room ? full : promptIds(tokenizer, fitPrompt(tokenizer, r.messages, room, templateVariables).prompt, templateVariables);
}

export function serveBatch(
  model: Transformer, tokenizer: Tokenizer, rows: ServeRow[], seed: number,
  onDeltas: (deltas: TextDelta[]) => void, templateVariables?: TemplateVariables,
): ServedRow[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => servedPromptIds(model, tokenizer, r, templateVariables));
  const stream = new StreamedRows(tokenizer, rows.map((r) => r.stop));
  const flush = () => { const d = stream.take().filter((x) => rows[x.row]!.stream !== false); if (d.length) onDeltas(d); };
  const g = generate(model, ids, {
    ...rows[0]!.sampling,
    maxNewTokens: Math.max(...rows.map((r) => r.maxNewTokens)),
    seed,
    eosTokenIds: [...tokenizer.eosTokenIds],
    padTokenId: tokenizer.padTokenId ?? 0,
    rows: rows.map((r, b) => ({ sampling: r.sampling, maxNewTokens: Math.min(r.maxNewTokens, Math.max(0, model.config.maxPositions - ids[b]!.length)) })),
    onToken: (b, token) => stream.push(b, token),
    onStepEnd: flush,
  });
  const out = rows.map((_, b): ServedRow => ({
    text: stream.finish(b, g.tokens[b]!), promptTokens: ids[b]!.length, completionTokens: g.tokens[b]!.length, finishReason: g.endedBy[b] === 'length' ? 'length' : 'stop',
  }));
  flush();
  return out;
}
