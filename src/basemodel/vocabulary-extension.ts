/**
 * Growing a base model's vocabulary for text its tokenizer was not trained on (the support desk's
 * English, which the lake worlds' tokenizer spells nearly letter by letter): the tokenizer's BPE is
 * continued on a corpus sample (continueBpe: every old token keeps its id, every old merge its
 * rank; a lake-world game situation tokenizes exactly as before) with the item marker a piece of
 * its own (ITEM_SPLIT_PATTERN), new merges joining words only (ExtensionMerges), and the tied embedding gains a row per new token, the mean of the
 * rows of the old tokens that spell it. Deterministic for its options.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { continueBpe, ITEM_SPLIT_PATTERN, readTrainedBpe, type MergeRule, type TrainedBpe } from './bpe-trainer.ts';
import { DEFAULT_MIX, drawExample, promptText, type CorpusMix } from './corpus.ts';
import { writeTokenizerFolder } from './tokenizer-folder.ts';
import type { Tensor } from '../model/formats/safetensors.ts';
import { loadTokenizer, type Tokenizer } from '../model/formats/tokenizer.ts';
import { seededRandom } from '../model/network/rng.ts';

/**
 * Which new merges are learned: `words` joins only letters and spaces, with a space only at a
 * token's start or end (so a value such as "30 days" is the same digits and word tokens in an
 * item, an answer and a customer's correction, and never fused with the sentence around it);
 * `any` is plain BPE (its tokens span digits, punctuation and words: "0 days.", "Students get 3").
 */
export type ExtensionMerges = 'words' | 'any';
export interface ExtensionOptions { vocab: number; examples: number; seed: number; merges: ExtensionMerges }
/** What the support desk's vocabulary is grown with (models/README.md). */
export const DESK_EXTENSION: ExtensionOptions = { vocab: 2048, examples: 8000, seed: 20261206, merges: 'words' };

const SPACE = 'Ġ';
/** A new merge of letters and spaces only, whose result has no space inside it. */
export const wordMerge: MergeRule = (a, b) => {
  const merged = a + b;
  return /^[A-Za-zĠ]+$/.test(merged) && !merged.slice(1, -1).includes(SPACE);
};

/** The sample the merges are learned on: mostly the support desk (what the old merges do not cover), some lake worlds. */
export const EXTENSION_SAMPLE_MIX: CorpusMix = { ...DEFAULT_MIX, familiar: 0.02, guess: 0.03, informed: 0.1, extract: 0.05, 'desk-guess': 0.2, 'desk-informed': 0.35, 'desk-extract': 0.25 };

/** Continues the tokenizer of `fromDir` and writes the grown one to `outDir`; returns both tokenizers. */
export async function extendTokenizer(fromDir: string, outDir: string, o: ExtensionOptions): Promise<{ base: TrainedBpe; wide: TrainedBpe; old: Tokenizer; grown: Tokenizer }> {
  if (!Number.isInteger(o.vocab) || o.vocab % 64 !== 0) throw new Error(`vocabulary ${o.vocab}: expected a multiple of 64`);
  const random = seededRandom(o.seed);
  const sample = Array.from({ length: o.examples }, () => drawExample(random, EXTENSION_SAMPLE_MIX)).flatMap((e) => [promptText(e), e.response]);
  const old = await loadTokenizer(fromDir);
  const base = readTrainedBpe(JSON.parse(readFileSync(join(fromDir, 'tokenizer.json'), 'utf8')));
  const wide = continueBpe(base, sample, (piece) => old.encode(piece), o.vocab, ITEM_SPLIT_PATTERN, o.merges === 'words' ? wordMerge : undefined);
  writeTokenizerFolder(outDir, wide);
  return { base, wide, old, grown: await loadTokenizer(outDir) };
}

/** The embedding with `rows` rows: the old rows as they were, each new token's row the mean of the rows of the old tokens that spell it. */
export function extendEmbedding(embed: Tensor, rows: number, firstNew: number, lastNew: number, old: Tokenizer, grown: Tokenizer): Tensor {
  const [oldRows, hidden] = embed.shape as [number, number];
  const data = new Float32Array(rows * hidden);
  data.set(embed.data.subarray(0, Math.min(oldRows, rows) * hidden));
  for (let id = firstNew; id <= lastNew; id++) {
    const text = grown.decode([id]);
    const pieces = old.encode(text);
    if (pieces.length === 0) throw new Error(`token ${id} (${JSON.stringify(text)}) spells nothing in the old vocabulary`);
    data.fill(0, id * hidden, (id + 1) * hidden);
    for (const p of pieces) for (let j = 0; j < hidden; j++) data[id * hidden + j]! += embed.data[p * hidden + j]! / pieces.length;
  }
  return { shape: [rows, hidden], data };
}
