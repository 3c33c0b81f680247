/**
 * What the shipped base model is made of, shared by both ways of making it (the TypeScript trainer
 * scripts/make-base-model.ts, and scripts/pretrain-gpu.py over a corpus exported by
 * scripts/export-pretraining-corpus.ts): its size, and its tokenizer, trained on a corpus sample
 * drawn from the seed.
 */
import { SPECIAL_TOKENS, trainBpe } from './bpe-trainer.ts';
import { drawExample, promptText, type CorpusMix, type CorpusOptions } from './corpus.ts';
import { writeTokenizerFolder } from './tokenizer-folder.ts';
import { seededRandom } from '../model/network/rng.ts';

/** Llama-family shape of the base model (tied embeddings; vocabulary from the tokenizer). */
export const BASE_MODEL_SIZE = { hidden: 128, intermediate: 384, layers: 6, heads: 4 } as const;

/** Target vocabulary of the tokenizer (special tokens and the 256 bytes included). */
export const BASE_VOCABULARY = 2048;

/**
 * The corpus the tokenizer's sample is drawn from: the first GPU model's recipe, kept fixed so the
 * shipped tokenizer stays reproducible when the corpus defaults change (its merges cover the later
 * answer format too: "at", "from" and the digits are tokens of it).
 */
export const TOKENIZER_SAMPLE_MIX: CorpusMix = { familiar: 0.15, guess: 0.25, informed: 0.4, extract: 0.2, 'desk-guess': 0, 'desk-informed': 0, 'desk-extract': 0, 'desk-recall': 0, 'desk-copy': 0, 'copy-repeat': 0, 'desk-extract-copy': 0 };
export const TOKENIZER_SAMPLE_OPTIONS: CorpusOptions = { extractionRandomMoves: 0.25, statePositions: false, balancedCounts: false, guess: 'truth' };

/** Trains the BPE tokenizer on 20,000 corpus examples drawn from `seed` and writes its files to `dir`. */
export function trainCorpusTokenizer(dir: string, seed: number): { merges: number } {
  const sampleRandom = seededRandom(seed ^ 0xb9e);
  const sample = Array.from({ length: 20_000 }, () => drawExample(sampleRandom, TOKENIZER_SAMPLE_MIX, TOKENIZER_SAMPLE_OPTIONS));
  const bpe = trainBpe(sample.flatMap((e) => [promptText(e), e.response]), BASE_VOCABULARY, [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.eos, SPECIAL_TOKENS.user, SPECIAL_TOKENS.assistant]);
  writeTokenizerFolder(dir, bpe);
  return { merges: bpe.merges.length };
}
