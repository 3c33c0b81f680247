/**
 * A batch of chat requests answered together, each with its own sampling settings, length and
 * stop sequences, its text streamed out as it is written. Text is sent only once it is final: a
 * tail that may still become a stop sequence, or an incomplete UTF-8 character (U+FFFD at the
 * end of the decoded text), waits for the next token. Pure logic over a model and its tokenizer.
 */
import { fitPrompt, promptIds, type Prompt, type TemplateVariables } from './chat-prompt.ts';
import { generate } from './generate.ts';
import type { SamplingOptions } from './sampling.ts';
import type { Tokenizer } from '../formats/tokenizer.ts';
import type { Transformer } from '../network/transformer.ts';

export interface ServeRow { messages: Prompt; sampling: SamplingOptions; maxNewTokens: number; stop: string[] }
export interface ServedRow { text: string; promptTokens: number; completionTokens: number; finishReason: 'stop' | 'length' }
export interface TextDelta { row: number; text: string }

/** How many characters at the end of `text` could still begin a stop sequence. */
export function heldBackLength(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--) {
      if (text.endsWith(s.slice(0, k))) { hold = k; break; }
    }
  }
  let end = text.length - hold;
  while (end > 0 && text[end - 1] === '\uFFFD') end--;
  return text.length - end;
}

export function serveBatch(
  model: Transformer, tokenizer: Tokenizer, rows: ServeRow[], seed: number,
  onDeltas: (deltas: TextDelta[]) => void, templateVariables?: TemplateVariables,
): ServedRow[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => {
    const room = Math.max(1, model.config.maxPositions - r.maxNewTokens);
    const full = promptIds(tokenizer, r.messages, templateVariables);
    return full.length <= room ? full : promptIds(tokenizer, fitPrompt(tokenizer, r.messages, room, templateVariables).prompt, templateVariables);
  });
  const state = rows.map(() => ({ tokens: [] as number[], sent: 0, final: null as string | null }));
  let pending: TextDelta[] = [];
  const g = generate(model, ids, {
    ...rows[0]!.sampling,
    maxNewTokens: Math.max(...rows.map((r) => r.maxNewTokens)),
    seed,
    eosTokenIds: [...tokenizer.eosTokenIds],
    padTokenId: tokenizer.padTokenId ?? 0,
    rows: rows.map((r, b) => ({ sampling: r.sampling, maxNewTokens: Math.min(r.maxNewTokens, Math.max(0, model.config.maxPositions - ids[b]!.length)) })),
    onToken: (b, token) => {
      const st = state[b]!;
      st.tokens.push(token);
      const text = tokenizer.decode(st.tokens, true);
      const stops = rows[b]!.stop;
      let cut = -1;
      for (const s of stops) {
        const at = text.indexOf(s);
        if (at >= 0 && (cut < 0 || at < cut)) cut = at;
      }
      if (cut >= 0) {
        st.final = text.slice(0, cut);
        if (st.final.length > st.sent) pending.push({ row: b, text: st.final.slice(st.sent) });
        st.sent = st.final.length;
        return true;
      }
      const safe = text.length - heldBackLength(text, stops);
      if (safe > st.sent) { pending.push({ row: b, text: text.slice(st.sent, safe) }); st.sent = safe; }
      return false;
    },
    onStepEnd: () => { if (pending.length) { onDeltas(pending); pending = []; } },
  });
  const out = rows.map((_, b): ServedRow => {
    const st = state[b]!;
    const text = st.final ?? tokenizer.decode(g.tokens[b]!, true);
    if (text.length > st.sent) pending.push({ row: b, text: text.slice(st.sent) });
    return { text, promptTokens: ids[b]!.length, completionTokens: g.tokens[b]!.length, finishReason: g.endedBy[b] === 'length' ? 'length' : 'stop' };
  });
  if (pending.length) onDeltas(pending);
  return out;
}
