/**
 * The text of a batch's rows as their tokens arrive, streamed out only once it is final: a tail
 * that may still become a stop sequence, or an incomplete UTF-8 character (U+FFFD at the end of
 * the decoded text), waits for the next token; a row's text ends at its first stop sequence. Pure:
 * shared by the worker's batches (serve-batch.ts) and the torch engine's (src/engine/torch-engine.ts).
 */
import type { Tokenizer } from '../formats/tokenizer.ts';

export interface TextDelta { row: number; text: string }

/**
 * What a tokenizer that cleans spaces (Tokenizer.cleansSpaces) rewrites: a space before these
 * ("a ." -> "a.", "is n't" -> "isn't"), as transformers' clean_up_tokenization does.
 */
const CLEANED = [' .', ' ?', ' !', ' ,', " ' ", " n't", " 'm", " 's", " 've", " 're"];

/**
 * How many characters at the end of `text` could still change: begin a stop sequence, be an
 * incomplete UTF-8 character, or, where the tokenizer cleans spaces, begin what the cleaning
 * rewrites (a trailing space goes when a "." follows).
 */
export function heldBackLength(text: string, stops: readonly string[], cleansSpaces = false): number {
  let hold = 0;
  for (const s of cleansSpaces ? [...stops, ...CLEANED] : stops) {
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--) {
      if (text.endsWith(s.slice(0, k))) { hold = k; break; }
    }
  }
  let end = text.length - hold;
  while (end > 0 && text[end - 1] === '\uFFFD') end--;
  return text.length - end;
}

export class StreamedRows {
  private readonly rows: { tokens: number[]; sent: number; final: string | null }[];
  private pending: TextDelta[] = [];

  constructor(private readonly tokenizer: Tokenizer, private readonly stops: readonly (readonly string[])[]) {
    this.rows = stops.map(() => ({ tokens: [], sent: 0, final: null }));
  }

  /** Row b's next token. True when the row's text is final (it reached a stop sequence): later tokens of it are ignored. */
  push(b: number, token: number): boolean {
    const st = this.rows[b]!;
    if (st.final !== null) return true;
    st.tokens.push(token);
    const text = this.tokenizer.decode(st.tokens, true);
    const stops = this.stops[b]!;
    let cut = -1;
    for (const s of stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      st.final = text.slice(0, cut);
      if (st.final.length > st.sent) this.pending.push({ row: b, text: st.final.slice(st.sent) });
      st.sent = st.final.length;
      return true;
    }
    const safe = text.length - heldBackLength(text, stops, this.tokenizer.cleansSpaces);
    if (safe > st.sent) { this.pending.push({ row: b, text: text.slice(st.sent, safe) }); st.sent = safe; }
    return false;
  }

  /** Whether row b stopped at a stop sequence, and the tokens it took to get there. */
  stopped(b: number): { atStop: boolean; tokens: number } {
    const st = this.rows[b]!;
    return { atStop: st.final !== null, tokens: st.tokens.length };
  }

  /** The deltas gathered since the last call. */
  take(): TextDelta[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }

  /** Row b's whole text (cut at its stop sequence, else `tokens` decoded); what was held back goes to the next take(). */
  finish(b: number, tokens: readonly number[]): string {
    const st = this.rows[b]!;
    const text = st.final ?? this.tokenizer.decode([...tokens], true);
    if (text.length > st.sent) { this.pending.push({ row: b, text: text.slice(st.sent) }); st.sent = text.length; }
    return text;
  }
}
