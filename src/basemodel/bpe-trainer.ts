/**
 * A byte-level BPE trainer that writes the Hugging Face tokenizer.json format (loaded at run time
 * by @huggingface/tokenizers, like any model's tokenizer). Pure logic: texts in, files' JSON out.
 *
 * The pre-tokeniser is chosen for a small domain model: text is split only at line breaks, at
 * board cells, at single capital letters standing alone, and at bracketed actions. A board cell
 * `| H ` is cut into its opening `| `, its content `H` and the space after it, so a letter on the
 * board is the SAME token as that letter in an experience item (`H is a hole`): the model can bind
 * what an item says to what it sees. Every cell is three tokens, so every board row has the same
 * length. Merges may span words: a fixed instruction line becomes one or a few tokens, which keeps
 * the game prompts short.
 */

/** Split pattern of the pre-tokeniser (Isolated: each match is a piece, and so is the text between). */
export const PRETOKENIZE_PATTERN = String.raw`\n|\| (?=[^|\n] \|)|(?<=\| )[^|\n](?= \|)|(?<![A-Za-z])[A-Z](?![A-Za-z])|\[(?:up|down|left|right)\]`;

export interface SpecialTokens { pad: string; eos: string; user: string; assistant: string }
export const SPECIAL_TOKENS: SpecialTokens = { pad: '<|pad|>', eos: '<|end|>', user: '<|user|>', assistant: '<|assistant|>' };

/** GPT-2's byte-to-printable-character map (the ByteLevel pre-tokeniser and decoder use it). */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

/**
 * The pattern of a grown vocabulary (vocabulary-extension.ts): the experience-item marker is a
 * piece of its own, so that an item's sentence ("- EXPERIENCE ITEM: The refund window is 30 days.")
 * is made of the same tokens as the answer that states it ("The refund window is 30 days."). Lake
 * worlds' text is cut as before: there the marker is always followed by a lone capital letter,
 * which already ends its piece.
 */
export const ITEM_SPLIT_PATTERN = `${PRETOKENIZE_PATTERN}|- EXPERIENCE ITEM: `;

/**
 * The pattern of a tokenizer for English beside the lake worlds (word-tokenizer.ts): ITEM_SPLIT_PATTERN,
 * then every word with the space before it (" South", " chief") and every digit, "$" and "%"
 * alone are pieces of their own. So a value is the same tokens wherever it stands: in a
 * customer's correction ("it's South America", "15%, not 10%"), an item ("We ship to South
 * America.") and an answer. With merges that span words (the lake tokenizer grown for English)
 * the tokens of a value depend on the word before it (" is " then "care", against " is" then
 * " care"). A capital letter standing alone stays its own piece without its space, as on the board.
 */
export const WORD_SPLIT_PATTERN = `${ITEM_SPLIT_PATTERN}| ?(?![A-Z](?![A-Za-z]))[A-Za-z]+|[0-9$%]`;

/** The pieces the pre-tokeniser cuts `text` into (before the byte mapping). */
export function pretokenize(text: string, pattern: string = PRETOKENIZE_PATTERN): string[] {
  const re = new RegExp(pattern, 'gu');
  const pieces: string[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) pieces.push(text.slice(last, m.index));
    pieces.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) pieces.push(text.slice(last));
  return pieces;
}

export interface TrainedBpe {
  /** Token string (byte-mapped) to id: special tokens first, then the 256 bytes, then merges. */
  vocab: Map<string, number>;
  merges: [string, string][];
  /** The pre-tokeniser's split pattern (default PRETOKENIZE_PATTERN). */
  pattern?: string;
}

/**
 * Trains merges until the vocabulary (special tokens and the 256 bytes included) reaches
 * `vocabSize`, or no pair occurs twice. Pairs are counted over the distinct pieces weighted by
 * their counts; ties go to the smaller pair of ids, so the result depends only on the input.
 */
export function trainBpe(texts: Iterable<string>, vocabSize: number, specials: readonly string[], pattern: string = PRETOKENIZE_PATTERN): TrainedBpe {
  const encoder = new TextEncoder();
  const idToToken: string[] = [...specials, ...bytesToUnicode()];
  const trained = mergeUntil(idToToken, [], pieceCounts(texts, pattern), (piece) => [...encoder.encode(piece)].map((b) => specials.length + b), vocabSize);
  return pattern === PRETOKENIZE_PATTERN ? trained : { ...trained, pattern };
}

/**
 * Continues a trained BPE on more text: the pieces start as `base` tokenizes them (encodePiece:
 * the base tokenizer's ids), and new merges are learned, with new ids after the base's, until the
 * vocabulary reaches `vocabSize`. Every base token keeps its id and every base merge its rank, so
 * a model over the base vocabulary keeps its embedding rows (new rows are added after them).
 */
/**
 * Which new merges a continuation may learn: given both tokens as the vocabulary spells them
 * (byte-level characters, a space is "Ġ"), whether their pair may become a token.
 */
export type MergeRule = (a: string, b: string) => boolean;

export function continueBpe(base: TrainedBpe, texts: Iterable<string>, encodePiece: (piece: string) => number[], vocabSize: number, pattern: string = base.pattern ?? PRETOKENIZE_PATTERN, allowed: MergeRule = () => true): TrainedBpe {
  const idToToken: string[] = [];
  for (const [token, id] of base.vocab) idToToken[id] = token;
  if (idToToken.some((t) => t === undefined) || idToToken.length !== base.vocab.size) throw new Error('continueBpe: the base vocabulary\'s ids are not 0..n-1');
  const grown = mergeUntil(idToToken, [...base.merges], pieceCounts(texts, pattern), encodePiece, vocabSize, allowed);
  return pattern === PRETOKENIZE_PATTERN ? grown : { ...grown, pattern };
}

/** The distinct pre-tokenised pieces of the texts with their counts. */
function pieceCounts(texts: Iterable<string>, pattern: string = PRETOKENIZE_PATTERN): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of texts) for (const p of pretokenize(t, pattern)) counts.set(p, (counts.get(p) ?? 0) + 1);
  return counts;
}

/**
 * Learns merges over the pieces (each first encoded by encodePiece) until the vocabulary reaches
 * `vocabSize` or no pair the rule allows occurs twice. Pairs are counted over the distinct pieces weighted by
 * their counts; ties go to the smaller pair of ids, so the result depends only on the input.
 */
function mergeUntil(idToToken: string[], merges: [string, string][], counts: Map<string, number>, encodePiece: (piece: string) => number[], vocabSize: number, allowed: MergeRule = () => true): TrainedBpe {
  const vocab = new Map<string, number>(idToToken.map((t, i) => [t, i]));
  const words: number[][] = [];
  const weights: number[] = [];
  for (const [piece, n] of counts) {
    words.push(encodePiece(piece));
    weights.push(n);
  }
  const key = (a: number, b: number) => a * 65536 + b;
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: number) => {
    const s = words[w]!;
    for (let i = 0; i + 1 < s.length; i++) {
      const k = key(s[i]!, s[i + 1]!);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * weights[w]!);
      if (sign > 0) { let set = where.get(k); if (!set) where.set(k, (set = new Set())); set.add(w); }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);

  while (idToToken.length < vocabSize) {
    let bestKey = -1;
    let bestCount = 1;
    for (const [k, c] of pairCount) if (c > bestCount || (c === bestCount && bestKey !== -1 && k < bestKey)) { bestKey = k; bestCount = c; }
    if (bestKey === -1) break;
    const a = Math.floor(bestKey / 65536);
    const b = bestKey % 65536;
    const merged = idToToken[a]! + idToToken[b]!;
    if (vocab.has(merged) || !allowed(idToToken[a]!, idToToken[b]!)) {
      // The pair spells a token the vocabulary already has (reached by other merges): merging it
      // again would give one string two ids. Or the rule refuses it. Skip the pair.
      pairCount.delete(bestKey);
      continue;
    }
    const id = idToToken.length;
    idToToken.push(merged);
    vocab.set(merged, id);
    merges.push([idToToken[a]!, idToToken[b]!]);
    for (const w of where.get(bestKey) ?? []) {
      const s = words[w]!;
      let has = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) { has = true; break; }
      if (!has) continue;
      addPairs(w, -1);
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { next.push(id); i++; } else next.push(s[i]!);
      }
      words[w] = next;
      addPairs(w, 1);
    }
    pairCount.delete(bestKey);
    where.delete(bestKey);
    for (const [k, c] of pairCount) if (c <= 0) pairCount.delete(k);
  }
  return { vocab, merges };
}

/** The vocabulary and merges of a tokenizer.json written by tokenizerFiles. */
export function readTrainedBpe(tokenizerJson: unknown): TrainedBpe {
  const json = tokenizerJson as { model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] }; pre_tokenizer?: { pretokenizers?: { type?: string; pattern?: { Regex?: string } }[] } };
  const model = json.model;
  if (model?.type !== 'BPE' || !model.vocab || !model.merges) throw new Error('tokenizer.json: expected a BPE model with vocab and merges');
  const pattern = json.pre_tokenizer?.pretokenizers?.find((p) => p.type === 'Split')?.pattern?.Regex;
  return {
    vocab: new Map(Object.entries(model.vocab)),
    merges: model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m)),
    ...(pattern !== undefined && pattern !== PRETOKENIZE_PATTERN ? { pattern } : {}),
  };
}

/** A chat template in Jinja: one user turn, then the assistant's answer ended by the eos token. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

/** tokenizer.json and tokenizer_config.json for a trained BPE. */
export function tokenizerFiles(bpe: TrainedBpe, specials: SpecialTokens = SPECIAL_TOKENS): { tokenizer: unknown; tokenizerConfig: unknown } {
  const added = [specials.pad, specials.eos, specials.user, specials.assistant].map((content) => ({
    id: bpe.vocab.get(content)!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: bpe.pattern ?? PRETOKENIZE_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(bpe.vocab), merges: bpe.merges,
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    model_max_length: 1024,
    clean_up_tokenization_spaces: false,
    eos_token: specials.eos,
    pad_token: specials.pad,
    chat_template: CHAT_TEMPLATE,
    added_tokens_decoder: Object.fromEntries(added.map((t) => [String(t.id), { ...t, id: undefined }])),
  };
  return { tokenizer, tokenizerConfig };
}
