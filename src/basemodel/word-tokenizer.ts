/**
 * A tokenizer for a model of both built-in tasks (an alternative to the lake tokenizer grown for
 * English that models/oeld-desk uses): a byte-level BPE trained from nothing on a sample of the
 * lake worlds and the support desk, with WORD_SPLIT_PATTERN, so that merges never span words and a
 * policy value is the same tokens in a customer's sentence, an experience item and an answer. The
 * lake worlds keep what their tokenizer guarantees (a board cell is three pieces, a letter on the
 * board is the letter of an item, the item marker is one piece), and the instruction text the
 * renderers repeat word for word is cut whole, so a prompt costs about as many tokens as before
 * (lake examples 1.3-1.5x, desk examples 1.0-1.1x). What it changed and did not change for a
 * model made over it on CPU is in models/README.md. Deterministic for its options.
 */
import { SPECIAL_TOKENS, trainBpe, WORD_SPLIT_PATTERN, type TrainedBpe } from './bpe-trainer.ts';
import { DEFAULT_MIX, drawExample, promptText, type CorpusMix } from './corpus.ts';
import { writeTokenizerFolder } from './tokenizer-folder.ts';
import { seededRandom } from '../model/network/rng.ts';

export interface WordTokenizerOptions { vocab: number; examples: number; seed: number }
/** The recipe's options (models/README.md). */
export const DESK_WORD_TOKENIZER: WordTokenizerOptions = { vocab: 2048, examples: 12000, seed: 20261207 };

/** The sample: the support desk's kinds and the lake worlds', about as the desk model's pretraining mixes them. */
export const WORD_TOKENIZER_SAMPLE_MIX: CorpusMix = {
  ...DEFAULT_MIX, familiar: 0.05, guess: 0.1, informed: 0.25, extract: 0.15,
  'desk-guess': 0.1, 'desk-informed': 0.15, 'desk-extract': 0.15, 'desk-recall': 0.05,
};

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Where fixed text ends: what carries a game's state or a value (a digit, a capital letter
 * standing alone, a bracketed action) and the item marker, which stays a piece of its own.
 */
const STATE = /[0-9]|(?<![A-Za-z])[A-Z](?![A-Za-z])|\[(?:up|down|left|right)\]|- EXPERIENCE ITEM: /;

/**
 * The instruction text the renderers repeat word for word: the stretches of a line between what
 * carries state (STATE) that stand verbatim in at least `minShare` of the texts and are at least
 * `minChars` long. Longest first, so that a stretch holding a shorter one is cut whole.
 */
export function fixedLines(texts: readonly string[], minShare: number, minChars: number): string[] {
  const counts = new Map<string, number>();
  const split = new RegExp(STATE.source, 'g');
  for (const text of texts) {
    const seen = new Set<string>();
    for (const line of text.split('\n')) for (const stretch of line.split(split)) if (stretch.length >= minChars) seen.add(stretch);
    for (const stretch of seen) counts.set(stretch, (counts.get(stretch) ?? 0) + 1);
  }
  return [...counts].filter(([, n]) => n >= minShare * texts.length).map(([line]) => line).sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
}

/**
 * Fixed text stands in 2% of the sample's texts and is 40 characters or more: instructions, not
 * the opening of a policy's sentence ("The refund window is ", 21), which must stay words so that
 * an item and the answer stating it are the same tokens.
 */
export const FIXED_LINE_SHARE = 0.02;
export const FIXED_LINE_CHARS = 40;

/**
 * The pattern: the sample's fixed instruction lines as pieces of their own (merges within them
 * keep a game prompt or an extraction prompt short, as the lake tokenizer's merges across words
 * did), then WORD_SPLIT_PATTERN.
 */
export function wordTokenizerPattern(texts: readonly string[]): string {
  const fixed = fixedLines(texts, FIXED_LINE_SHARE, FIXED_LINE_CHARS);
  return [...fixed.map(escapeRegex), WORD_SPLIT_PATTERN].join('|');
}

export function trainWordTokenizer(o: WordTokenizerOptions): TrainedBpe {
  if (!Number.isInteger(o.vocab) || o.vocab % 64 !== 0) throw new Error(`vocabulary ${o.vocab}: expected a multiple of 64`);
  const random = seededRandom(o.seed);
  const sample = Array.from({ length: o.examples }, () => drawExample(random, WORD_TOKENIZER_SAMPLE_MIX)).flatMap((e) => [promptText(e), e.response]);
  return trainBpe(sample, o.vocab, [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.eos, SPECIAL_TOKENS.user, SPECIAL_TOKENS.assistant], wordTokenizerPattern(sample));
}

/** Trains the tokenizer and writes its folder (tokenizer.json, tokenizer_config.json, generation_config.json). */
export function writeWordTokenizer(dir: string, o: WordTokenizerOptions = DESK_WORD_TOKENIZER): { vocab: number; merges: number } {
  const bpe = trainWordTokenizer(o);
  writeTokenizerFolder(dir, bpe);
  return { vocab: bpe.vocab.size, merges: bpe.merges.length };
}
